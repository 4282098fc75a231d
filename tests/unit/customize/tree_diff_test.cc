#include "lib/customize/tree_diff.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/fakes/fake_file_tree.h"

namespace xenctl::customize {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

/// A small golden image.
std::unique_ptr<fakes::FakeFileTree> golden() {
  auto t = std::make_unique<fakes::FakeFileTree>();
  t->addDir("/usr/bin");
  t->addSymlink("/bin", "usr/bin");
  t->addFile("/usr/bin/sh", std::string("ELF\0\1\2", 6), 0755);
  t->addFile("/etc/hostname", "golden\n");
  t->addFile("/etc/motd", "Welcome\n");
  t->addFile("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
  t->addDir("/var/log", 0755);
  t->addFile("/var/log/old.log", "a\nb\n");
  t->addSymlink("/etc/localtime", "/usr/share/zoneinfo/UTC");
  t->addOther("/dev/null");
  return t;
}

/// "PATH KIND [fields]" per change, for short assertions.
std::vector<std::string> summary(const std::vector<TreeChange>& changes) {
  std::vector<std::string> out;
  for (const TreeChange& c : changes) {
    std::string s = absl::StrCat(c.path, " ", av(toString(c.kind)));
    if (c.kind == TreeChange::Kind::kChanged) absl::StrAppend(&s, " [", changedFields(c), "]");
    out.push_back(s);
  }
  return out;
}

Result<std::vector<TreeChange>> diff(const fakes::FakeFileTree& base, const fakes::FakeFileTree& tree) {
  auto b = base.reopen(false), t = tree.reopen(false);
  return diffTrees(*b, *t);
}

// A clone nobody changed differs in nothing.
TEST(TreeDiffTest, UnchangedCloneListsNothing) {
  auto base = golden();
  auto clone = base->clone();
  auto changes = diff(*base, *clone);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_THAT(*changes, IsEmpty());
}

// Each kind of difference is listed once, with what changed, in path order;
// equal files around them are not listed.
TEST(TreeDiffTest, ListsEachKindOfDifference) {
  auto base = golden();
  auto t = base->clone();
  t->addFile("/etc/hostname", "web1\n");                                  // content, same mode
  t->addFile("/etc/motd", "Welcome\n", 0600);                             // mode only
  t->addFile("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n", 0644, 0, 42);  // owner (gid) only
  t->addSymlink("/etc/localtime", "/usr/share/zoneinfo/Europe/Paris");    // link target
  t->addFile("/srv/www/index.html", "<h1>hi</h1>\n");                     // added with its directories
  ASSERT_TRUE(t->remove("/var/log/old.log", false).ok());                 // removed
  ASSERT_TRUE(t->remove("/bin", false).ok());                             // symlink -> directory
  t->addDir("/bin");
  auto changes = diff(*base, *t);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_THAT(summary(*changes),
              ElementsAre("/bin changed [type]", "/etc/hostname changed [content]", "/etc/localtime changed [link target]",
                          "/etc/motd changed [mode]", "/etc/passwd changed [owner]", "/srv added", "/srv/www added",
                          "/srv/www/index.html added", "/var/log/old.log removed"));
  const TreeChange& bin = (*changes)[0];
  EXPECT_EQ(bin.before.type, core::FileType::kSymlink);
  EXPECT_EQ(bin.after.type, core::FileType::kDirectory);
  EXPECT_EQ((*changes)[3].before.mode, 0644u);
  EXPECT_EQ((*changes)[3].after.mode, 0600u);
}

// Content of the same size is compared byte for byte; a different size is
// a change without reading.
TEST(TreeDiffTest, SameSizeContentIsCompared) {
  auto base = golden();
  auto t = base->clone();
  t->addFile("/etc/hostname", "goldEn\n");  // as long as "golden\n"
  auto changes = diff(*base, *t);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_THAT(summary(*changes), ElementsAre("/etc/hostname changed [content]"));
}

// A removed directory is listed with everything that was below it.
TEST(TreeDiffTest, RemovedDirectoryListsItsContent) {
  auto base = golden();
  auto t = base->clone();
  ASSERT_TRUE(t->remove("/var/log", true).ok());
  auto changes = diff(*base, *t);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_THAT(summary(*changes), ElementsAre("/var/log removed", "/var/log/old.log removed"));
}

// Symlinks are compared as links and never followed: a link to a
// directory whose files differ lists only the real directory's files, and a
// link pointing out of the tree ("/etc -> /") reads nothing through it.
TEST(TreeDiffTest, SymlinksAreNotFollowed) {
  auto base = golden();
  base->addSymlink("/up", "/");
  base->addSymlink("/loop", "loop");
  auto t = base->clone();
  t->addFile("/usr/bin/sh", std::string("ELF\0\1\3", 6), 0755);
  auto changes = diff(*base, *t);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_THAT(summary(*changes), ElementsAre("/usr/bin/sh changed [content]"));
}

// Mode is not compared for symlinks, and a special file is compared by
// mode and owner.
TEST(TreeDiffTest, SpecialFilesByModeAndOwner) {
  auto base = golden();
  auto t = base->clone();
  ASSERT_TRUE(t->chown("/dev/null", 0, 5).ok());
  auto changes = diff(*base, *t);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_THAT(summary(*changes), ElementsAre("/dev/null changed [owner]"));
}

// The root directory itself is compared.
TEST(TreeDiffTest, RootDirectoryIsCompared) {
  auto base = golden();
  auto t = base->clone();
  ASSERT_TRUE(t->chmod("/", 0700).ok());
  auto changes = diff(*base, *t);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_THAT(summary(*changes), ElementsAre("/ changed [mode]"));
}

// Reading is all it does: neither tree is changed (both are opened
// read-only here, so a write would fail the diff).
TEST(TreeDiffTest, ChangesNeitherTree) {
  auto base = golden();
  auto t = base->clone();
  t->addFile("/etc/hostname", "web1\n");
  int before = base->mutations() + t->mutations();
  ASSERT_TRUE(diff(*base, *t).ok());
  EXPECT_EQ(base->mutations() + t->mutations(), before);
}

// A tree that cannot be read fails the diff, naming which tree.
TEST(TreeDiffTest, ClosedTreeNamesWhichOne) {
  auto base = golden();
  auto t = base->clone();
  auto b = base->reopen(false);
  ASSERT_TRUE(b->close().ok());
  auto r = diffTrees(*b, *t);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("reading the base"));
}

}  // namespace
}  // namespace xenctl::customize
