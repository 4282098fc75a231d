// The FileTree port's contract, checked on FakeFileTree so the fake stays
// honest: resolution stays inside the tree, the last component is never
// followed for changes, and the codes are the documented ones.
#include "tests/fakes/fake_file_tree.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace xenctl::fakes {
namespace {

using core::FileType;

class FakeFileTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.addFile("/etc/hostname", "old\n");
    tree_.addDir("/srv");
    tree_.addSymlink("/loop", "/");         // absolute link to the root
    tree_.addSymlink("/srv/up", "../../.."); // relative link climbing past the root
    tree_.addSymlink("/etc/link", "hostname");
  }
  FakeFileTree tree_;
};

// ".." at the root stays at the root.
TEST_F(FakeFileTreeTest, DotDotAtRootStaysInside) {
  auto r = tree_.readFile("/../../etc/hostname");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "old\n");
}

// Absolute and climbing symlinks on the way resolve against the tree's root.
TEST_F(FakeFileTreeTest, SymlinksOnTheWayResolveInsideTheTree) {
  EXPECT_EQ(tree_.readFile("/loop/etc/hostname").value_or(""), "old\n");
  EXPECT_EQ(tree_.readFile("/srv/up/etc/hostname").value_or(""), "old\n");
  ASSERT_TRUE(tree_.writeFile("/srv/up/loop/etc/new", "x", {0600, 1, 2}).ok());
  auto st = tree_.stat("/etc/new");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->mode, 0600u);
  EXPECT_EQ(st->uid, 1u);
}

// readFile follows a symlink at the end; stat does not.
TEST_F(FakeFileTreeTest, ReadFollowsTheLastLinkStatDoesNot) {
  EXPECT_EQ(tree_.readFile("/etc/link").value_or(""), "old\n");
  auto st = tree_.stat("/etc/link");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->type, FileType::kSymlink);
  EXPECT_EQ(st->link_target, "hostname");
}

// writeFile, symlink and remove on a symlink act on the link, not its target.
TEST_F(FakeFileTreeTest, ChangesNeverFollowTheLastComponent) {
  ASSERT_TRUE(tree_.writeFile("/etc/link", "new", {}).ok());
  EXPECT_EQ(tree_.stat("/etc/link")->type, FileType::kRegular);
  EXPECT_EQ(tree_.readFile("/etc/hostname").value_or(""), "old\n");
  ASSERT_TRUE(tree_.symlink("/loop", "/etc").ok());
  EXPECT_EQ(tree_.stat("/loop")->link_target, "/etc");
  ASSERT_TRUE(tree_.remove("/loop", false).ok());
  EXPECT_TRUE(tree_.stat("/etc").ok());
  EXPECT_TRUE(absl::IsNotFound(tree_.stat("/loop").status()));
}

// The documented codes: relative path, missing parent, file in the way, directory, non-empty dir.
TEST_F(FakeFileTreeTest, ErrorCodes) {
  EXPECT_TRUE(absl::IsInvalidArgument(tree_.readFile("etc/hostname").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(tree_.writeFile("", "", {})));
  EXPECT_TRUE(absl::IsNotFound(tree_.writeFile("/nope/file", "", {})));
  EXPECT_TRUE(absl::IsNotFound(tree_.readFile("/etc/missing").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(tree_.writeFile("/etc/hostname/x", "", {})));
  EXPECT_TRUE(absl::IsFailedPrecondition(tree_.mkdirs("/etc/hostname/x", {})));
  EXPECT_TRUE(absl::IsFailedPrecondition(tree_.writeFile("/etc", "", {})));
  EXPECT_TRUE(absl::IsFailedPrecondition(tree_.readFile("/etc").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(tree_.remove("/etc", false)));
  EXPECT_TRUE(absl::IsNotFound(tree_.remove("/etc/missing", false)));
  EXPECT_TRUE(tree_.remove("/etc", true).ok());
}

// A loop of links ends with an error instead of spinning.
TEST_F(FakeFileTreeTest, LinkLoopsAreRefused) {
  tree_.addSymlink("/a", "/b");
  tree_.addSymlink("/b", "/a");
  EXPECT_TRUE(absl::IsFailedPrecondition(tree_.readFile("/a/x").status()));
}

// mkdirs creates what is missing with the attrs and leaves existing directories as they are.
TEST_F(FakeFileTreeTest, MkdirsKeepsExistingDirectories) {
  ASSERT_TRUE(tree_.mkdirs("/srv/a/b", {0700, 5, 6}).ok());
  EXPECT_EQ(tree_.stat("/srv")->mode, 0755u);
  EXPECT_EQ(tree_.stat("/srv/a")->uid, 5u);
  EXPECT_EQ(tree_.stat("/srv/a/b")->mode, 0700u);
  EXPECT_EQ(tree_.list("/srv").value(), (std::vector<std::string>{"a", "up"}));
}

// appendFile keeps the file's mode and owner; a missing file is created with the attrs.
TEST_F(FakeFileTreeTest, AppendKeepsAttrs) {
  ASSERT_TRUE(tree_.appendFile("/etc/hostname", "more", {0600, 9, 9}).ok());
  EXPECT_EQ(tree_.readFile("/etc/hostname").value_or(""), "old\nmore");
  EXPECT_EQ(tree_.stat("/etc/hostname")->mode, 0644u);
  ASSERT_TRUE(tree_.appendFile("/etc/fresh", "x", {0600, 9, 9}).ok());
  EXPECT_EQ(tree_.stat("/etc/fresh")->uid, 9u);
}

// A read-only handle refuses changes, a closed one everything; handles share the files.
TEST_F(FakeFileTreeTest, ReadOnlyAndClosedHandles) {
  auto ro = tree_.reopen(false);
  EXPECT_TRUE(absl::IsFailedPrecondition(ro->writeFile("/x", "", {})));
  EXPECT_EQ(ro->readFile("/etc/hostname").value_or(""), "old\n");
  auto rw = tree_.reopen(true);
  ASSERT_TRUE(rw->writeFile("/x", "y", {}).ok());
  ASSERT_TRUE(rw->close().ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(rw->readFile("/x").status()));
  EXPECT_EQ(tree_.readFile("/x").value_or(""), "y");
}

// A full file system answers RESOURCE_EXHAUSTED and keeps the old content.
TEST_F(FakeFileTreeTest, FullFileSystem) {
  tree_.setCapacity(10);
  EXPECT_TRUE(absl::IsResourceExhausted(tree_.writeFile("/etc/hostname", "far too long", {})));
  EXPECT_EQ(tree_.readFile("/etc/hostname").value_or(""), "old\n");
}

// A clone has its own files.
TEST_F(FakeFileTreeTest, CloneIsIndependent) {
  auto c = tree_.clone();
  ASSERT_TRUE(c->writeFile("/etc/hostname", "new\n", {}).ok());
  EXPECT_EQ(tree_.readFile("/etc/hostname").value_or(""), "old\n");
  EXPECT_NE(c->dump(), tree_.dump());
}

}  // namespace
}  // namespace xenctl::fakes
