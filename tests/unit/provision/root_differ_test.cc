#include "lib/provision/root_differ.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/fakes/fake_file_tree.h"
#include "tests/unit/provision/managers_fixture.h"

namespace xenctl::provision {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

// One pool "main" in memory with a golden base and web1's root cloned from
// it; their file systems are FakeFileTrees found by the volumes' paths.
class RootDifferTest : public ManagersFixture {
 protected:
  void SetUp() override {
    ManagersFixture::SetUp();
    pool_ = pools_[0];
    ASSERT_TRUE(pool_->create("golden", 16 * kMiB, std::nullopt).ok());
    ASSERT_TRUE(pool_->clone("golden", "web1-root", 0, {}).ok());
    ASSERT_TRUE(pool_->create("blank", 16 * kMiB, std::nullopt).ok());
    golden_.addFile("/etc/hostname", "golden\n");
    golden_.addFile("/etc/motd", "Welcome\n");
    root_ = golden_.clone();
    root_->addFile("/etc/hostname", "web1\n");
    define("web1", {{"vol:main/web1-root", "xvda", "w", ""}, {"vol:main/blank", "xvdb", "w", ""}});
  }
  RootDiffer differ() {
    return RootDiffer(*domains_, *storage_, [this](const std::string& path, bool writable)
                                                -> Result<std::unique_ptr<core::FileTree>> {
      opened_.push_back(absl::StrCat(path, writable ? " rw" : " ro"));
      if (path == "/fake/main/golden") return std::unique_ptr<core::FileTree>(golden_.reopen(writable));
      if (path == "/fake/main/web1-root") return std::unique_ptr<core::FileTree>(root_->reopen(writable));
      return absl::FailedPreconditionError(absl::StrCat(path, ": not an ext2/3/4 file system (xfs)"));
    });
  }

  fakes::FakeVolumes* pool_ = nullptr;
  fakes::FakeFileTree golden_;
  std::unique_ptr<fakes::FakeFileTree> root_;
  std::vector<std::string> opened_;
};

// The first managed disk is compared with its origin, both opened read-only.
TEST_F(RootDifferTest, ComparesRootWithItsOrigin) {
  auto d = differ().diff("web1", "", false);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->root.target(), "vol:main/web1-root");
  EXPECT_EQ(d->base.target(), "vol:main/golden");
  EXPECT_EQ(d->vdev, "xvda");
  ASSERT_EQ(d->changes.size(), 1u);
  EXPECT_EQ(d->changes[0].path, "/etc/hostname");
  EXPECT_THAT(opened_, ElementsAre("/fake/main/golden ro", "/fake/main/web1-root ro"));
  EXPECT_EQ(golden_.closes(), 1);  // both handles closed
  EXPECT_EQ(root_->closes(), 1);
}

// A running domain is refused: its file system is being written.
TEST_F(RootDifferTest, RefusesRunningDomain) {
  auto op = domains_->start("web1", false, caller_);
  ASSERT_TRUE(op.ok());
  ASSERT_EQ(waitFinished(ops_, op->id).state, core::OperationState::kSucceeded);
  auto d = differ().diff("web1", "", false);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("stop it first (`vm-shutdown web1`)"));
  EXPECT_TRUE(opened_.empty());
}

// A disk that has no origin, a host path, a missing vdev and an unknown
// domain are refused with what is wrong.
TEST_F(RootDifferTest, RefusesWhatHasNoGoldenImage) {
  auto d = differ().diff("web1", "xvdb", false);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("main/blank was not cloned from another volume"));

  EXPECT_EQ(differ().diff("web1", "xvdz", false).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(differ().diff("nope", "", false).status().code(), absl::StatusCode::kNotFound);

  define("plain", {{"/dev/vg0/plain", "xvda", "w", ""}});
  d = differ().diff("plain", "", false);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("none of its disks is a managed volume"));
  d = differ().diff("plain", "xvda", false);
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("disk xvda is the host path '/dev/vg0/plain'"));
}

// A file system the opener refuses is named with the volume.
TEST_F(RootDifferTest, OpenerErrorNamesTheVolume) {
  ASSERT_TRUE(pool_->clone("blank", "other-root", 0, {}).ok());
  define("other", {{"vol:main/other-root", "xvda", "w", ""}});
  auto d = differ().diff("other", "", false);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr("diffing domain 'other': opening the base, volume main/blank: "));
}

// With a patch: the unified diff of the changed text files.
TEST_F(RootDifferTest, WritesThePatch) {
  auto d = differ().diff("web1", "", true);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->patch, "--- a/etc/hostname\n+++ b/etc/hostname\n@@ -1,1 +1,1 @@\n-golden\n+web1\n");
  EXPECT_EQ(differ().diff("web1", "", false)->patch, "");
}

// Without an opener the build cannot read file systems: UNIMPLEMENTED.
TEST_F(RootDifferTest, NoOpenerIsUnimplemented) {
  RootDiffer none(*domains_, *storage_, {});
  EXPECT_EQ(none.diff("web1", "", false).status().code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace xenctl::provision
