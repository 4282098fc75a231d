#include "lib/provision/container_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/fakes/fake_file_tree.h"
#include "tests/fakes/fake_volumes.h"
#include "tests/support/minisign_vectors.h"
#include "tests/unit/provision/test_util.h"

namespace xenctl::provision {
namespace {

using core::OperationState;
using ::testing::HasSubstr;
using ::xenctl::testing::kMinisignMessage;
using ::xenctl::testing::kMinisignPrehashedSig;
using ::xenctl::testing::kMinisignPublicKey;

constexpr uint64_t kMiB = 1 << 20;

constexpr char kMotdPatch[] =
    "--- a/etc/motd\n"
    "+++ b/etc/motd\n"
    "@@ -1,2 +1,2 @@\n"
    " one\n"
    "-two\n"
    "+TWO\n";

// One fake pool "thin" with volume web1, whose file system is a FakeFileTree
// (FakeVolumes puts it at /fake/thin/web1).
class ContainerRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::unique_ptr<core::VolumeManager>> pools;
    pools.push_back(std::make_unique<fakes::FakeVolumes>("thin"));
    ASSERT_TRUE(pools[0]->create("web1", 64 * kMiB, std::nullopt).ok());
    storage_ = std::make_unique<StorageManager>(std::move(pools), ops_, usage_);
    tree_.addFile("/etc/motd", "one\ntwo\n");
    makeRunner(image::ImageSources({image::MinisignPublicKey::parse(kMinisignPublicKey).value()}));
  }
  void makeRunner(image::ImageSources sources, HostPaths host_paths = {}) {
    ContainerRunner::Ports ports;
    ports.open_tree = [this](const std::string& path, bool writable) -> Result<std::unique_ptr<core::FileTree>> {
      if (path != "/fake/thin/web1") return absl::NotFoundError(absl::StrCat(path, ": no such image"));
      if (writable) ++writable_opens_;
      return std::unique_ptr<core::FileTree>(tree_.reopen(writable));
    };
    ports.fetcher = &fetcher_;
    ContainerRunner::Config config;
    config.sources = std::move(sources);
    config.host_paths = std::move(host_paths);
    runner_ = std::make_unique<ContainerRunner>(*storage_, usage_, ops_, std::move(ports), std::move(config));
  }
  core::OperationRecord run(const std::string& text, bool dry_run = false, const std::string& request_id = "") {
    auto r = runner_->apply({text, "web1.cfg", dry_run}, adminCaller(request_id, 1000));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? waitFinished(ops_, r->id) : core::OperationRecord{};
  }
  std::string file(const std::string& path) { return tree_.readFile(path).value_or("<missing>"); }

  fakes::FakeClock clock_;
  OperationRegistry ops_{clock_, nullptr, OperationRegistry::Options{}};
  VolumeUsage usage_;
  std::unique_ptr<StorageManager> storage_;
  fakes::FakeFileTree tree_;
  fakes::FakeFetcher fetcher_;
  int writable_opens_ = 0;
  std::unique_ptr<ContainerRunner> runner_;
};

// The statements run in file order over the volume vol:POOL/NAME resolves
// to, as one operation on the file's name.
TEST_F(ContainerRunnerTest, AppliesInOrder) {
  fetcher_.serve("file:///srv/motd.patch", kMotdPatch);
  auto op = run("name = 'web1'\n"
                "[replace /etc/motd archive vol:thin/web1\none\ntwo\n] [end]\n"
                "[patch vol:thin/web1 /srv/motd.patch][end]\n"
                "[replace /etc/motd archive vol:thin/web1\none\nTWO\nthree\n] [end]\n");
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(op.kind, "apply-container");
  EXPECT_EQ(op.target, "web1.cfg");
  EXPECT_EQ(file("/etc/motd"), "one\nTWO\nthree\n") << "the last replace comes after the patch";
  EXPECT_EQ(writable_opens_, 1);
}

