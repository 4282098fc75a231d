// DirVolumes on real reflink file systems: a btrfs and an xfs (reflink=1)
// made on sparse files and loop-mounted. Needs root, mkfs.btrfs / mkfs.xfs
// and loop devices; skips with the reason otherwise.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "lib/storage/dir_volumes.h"
#include "lib/storage/file_ops.h"
#include "tests/fakes/fake_clock.h"
#include "tests/unit/storage/storage_test_util.h"

namespace xenctl::storage {
namespace {

using testing::pattern;
using testing::readAll;
using testing::writeAt;

constexpr uint64_t kMiB = 1 << 20;

bool haveTool(const std::string& tool) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"})
    if (::access((dir + tool).c_str(), X_OK) == 0) return true;
  return false;
}

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// A file system of type `fs` on a 320 MiB sparse file, loop-mounted at mnt/.
class LoopFs {
 public:
  LoopFs(const std::string& fs, const std::string& mkfs_args, const std::string& dir) : mnt_(dir + "/mnt") {
    error_ = setUp(fs, mkfs_args, dir + "/fs.img");
  }
  ~LoopFs() {
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
  }
  const std::string& error() const { return error_; }
  const std::string& mnt() const { return mnt_; }

 private:
  std::string setUp(const std::string& fs, const std::string& mkfs_args, const std::string& image) {
    if (!createSparseFile(image, 320 * kMiB).ok()) return "cannot create " + image;
    if (sh(absl::StrCat("mkfs.", fs, " ", mkfs_args, " ", image)) != 0) return "mkfs." + fs + " failed";
    if (!makeDirs(mnt_).ok()) return "cannot create " + mnt_;
    if (sh(absl::StrCat("mount -o loop -t ", fs, " ", image, " ", mnt_)) != 0)
      return "mount -o loop -t " + fs + " failed (no loop devices, or no " + fs + " in the kernel?)";
    mounted_ = true;
    return "";
  }

  std::string mnt_, error_;
  bool mounted_ = false;
};

// Physical offsets of a file's extents.
std::set<uint64_t> physical(const std::string& path) {
  std::set<uint64_t> out;
  auto extents = fileExtents(path);
  EXPECT_TRUE(extents.ok()) << extents.status();
  if (extents.ok())
    for (const Extent& e : *extents) out.insert(e.physical);
  return out;
}

class ReflinkTest : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

// On btrfs and xfs a clone shares the base's extents (FIEMAP: same physical
// offsets) until written, and a write to the clone moves only the clone's block.
TEST_P(ReflinkTest, CloneSharesExtents) {
  const auto& [fs, args] = GetParam();
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to loop-mount a " << fs;
  if (!haveTool("mkfs." + fs)) GTEST_SKIP() << "mkfs." << fs << " is not installed (scripts/install-deps)";
  testing::TempDir tmp;
  LoopFs loop(fs, args, tmp.path());
  if (!loop.error().empty()) GTEST_SKIP() << loop.error();

  fakes::FakeClock clock;
  auto pool = DirVolumes::open("p", loop.mnt() + "/pool", clock);
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_TRUE((*pool)->reflink()) << fs << " should reflink";
  auto base = (*pool)->create("base", 64 * kMiB, std::nullopt);
  ASSERT_TRUE(base.ok()) << base.status();
  writeAt(base->path, 0, pattern(8 * kMiB, 1));
  auto clone = (*pool)->clone("base", "web1", 0, {});
  ASSERT_TRUE(clone.ok()) << clone.status();

  const std::set<uint64_t> base_phys = physical(base->path);
  ASSERT_FALSE(base_phys.empty());
  EXPECT_EQ(physical(clone->path), base_phys);
  EXPECT_EQ(readAll(clone->path), readAll(base->path));

  const std::string before = readAll(base->path);
  writeAt(clone->path, 4 * kMiB, pattern(4096, 7));
  EXPECT_EQ(readAll(base->path), before);
  EXPECT_EQ(physical(base->path), base_phys);
  EXPECT_NE(physical(clone->path), base_phys);

  // Rollback through a reflink too: the volume gets the snapshot's extents.
  ASSERT_TRUE((*pool)->snapshot("web1", "s1", {}).ok());
  const std::set<uint64_t> snap_phys = physical(loop.mnt() + "/pool/web1@s1.img");
  writeAt(clone->path, 0, pattern(4096, 8));
  ASSERT_TRUE((*pool)->rollback("web1", "s1", {}).ok());
  EXPECT_EQ(physical(clone->path), snap_phys);
}

INSTANTIATE_TEST_SUITE_P(Fs, ReflinkTest,
                         ::testing::Values(std::pair<std::string, std::string>{"btrfs", "-q -f"},
                                           std::pair<std::string, std::string>{"xfs", "-q -f -m reflink=1"}),
                         [](const auto& info) { return info.param.first; });

}  // namespace
}  // namespace xenctl::storage
