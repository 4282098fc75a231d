// Ext4FileTree on image files made with `mkfs.ext4 -d`: every edit is checked
// with an independent reader (debugfs) and every test ends with `e2fsck -fn`
// clean (TearDown), hostile inputs included.
#include "lib/customize/ext4_file_tree.h"
#include "lib/customize/customizer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lib/sys/posix_process_runner.h"
#include "tests/support/temp_dir.h"

namespace xenctl::customize {
namespace {

using core::FileAttrs;
using core::FileType;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using test_support::readAll;
using test_support::TempDir;

// e2fsprogs lives in /usr/sbin, which a user's PATH may lack.
std::string tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/"})
    if (::access((dir + name).c_str(), X_OK) == 0) return dir + name;
  return name;
}

void writeHostFile(const std::string& path, std::string_view content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

void makeSparseFile(const std::string& path, uint64_t size) {
  writeHostFile(path, "");
  std::filesystem::resize_file(path, size);
}

class Ext4FileTreeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (tree_) {
      ASSERT_TRUE(tree_->close().ok());
    }
    if (check_fsck_ && std::filesystem::exists(image_)) expectClean();
  }

  core::ProcessResult run(const std::vector<std::string>& argv) {
    auto r = runner_.run(argv, absl::Seconds(120));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : core::ProcessResult{};
  }