// A non-admin's container file may name host paths and file:// URIs only under [security] allowed_paths: refused
// at once naming the line, no operation; its fetches are confined to the same directories.
TEST_F(ContainerRunnerTest, HostPathsOfNonAdminsAreConfined) {
  makeRunner(image::ImageSources(), HostPaths({{"/srv"}, {}, nullptr}));
  Caller op("", 1000);
  op.role = core::Role::kOperator;
  size_t ops_before = ops_.list("", false, 100).size();
  auto r = runner_->apply({"name = 'web1'\n"
                           "[replace /etc/motd archive vol:thin/web1\nhi\n] [end]\n"
                           "[copy /etc/shadow archive vol:thin/web1 source file:///etc/shadow] [end]\n",
                           "web1.cfg", false},
                          op);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("web1.cfg:5:1: [copy]: host path /etc/shadow"));
  EXPECT_THAT(r.status().message(), HasSubstr("[security] allowed_paths (/srv)"));
  r = runner_->apply({"[patch /var/lib/images/web1.img /srv/motd.patch][end]\n", "web1.cfg", false}, op);
  EXPECT_THAT(r.status().message(), HasSubstr("[patch]: host path /var/lib/images/web1.img"));
  EXPECT_EQ(ops_.list("", false, 100).size(), ops_before);

  fetcher_.serve("file:///srv/motd.patch", kMotdPatch);
  r = runner_->apply({"[patch vol:thin/web1 file:///srv/motd.patch][end]\n", "web1.cfg", false}, op);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(waitFinished(ops_, r->id).state, OperationState::kSucceeded);
  EXPECT_EQ(fetcher_.lastFileRoots(), std::vector<std::string>{"/srv"});
}

// A file that does not parse is refused at once with its line and column;
// no operation starts and nothing is opened.
TEST_F(ContainerRunnerTest, BadFileChangesNothing) {
  size_t ops_before = ops_.list("", false, 100).size();
  auto r = runner_->apply({"name = 'x'\n[replace /etc/motd\nbad\n] [end]\n", "web1.cfg", false}, adminCaller("", 1000));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("web1.cfg:3:1: [replace] needs 'archive URI'"));
  EXPECT_EQ(ops_.list("", false, 100).size(), ops_before);
  // One that parses but fails in its checks (a hunk that does not apply)
  // fails its operation and writes nothing either.
  fetcher_.serve("file:///srv/bad.patch", "--- a/etc/motd\n+++ b/etc/motd\n@@ -1,1 +1,1 @@\n-nine\n+NINE\n");
  auto op = run("[replace /etc/motd archive vol:thin/web1\nzero\n] [end]\n[patch vol:thin/web1 /srv/bad.patch][end]\n");
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kFailedPrecondition) << op.status;
  EXPECT_EQ(file("/etc/motd"), "one\ntwo\n");
  EXPECT_EQ(writable_opens_, 0);
}

// "root" belongs to a CreateDomain's container text: a file run on its own that names it is refused at once.
TEST_F(ContainerRunnerTest, RootIsRefusedOutsideCreateDomain) {
  size_t ops_before = ops_.list("", false, 100).size();
  auto r = runner_->apply({"[replace /etc/motd archive root\nx\n] [end]\n", "web1.cfg", false}, {"", 1000});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("web1.cfg:1:1: [replace] names 'root'"));
  EXPECT_EQ(ops_.list("", false, 100).size(), ops_before);
  EXPECT_EQ(file("/etc/motd"), "one\ntwo\n");
}

// [image] to vol:POOL/NAME makes the volume in its pool, labelled; a run that fails after it removes it again.
TEST_F(ContainerRunnerTest, ImageMakesAVolumeAndFailureRemovesIt) {
  auto op = run("[image vol:thin/data 8M data][end]\n");
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  auto pool = storage_->pool("thin");
  ASSERT_TRUE(pool.ok());
  auto data = (*pool)->get("data");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size_bytes, 8 * kMiB);
  // This runner's opener knows /fake/thin/web1 only: the replace fails, and the new volume goes.
  op = run("[image vol:thin/data2 8M data][end]\n[replace /etc/motd archive vol:thin/data2\nx\n] [end]\n");
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_THAT(std::string(op.status.message()), HasSubstr("web1.cfg:2:1: [replace] "));
  EXPECT_EQ((*pool)->get("data2").status().code(), absl::StatusCode::kNotFound);
  op = run("[image vol:thin/web1 8M x][end]\n");
  EXPECT_EQ(op.status.code(), absl::StatusCode::kAlreadyExists) << op.status;
}

