#include "lib/provision/provisioner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "lib/testhv/test_hypervisor.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/fakes/fake_file_tree.h"
#include "tests/fakes/fake_process_runner.h"
#include "tests/fakes/fake_volumes.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/provision/managers_fixture.h"
#include "tests/unit/provision/test_util.h"

namespace xenctl::provision {
namespace {

using core::DomainState;
using core::OperationState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

// A daemon's parts over one pool "main" in memory (whose clone, resize and
// remove can be made to fail), a test hypervisor with 1 GiB, and an image
// "golden" in the catalog whose base volume has 16 MiB. The customizer is a
// recording lambda.
class ProvisionerTest : public ManagersFixture {
 protected:
  void SetUp() override {
    ManagersFixture::SetUp();
    pool_ = pools_[0];
    ImageConfig cfg;
    cfg.work_dir = tmp_.path();
    images_ = std::make_unique<ImageManager>(*storage_, fetcher_, *store_, ops_, tools_, clock_, cfg);
    ASSERT_TRUE(pool_->create("golden", 16 * kMiB, std::nullopt).ok());
    state::ImageRecord rec;
    rec.name = "golden";
    rec.uri = "https://images.example/golden.tar.zst";
    rec.sha256 = std::string(64, 'a');
    rec.kind = "archive";
    rec.pool = "main";
    rec.volume = "golden";
    rec.size_bytes = 16 * kMiB;
    ASSERT_TRUE(store_->insertImage(rec).ok());
    // Each volume's file system is a FakeFileTree, made on first open from
    // the golden image's files.
    ContainerRunner::Ports ports;
    ports.open_tree = [this](const std::string& path, bool writable) -> Result<std::unique_ptr<core::FileTree>> {
      std::lock_guard lock(mu_);
      auto it = trees_.find(path);
      if (it == trees_.end()) it = trees_.emplace(path, golden_files_.reopen(true)).first;
      return std::unique_ptr<core::FileTree>(it->second->reopen(writable));
    };
    ports.fetcher = &fetcher_;
    ports.customize = [](core::FileTree& t, const core::Customizations& c) -> Status {
      if (c.hostname) return t.writeFile("/etc/hostname", *c.hostname + "\n", {0644, 0, 0});
      return absl::OkStatus();
    };
    ContainerRunner::Config config;
    config.sources = image::ImageSources(std::vector<image::MinisignPublicKey>{});
    config.max_fetch_bytes = 1 << 20;
    containers_ = std::make_unique<ContainerRunner>(*storage_, usage_, ops_, std::move(ports), std::move(config));
    golden_files_.addFile("/etc/motd", "one\ntwo\n");
    provisioner_ = makeProvisioner([this](const std::string& path, const core::Customizations& c) -> Status {
      std::lock_guard lock(mu_);
      customized_.push_back({path, c});
      if (on_customize_) return on_customize_(path);
      return absl::OkStatus();
    });
  }
  std::unique_ptr<Provisioner> makeProvisioner(Provisioner::Customize customize) {
    return std::make_unique<Provisioner>(*domains_, *storage_, *images_, ops_, std::move(customize), containers_.get());
  }
  Caller admin() const {
    Caller c = caller_;
    c.role = core::Role::kAdmin;
    return c;
  }
  /// The file `path` of the volume at `volume_path`, or "<missing>".
  std::string fileOf(const std::string& volume_path, const std::string& path) {
    std::lock_guard lock(mu_);
    auto it = trees_.find(volume_path);
    if (it == trees_.end()) return "<no tree>";
    return it->second->readFile(path).value_or("<missing>");
  }
  ProvisionRequest request(const std::string& name, uint64_t memory_mib = 256) {
    ProvisionRequest r;
    r.spec.name = name;
    r.spec.memory_mib = memory_mib;
    r.spec.vcpus = 1;
    r.image = "golden";
    r.customizations.hostname = name;
    return r;
  }
  // After a failed provisioning: the golden base alone, no domain anywhere.
  void expectNothingLeft() {
    EXPECT_THAT(volumeNames(), ElementsAre("main/golden"));
    EXPECT_TRUE(domainNames().empty());
    EXPECT_TRUE(store_->listDomains()->empty());
    EXPECT_TRUE(hv_.listDomains()->empty());
  }