  /// Makes `image_` from the tree under `src_` (empty when absent).
  void makeImage(const std::string& size = "32M", std::vector<std::string> extra = {}) {
    std::filesystem::create_directories(src_);
    std::vector<std::string> argv = {tool("mkfs.ext4"), "-q", "-F", "-d", src_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(image_);
    argv.push_back(size);
    auto r = run(argv);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  void openTree(bool writable = true) {
    auto t = Ext4FileTree::open(image_, writable);
    ASSERT_TRUE(t.ok()) << t.status();
    tree_ = std::move(*t);
  }

  void closeTree() {
    ASSERT_TRUE(tree_->close().ok());
    tree_.reset();
  }

  /// debugfs's stdout for one request, read-only.
  std::string debugfs(const std::string& request) {
    auto r = run({tool("debugfs"), "-R", request, image_});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.stdout_text;
  }

  /// One numeric field of `debugfs -R 'stat PATH'` ("Mode", "User", "Group", "Size", "Links").
  std::string statField(const std::string& path, const std::string& field) {
    std::string out = debugfs("stat " + path);
    std::smatch m;
    if (!std::regex_search(out, m, std::regex(field + ":\\s+(\\S+)"))) return "missing in: " + out;
    return m[1];
  }

  uint64_t superField(const std::string& field) {
    auto r = run({tool("dumpe2fs"), "-h", image_});
    std::smatch m;
    uint64_t v = 0;
    if (std::regex_search(r.stdout_text, m, std::regex(field + ":\\s+(\\d+)"))) (void)absl::SimpleAtoi(m[1].str(), &v);
    return v;
  }

  void expectClean() {
    auto r = run({tool("e2fsck"), "-fn", image_});
    EXPECT_EQ(r.exit_code, 0) << "e2fsck -fn " << image_ << ":\n" << r.output;
  }

  TempDir tmp_;
  sys::PosixProcessRunner runner_;
  std::string src_ = tmp_.sub("src");
  std::string image_ = tmp_.sub("root.img");
  std::unique_ptr<Ext4FileTree> tree_;
  bool check_fsck_ = true;
};

// A new file gets its content, mode and owner, and debugfs reads them back.
TEST_F(Ext4FileTreeTest, WritesNewFileSeenByDebugfs) {
  writeHostFile(src_ + "/etc/hosts", "127.0.0.1 localhost\n");
  makeImage();
  openTree();
  ASSERT_TRUE(tree_->writeFile("/etc/hostname", "web1\n", FileAttrs{0640, 1000, 70000}).ok());
  ASSERT_TRUE(tree_->writeFile("/empty", "", FileAttrs{}).ok());
  EXPECT_EQ(*tree_->readFile("/etc/hostname"), "web1\n");
  closeTree();
  EXPECT_EQ(debugfs("cat /etc/hostname"), "web1\n");
  EXPECT_EQ(statField("/etc/hostname", "Mode"), "0640");
  EXPECT_EQ(statField("/etc/hostname", "User"), "1000");
  EXPECT_EQ(statField("/etc/hostname", "Group"), "70000");
  EXPECT_EQ(statField("/empty", "Size"), "0");
  EXPECT_EQ(debugfs("cat /etc/hosts"), "127.0.0.1 localhost\n");
}

// Replacing a file frees the old file's blocks and inode, and the new one
// takes mode and owner from the call.
TEST_F(Ext4FileTreeTest, ReplacingFreesOldBlocks) {
  writeHostFile(src_ + "/big", std::string(2 << 20, 'x'));
  makeImage();
  uint64_t free_before = superField("Free blocks");
  uint64_t inodes_before = superField("Free inodes");
  openTree();
  ASSERT_TRUE(tree_->writeFile("/big", "small", FileAttrs{0600, 5, 6}).ok());
  closeTree();
  EXPECT_EQ(debugfs("cat /big"), "small");
  EXPECT_EQ(statField("/big", "Mode"), "0600");
  EXPECT_EQ(statField("/big", "User"), "5");
  EXPECT_GE(superField("Free blocks"), free_before + 2000);  // 2 MiB in 1 KiB blocks, minus the new one
  EXPECT_EQ(superField("Free inodes"), inodes_before);
}

// Appending keeps the file's mode and owner; appending to a missing file creates it.
TEST_F(Ext4FileTreeTest, AppendsAndCreates) {
  writeHostFile(src_ + "/etc/hosts", "127.0.0.1 localhost\n");
  makeImage();
  ::chmod((src_ + "/etc/hosts").c_str(), 0600);
  openTree();
  ASSERT_TRUE(tree_->chown("/etc/hosts", 3, 4).ok());
  ASSERT_TRUE(tree_->appendFile("/etc/hosts", "127.0.1.1 web1\n", FileAttrs{0644, 0, 0}).ok());
  ASSERT_TRUE(tree_->appendFile("/etc/new", "line\n", FileAttrs{0604, 7, 8}).ok());
  ASSERT_TRUE(tree_->appendFile("/etc/new", "two\n", FileAttrs{}).ok());
  closeTree();
  EXPECT_EQ(debugfs("cat /etc/hosts"), "127.0.0.1 localhost\n127.0.1.1 web1\n");
  EXPECT_EQ(statField("/etc/hosts", "User"), "3");
  EXPECT_EQ(debugfs("cat /etc/new"), "line\ntwo\n");
  EXPECT_EQ(statField("/etc/new", "Mode"), "0604");
  EXPECT_EQ(statField("/etc/new", "Group"), "8");
}

// mkdir -p makes the missing directories with the given mode and owner,
// leaves existing ones alone, keeps parent link counts right (e2fsck) and
// refuses a file on the way.
TEST_F(Ext4FileTreeTest, MkdirsCreatesMissingParents) {
  writeHostFile(src_ + "/root/.profile", "x");
  writeHostFile(src_ + "/file", "x");
  makeImage();
  ::chmod((src_ + "/root").c_str(), 0700);
  openTree();
  ASSERT_TRUE(tree_->mkdirs("/root/.ssh", FileAttrs{0700, 1000, 1000}).ok());
  ASSERT_TRUE(tree_->mkdirs("/a/b/c/d", FileAttrs{0755, 0, 0}).ok());
  ASSERT_TRUE(tree_->mkdirs("/a/b", FileAttrs{0700, 9, 9}).ok());  // exists: left as it is
  auto st = tree_->mkdirs("/file/sub", FileAttrs{0755, 0, 0});
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(), HasSubstr("'/file' exists and is not a directory"));
  closeTree();
  EXPECT_EQ(statField("/root/.ssh", "Mode"), "0700");
  EXPECT_EQ(statField("/root/.ssh", "User"), "1000");
  EXPECT_EQ(statField("/a/b", "Mode"), "0755");
  EXPECT_EQ(statField("/a/b", "Links"), "3");
  EXPECT_THAT(debugfs("ls -l /a/b/c"), HasSubstr(" d\n"));
}

// Fast (short) and slow (one block) symlinks are written and read back, and
// a symlink replaces a file at its path.
TEST_F(Ext4FileTreeTest, FastAndSlowSymlinks) {
  writeHostFile(src_ + "/etc/localtime", "old file");
  makeImage();
  std::string long_target = "/usr/share/" + std::string(100, 'z');
  openTree();
  ASSERT_TRUE(tree_->symlink("/etc/localtime", "/usr/share/zoneinfo/Europe/Paris").ok());
  ASSERT_TRUE(tree_->symlink("/long", long_target).ok());
  EXPECT_EQ(tree_->stat("/long")->link_target, long_target);
  EXPECT_EQ(tree_->stat("/etc/localtime")->type, FileType::kSymlink);
  ASSERT_TRUE(tree_->symlink("/long", "short").ok());  // replaces the slow link, frees its block
  closeTree();
  EXPECT_THAT(debugfs("stat /etc/localtime"), HasSubstr("Fast link dest: \"/usr/share/zoneinfo/Europe/Paris\""));
  EXPECT_THAT(debugfs("stat /long"), HasSubstr("Fast link dest: \"short\""));
  openTree(false);
  ASSERT_TRUE(tree_->stat("/long").ok());
  closeTree();
  // A slow link read back by debugfs: cat dumps the link's data block.
  openTree();
  ASSERT_TRUE(tree_->symlink("/slow", long_target).ok());
  closeTree();
  EXPECT_EQ(debugfs("cat /slow"), long_target);
  EXPECT_EQ(statField("/slow", "Size"), std::to_string(long_target.size()));
}

// Writing at a symlink replaces the link, appending there is refused, and
// the target stays untouched.
TEST_F(Ext4FileTreeTest, WriteReplacesSymlinkNotTarget) {
  writeHostFile(src_ + "/etc/issue", "Debian\n");
  std::filesystem::create_directories(src_ + "/etc");
  std::filesystem::create_symlink("issue", src_ + "/etc/motd");
  makeImage();
  openTree();
  EXPECT_EQ(*tree_->readFile("/etc/motd"), "Debian\n");  // read follows
  auto app = tree_->appendFile("/etc/motd", "planted?\n", FileAttrs{});  // append does not
  EXPECT_EQ(app.code(), absl::StatusCode::kFailedPrecondition) << app;
  EXPECT_THAT(app.message(), HasSubstr("symlink"));
  ASSERT_TRUE(tree_->writeFile("/etc/motd", "hello\n", FileAttrs{}).ok());
  closeTree();
  EXPECT_THAT(debugfs("stat /etc/motd"), HasSubstr("Type: regular"));
  EXPECT_EQ(debugfs("cat /etc/motd"), "hello\n");
  EXPECT_EQ(debugfs("cat /etc/issue"), "Debian\n");
}

// remove: a file, an empty directory, a symlink (not its target), a tree;
// a non-empty directory only with `recursive`; inodes and blocks come back.
TEST_F(Ext4FileTreeTest, RemovesFilesDirsAndTrees) {
  makeImage();
  uint64_t free_inodes = superField("Free inodes");
  uint64_t free_blocks = superField("Free blocks");
  writeHostFile(src_ + "/keep", "k");
  for (int i = 0; i < 40; ++i) writeHostFile(src_ + "/var/cache/d" + std::to_string(i % 4) + "/f" + std::to_string(i), std::string(3000, 'a'));
  writeHostFile(src_ + "/var/cache/d0/sub/deeper/file", "x");
  ::link((src_ + "/keep").c_str(), (src_ + "/var/cache/d1/hardlink").c_str());
  std::filesystem::create_directories(src_ + "/emptydir");
  std::filesystem::create_symlink("/keep", src_ + "/link");
  makeImage();
  openTree();
  auto st = tree_->remove("/var/cache", false);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(tree_->remove("/nothing", false).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tree_->remove("/", true).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(tree_->remove("/link", false).ok());
  ASSERT_TRUE(tree_->remove("/emptydir", false).ok());
  ASSERT_TRUE(tree_->remove("/var/cache", true).ok());
  ASSERT_TRUE(tree_->remove("/var", false).ok());
  EXPECT_THAT(*tree_->list("/"), ElementsAre("keep", "lost+found"));
  closeTree();
  EXPECT_EQ(debugfs("cat /keep"), "k");
  EXPECT_EQ(statField("/keep", "Links"), "1");
  EXPECT_EQ(superField("Free inodes"), free_inodes - 1);
  EXPECT_GE(superField("Free blocks") + 2, free_blocks);
  std::string root = debugfs("ls -l /");
  EXPECT_THAT(root, ::testing::Not(HasSubstr("var")));
}

// chmod and chown follow symlinks and set ctime; stat is lstat; list is sorted.
TEST_F(Ext4FileTreeTest, ChmodChownStatList) {
  writeHostFile(src_ + "/etc/shadow", "root:*:1::::::\n");
  writeHostFile(src_ + "/etc/b", "");
  writeHostFile(src_ + "/etc/a", "");
  std::filesystem::create_symlink("shadow", src_ + "/etc/shadow-link");
  makeImage("32M", {"-E", "root_owner=0:0"});
  openTree();
  ASSERT_TRUE(tree_->chmod("/etc/shadow-link", 0640).ok());
  ASSERT_TRUE(tree_->chown("/etc/shadow-link", 0, 42).ok());
  auto st = tree_->stat("/etc/shadow-link");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->type, FileType::kSymlink);
  EXPECT_EQ(st->link_target, "shadow");
  auto sh = tree_->stat("/etc/shadow");
  EXPECT_EQ(sh->mode, 0640u);
  EXPECT_EQ(sh->gid, 42u);
  EXPECT_EQ(sh->size, 15u);
  EXPECT_EQ(tree_->stat("/etc")->type, FileType::kDirectory);
  EXPECT_THAT(*tree_->list("/etc"), ElementsAre("a", "b", "shadow", "shadow-link"));
  EXPECT_EQ(tree_->list("/etc/a").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tree_->readFile("/etc").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tree_->stat("/etc/none").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tree_->chmod("/etc/a", 010000).code(), absl::StatusCode::kInvalidArgument);
  closeTree();
  EXPECT_EQ(statField("/etc/shadow", "Mode"), "0640");
  EXPECT_EQ(statField("/etc/shadow", "Group"), "42");
  EXPECT_EQ(statField("/etc/shadow-link", "Mode"), "0777");
}

// Created and changed inodes get current timestamps (crtime too: 256-byte inodes).
TEST_F(Ext4FileTreeTest, SetsTimestamps) {
  writeHostFile(src_ + "/old", "x");
  struct timespec times[2] = {{946684800, 0}, {946684800, 0}};  // 2000-01-01
  ASSERT_EQ(::utimensat(AT_FDCWD, (src_ + "/old").c_str(), times, 0), 0);
  makeImage();
  openTree();
  ASSERT_TRUE(tree_->appendFile("/old", "y", FileAttrs{}).ok());
  ASSERT_TRUE(tree_->writeFile("/new", "n", FileAttrs{}).ok());
  closeTree();
  auto stamp = [&](const std::string& path, const std::string& field) {
    std::smatch m;
    std::string out = debugfs("stat " + path);
    if (!std::regex_search(out, m, std::regex(field + ": 0x([0-9a-f]+)"))) return 0L;
    return std::stol(m[1].str(), nullptr, 16);
  };
  constexpr long k2020 = 1577836800;
  EXPECT_GT(stamp("/old", " mtime"), k2020);
  EXPECT_GT(stamp("/old", " ctime"), k2020);
  for (const char* f : {" mtime", " ctime", " atime", "crtime"}) EXPECT_GT(stamp("/new", f), k2020) << f;
}

// Many entries overflow a directory's blocks: it is grown (expand_dir) and
// every entry is found.
TEST_F(Ext4FileTreeTest, GrowsFullDirectories) {
  makeImage();
  openTree();
  EXPECT_EQ(tree_->writeFile("/etc/conf.d/x", "v", FileAttrs{}).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(tree_->mkdirs("/etc/conf.d", FileAttrs{0755, 0, 0}).ok());
  for (int i = 0; i < 300; ++i)
    ASSERT_TRUE(tree_->writeFile("/etc/conf.d/" + std::string(40, 'n') + std::to_string(i), "v", FileAttrs{}).ok());
  EXPECT_EQ(tree_->list("/etc/conf.d")->size(), 300u);
  closeTree();
  EXPECT_EQ(debugfs("cat /etc/conf.d/" + std::string(40, 'n') + "299"), "v");
}

// Hash-indexed (htree) directories, as a booted guest's big directories
// are, take new entries and lose old ones and stay indexed.
TEST_F(Ext4FileTreeTest, IndexedDirectories) {
  for (int i = 0; i < 1000; ++i) writeHostFile(src_ + "/usr/bin/f" + std::to_string(i), "");
  makeImage();
  run({tool("e2fsck"), "-fyD", image_});  // indexes the directories (exit 1: "modified")
  ASSERT_THAT(statField("/usr/bin", "Flags"), HasSubstr("1000")) << "not indexed";
  openTree();
  for (int i = 0; i < 1500; ++i)
    ASSERT_TRUE(tree_->writeFile("/usr/bin/new-tool-" + std::to_string(i), "#!/bin/sh\n", FileAttrs{0755, 0, 0}).ok());
  for (int i = 0; i < 1000; i += 3) ASSERT_TRUE(tree_->remove("/usr/bin/f" + std::to_string(i), false).ok());
  ASSERT_TRUE(tree_->writeFile("/usr/bin/f1", "replaced", FileAttrs{}).ok());
  EXPECT_EQ(tree_->list("/usr/bin")->size(), 1000u - 334u + 1500u);
  closeTree();
  EXPECT_THAT(statField("/usr/bin", "Flags"), HasSubstr("1000"));
  EXPECT_EQ(debugfs("cat /usr/bin/new-tool-1499"), "#!/bin/sh\n");
  EXPECT_EQ(debugfs("cat /usr/bin/f1"), "replaced");
}

// ".." never leads above the root: "/../../etc/x" is "/etc/x".
TEST_F(Ext4FileTreeTest, DotDotStaysInsideRoot) {
  writeHostFile(src_ + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  makeImage();
  openTree();
  ASSERT_TRUE(tree_->writeFile("/../../../etc/../etc/./x", "inside", FileAttrs{}).ok());
  EXPECT_EQ(*tree_->readFile("/etc/../../etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
  EXPECT_EQ(tree_->readFile("/etc/x/../passwd").status().code(), absl::StatusCode::kFailedPrecondition);
  for (const char* p : {"/etc/..", "/etc/.", "/", "/etc/./"}) {
    EXPECT_EQ(tree_->writeFile(p, "x", FileAttrs{}).code(), absl::StatusCode::kInvalidArgument) << p;
    EXPECT_EQ(tree_->appendFile(p, "x", FileAttrs{}).code(), absl::StatusCode::kInvalidArgument) << p;
    EXPECT_EQ(tree_->symlink(p, "x").code(), absl::StatusCode::kInvalidArgument) << p;
    EXPECT_EQ(tree_->remove(p, true).code(), absl::StatusCode::kInvalidArgument) << p;
  }
  EXPECT_EQ(tree_->writeFile("/etc", "x", FileAttrs{}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tree_->writeFile("etc/relative", "x", FileAttrs{}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tree_->writeFile("", "x", FileAttrs{}).code(), absl::StatusCode::kInvalidArgument);
  closeTree();
  EXPECT_EQ(debugfs("cat /etc/x"), "inside");
}

// Symlinked directories pointing "out" (absolute to a host path, "/etc -> /",
// relative "../../..") resolve inside the image; the host is never touched.
TEST_F(Ext4FileTreeTest, SymlinksPointingOutStayInside) {
  std::string host_dir = tmp_.sub("host");
  std::filesystem::create_directories(host_dir);
  writeHostFile(src_ + "/etc/hostname", "golden\n");
  std::filesystem::create_directories(src_ + "/a/b");
  std::filesystem::create_symlink(host_dir, src_ + "/escape");       // absolute, to a host directory
  std::filesystem::create_symlink("/", src_ + "/a/rootlink");         // "/etc -> /" style
  std::filesystem::create_symlink("../../../../..", src_ + "/a/b/up");  // relative, above the root
  makeImage();
  openTree();
  auto st = tree_->writeFile("/escape/owned", "x", FileAttrs{});
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;  // the host path does not exist inside the image
  ASSERT_TRUE(tree_->writeFile("/a/rootlink/etc/hostname", "via-abs\n", FileAttrs{}).ok());
  ASSERT_TRUE(tree_->writeFile("/a/b/up/etc/motd", "via-rel\n", FileAttrs{}).ok());
  ASSERT_TRUE(tree_->mkdirs("/a/b/up/srv/www", FileAttrs{0755, 0, 0}).ok());
  EXPECT_EQ(*tree_->readFile("/a/b/up/a/rootlink/etc/hostname"), "via-abs\n");
  // Creating what the absolute link names makes it resolve, still inside.
  ASSERT_TRUE(tree_->mkdirs(host_dir, FileAttrs{0755, 0, 0}).ok());
  ASSERT_TRUE(tree_->writeFile("/escape/owned", "in image", FileAttrs{}).ok());
  closeTree();
  EXPECT_TRUE(std::filesystem::is_empty(host_dir));
  EXPECT_EQ(debugfs("cat /etc/hostname"), "via-abs\n");
  EXPECT_EQ(debugfs("cat /etc/motd"), "via-rel\n");
  EXPECT_EQ(debugfs("cat " + host_dir + "/owned"), "in image");
  EXPECT_THAT(debugfs("ls -l /srv"), HasSubstr("www"));
}

// A symlink with an empty target (its first byte NUL, as a crafted guest
// image may hold) resolves as Linux does, to NOT_FOUND, instead of reading
// the empty target's first character (found by ext4_path_fuzz:
// tests/fuzz/corpus/ext4_path_fuzz/crash-empty-symlink-target).
TEST_F(Ext4FileTreeTest, EmptySymlinkTargetIsNotFound) {
  std::filesystem::create_directories(src_);
  std::filesystem::create_symlink("xnul", src_ + "/nulfirst");
  makeImage();
  auto r = run({tool("debugfs"), "-w", "-R", "sif /nulfirst block[0] 0", image_});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  check_fsck_ = false;  // e2fsck rightly calls the link damaged
  openTree();
  for (const char* p : {"/nulfirst/x", "/nulfirst"}) {
    auto got = tree_->readFile(p);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << p;
    EXPECT_THAT(got.status().message(), HasSubstr("'nulfirst' on the way has an empty target")) << p;
  }
  EXPECT_EQ(tree_->writeFile("/nulfirst/x", "x", FileAttrs{}).code(), absl::StatusCode::kNotFound);
  // The link itself (not followed) can still be replaced.
  EXPECT_TRUE(tree_->writeFile("/nulfirst", "fixed", FileAttrs{}).ok());
}

// Symlink loops fail after a bounded number of hops with a clear error.
TEST_F(Ext4FileTreeTest, SymlinkLoopsFail) {
  std::filesystem::create_directories(src_);
  std::filesystem::create_symlink("/loop2", src_ + "/loop1");
  std::filesystem::create_symlink("loop1", src_ + "/loop2");
  std::filesystem::create_symlink("self/x", src_ + "/self");
  makeImage();
  openTree();
  for (const char* p : {"/loop1/x", "/self/y"}) {
    auto st = tree_->writeFile(p, "x", FileAttrs{});
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << p;
    EXPECT_THAT(st.message(), HasSubstr("symlink loop")) << st;
  }
  EXPECT_EQ(tree_->readFile("/loop1").status().code(), absl::StatusCode::kFailedPrecondition);
  // The last component is not followed: the loop itself can be replaced.
  ASSERT_TRUE(tree_->writeFile("/loop1", "fixed", FileAttrs{}).ok());
  EXPECT_EQ(*tree_->readFile("/loop2"), "fixed");
}

// A full file system (no inodes, then no blocks) gives RESOURCE_EXHAUSTED
// naming the path, keeps the file it was replacing or appending to, and
// stays consistent.
TEST_F(Ext4FileTreeTest, FullFileSystem) {
  writeHostFile(src_ + "/etc/precious", "keep me");
  makeImage("2M", {"-N", "64"});
  openTree();
  Status st;
  int i = 0;
  for (; i < 100 && st.ok(); ++i) st = tree_->writeFile("/e" + std::to_string(i), "", FileAttrs{});
  ASSERT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_THAT(st.message(), HasSubstr("'/e" + std::to_string(i - 1) + "'"));
  EXPECT_EQ(tree_->symlink("/link", "x").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(tree_->mkdirs("/dir/sub", FileAttrs{0755, 0, 0}).code(), absl::StatusCode::kResourceExhausted);
  for (int j = 0; j < i - 1; ++j) ASSERT_TRUE(tree_->remove("/e" + std::to_string(j), false).ok());
  std::string chunk(64 << 10, 'f');
  st = Status();
  for (i = 0; i < 100 && st.ok(); ++i) st = tree_->writeFile("/fill" + std::to_string(i), chunk, FileAttrs{});
  ASSERT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_THAT(st.message(), HasSubstr("'/fill" + std::to_string(i - 1) + "'"));
  EXPECT_THAT(st.message(), HasSubstr("blocks"));
  std::string more(256 << 10, 'm');
  auto rep = tree_->writeFile("/etc/precious", more, FileAttrs{});
  EXPECT_EQ(rep.code(), absl::StatusCode::kResourceExhausted) << rep;
  EXPECT_EQ(*tree_->readFile("/etc/precious"), "keep me");
  auto app = tree_->appendFile("/etc/precious", more, FileAttrs{});
  EXPECT_EQ(app.code(), absl::StatusCode::kResourceExhausted) << app;
  EXPECT_EQ(*tree_->readFile("/etc/precious"), "keep me");
  closeTree();
  expectClean();
  EXPECT_EQ(debugfs("cat /etc/precious"), "keep me");
  // Space freed by a remove can be used again.
  openTree();
  ASSERT_TRUE(tree_->remove("/fill0", false).ok());
  ASSERT_TRUE(tree_->writeFile("/etc/precious", "replaced", FileAttrs{}).ok());
}

// Huge files: one larger than the file system fails cleanly and frees what
// it took; a 100 GiB sparse file is stat'ed and removed, not read into memory.
TEST_F(Ext4FileTreeTest, HugeFiles) {
  makeSparseFile(src_ + "/sparse", uint64_t{100} << 30);
  makeImage("16M");
  uint64_t free_blocks = superField("Free blocks");
  openTree();
  auto st = tree_->writeFile("/huge", std::string(24 << 20, 'h'), FileAttrs{});
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_THAT(st.message(), HasSubstr("'/huge'"));
  EXPECT_EQ(tree_->stat("/huge").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tree_->stat("/sparse")->size, uint64_t{100} << 30);
  auto big = tree_->readFile("/sparse");
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted) << big.status();
  ASSERT_TRUE(tree_->remove("/sparse", false).ok());
  closeTree();
  EXPECT_GE(superField("Free blocks"), free_blocks);
}

// A corrupted superblock is refused with a message naming e2fsck, and the
// image is left byte for byte as it was.
TEST_F(Ext4FileTreeTest, CorruptedSuperblockRefused) {
  makeImage();
  {
    std::fstream f(image_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1024 + 24);  // s_log_block_size
    f.write("\xff\x00\x00\x00", 4);
  }
  std::string before = readAll(image_);
  auto t = Ext4FileTree::open(image_, true);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss) << t.status();
  EXPECT_THAT(t.status().message(), HasSubstr("e2fsck"));
  EXPECT_THAT(t.status().message(), HasSubstr(image_));
  EXPECT_EQ(readAll(image_), before);
  check_fsck_ = false;  // e2fsck -n would rightly report the damage
  // With the magic gone, it no longer looks like ext at all.
  {
    std::fstream f(image_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1024 + 56);  // s_magic
    f.write("\0\0", 2);
  }
  t = Ext4FileTree::open(image_, false);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition) << t.status();
  EXPECT_THAT(t.status().message(), HasSubstr("not an ext2/3/4 file system"));
}

// Other contents are refused naming what was found: zeros, xfs.
TEST_F(Ext4FileTreeTest, OtherFileSystemsRefused) {
  check_fsck_ = false;
  std::string zeros = tmp_.sub("zeros.img");
  makeSparseFile(zeros, 8 << 20);
  auto t = Ext4FileTree::open(zeros, true);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(t.status().message(), HasSubstr("not an ext2/3/4 file system"));
  EXPECT_THAT(t.status().message(), HasSubstr("only zeros"));
  std::string xfs = tmp_.sub("xfs.img");
  makeSparseFile(xfs, uint64_t{300} << 20);  // mkfs.xfs's smallest
  auto r = run({tool("mkfs.xfs"), "-q", xfs});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  t = Ext4FileTree::open(xfs, true);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(t.status().message(), HasSubstr("it holds an xfs file system"));
  r = run({tool("xfs_repair"), "-n", xfs});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Ext4FileTree::open(tmp_.sub("missing.img"), false).status().code(), absl::StatusCode::kNotFound);
}

// A journal that needs recovery is refused (read-only too) and never written.
TEST_F(Ext4FileTreeTest, JournalNeedingRecoveryRefused) {
  makeImage();
  auto r = run({tool("debugfs"), "-w", "-R", "feature needs_recovery", image_});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string before = readAll(image_);
  for (bool writable : {true, false}) {
    auto t = Ext4FileTree::open(image_, writable);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(t.status().message(), HasSubstr("needs recovery"));
    EXPECT_THAT(t.status().message(), HasSubstr("e2fsck -fy " + image_));
  }
  EXPECT_EQ(readAll(image_), before);
  r = run({tool("debugfs"), "-w", "-R", "feature ^needs_recovery", image_});
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

// A file system marked with errors is read but not written.
TEST_F(Ext4FileTreeTest, FileSystemWithErrorsNotWritten) {
  makeImage();
  auto r = run({tool("debugfs"), "-w", "-R", "ssv state 3", image_});  // valid | errors
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string before = readAll(image_);
  auto t = Ext4FileTree::open(image_, true);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(t.status().message(), HasSubstr("e2fsck -fy " + image_));
  EXPECT_EQ(readAll(image_), before);
  openTree(false);
  EXPECT_THAT(*tree_->list("/"), ElementsAre("lost+found"));
  closeTree();
  r = run({tool("debugfs"), "-w", "-R", "ssv state 1", image_});
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

// Read-only trees read but refuse every change; a closed tree refuses all.
TEST_F(Ext4FileTreeTest, ReadOnlyAndClosed) {
  writeHostFile(src_ + "/etc/hostname", "golden\n");
  makeImage();
  std::string before = readAll(image_);
  openTree(false);
  EXPECT_EQ(*tree_->readFile("/etc/hostname"), "golden\n");
  EXPECT_EQ(tree_->writeFile("/x", "", FileAttrs{}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tree_->mkdirs("/x", FileAttrs{}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tree_->remove("/etc", true).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tree_->chmod("/etc", 0700).code(), absl::StatusCode::kFailedPrecondition);
  closeTree();
  EXPECT_EQ(readAll(image_), before);
  auto t = Ext4FileTree::open(image_, true);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE((*t)->close().ok());
  EXPECT_EQ((*t)->readFile("/etc/hostname").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*t)->close().code(), absl::StatusCode::kFailedPrecondition);
}

// A tree dropped without close() still leaves a consistent file system.
TEST_F(Ext4FileTreeTest, DestructorFlushes) {
  makeImage();
  openTree();
  ASSERT_TRUE(tree_->mkdirs("/root/.ssh", FileAttrs{0700, 0, 0}).ok());
  ASSERT_TRUE(tree_->writeFile("/root/.ssh/authorized_keys", "ssh-ed25519 AAAA k\n", FileAttrs{0600, 0, 0}).ok());
  tree_.reset();
  EXPECT_EQ(debugfs("cat /root/.ssh/authorized_keys"), "ssh-ed25519 AAAA k\n");
}

// The Customizer's edits (hostname, a user's SSH key, a file, identity
// reset with real ssh-keygen) land in a real image through Ext4FileTree,
// with the image's owners and modes, and leave it clean for e2fsck.
TEST_F(Ext4FileTreeTest, CustomizerOnRealImage) {
  writeHostFile(src_ + "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n");
  writeHostFile(src_ + "/etc/group", "root:x:0:\nalice:x:1000:\n");
  writeHostFile(src_ + "/etc/hostname", "golden\n");
  writeHostFile(src_ + "/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n");
  writeHostFile(src_ + "/etc/machine-id", "4f1e9a3bd0c84e2f9a6b7c8d9e0f1a2b\n");
  writeHostFile(src_ + "/etc/ssh/ssh_host_ed25519_key", "golden private\n");
  writeHostFile(src_ + "/etc/ssh/ssh_host_ed25519_key.pub", "golden public\n");
  writeHostFile(src_ + "/var/lib/systemd/random-seed", std::string(512, 'g'));
  std::filesystem::create_directories(src_ + "/home/alice");
  std::filesystem::create_directories(src_ + "/root");
  makeImage();
  {  // the home belongs to alice, as in a real root
    openTree();
    ASSERT_TRUE(tree_->chown("/home/alice", 1000, 1000).ok());
    closeTree();
  }
  core::Customizations c;
  c.hostname = "web1";
  c.ssh_keys = {{"alice", {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij a@b"}}};
  c.files = {{"/etc/motd", "welcome\n", 0640, "alice"}};
  Customizer customizer(runner_, [](const std::string& dev, bool writable) -> Result<std::unique_ptr<core::FileTree>> {
    XENCTL_ASSIGN_OR_RETURN(auto t, Ext4FileTree::open(dev, writable));
    return std::unique_ptr<core::FileTree>(std::move(t));
  });
  auto st = customizer.applyToDevice(image_, c);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(debugfs("cat /etc/hostname"), "web1\n");
  EXPECT_THAT(debugfs("cat /etc/hosts"), HasSubstr("127.0.1.1\tweb1"));
  EXPECT_EQ(statField("/home/alice/.ssh", "Mode"), "0700");
  EXPECT_EQ(statField("/home/alice/.ssh", "User"), "1000");
  EXPECT_EQ(statField("/home/alice/.ssh/authorized_keys", "Mode"), "0600");
  EXPECT_THAT(debugfs("cat /home/alice/.ssh/authorized_keys"), HasSubstr("AAAAC3NzaC1lZDI1NTE5AAAAIAbCdEf"));
  EXPECT_EQ(statField("/etc/motd", "Group"), "1000");
  EXPECT_EQ(statField("/etc/machine-id", "Size"), "0");
  EXPECT_THAT(debugfs("cat /etc/ssh/ssh_host_ed25519_key"), HasSubstr("BEGIN OPENSSH PRIVATE KEY"));
  EXPECT_EQ(statField("/etc/ssh/ssh_host_ed25519_key", "Mode"), "0600");
  EXPECT_NE(debugfs("cat /var/lib/systemd/random-seed"), std::string(512, 'g'));
}

}  // namespace
}  // namespace xenctl::customize
