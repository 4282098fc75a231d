#include "lib/storage/dir_volumes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/storage/file_ops.h"
#include "lib/sys/posix_process_runner.h"
#include "tests/fakes/fake_clock.h"
#include "tests/unit/storage/storage_test_util.h"

namespace xenctl::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::pattern;
using testing::readAll;
using testing::writeAt;

constexpr uint64_t kMiB = 1 << 20;

class DirVolumesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = DirVolumes::open("default", tmp_.path() + "/pool", clock_);
    ASSERT_TRUE(p.ok()) << p.status();
    pool_ = *std::move(p);
  }
  core::Volume mustCreate(const std::string& name, uint64_t size = 16 * kMiB) {
    auto v = pool_->create(name, size, std::nullopt);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : core::Volume{};
  }
  core::Volume mustClone(const std::string& base, const std::string& name) {
    auto v = pool_->clone(base, name, 0, {});
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : core::Volume{};
  }

  testing::TempDir tmp_;
  fakes::FakeClock clock_;
  std::unique_ptr<DirVolumes> pool_;
};

// A new volume is a sparse file of the asked size, with no origin and the clock's time.
TEST_F(DirVolumesTest, CreateMakesSparseFile) {
  core::Volume v = mustCreate("base", 64 * kMiB);
  EXPECT_EQ(v.pool, "default");
  EXPECT_EQ(v.size_bytes, 64 * kMiB);
  EXPECT_LT(v.used_bytes, kMiB);
  EXPECT_EQ(v.origin, "");
  EXPECT_FALSE(v.read_only);
  EXPECT_EQ(v.path, tmp_.path() + "/pool/base.img");
  EXPECT_EQ(v.created_at, clock_.now());
  EXPECT_EQ(fileInfo(v.path)->size, 64 * kMiB);
}

// A clone has the base's content, byte for byte, and names its origin.
TEST_F(DirVolumesTest, CloneHasBaseContent) {
  core::Volume base = mustCreate("base");
  writeAt(base.path, 0, pattern(300000, 1));
  writeAt(base.path, 9 * kMiB, pattern(5000, 2));
  core::Volume c = mustClone("base", "web1");
  EXPECT_EQ(c.origin, "base");
  EXPECT_EQ(c.size_bytes, base.size_bytes);
  EXPECT_EQ(readAll(c.path), readAll(base.path));
}

// Writes to a clone never show in its base (nor the reverse).
TEST_F(DirVolumesTest, WritesToCloneLeaveBaseUnchanged) {
  core::Volume base = mustCreate("base");
  writeAt(base.path, 0, pattern(8192, 1));
  const std::string before = readAll(base.path);
  core::Volume c = mustClone("base", "web1");
  writeAt(c.path, 4096, pattern(4096, 9));
  writeAt(c.path, 12 * kMiB, pattern(100, 9));
  EXPECT_EQ(readAll(base.path), before);
  writeAt(base.path, 0, pattern(10, 5));
  EXPECT_EQ(readAll(c.path).substr(0, 10), pattern(10, 1));
}

// Clones of clones work and each names its own origin.
TEST_F(DirVolumesTest, CloneOfClone) {
  core::Volume base = mustCreate("base");
  writeAt(base.path, 0, pattern(4096, 1));
  mustClone("base", "mid");
  core::Volume leaf = mustClone("mid", "leaf");
  EXPECT_EQ(leaf.origin, "mid");
  EXPECT_EQ(readAll(leaf.path), readAll(base.path));
}

// A clone may be larger than its base, not smaller.
TEST_F(DirVolumesTest, CloneSize) {
  mustCreate("base", 16 * kMiB);
  auto big = pool_->clone("base", "big", 32 * kMiB, {});
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->size_bytes, 32 * kMiB);
  auto small = pool_->clone("base", "small", 8 * kMiB, {});
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(small.status().message(), HasSubstr("below the base"));
  EXPECT_EQ(pool_->get("small").status().code(), absl::StatusCode::kNotFound);
}

// Without reflink, a copy keeps the base's holes.
TEST_F(DirVolumesTest, SparseCopyKeepsHoles) {
  if (pool_->reflink()) GTEST_SKIP() << "TMPDIR's file system reflinks; the sparse copy path is not taken";
  core::Volume base = mustCreate("base", 64 * kMiB);
  writeAt(base.path, 40 * kMiB, pattern(4096, 3));
  core::Volume c = mustClone("base", "web1");
  EXPECT_LT(c.used_bytes, kMiB);
  EXPECT_EQ(readAll(c.path), readAll(base.path));
}

