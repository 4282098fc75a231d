#include "lib/provision/domain_forker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>

#include "tests/fakes/fake_file_tree.h"
#include "tests/unit/provision/managers_fixture.h"

namespace xenctl::provision {
namespace {

using core::DomainState;
using core::OperationState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kMiB = uint64_t{1} << 20;

// Two pools in memory, "main" and "data", and a stopped domain "web1" whose
// root main/web1-root was cloned from the golden base main/golden, with a
// data disk data/web1-data and a read-only disk on a host path. The
// customizer is a recording lambda.
class DomainForkerTest : public ManagersFixture {
 protected:
  std::vector<std::string> poolNames() const override { return {"main", "data"}; }
  void SetUp() override {
    ManagersFixture::SetUp();
    main_ = pools_[0];
    data_ = pools_[1];
    ASSERT_TRUE(main_->create("golden", 16 * kMiB, std::nullopt).ok());
    ASSERT_TRUE(main_->clone("golden", "web1-root", 0, {}).ok());
    ASSERT_TRUE(data_->create("web1-data", 8 * kMiB, std::nullopt).ok());
    define("web1",
           {{"vol:main/web1-root", "xvda", "w", ""},
            {"vol:data/web1-data", "xvdb", "w", ""},
            {"/srv/iso/tools.iso", "xvdc", "r", ""}},
           {{"xenbr0", "", "10.0.0.5"}});
    source_ = domains_->get("web1")->spec;
    forker_ = makeForker([this](const std::string& path, const core::Customizations& c) -> Status {
      std::lock_guard lock(mu_);
      customized_.push_back({path, c});
      if (on_customize_) return on_customize_(path);
      return absl::OkStatus();
    });
  }
  std::unique_ptr<DomainForker> makeForker(DomainForker::Customize customize) {
    return std::make_unique<DomainForker>(*domains_, *storage_, ops_, std::move(customize));
  }
  ForkRequest request(const std::string& name = "web2") {
    ForkRequest r;
    r.source = "web1";
    r.name = name;
    return r;
  }
  // After a failed fork: the source's volumes and web1 alone, as before.
  void expectNothingLeft() {
    EXPECT_THAT(volumeNames(), ElementsAre("data/web1-data", "main/golden", "main/web1-root"));
    EXPECT_THAT(domainNames(), ElementsAre("web1"));
    EXPECT_TRUE(hv_.listDomains()->empty());
  }

  fakes::FakeVolumes* main_ = nullptr;
  fakes::FakeVolumes* data_ = nullptr;
  std::unique_ptr<DomainForker> forker_;
  core::DomainSpec source_;