  test_support::TempDir tmp_;
  fakes::FakeFetcher fetcher_;
  fakes::FakeProcessRunner tools_;
  fakes::FakeVolumes* pool_ = nullptr;  ///< "main"
  std::unique_ptr<ImageManager> images_;
  fakes::FakeFileTree golden_files_;
  std::map<std::string, std::unique_ptr<fakes::FakeFileTree>> trees_;  ///< by volume path
  std::unique_ptr<ContainerRunner> containers_;
  std::unique_ptr<Provisioner> provisioner_;

  std::mutex mu_;
  std::vector<std::pair<std::string, core::Customizations>> customized_;
  std::function<Status(const std::string& path)> on_customize_;
};

// runSaga runs the steps in order and, when one fails, undoes the completed ones in reverse.
TEST(RunSagaTest, RunsInOrderAndUndoesInReverse) {
  fakes::FakeClock clock;
  OperationRegistry ops{clock, nullptr, OperationRegistry::Options{}};
  std::vector<std::string> log;
  auto step = [&log](const std::string& name, bool fail) {
    return SagaStep{name, 10, "",
                    [&log, name, fail](OperationContext&, StepRecord& rec) -> Status {
                      log.push_back("run " + name);
                      rec["what"] = name;
                      return fail ? absl::ResourceExhaustedError("no room") : absl::OkStatus();
                    },
                    [&log](const StepRecord& rec) {
                      log.push_back("undo " + rec.at("what"));
                      return absl::OkStatus();
                    }};
  };
  auto op = ops.start({"t", "x", "", 0}, [&](OperationContext& ctx) {
    return runSaga(ctx, "making x", {step("a", false), step("b", false), step("c", true), step("d", false)});
  });
  ASSERT_TRUE(op.ok());
  auto rec = waitFinished(ops, op->id);
  EXPECT_EQ(rec.state, OperationState::kFailed);
  EXPECT_EQ(rec.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(rec.status.message(), "making x: c: no room; undone: b, a");
  EXPECT_THAT(log, ElementsAre("run a", "run b", "run c", "undo b", "undo a"));
}

// Each step's intent is journaled before it runs, the record again when done; the journal goes with the operation.
TEST(RunSagaTest, JournalsEachStepBeforeItRuns) {
  fakes::FakeClock clock;
  auto store = *state::Store::open(":memory:");
  OperationRegistry ops{clock, store.get(), OperationRegistry::Options{}};
  std::vector<std::vector<state::JournalStep>> seen;
  auto step = [&](const std::string& name) {
    SagaStep s{name, 10, "",
               [&, name](OperationContext&, StepRecord& rec) -> Status {
                 seen.push_back(*store->listJournal());
                 rec["made"] = name;
                 return absl::OkStatus();
               },
               {}};
    s.intent = {{"volume", name + "-vol"}};
    return s;
  };
  auto op = ops.start({"t", "x", "", 0}, [&](OperationContext& ctx) {
    return runSaga(ctx, "making x", {step("a"), step("b")});
  });
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(waitFinished(ops, op->id).state, OperationState::kSucceeded);
  ASSERT_EQ(seen.size(), 2u);
  ASSERT_EQ(seen[0].size(), 1u);
  EXPECT_EQ(seen[0][0].record.at("volume"), "a-vol");
  EXPECT_FALSE(seen[0][0].done);
  ASSERT_EQ(seen[1].size(), 2u);
  EXPECT_TRUE(seen[1][0].done);
  EXPECT_EQ(seen[1][0].record.at("made"), "a");
  EXPECT_EQ(seen[1][1].step, "b");
  EXPECT_FALSE(seen[1][1].done);
  EXPECT_TRUE(store->listJournal()->empty());
}

// An undo that fails is named in the error with what to do; the other undos still run.
TEST(RunSagaTest, NamesAnUndoThatFails) {
  fakes::FakeClock clock;
  OperationRegistry ops{clock, nullptr, OperationRegistry::Options{}};
  bool first_undone = false;
  std::vector<SagaStep> steps = {
      {"clone", 5, "", [](OperationContext&, StepRecord&) { return absl::OkStatus(); },
       [&](const StepRecord&) {
         first_undone = true;
         return absl::OkStatus();
       }},
      {"define", 50, "", [](OperationContext&, StepRecord&) { return absl::OkStatus(); },
       [](const StepRecord&) { return absl::UnavailableError("store is locked"); }},
      {"start", 90, "", [](OperationContext&, StepRecord&) { return absl::InternalError("boom"); }, {}}};
  auto op = ops.start({"t", "x", "", 0}, [&](OperationContext& ctx) { return runSaga(ctx, "x", steps); });
  ASSERT_TRUE(op.ok());
  auto rec = waitFinished(ops, op->id);
  EXPECT_THAT(std::string(rec.status.message()), HasSubstr("x: start: boom; undone: clone; could not undo: define"
                                                           " (store is locked)"));
  EXPECT_TRUE(first_undone);
}

// A step of several phases is named in its error by the phase it failed in.
TEST(RunSagaTest, NamesTheFailedPhaseOfAStep) {
  fakes::FakeClock clock;
  OperationRegistry ops{clock, nullptr, OperationRegistry::Options{}};
  std::vector<SagaStep> steps = {{"define", 80, "",
                                  [](OperationContext&, StepRecord& rec) {
                                    rec["phase"] = "start";
                                    return absl::ResourceExhaustedError("no memory");
                                  },
                                  {}}};
  auto op = ops.start({"t", "x", "", 0}, [&](OperationContext& ctx) { return runSaga(ctx, "x", steps); });
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(waitFinished(ops, op->id).status.message(), "x: start: no memory");
}

// The happy path: one operation clones, grows, customizes, defines and starts; each step sees the earlier ones.
TEST_F(ProvisionerTest, ProvisionsInOrder) {
  ProvisionRequest r = request("web1");
  r.root_size_bytes = 32 * kMiB;
  on_customize_ = [this](const std::string& path) -> Status {
    // Customized after the clone was grown, before the domain is defined.
    auto root = pool_->get("web1-root");
    EXPECT_TRUE(root.ok()) << root.status();
    if (root.ok()) {
      EXPECT_EQ(root->path, path);
      EXPECT_EQ(root->size_bytes, 32 * kMiB);
    }
    EXPECT_TRUE(domainNames().empty());
    return absl::OkStatus();
  };
  auto op = done(provisioner_->create(r, caller_));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(op.kind, "create-domain");
  EXPECT_EQ(op.target, "web1");
  EXPECT_EQ(op.phase, "start");
  ASSERT_EQ(customized_.size(), 1u);
  auto v = domains_->get("web1");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->state, DomainState::kRunning);
  EXPECT_EQ(v->owner_uid, 1000);
  ASSERT_FALSE(v->spec.disks.empty());
  EXPECT_EQ(v->spec.disks[0].target, "vol:main/web1-root");
  EXPECT_EQ(v->spec.disks[0].vdev, "xvda");
  EXPECT_EQ(v->spec.disks[0].mode, "w");
  const core::Customizations& c = customized_[0].second;
  EXPECT_EQ(c.hostname, "web1");
  EXPECT_EQ(c.instance_id, v->spec.uuid);
  EXPECT_EQ(c.domain_name, "web1");
  EXPECT_TRUE(c.reset_identity);
  auto root = pool_->get("web1-root");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->origin, "golden");
}

// A cached catalog image is cloned, never fetched again.
TEST_F(ProvisionerTest, CachedImageIsNotFetched) {
  auto op = done(provisioner_->create(request("web1"), caller_));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_TRUE(fetcher_.requested().empty());
}

// The root goes where the request says: its vdev, paused, or defined only.
TEST_F(ProvisionerTest, VdevPausedAndDefineOnly) {
  ProvisionRequest a = request("a");
  a.root_vdev = "xvdb";
  a.paused = true;
  ASSERT_EQ(done(provisioner_->create(a, caller_)).state, OperationState::kSucceeded);
  EXPECT_EQ(domains_->get("a")->state, DomainState::kPaused);
  EXPECT_EQ(domains_->get("a")->spec.disks[0].vdev, "xvdb");
  ProvisionRequest b = request("b");
  b.define_only = true;
  auto op = done(provisioner_->create(b, caller_));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(op.phase, "define");
  EXPECT_EQ(domains_->get("b")->state, DomainState::kStopped);
  EXPECT_THAT(volumeNames(), ElementsAre("main/a-root", "main/b-root", "main/golden"));
}

// Each vif with an ip becomes a network interface with the MAC the daemon generated; gateway and DNS join it.
TEST_F(ProvisionerTest, NetworksFromVifs) {
  ProvisionRequest r = request("web1");
  r.spec.vifs = {{"xenbr0", "", "10.0.0.5/24"}, {"xenbr1", "", ""}, {"xenbr2", "00:16:3e:00:00:07", "fd00::5/64"}};
  r.networks = {{0, "10.0.0.1", {"10.0.0.53", "10.0.0.54"}}};
  auto op = done(provisioner_->create(r, caller_));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  auto spec = domains_->get("web1")->spec;
  ASSERT_EQ(customized_.size(), 1u);
  const auto& nets = customized_[0].second.networks;
  ASSERT_EQ(nets.size(), 2u);
  EXPECT_EQ(nets[0].mac, spec.vifs[0].mac);
  EXPECT_EQ(nets[0].mac, core::xenMacFor(spec.uuid, 0));
  EXPECT_EQ(nets[0].address, "10.0.0.5/24");
  EXPECT_EQ(nets[0].gateway, "10.0.0.1");
  EXPECT_THAT(nets[0].dns, ElementsAre("10.0.0.53", "10.0.0.54"));
  EXPECT_EQ(nets[0].vif_index, 0);
  EXPECT_EQ(nets[1].vif_index, 2);  // its position in the spec, for ifupdown's names
  EXPECT_EQ(nets[1].mac, "00:16:3e:00:00:07");
  EXPECT_EQ(nets[1].address, "fd00::5/64");
  EXPECT_EQ(nets[1].gateway, "");
}

// Network settings for a vif without an address, or an address without a prefix, are refused at once.
TEST_F(ProvisionerTest, BadNetworkSettingsAreRefused) {
  ProvisionRequest r = request("web1");
  r.spec.vifs = {{"", "", ""}};
  r.networks = {{0, "10.0.0.1", {}}};
  auto st = provisioner_->create(r, caller_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("vif 0, which has no ip"));
  r.networks.clear();
  r.spec.vifs[0].ip = "10.0.0.5";
  st = provisioner_->create(r, caller_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("needs a prefix length"));
  expectNothingLeft();
  EXPECT_TRUE(ops_.list("", false, 10).empty());
}

// With the identity kept and nothing to apply, the customize step is skipped.
TEST_F(ProvisionerTest, NothingToCustomizeSkipsTheStep) {
  ProvisionRequest r = request("web1");
  r.customizations = {};
  r.customizations.reset_identity = false;
  auto op = done(provisioner_->create(r, caller_));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_TRUE(customized_.empty());
}

// Without a customizer, customizations are refused at once as not built, naming the way around.
TEST_F(ProvisionerTest, NoCustomizerRefusesCustomizations) {
  provisioner_ = makeProvisioner({});
  auto st = provisioner_->create(request("web1"), caller_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(st.message()), HasSubstr("--keep-identity"));
  expectNothingLeft();
}

// Bad roots are refused at once, nothing made: a URI, an image not in the catalog, another pool, a small size, a taken volume.
TEST_F(ProvisionerTest, RefusesBadRootsAtOnce) {
  ProvisionRequest r = request("web1");
  r.image = "https://images.example/golden.tar.zst";
  auto st = provisioner_->create(r, caller_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("import it first (`vm-image import NAME"));
  r.image = "debian-12";
  st = provisioner_->create(r, caller_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("root image 'debian-12' is not in the catalog"));
  r.image = "golden";
  r.pool = "thin";
  st = provisioner_->create(r, caller_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("is in pool 'main', not 'thin'"));
  r.pool = "main";
  r.root_size_bytes = 8 * kMiB;
  st = provisioner_->create(r, caller_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("below the size of image 'golden'"));
  EXPECT_TRUE(fetcher_.requested().empty());
  expectNothingLeft();
  ASSERT_TRUE(pool_->create("web1-root", kMiB, std::nullopt).ok());
  r.root_size_bytes = 0;
  st = provisioner_->create(r, caller_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(st.message()), HasSubstr("'main/web1-root' already exists"));
  EXPECT_TRUE(ops_.list("", false, 10).empty());
}

// A non-admin's provisioning spec may not name host paths (here a kernel): refused at once, nothing cloned; its
// own root, a managed volume, is allowed.
TEST_F(ProvisionerTest, NonAdminHostPathsRefused) {
  Caller op("", 1000);
  op.role = core::Role::kOperator;
  ProvisionRequest r = request("web1");
  r.spec.kernel = "/boot/vmlinuz";
  auto st = provisioner_->create(r, op).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("domain 'web1': kernel: host path /boot/vmlinuz"));
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden"));
  EXPECT_EQ(done(provisioner_->create(request("web1"), op)).state, OperationState::kSucceeded);
}

