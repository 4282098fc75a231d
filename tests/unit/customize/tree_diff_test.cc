#include "lib/customize/tree_diff.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/customize/container_executor.h"
#include "lib/customize/container_parser.h"
#include "tests/fakes/fake_fetcher.h"
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

Result<std::string> patchOf(const fakes::FakeFileTree& base, const fakes::FakeFileTree& tree) {
  auto b = base.reopen(false), t = tree.reopen(false);
  XENCTL_ASSIGN_OR_RETURN(auto changes, diffTrees(*b, *t));
  return writePatch(*b, *t, changes);
}

// Applies `patch` to `target` the way a container file's [patch TARGET URI 1]
// does: the container language's own parser and executor.
Status applyWithContainer(const std::string& patch, fakes::FakeFileTree& target) {
  fakes::FakeFetcher fetcher;
  fetcher.serve("file:///srv/web1.patch", patch);
  auto file = parseContainer("[patch /img/web2 /srv/web1.patch 1][end]\n", "web2.cfg");
  if (!file.ok()) return file.status();
  ContainerPorts ports;
  ports.open_tree = target.opener();
  ports.fetcher = &fetcher;
  return runContainer(*file, "web2.cfg", ports);
}

// Content changes are written as a unified diff with a/ and b/ names and
// /dev/null for added and removed files; what a diff cannot carry is named.
TEST(TreePatchTest, WritesUnifiedDiff) {
  auto base = golden();
  auto t = base->clone();
  t->addFile("/etc/hostname", "web1\n");
  t->addFile("/etc/motd", "Welcome\n", 0600);                 // mode only: named, not diffed
  t->addFile("/srv/index.html", "<h1>hi</h1>\n");             // added (with /srv)
  ASSERT_TRUE(t->remove("/var/log/old.log", false).ok());     // removed
  t->addSymlink("/etc/localtime", "/usr/share/zoneinfo/Europe/Paris");
  auto patch = patchOf(*base, *t);
  ASSERT_TRUE(patch.ok()) << patch.status();
  EXPECT_EQ(*patch,
            "--- a/etc/hostname\n+++ b/etc/hostname\n@@ -1,1 +1,1 @@\n-golden\n+web1\n"
            "xenctl: /etc/localtime: symlink -> /usr/share/zoneinfo/UTC 0:0 became symlink -> "
            "/usr/share/zoneinfo/Europe/Paris 0:0 (not in this patch)\n"
            "xenctl: /etc/motd: file 0644 0:0 became file 0600 0:0 (not in this patch)\n"
            "xenctl: /srv: added directory 0755 0:0 (not in this patch)\n"
            "--- /dev/null\n+++ b/srv/index.html\n@@ -0,0 +1,1 @@\n+<h1>hi</h1>\n"
            "--- a/var/log/old.log\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n");
}

// A binary file is named, not diffed.
TEST(TreePatchTest, BinaryFilesAreNamed) {
  auto base = golden();
  auto t = base->clone();
  t->addFile("/usr/bin/sh", std::string("ELF\0\1\3", 6), 0755);
  t->addFile("/usr/bin/new", std::string("\0", 1), 0644);
  auto patch = patchOf(*base, *t);
  ASSERT_TRUE(patch.ok()) << patch.status();
  EXPECT_EQ(*patch,
            "Binary files /dev/null and b/usr/bin/new differ\n"
            "Binary files a/usr/bin/sh and b/usr/bin/sh differ\n");
}

// A patch written from one clone and applied by the container language's
// [patch] to another clone of the same image gives the same text files.
TEST(TreePatchTest, ReappliedByContainerPatchGivesTheSameFiles) {
  auto base = golden();
  base->addFile("/etc/services", [] {
    std::string s;
    for (int i = 0; i < 200; ++i) absl::StrAppend(&s, "svc", i, "\t", 1000 + i, "/tcp\n");
    return s;
  }());
  base->addFile("/etc/issue", "Debian GNU/Linux 12");  // no newline at the end
  auto web1 = base->clone();
  {
    std::string services = *web1->readFile("/etc/services");
    services.replace(services.find("svc10\t"), 5, "http\t");
    services.insert(services.find("svc150\t"), "extra\t9999/udp\n");
    services.erase(services.find("svc199\t"));
    web1->addFile("/etc/services", services);
  }
  web1->addFile("/etc/hostname", "web1\n");
  web1->addFile("/etc/issue", "Debian GNU/Linux 12 (web)\n");
  web1->addFile("/srv/www/index.html", "<h1>hi</h1>\n");
  web1->addFile("/etc/empty", "");
  ASSERT_TRUE(web1->remove("/var/log/old.log", false).ok());
  auto patch = patchOf(*base, *web1);
  ASSERT_TRUE(patch.ok()) << patch.status();

  auto web2 = base->clone();
  Status st = applyWithContainer(*patch, *web2);
  ASSERT_TRUE(st.ok()) << st << "\n" << *patch;
  // Every regular file's content now matches; nothing else was touched.
  auto files = [](const fakes::FakeFileTree& t) {
    std::map<std::string, std::string> out;
    for (const auto& [path, entry] : t.dump())
      if (entry.starts_with("file ")) out[path] = entry.substr(entry.find(' ', 10) + 1);
    return out;
  };
  EXPECT_EQ(files(*web2), files(*web1));
  auto again = patchOf(*web1, *web2);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->find("--- "), std::string::npos) << *again;
}

}  // namespace
}  // namespace xenctl::customize