  std::mutex mu_;
  std::vector<std::pair<std::string, core::Customizations>> customized_;
  std::function<Status(const std::string& path)> on_customize_;
};

// The happy path: each writable volume cloned, a new identity on the root
// only, the source's spec with a new uuid, new MACs and the clones, started.
TEST_F(DomainForkerTest, ForksWithNewIdentity) {
  ForkRequest r = request();
  r.hostname = "web2";
  auto op = done(forker_->fork(r, caller_));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(op.kind, "fork-domain");
  EXPECT_EQ(op.target, "web2");

  EXPECT_THAT(volumeNames(), ElementsAre("data/web1-data", "data/web2-xvdb", "main/golden", "main/web1-root",
                                         "main/web2-root"));
  EXPECT_EQ(main_->get("web2-root")->origin, "web1-root");
  EXPECT_EQ(data_->get("web2-xvdb")->origin, "web1-data");

  auto fork = domains_->get("web2");
  ASSERT_TRUE(fork.ok()) << fork.status();
  EXPECT_EQ(fork->state, DomainState::kRunning);
  const core::DomainSpec& s = fork->spec;
  EXPECT_NE(s.uuid, source_.uuid);
  EXPECT_EQ(s.memory_mib, source_.memory_mib);
  ASSERT_EQ(s.disks.size(), 3u);
  EXPECT_EQ(s.disks[0].target, "vol:main/web2-root");
  EXPECT_EQ(s.disks[1].target, "vol:data/web2-xvdb");
  EXPECT_EQ(s.disks[2].target, "/srv/iso/tools.iso");  // read-only: shared
  ASSERT_EQ(s.vifs.size(), 1u);
  EXPECT_EQ(s.vifs[0].bridge, "xenbr0");
  EXPECT_NE(s.vifs[0].mac, source_.vifs[0].mac);
  EXPECT_EQ(s.vifs[0].ip, "");  // the source's address would clash

  std::lock_guard lock(mu_);
  ASSERT_EQ(customized_.size(), 1u);
  EXPECT_EQ(customized_[0].first, "/fake/main/web2-root");
  const core::Customizations& c = customized_[0].second;
  EXPECT_TRUE(c.reset_identity);
  EXPECT_EQ(c.hostname, "web2");
  EXPECT_EQ(c.instance_id, s.uuid);
  EXPECT_TRUE(c.files.empty() && c.users.empty() && c.networks.empty() && c.ssh_keys.empty());

  // The source is untouched.
  auto src = domains_->get("web1");
  ASSERT_TRUE(src.ok());
  EXPECT_EQ(src->spec, source_);
  EXPECT_EQ(src->state, DomainState::kStopped);
}

// --define-only defines the fork and leaves it stopped; no hostname keeps the source's.
TEST_F(DomainForkerTest, DefineOnly) {
  ForkRequest r = request();
  r.define_only = true;
  auto op = done(forker_->fork(r, caller_));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(domains_->get("web2")->state, DomainState::kStopped);
  std::lock_guard lock(mu_);
  ASSERT_EQ(customized_.size(), 1u);
  EXPECT_FALSE(customized_[0].second.hostname.has_value());
}

// A running source is refused at once, naming it and what to do; nothing is made.
TEST_F(DomainForkerTest, RefusesRunningSource) {
  ASSERT_EQ(done(domains_->start("web1", false, caller_)).state, OperationState::kSucceeded);
  auto r = forker_->fork(request(), caller_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("domain 'web1' is running"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("stop it first (`vm-shutdown web1`)"));
  EXPECT_THAT(volumeNames(), ElementsAre("data/web1-data", "main/golden", "main/web1-root"));
  EXPECT_THAT(domainNames(), ElementsAre("web1"));
}

// A taken name, a taken clone name, an unknown source and a source without
// volumes are refused at once and make nothing.
TEST_F(DomainForkerTest, RefusesAtOnce) {
  auto code = [this](ForkRequest r) {
    auto op = forker_->fork(std::move(r), caller_);
    return op.ok() ? absl::StatusCode::kOk : op.status().code();
  };
  EXPECT_EQ(code(request("web1")), absl::StatusCode::kInvalidArgument);  // itself
  ForkRequest unknown = request();
  unknown.source = "nope";
  EXPECT_EQ(code(unknown), absl::StatusCode::kNotFound);
  EXPECT_EQ(code(request("Bad Name")), absl::StatusCode::kInvalidArgument);

  define("plain", {{"/dev/vg0/plain", "xvda", "w", ""}});
  EXPECT_EQ(code(request("plain")), absl::StatusCode::kAlreadyExists);
  ForkRequest host_path = request("plain2");
  host_path.source = "plain";
  auto r = forker_->fork(host_path, caller_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("disk xvda is the host path '/dev/vg0/plain'"));

  ASSERT_TRUE(data_->create("web3-xvdb", 8 * kMiB, std::nullopt).ok());
  r = forker_->fork(request("web3"), caller_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("volume 'data/web3-xvdb' already exists"));

  EXPECT_THAT(volumeNames(), ElementsAre("data/web1-data", "data/web3-xvdb", "main/golden", "main/web1-root"));
  EXPECT_THAT(domainNames(), ElementsAre("plain", "web1"));
}

// A fork keeps the source's read-only host-path disk: a caller who may not name that path may not fork it.
TEST_F(DomainForkerTest, NonAdminCannotForkHostPaths) {
  Caller op("", 1000);
  op.role = core::Role::kOperator;
  auto r = forker_->fork(request(), op);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("disk xvdc: host path /srv/iso/tools.iso"));
  expectNothingLeft();
}

// Without a customizer a fork would share the source's identity: refused.
TEST_F(DomainForkerTest, NoCustomizerIsRefused) {
  auto forker = makeForker({});
  auto r = forker->fork(request(), caller_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
}

// The root's clone failing leaves nothing.
TEST_F(DomainForkerTest, FirstCloneFailureLeavesNothing) {
  main_->failClone(absl::ResourceExhaustedError("pool is full"));
  auto op = done(forker_->fork(request(), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("forking domain 'web1' as 'web2': clone: "));
  EXPECT_THAT(std::string(op.status.message()), Not(HasSubstr("undone")));
  expectNothingLeft();
}

// The second clone failing deletes the first.
TEST_F(DomainForkerTest, SecondCloneFailureDeletesTheFirst) {
  data_->failClone(absl::ResourceExhaustedError("pool is full"));
  auto op = done(forker_->fork(request(), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("pool is full; undone: clone"));
  expectNothingLeft();
}

// A failing identity reset deletes both clones, keeping the customizer's error.
TEST_F(DomainForkerTest, CustomizeFailureDeletesTheClones) {
  on_customize_ = [](const std::string&) { return absl::ResourceExhaustedError("writing /etc/ssh: no space"); };
  auto op = done(forker_->fork(request(), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(op.status.message()),
              HasSubstr("customize: writing /etc/ssh: no space; undone: clone, clone"));
  expectNothingLeft();
}

// A definition that fails (the name was taken meanwhile) deletes the clones
// and leaves the other domain alone.
TEST_F(DomainForkerTest, DefineFailureDeletesTheClones) {
  on_customize_ = [this](const std::string&) -> Status {
    core::DomainSpec other;
    other.name = "web2";
    other.memory_mib = 64;
    other.vcpus = 1;
    EXPECT_TRUE(domains_->createNow({other, true, false}, 1000).ok());
    return absl::OkStatus();
  };
  auto op = done(forker_->fork(request(), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("define: domain 'web2' already exists; undone: clone, clone"));
  EXPECT_THAT(volumeNames(), ElementsAre("data/web1-data", "main/golden", "main/web1-root"));
  auto other = domains_->get("web2");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->spec.disks.empty());
}

// A start the hypervisor refuses undoes the definition and the clones.
TEST_F(DomainForkerTest, StartFailureUndoesEverything) {
  on_customize_ = [this](const std::string&) -> Status {
    // The host fills up meanwhile: 1 GiB, all taken.
    core::DomainSpec hog;
    hog.name = "hog";
    hog.memory_mib = 1000;
    hog.vcpus = 1;
    EXPECT_TRUE(domains_->createNow({hog, false, false}, 1000).ok());
    return absl::OkStatus();
  };
  auto op = done(forker_->fork(request(), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("forking domain 'web1' as 'web2': start: creating domain 'web2': "));
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("undone: clone, clone"));
  EXPECT_THAT(volumeNames(), ElementsAre("data/web1-data", "main/golden", "main/web1-root"));
  EXPECT_THAT(domainNames(), ElementsAre("hog", "web1"));
}

// A clone that cannot be deleted on undo is named, with what to do.
TEST_F(DomainForkerTest, UndoFailureIsNamed) {
  on_customize_ = [this](const std::string&) {
    data_->failRemove(absl::UnavailableError("device busy"));
    return absl::InvalidArgumentError("bad hostname");
  };
  auto op = done(forker_->fork(request(), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_THAT(std::string(op.status.message()),
              HasSubstr("undone: clone; could not undo: clone (volume data/web2-xvdb: removing web2-xvdb: device busy)"));
  EXPECT_THAT(domainNames(), ElementsAre("web1"));
}

}  // namespace
}  // namespace xenctl::provision