// A failing clone leaves nothing.
TEST_F(ProvisionerTest, CloneFailureLeavesNothing) {
  pool_->failClone(absl::ResourceExhaustedError("pool is full"));
  auto op = done(provisioner_->create(request("web1"), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("provisioning domain 'web1': clone: "));
  expectNothingLeft();
}

// A failing grow deletes the clone.
TEST_F(ProvisionerTest, GrowFailureDeletesTheClone) {
  pool_->failResize(absl::ResourceExhaustedError("pool is full"));
  ProvisionRequest r = request("web1");
  r.root_size_bytes = 32 * kMiB;
  auto op = done(provisioner_->create(r, caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("grow: resizing volume 'main/web1-root': pool is full; undone: clone"));
  expectNothingLeft();
}

// A failing customization deletes the clone, and the customizer's error is kept.
TEST_F(ProvisionerTest, CustomizeFailureDeletesTheClone) {
  on_customize_ = [](const std::string&) { return absl::InvalidArgumentError("user 'bob' has no group 'wheel'"); };
  auto op = done(provisioner_->create(request("web1"), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(op.status.message()),
              HasSubstr("customize: user 'bob' has no group 'wheel'; undone: clone"));
  expectNothingLeft();
}

// A clone that cannot be deleted on undo is named, with what to do.
TEST_F(ProvisionerTest, UndoFailureIsNamed) {
  on_customize_ = [this](const std::string&) {
    pool_->failRemove(absl::UnavailableError("device busy"));
    return absl::InvalidArgumentError("bad file");
  };
  auto op = done(provisioner_->create(request("web1"), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_THAT(std::string(op.status.message()),
              HasSubstr("could not undo: clone (volume main/web1-root: removing web1-root: device busy)"));
  EXPECT_TRUE(domainNames().empty());
}

// A definition that fails (the name was taken meanwhile) deletes the clone and leaves the other domain alone.
TEST_F(ProvisionerTest, DefineFailureDeletesTheClone) {
  on_customize_ = [this](const std::string&) -> Status {
    core::DomainSpec other;
    other.name = "web1";
    other.memory_mib = 64;
    other.vcpus = 1;
    auto op = done(domains_->create({other, true, false}, caller_));
    EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
    return absl::OkStatus();
  };
  auto op = done(provisioner_->create(request("web1"), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("define: domain 'web1' already exists; undone: clone"));
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden"));
  auto other = domains_->get("web1");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->spec.disks.empty());
}

// A start the hypervisor refuses undoes the definition and the clone.
TEST_F(ProvisionerTest, StartFailureUndoesDefinitionAndClone) {
  auto op = done(provisioner_->create(request("big", 2048), caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kResourceExhausted);
  // The define step's createNow undid its own definition; the saga undid the clone.
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("provisioning domain 'big': start: creating domain 'big': "));
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("undone: clone"));
  expectNothingLeft();
}

// A container text runs on the new root in the customize phase, after the typed customizations, its statements in order.
TEST_F(ProvisionerTest, ContainerTextChangesTheRootAfterTheTypedCustomizations) {
  fetcher_.serve("file:///srv/motd.patch",
                 "--- a/etc/motd\n+++ b/etc/motd\n@@ -1,2 +1,2 @@\n-typed\n+patched\n two\n");
  on_customize_ = [this](const std::string& path) -> Status {
    // What the typed customizations wrote is what the container text's patch sees.
    if (!trees_.count(path)) trees_.emplace(path, golden_files_.reopen(true));
    return trees_.at(path)->writeFile("/etc/motd", "typed\ntwo\n", {0644, 0, 0});
  };
  ProvisionRequest r = request("web1");
  r.container = ProvisionRequest::ContainerText{"name = 'ignored'\n"
                                                "[patch root /srv/motd.patch][end]\n"
                                                "[replace /etc/issue archive vol:main/web1-root\nWeb one\n] [end]\n"
                                                "[hostname web1.example archive root][end]\n",
                                                "web1.container"};
  // Only an admin's container text may read Dom0 files (the patch here).
  Caller operator_caller = caller_;
  operator_caller.role = core::Role::kOperator;
  auto denied = provisioner_->create(r, operator_caller);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.status().message()),
              HasSubstr("web1.container:2:1: [patch] reads the Dom0 file '/srv/motd.patch'; only an admin"));
  expectNothingLeft();
  auto op = done(provisioner_->create(r, admin()));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(fileOf("/fake/main/web1-root", "/etc/motd"), "patched\ntwo\n");
  EXPECT_EQ(fileOf("/fake/main/web1-root", "/etc/issue"), "Web one\n");
  EXPECT_EQ(domains_->get("web1")->state, DomainState::kRunning);
  EXPECT_EQ(fileOf("/fake/main/web1-root", "/etc/hostname"), "web1.example\n");
  ASSERT_EQ(customized_.size(), 1u);
  EXPECT_EQ(fileOf("/fake/main/golden", "/etc/motd"), "<no tree>") << "only the root is opened";
}

// A container text with a syntax error, or one that would change more than the root, is refused at once with its place.
TEST_F(ProvisionerTest, ContainerTextErrorsAreRefusedAtOnce) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\n  [replace /etc/motd archive root\nx\n]\n", "web1.container:2:3: [replace] is not closed"},
      {"[bogus][end]\n", "web1.container:1:2: unknown expression '[bogus]'"},
      {"\n[replace /etc/motd archive vol:main/golden\nx\n] [end]\n",
       "web1.container:2:1: [replace] changes 'vol:main/golden'; a CreateDomain's container text changes only the "
       "new root: write 'root' (or vol:main/web1-root) there"},
      {"[image /srv/x.img 8M x][end]\n", "web1.container:1:1: [image] makes an archive or a volume"},
      {"[replace /etc/motd archive root diff file:///srv/d\nx\n] [end]\n",
       "web1.container:1:1: [replace] stores a diff or a fork"},
      {"[patch root /srv/p 1 file:///srv/out.cpio.gz][end]\n", "web1.container:1:1: [patch] stores a diff or a fork"},
  };
  for (const auto& [text, want] : cases) {
    ProvisionRequest r = request("web1");
    r.container = ProvisionRequest::ContainerText{text, "web1.container"};
    auto st = provisioner_->create(r, caller_).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(st.message()), HasSubstr(want)) << text;
  }
  expectNothingLeft();
  EXPECT_TRUE(ops_.list("", false, 10).empty());
  EXPECT_TRUE(fetcher_.requested().empty());
}