// A volume a running domain uses is not edited; an unknown one is NOT_FOUND.
TEST_F(ContainerRunnerTest, VolumeInUseRefused) {
  core::DomainSpec dom;
  dom.name = "web1";
  dom.disks = {{"vol:thin/web1", "xvda", "w", ""}};
  usage_.record(dom, 7);
  auto op = run("[replace /etc/motd archive vol:thin/web1\nx\n] [end]\n");
  EXPECT_EQ(op.status.code(), absl::StatusCode::kFailedPrecondition) << op.status;
  EXPECT_THAT(op.status.message(), HasSubstr("running domain 'web1' uses it"));
  EXPECT_EQ(file("/etc/motd"), "one\ntwo\n");
  usage_.release("web1");
  op = run("[replace /etc/motd archive vol:thin/db9\nx\n] [end]\n");
  EXPECT_EQ(op.status.code(), absl::StatusCode::kNotFound) << op.status;
  EXPECT_EQ(writable_opens_, 0);
}

// A golden image's base volume is not edited by a container file.
TEST_F(ContainerRunnerTest, ImageBaseRefused) {
  storage_->protectImageBase("thin", "web1", "debian");
  auto op = run("[replace /etc/motd archive vol:thin/web1\nx\n] [end]\n");
  EXPECT_EQ(op.status.code(), absl::StatusCode::kFailedPrecondition) << op.status;
  EXPECT_THAT(op.status.message(), HasSubstr("base volume of image 'debian'"));
  EXPECT_EQ(file("/etc/motd"), "one\ntwo\n");
  EXPECT_EQ(writable_opens_, 0);
}

// A dry run fetches and checks, and writes nothing.
TEST_F(ContainerRunnerTest, DryRunChangesNothing) {
  fetcher_.serve("file:///srv/motd.patch", kMotdPatch);
  auto op = run("[patch vol:thin/web1 /srv/motd.patch][end]\n[replace /etc/new archive vol:thin/web1\nx\n] [end]\n",
                true);
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(fetcher_.requested(), std::vector<std::string>{"file:///srv/motd.patch"});
  EXPECT_EQ(file("/etc/motd"), "one\ntwo\n");
  EXPECT_EQ(file("/etc/new"), "<missing>");
  EXPECT_EQ(writable_opens_, 0);
}

// A retry with the same request_id gets the first operation and runs nothing twice.
TEST_F(ContainerRunnerTest, RequestIdDeduplicates) {
  auto first = run("[replace /etc/motd archive vol:thin/web1\nx\n] [end]\n", false, "req-1");
  auto again = run("[replace /etc/motd archive vol:thin/web1\nx\n] [end]\n", false, "req-1");
  EXPECT_EQ(first.id, again.id);
  EXPECT_EQ(writable_opens_, 1);
}

// Remote sources follow the images' policy: by default signed by a trusted
// key at URI.minisig; unsigned or badly signed ones are refused before any
// change, naming the setting; a source declared "none" is taken as it is.
TEST_F(ContainerRunnerTest, RemoteSourcesMustBeSigned) {
  const std::string copy = "[copy /etc/motd archive vol:thin/web1 source https://h/motd] [end]\n";
  fetcher_.serve("https://h/motd", std::string(kMinisignMessage));
  auto op = run(copy);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kPermissionDenied) << op.status;
  EXPECT_THAT(op.status.message(), HasSubstr("https://h/motd.minisig"));
  EXPECT_THAT(op.status.message(), HasSubstr("[[images.source]]"));
  EXPECT_EQ(file("/etc/motd"), "one\ntwo\n");

  fetcher_.serve("https://h/motd", "tampered\n");
  fetcher_.serve("https://h/motd.minisig", std::string(kMinisignPrehashedSig));
  op = run(copy);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kDataLoss) << op.status;
  EXPECT_EQ(file("/etc/motd"), "one\ntwo\n");

  fetcher_.serve("https://h/motd", std::string(kMinisignMessage));
  op = run(copy);
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(file("/etc/motd"), kMinisignMessage);

  image::ImageSource open;
  open.prefix = "https://open.example/";
  open.policy = image::SignaturePolicy::kNone;
  auto none = image::ImageSources::create({open}, {});
  ASSERT_TRUE(none.ok()) << none.status();
  makeRunner(*std::move(none));
  fetcher_.serve("https://open.example/motd", "open\n");
  op = run("[copy /etc/motd archive vol:thin/web1 source https://open.example/motd] [end]\n");
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(file("/etc/motd"), "open\n");
}

}  // namespace
}  // namespace xenctl::provision