// A copy stopped through its progress callback is CANCELLED and leaves nothing behind.
TEST_F(DirVolumesTest, CancelledCloneLeavesNothing) {
  if (pool_->reflink()) GTEST_SKIP() << "a reflink is one call and cannot be stopped halfway";
  core::Volume base = mustCreate("base", 16 * kMiB);
  writeAt(base.path, 0, pattern(4 * kMiB, 3));
  auto c = pool_->clone("base", "web1", 0, [](uint64_t done, uint64_t) { return done < 2 * kMiB; });
  EXPECT_EQ(c.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(pool_->get("web1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(listDir(tmp_.path() + "/pool/.tmp")->empty());
  EXPECT_FALSE(exists(tmp_.path() + "/pool/.meta/web1"));
}

// A snapshot is read-only, named VOLUME@SNAP, and listed under its volume.
TEST_F(DirVolumesTest, SnapshotIsReadOnlyAndListed) {
  mustCreate("web1");
  auto s = pool_->snapshot("web1", "s1", {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name, "web1@s1");
  EXPECT_TRUE(s->read_only);
  EXPECT_EQ(s->origin, "web1");
  EXPECT_THAT(pool_->get("web1")->snapshots, ElementsAre("s1"));
  EXPECT_EQ(pool_->resize("web1@s1", 32 * kMiB).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool_->snapshot("web1@s1", "s2", {}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool_->snapshot("web1", "s1", {}).status().code(), absl::StatusCode::kAlreadyExists);
}

// A volume marked read-only stays so across a reopen of the pool: not
// resized nor rolled back; its clones are writable; it is still deleted;
// a snapshot cannot be marked (always read-only).
TEST_F(DirVolumesTest, ReadOnlyMarkKeptAndHonoured) {
  mustCreate("base");
  ASSERT_TRUE(pool_->snapshot("base", "s1", {}).ok());
  ASSERT_TRUE(pool_->setReadOnly("base", true).ok());
  auto reopened = DirVolumes::open("default", tmp_.path() + "/pool", clock_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  pool_ = *std::move(reopened);
  EXPECT_TRUE(pool_->get("base")->read_only);
  EXPECT_EQ(pool_->resize("base", 32 * kMiB).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool_->rollback("base", "s1", {}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(mustClone("base", "web1").read_only);
  EXPECT_EQ(pool_->setReadOnly("base@s1", false).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool_->setReadOnly("nope", true).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(pool_->setReadOnly("base", false).ok());
  EXPECT_TRUE(pool_->resize("base", 32 * kMiB).ok());
  ASSERT_TRUE(pool_->setReadOnly("base", true).ok());
  ASSERT_TRUE(pool_->remove("web1").ok());
  ASSERT_TRUE(pool_->remove("base@s1").ok());
  EXPECT_TRUE(pool_->remove("base").ok());
}

// Rollback restores the snapshot's content and size, and keeps the snapshot.
TEST_F(DirVolumesTest, RollbackRestoresSnapshot) {
  core::Volume v = mustCreate("web1", 16 * kMiB);
  writeAt(v.path, 0, pattern(8192, 1));
  const std::string at_snapshot = readAll(v.path);
  ASSERT_TRUE(pool_->snapshot("web1", "s1", {}).ok());
  writeAt(v.path, 0, pattern(8192, 2));
  ASSERT_TRUE(pool_->resize("web1", 32 * kMiB).ok());
  clock_.advance(absl::Hours(1));
  auto r = pool_->rollback("web1", "s1", {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->size_bytes, 16 * kMiB);
  EXPECT_EQ(readAll(v.path), at_snapshot);
  EXPECT_EQ(r->created_at, v.created_at);
  EXPECT_TRUE(pool_->get("web1@s1").ok());
  EXPECT_TRUE(listDir(tmp_.path() + "/pool/.tmp")->empty());
}

// Rollback to a snapshot that does not exist is NOT_FOUND and changes nothing.
TEST_F(DirVolumesTest, RollbackToMissingSnapshot) {
  core::Volume v = mustCreate("web1");
  writeAt(v.path, 0, pattern(100, 1));
  auto r = pool_->rollback("web1", "nope", {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("web1@nope"));
  EXPECT_EQ(readAll(v.path).substr(0, 100), pattern(100, 1));
}

// Resize grows, never shrinks, and keeps the content.
TEST_F(DirVolumesTest, ResizeGrowsOnly) {
  core::Volume v = mustCreate("web1", 16 * kMiB);
  writeAt(v.path, 0, pattern(100, 1));
  auto r = pool_->resize("web1", 48 * kMiB);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->size_bytes, 48 * kMiB);
  EXPECT_EQ(readAll(v.path).substr(0, 100), pattern(100, 1));
  EXPECT_EQ(pool_->resize("web1", 16 * kMiB).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->resize("nope", 64 * kMiB).status().code(), absl::StatusCode::kNotFound);
}

// Names follow the domain rule; sizes are whole sectors of at least 1 MiB.
TEST_F(DirVolumesTest, BadNamesAndSizes) {
  const std::vector<std::string> bad_names = {"", "Web1", "-x", "a/b", "..", "a b", "x@y", std::string(64, 'a')};
  for (const std::string& bad : bad_names) {
    auto v = pool_->create(bad, 16 * kMiB, std::nullopt);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
  EXPECT_EQ(pool_->create("ok", 1000, std::nullopt).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->create("ok", 16 * kMiB + 1, std::nullopt).status().code(), absl::StatusCode::kInvalidArgument);
  mustCreate("web1");
  EXPECT_EQ(pool_->snapshot("web1", "Bad!", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->clone("web1", "x@y", 0, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->list()->size(), 1u);
}

// Cloning a base that does not exist is NOT_FOUND; taken names are ALREADY_EXISTS.
TEST_F(DirVolumesTest, MissingBaseAndTakenNames) {
  auto c = pool_->clone("nope", "web1", 0, {});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("default/nope"));
  mustCreate("base");
  mustCreate("web1");
  EXPECT_EQ(pool_->create("web1", 16 * kMiB, std::nullopt).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(pool_->clone("base", "web1", 0, {}).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(pool_->remove("nope").code(), absl::StatusCode::kNotFound);
}

// A volume with clones or snapshots cannot be deleted; the refusal names them.
TEST_F(DirVolumesTest, DeleteRefusedWhileCloned) {
  mustCreate("base");
  mustClone("base", "web1");
  Status st = pool_->remove("base");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("web1"));
  ASSERT_TRUE(pool_->snapshot("web1", "s1", {}).ok());
  st = pool_->remove("web1");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("s1"));
  EXPECT_TRUE(pool_->remove("web1@s1").ok());
  EXPECT_TRUE(pool_->remove("web1").ok());
  EXPECT_TRUE(pool_->remove("base").ok());
  EXPECT_TRUE(pool_->list()->empty());
  EXPECT_TRUE(listDir(tmp_.path() + "/pool/.meta")->empty());
}

// dependents() names a volume's snapshots and its clones (a snapshot's
// clones are the snapshot's); NOT_FOUND for a missing volume.
TEST_F(DirVolumesTest, DependentsNameSnapshotsAndClones) {
  mustCreate("base");
  mustClone("base", "web2");
  mustClone("base", "web1");
  ASSERT_TRUE(pool_->snapshot("base", "s1", {}).ok());
  mustClone("base@s1", "web3");
  auto d = pool_->dependents("base");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->snapshots, ElementsAre("s1"));
  EXPECT_THAT(d->clones, ElementsAre("web1", "web2"));
  d = pool_->dependents("base@s1");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->snapshots.empty());
  EXPECT_THAT(d->clones, ElementsAre("web3"));
  EXPECT_TRUE(pool_->dependents("web1")->empty());
  EXPECT_EQ(pool_->dependents("nope").status().code(), absl::StatusCode::kNotFound);
}

// A volume cloned from a snapshot holds that snapshot from deletion.
TEST_F(DirVolumesTest, CloneFromSnapshot) {
  core::Volume v = mustCreate("web1");
  writeAt(v.path, 0, pattern(100, 1));
  ASSERT_TRUE(pool_->snapshot("web1", "s1", {}).ok());
  core::Volume c = mustClone("web1@s1", "web2");
  EXPECT_EQ(c.origin, "web1@s1");
  EXPECT_EQ(readAll(c.path).substr(0, 100), pattern(100, 1));
  EXPECT_EQ(pool_->remove("web1@s1").code(), absl::StatusCode::kFailedPrecondition);
}

// Reopening the pool drops half-made work, keeps metadata, and lists images put there by hand.
TEST_F(DirVolumesTest, ReopenKeepsVolumesAndDropsLeftovers) {
  mustCreate("base");
  mustClone("base", "web1");
  const std::string dir = tmp_.path() + "/pool";
  ASSERT_TRUE(createSparseFile(dir + "/.tmp/web2.7.img", kMiB).ok());
  ASSERT_TRUE(createSparseFile(dir + "/handmade.img", 2 * kMiB).ok());
  ASSERT_TRUE(createSparseFile(dir + "/Not A Volume.img", kMiB).ok());
  ASSERT_TRUE(createSparseFile(dir + "/notes.txt", kMiB).ok());
  auto reopened = DirVolumes::open("default", dir, clock_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_TRUE(listDir(dir + "/.tmp")->empty());
  auto vols = (*reopened)->list();
  ASSERT_TRUE(vols.ok());
  ASSERT_EQ(vols->size(), 3u);
  EXPECT_EQ((*vols)[0].name, "base");
  EXPECT_EQ((*vols)[1].name, "handmade");
  EXPECT_EQ((*vols)[1].origin, "");
  EXPECT_EQ((*vols)[2].name, "web1");
  EXPECT_EQ((*vols)[2].origin, "base");
}

// Pool info counts volumes and their sizes, and the file system's space.
TEST_F(DirVolumesTest, PoolInfo) {
  mustCreate("a", 16 * kMiB);
  mustCreate("b", 32 * kMiB);
  auto p = pool_->poolInfo();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->driver, "dir");
  EXPECT_EQ(p->volumes, 2u);
  EXPECT_EQ(p->allocated_bytes, 48 * kMiB);
  EXPECT_GT(p->size_bytes, 0u);
  EXPECT_EQ(p->used_bytes + p->free_bytes, p->size_bytes);
}

// Without a process runner, ext4 formatting is refused, not faked.
TEST_F(DirVolumesTest, Ext4NeedsTools) {
  EXPECT_EQ(pool_->create("web1", 16 * kMiB, "root").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(pool_->get("web1").status().code(), absl::StatusCode::kNotFound);
}

// The superblock fields the ext4 tests read: label and size in bytes.
struct ExtSuper {
  std::string label;
  uint64_t bytes = 0;
};
ExtSuper readSuper(const std::string& path) {
  const std::string sb = readAll(path).substr(1024, 1024);
  auto le32 = [&](size_t off) {
    return uint32_t(uint8_t(sb[off])) | uint32_t(uint8_t(sb[off + 1])) << 8 | uint32_t(uint8_t(sb[off + 2])) << 16 |
           uint32_t(uint8_t(sb[off + 3])) << 24;
  };
  ExtSuper s;
  s.label = sb.substr(120, 16).c_str();
  s.bytes = uint64_t{le32(4)} * (uint64_t{1024} << le32(24));
  return s;
}

// With the real tools, create makes ext4 with the label and resize grows the file system with the volume.
TEST_F(DirVolumesTest, Ext4CreateAndGrow) {
  auto runner = std::make_shared<sys::PosixProcessRunner>();
  if (!runner->run({"mkfs.ext4", "-V"}, absl::Seconds(30)).ok()) GTEST_SKIP() << "mkfs.ext4 is not installed";
  auto pool = DirVolumes::open("ext", tmp_.path() + "/ext", clock_, runner);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto v = (*pool)->create("root", 32 * kMiB, "rootfs");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(readSuper(v->path).label, "rootfs");
  EXPECT_EQ(readSuper(v->path).bytes, 32 * kMiB);
  auto c = (*pool)->clone("root", "web1", 0, {});
  ASSERT_TRUE(c.ok()) << c.status();
  auto grown = (*pool)->resize("web1", 64 * kMiB);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ(readSuper(c->path).bytes, 64 * kMiB);
  EXPECT_EQ(readSuper(v->path).bytes, 32 * kMiB);
  EXPECT_EQ((*pool)->create("x", 32 * kMiB, std::string(17, 'l')).status().code(), absl::StatusCode::kInvalidArgument);
  // A raw volume is grown without the tools touching it.
  auto raw = (*pool)->create("raw", 16 * kMiB, std::nullopt);
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE((*pool)->resize("raw", 32 * kMiB).ok());
}

// awaitBlockDevice gives up at its deadline on what is not a block device
// (a file, a missing path), naming the path and udev; a zero timeout checks once.
TEST(AwaitBlockDevice, RefusesWhatIsNotABlockDevice) {
  testing::TempDir tmp;
  const std::string file = tmp.path() + "/file";
  ASSERT_TRUE(createSparseFile(file, 4096).ok());
  for (const std::string& path : {file, tmp.path() + "/missing"}) {
    Status st = awaitBlockDevice(path, absl::ZeroDuration());
    EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << path;
    EXPECT_THAT(st.message(), HasSubstr(path + " is not a block device"));
    EXPECT_THAT(st.message(), HasSubstr("udev"));
  }
}

// A relative pool path is refused.
TEST(DirVolumesOpen, RelativePath) {
  fakes::FakeClock clock;
  EXPECT_EQ(DirVolumes::open("p", "rel/dir", clock).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace xenctl::storage