// A container text that fails while it runs (a hunk that does not apply) deletes the clone; the error has its place.
TEST_F(ProvisionerTest, ContainerTextFailureDeletesTheClone) {
  fetcher_.serve("file:///srv/motd.patch", "--- a/etc/motd\n+++ b/etc/motd\n@@ -1,1 +1,1 @@\n-nothere\n+x\n");
  ProvisionRequest r = request("web1");
  r.container = ProvisionRequest::ContainerText{"[replace /etc/issue archive root\nhi\n] [end]\n"
                                                "[patch root /srv/motd.patch][end]\n",
                                                ""};
  auto op = done(provisioner_->create(r, admin()));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(op.status.message()),
              HasSubstr("provisioning domain 'web1': customize: container_text:4:1: [patch] /srv/motd.patch: hunk 1"));
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("undone: clone"));
  expectNothingLeft();
}

// Without a container runner, a container text is refused at once as not built.
TEST_F(ProvisionerTest, NoRunnerRefusesAContainerText) {
  provisioner_ = std::make_unique<Provisioner>(*domains_, *storage_, *images_, ops_,
                                               [](const std::string&, const core::Customizations&) {
                                                 return absl::OkStatus();
                                               });
  ProvisionRequest r = request("web1");
  r.container = ProvisionRequest::ContainerText{"[replace /etc/issue archive root\nhi\n] [end]\n", ""};
  EXPECT_EQ(provisioner_->create(r, caller_).status().code(), absl::StatusCode::kUnimplemented);
  expectNothingLeft();
}

// A retry with the same request_id gets the same operation, not a second domain.
TEST_F(ProvisionerTest, RetryReturnsTheSameOperation) {
  Caller c = adminCaller("req-1", 1000);
  auto first = provisioner_->create(request("web1"), c);
  ASSERT_TRUE(first.ok()) << first.status();
  waitFinished(ops_, first->id);
  auto again = provisioner_->create(request("web1"), c);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, first->id);
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden", "main/web1-root"));
}

}  // namespace
}  // namespace xenctl::provision
