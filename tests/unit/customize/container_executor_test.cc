#include "lib/customize/container_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "lib/customize/customizer.h"
#include "lib/customize/ext4_file_tree.h"
#include "lib/image/archive_writer.h"
#include "lib/sys/posix_process_runner.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/fakes/fake_file_tree.h"
#include "tests/fakes/fake_process_runner.h"
#include "tests/support/temp_dir.h"
#include "tests/support/unpack.h"

namespace xenctl::customize {
namespace {

using ::testing::HasSubstr;

class ContainerExecutorTest : public ::testing::Test {
 protected:
  ContainerExecutorTest() {
    image("/img/web1").addFile("/etc/motd", "one\ntwo\nthree\nfour\nfive\nsix\nseven\n", 0640, 0, 4);
    ports_.open_tree = [this](const std::string& path, bool writable) -> Result<std::unique_ptr<core::FileTree>> {
      auto it = images_.find(path);
      if (it == images_.end()) return absl::NotFoundError(absl::StrCat(path, ": no such image"));
      opened_.push_back(absl::StrCat(path, writable ? " rw" : " ro"));
      return std::unique_ptr<core::FileTree>(it->second->reopen(writable));
    };
    ports_.fetcher = &fetcher_;
    ports_.volume_path = [](const core::VolumeRef& v) -> Result<std::string> {
      if (v.pool == "thin" && v.name == "web1") return std::string("/img/web1");
      return absl::NotFoundError(absl::StrCat("no volume ", v.pool, "/", v.name));
    };
  }

  fakes::FakeFileTree& image(const std::string& path) {
    auto& t = images_[path];
    if (!t) t = std::make_unique<fakes::FakeFileTree>();
    return *t;
  }
  Status run(std::string_view text) {
    auto parsed = parseContainer(text, "web1.cfg");
    if (!parsed.ok()) return parsed.status();
    return runContainer(*parsed, "web1.cfg", ports_);
  }
  std::string file(const std::string& p, const std::string& img = "/img/web1") {
    return image(img).readFile(p).value_or("<missing>");
  }
  int writableOpens(const std::string& img = "/img/web1") const {
    return static_cast<int>(std::count(opened_.begin(), opened_.end(), img + " rw"));
  }

  std::map<std::string, std::unique_ptr<fakes::FakeFileTree>> images_;
  std::vector<std::string> opened_;
  fakes::FakeFetcher fetcher_;
  ContainerPorts ports_;
};

constexpr char kPatch[] =
    "diff --git a/etc/motd b/etc/motd\n"
    "--- a/etc/motd\t2026-01-01 00:00:00\n"
    "+++ b/etc/motd\t2026-01-02 00:00:00\n"
    "@@ -1,3 +1,3 @@\n"
    " one\n"
    "-two\n"
    "+TWO\n"
    " three\n"
    "@@ -5,3 +5,4 @@\n"
    " five\n"
    " six\n"
    "+six and a half\n"
    " seven\n"
    "--- /dev/null\n"
    "+++ b/etc/issue\n"
    "@@ -0,0 +1 @@\n"
    "+Welcome\n"
    "\\ No newline at end of file\n";

// [replace] writes the inline text over the file, keeping its mode and
// owner, and creates a missing one with its directories.
TEST_F(ContainerExecutorTest, ReplaceWritesAndCreates) {
  ASSERT_TRUE(run("[replace /etc/motd archive vol:thin/web1\nHello\n] [end]\n"
                  "[replace /etc/new/HOSTNAME archive /img/web1\n\nFCDOBBS\n\n] [end]\n")
                  .ok());
  EXPECT_EQ(file("/etc/motd"), "Hello\n");
  EXPECT_EQ(image("/img/web1").stat("/etc/motd")->mode, 0640u);
  EXPECT_EQ(image("/img/web1").stat("/etc/motd")->gid, 4u);
  EXPECT_EQ(file("/etc/new/HOSTNAME"), "FCDOBBS\n");
  EXPECT_EQ(image("/img/web1").stat("/etc/new/HOSTNAME")->mode, 0644u);
  // One writable open for the whole run, closed at the end.
  EXPECT_EQ(writableOpens(), 1);
  EXPECT_EQ(image("/img/web1").closes(), 2);  // the read-only view of pass 2, the writable one
}

// [copy] fetches each source once per run, however often it is named.
TEST_F(ContainerExecutorTest, CopyFetchesOnce) {
  fetcher_.serve("http://h/motd", "from the net\n");
  ASSERT_TRUE(run("[copy /etc/motd archive vol:thin/web1 source http://h/motd] [end]\n"
                  "[copy /etc/motd2 archive vol:thin/web1 source http://h/motd] [end]\n")
                  .ok());
  EXPECT_EQ(file("/etc/motd"), "from the net\n");
  EXPECT_EQ(file("/etc/motd2"), "from the net\n");
  EXPECT_EQ(fetcher_.requested(), std::vector<std::string>{"http://h/motd"});
}

// [patch] applies every hunk (with an offset after an earlier change), creates
// a file from /dev/null, and honours "\ No newline at end of file".
TEST_F(ContainerExecutorTest, PatchAppliesHunks) {
  fetcher_.serve("file:///srv/motd.patch", kPatch);
  ASSERT_TRUE(run("[replace /etc/motd archive vol:thin/web1\nzero\none\ntwo\nthree\nfour\nfive\nsix\nseven\n] [end]\n"
                  "[patch vol:thin/web1 /srv/motd.patch 1][end]\n")
                  .ok());
  EXPECT_EQ(file("/etc/motd"), "zero\none\nTWO\nthree\nfour\nfive\nsix\nsix and a half\nseven\n");
  EXPECT_EQ(file("/etc/issue"), "Welcome");
}

// A hunk whose context is not in the file fails naming the file and the
// hunk, and nothing of the run is written, not even the statements before it.
TEST_F(ContainerExecutorTest, FailedHunkChangesNothing) {
  fetcher_.serve("file:///srv/motd.patch", kPatch);
  Status s = run("[replace /etc/hostname archive vol:thin/web1\nweb1\n] [end]\n"
                 "[replace /etc/motd archive vol:thin/web1\nsomething else\n] [end]\n"
                 "[patch vol:thin/web1 /srv/motd.patch][end]\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("web1.cfg:7:1: [patch] /srv/motd.patch: hunk 1 of /etc/motd (@@ -1,3 +1,3 @@) "
                                     "does not apply"));
  EXPECT_EQ(file("/etc/hostname"), "<missing>");
  EXPECT_EQ(file("/etc/motd"), "one\ntwo\nthree\nfour\nfive\nsix\nseven\n");
  EXPECT_EQ(writableOpens(), 0);
  EXPECT_EQ(image("/img/web1").closes(), 1);  // the read-only view, closed all the same
}

// A dry run fetches and checks everything, hunks included, and writes nothing.
TEST_F(ContainerExecutorTest, DryRunWritesNothing) {
  fetcher_.serve("file:///srv/motd.patch", kPatch);
  auto parsed = parseContainer("[replace /etc/x archive vol:thin/web1\nx\n] [end]\n"
                               "[patch vol:thin/web1 /srv/motd.patch][end]\n", "web1.cfg");
  ASSERT_TRUE(parsed.ok());
  ContainerRunOptions dry;
  dry.dry_run = true;
  EXPECT_TRUE(runContainer(*parsed, "web1.cfg", ports_, dry).ok());
  EXPECT_EQ(writableOpens(), 0);
  EXPECT_EQ(file("/etc/x"), "<missing>");
  image("/img/web1").addFile("/etc/motd", "changed\n");
  EXPECT_EQ(runContainer(*parsed, "web1.cfg", ports_, dry).code(), absl::StatusCode::kFailedPrecondition);
}

// A missing source, volume or image stops the run before any change.
TEST_F(ContainerExecutorTest, MissingInputsChangeNothing) {
  Status s = run("[replace /etc/motd archive vol:thin/web1\nx\n] [end]\n"
                 "[copy /etc/a archive vol:thin/web1 source http://h/none] [end]\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("web1.cfg:4:1: [copy] fetching http://h/none"));
  s = run("[replace /etc/motd archive vol:thin/web1\nx\n] [end]\n[replace /etc/a archive vol:thin/db9\nx\n] [end]\n");
  EXPECT_THAT(s.message(), HasSubstr("web1.cfg:4:1: [replace] no volume thin/db9"));
  s = run("[replace /etc/motd archive vol:thin/web1\nx\n] [end]\n[replace /etc/a archive /img/none\nx\n] [end]\n");
  EXPECT_THAT(s.message(), HasSubstr("/img/none: no such image"));
  EXPECT_EQ(file("/etc/motd"), "one\ntwo\nthree\nfour\nfive\nsix\nseven\n");
  EXPECT_EQ(writableOpens(), 0);
}

// What is not built answers UNIMPLEMENTED naming the statement, before any change.
TEST_F(ContainerExecutorTest, NotBuiltIsUnimplemented) {
  for (std::string_view text : {
           "[image /img/new 50M lbl][end]",
           "[populate image /img/web1 /mnt /a.cpio.gz][end]",
           "[replace /etc/x archive http://h/etc.cpio.gz fork /srv/x.cpio.gz\nx\n] [end]",  // no work_dir
           "[hostname web1 archive vol:thin/web1][end]",  // no Customizer given
       }) {
    Status s = run(absl::StrCat("[replace /etc/motd archive vol:thin/web1\nx\n] [end]\n", av(text)));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << text << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr("web1.cfg:4:1: ["));
  }
  EXPECT_EQ(writableOpens(), 0);
}

// The stored archive at `uri`, unpacked into a new directory `dir`.
void unpackStored(fakes::FakeFetcher& fetcher, const std::string& uri, const std::string& dir) {
  std::string archive;
  ASSERT_TRUE(fetcher.fetch(uri, [&](std::string_view c) { archive.append(c); return absl::OkStatus(); }, {}).ok())
      << "nothing stored at " << uri;
  Status st = test_support::unpackArchive(archive, dir);
  ASSERT_TRUE(st.ok()) << st;
}

std::string readHostFile(const std::string& path) {
  return std::filesystem::exists(path) ? test_support::readAll(path) : "<missing>";
}

// Runs an e2fsprogs tool from /usr/sbin or /sbin; its stdout. A failure fails the test.
std::string sh(std::vector<std::string> argv) {
  sys::PosixProcessRunner runner;
  argv[0] = std::filesystem::exists("/usr/sbin/" + argv[0]) ? "/usr/sbin/" + argv[0] : "/sbin/" + argv[0];
  auto r = runner.run(argv, absl::Seconds(120));
  EXPECT_TRUE(r.ok() && r->exit_code == 0) << argv[0] << ": " << (r.ok() ? r->output : r.status().ToString());
  return r.ok() ? r->stdout_text : "";
}

// Ports over real ext4 image files (Ext4FileTree) and `fetcher`.
ContainerPorts ext4Ports(core::Fetcher* fetcher) {
  ContainerPorts ports;
  ports.open_tree = [](const std::string& path, bool writable) -> Result<std::unique_ptr<core::FileTree>> {
    XENCTL_ASSIGN_OR_RETURN(auto t, Ext4FileTree::open(path, writable));
    return std::unique_ptr<core::FileTree>(std::move(t));
  };
  ports.fetcher = fetcher;
  return ports;
}

// fork (replace, copy) and [patch]'s OUT-URI store the tree as it is after
// the statement, every statement before it included and none after, as
// cpio.gz or, by the name, tar.zst (paper §4.8-4.10).
TEST_F(ContainerExecutorTest, ForkStoresTheTreeAfterTheStatement) {
  test_support::TempDir tmp;
  fetcher_.serve("http://h/issue", "Debian\n");
  fetcher_.serve("file:///srv/late.patch", "--- a/etc/late\n+++ b/etc/late\n@@ -1 +1 @@\n-late\n+LATE\n");
  ASSERT_TRUE(run("[replace /etc/motd archive vol:thin/web1\nHello\n] [end]\n"
                  "[copy /etc/issue archive vol:thin/web1 source http://h/issue fork file:///srv/web1.cpio.gz] [end]\n"
                  "[replace /etc/late archive vol:thin/web1\nlate\n] [end]\n"
                  "[patch vol:thin/web1 /srv/late.patch 1 /srv/web1-patched.tar.zst][end]\n")
                  .ok());
  unpackStored(fetcher_, "file:///srv/web1.cpio.gz", tmp.sub("fork"));
  EXPECT_EQ(readHostFile(tmp.sub("fork/etc/motd")), "Hello\n");
  EXPECT_EQ(readHostFile(tmp.sub("fork/etc/issue")), "Debian\n");
  EXPECT_EQ(readHostFile(tmp.sub("fork/etc/late")), "<missing>") << "a statement after the fork is not in it";
  unpackStored(fetcher_, "file:///srv/web1-patched.tar.zst", tmp.sub("patched"));
  EXPECT_EQ(readHostFile(tmp.sub("patched/etc/late")), "LATE\n");
  EXPECT_EQ(readHostFile(tmp.sub("patched/etc/motd")), "Hello\n");
  EXPECT_EQ(writableOpens(), 1);
}

// A run that fails its checks, or a dry run, stores no fork.
TEST_F(ContainerExecutorTest, FailedOrDryRunStoresNoFork) {
  fetcher_.serve("file:///srv/bad.patch", "--- a/etc/motd\n+++ b/etc/motd\n@@ -1 +1 @@\n-nothere\n+x\n");
  Status s = run("[replace /etc/x archive vol:thin/web1 fork /srv/x.cpio.gz\nx\n] [end]\n"
                 "[patch vol:thin/web1 /srv/bad.patch][end]\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  auto parsed = parseContainer("[replace /etc/x archive vol:thin/web1 fork /srv/x.cpio.gz\nx\n] [end]\n", "f");
  ASSERT_TRUE(parsed.ok());
  ContainerRunOptions dry;
  dry.dry_run = true;
  ASSERT_TRUE(runContainer(*parsed, "f", ports_, dry).ok());
  EXPECT_FALSE(fetcher_.fetch("file:///srv/x.cpio.gz", [](std::string_view) { return absl::OkStatus(); }, {}).ok());
  EXPECT_EQ(writableOpens(), 0);
}

// The executor fixture with the ports that make file systems: image files
// in a temporary directory (make_fs gives each a FakeFileTree), volumes of
// pool "thin" (made and removed in memory), and a private work directory.
class ContainerMakeTest : public ContainerExecutorTest {
 protected:
  ContainerMakeTest() {
    ports_.make_fs = [this](const std::string& path, const std::string& label) -> Status {
      labels_[path] = label;
      images_[path] = std::make_unique<fakes::FakeFileTree>();
      image(path).addDir("/lost+found", 0700);
      return absl::OkStatus();
    };
    ports_.create_volume = [this](const core::VolumeRef& v, uint64_t size, const std::string& label)
        -> Result<std::string> {
      const std::string path = "/vol/" + v.pool + "/" + v.name;
      volumes_.push_back(v.target());
      labels_[path] = absl::StrCat(label, " ", size);
      images_[path] = std::make_unique<fakes::FakeFileTree>();
      return path;
    };
    ports_.remove_volume = [this](const core::VolumeRef& v) {
      volumes_.erase(std::remove(volumes_.begin(), volumes_.end(), v.target()), volumes_.end());
      return absl::OkStatus();
    };
    ports_.work_dir = tmp_.sub("work");
    std::filesystem::create_directory(ports_.work_dir);
    std::filesystem::create_directories(tmp_.sub("src/etc"));
    std::ofstream(tmp_.sub("src/etc/hosts")) << "127.0.0.1 localhost\n";
    std::ofstream(tmp_.sub("src/etc/passwd")) << "root:x:0:0::/root:/bin/sh\n";
  }
  // The host files in `dir` (names only), sorted.
  std::vector<std::string> hostFiles(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  // The tree made for the image file that now sits at `target`.
  fakes::FakeFileTree* madeFor(const std::string& target) {
    const std::string prefix = absl::StrCat(tmp_.path(), "/.", target.substr(target.rfind('/') + 1), ".xenctl-");
    for (auto& [path, tree] : images_)
      if (path.rfind(prefix, 0) == 0) return tree.get();
    return nullptr;
  }

  test_support::TempDir tmp_;
  std::map<std::string, std::string> labels_;
  std::vector<std::string> volumes_;
};

// The paper's §4.5-4.7 in one file: [create] packs a directory (stored at
// its URI, and taken from there by the [populate] after it, unfetched),
// [image] makes a labelled sparse file system, [populate] fills it, and
// later statements plan over what it holds.
TEST_F(ContainerMakeTest, CreateImagePopulateInOrder) {
  const std::string img = tmp_.sub("fido-etc");
  Status s = run(absl::StrCat("[create\n ", tmp_.sub("src"), "/\n file:///srv/images/etc.cpio.gz\n ][end]\n",
                              "[image ", img, "\n 50MB\n fido_etc] [end]\n",
                              "[populate image\n ", img, "\n /mnt/\n file:///srv/images/etc.cpio.gz\n ][end]\n",
                              "[replace /etc/HOSTNAME archive ", img, "\nFCDOBBS\n] [end]\n",
                              "[copy /etc/hosts.orig archive ", img, " source file:///srv/images/hosts] [end]\n"));
  // The copy's source is missing: nothing was made, nothing stored.
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_EQ(hostFiles(tmp_.path()), (std::vector<std::string>{"src", "work"}));
  EXPECT_FALSE(fetcher_.fetch("file:///srv/images/etc.cpio.gz", [](std::string_view) { return absl::OkStatus(); }, {})
                   .ok());
  fetcher_.serve("file:///srv/images/hosts", "10.0.0.1 gw\n");
  fetcher_.serve("file:///srv/hosts.patch",
                 "--- a/etc/hosts\n+++ b/etc/hosts\n@@ -1 +1,2 @@\n 127.0.0.1 localhost\n+10.0.0.9 db\n");
  s = run(absl::StrCat("[create\n ", tmp_.sub("src"), "/\n file:///srv/images/etc.cpio.gz\n ][end]\n",
                       "[image ", img, "\n 50MB\n fido_etc] [end]\n",
                       "[populate image\n ", img, "\n /mnt/\n file:///srv/images/etc.cpio.gz\n ][end]\n",
                       "[replace /etc/HOSTNAME archive ", img, "\nFCDOBBS\n] [end]\n",
                       "[patch ", img, " /srv/hosts.patch][end]\n"));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(hostFiles(tmp_.path()), (std::vector<std::string>{"fido-etc", "src", "work"}));
  EXPECT_EQ(std::filesystem::file_size(img), 50u << 20);
  EXPECT_EQ(std::filesystem::status(img).permissions(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  fakes::FakeFileTree* made = madeFor(img);
  ASSERT_NE(made, nullptr);
  EXPECT_EQ(made->readFile("/etc/passwd").value_or(""), "root:x:0:0::/root:/bin/sh\n");
  EXPECT_EQ(made->readFile("/etc/hosts").value_or(""), "127.0.0.1 localhost\n10.0.0.9 db\n");
  EXPECT_EQ(made->readFile("/etc/HOSTNAME").value_or(""), "FCDOBBS\n");
  EXPECT_TRUE(made->stat("/lost+found").ok()) << "populate adds to the file system, it does not replace it";
  EXPECT_THAT(labels_, ::testing::Contains(::testing::Pair(::testing::_, "fido_etc")));
  EXPECT_TRUE(fetcher_.fetch("file:///srv/images/etc.cpio.gz", [](std::string_view) { return absl::OkStatus(); }, {})
                  .ok());
  const std::vector<std::string> requested = fetcher_.requested();
  EXPECT_EQ(std::count(requested.begin(), requested.end(), "file:///srv/images/etc.cpio.gz"), 2)
      << "only the checks of this test fetched it; the runs took [create]'s bytes";
  EXPECT_TRUE(hostFiles(ports_.work_dir).empty()) << "the unpacked archive is removed";
  // A second run's [image] does not write over the file.
  s = run(absl::StrCat("\n  [image ", img, " 8M x][end]\n"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr("web1.cfg:2:3: [image] "));
}

// A run that fails after an [image] removes the file system it made: the
// image file's temporary name, or the volume.
TEST_F(ContainerMakeTest, FailureRemovesWhatItMade) {
  ports_.customize = [](core::FileTree&, const core::Customizations&) {
    return absl::NotFoundError("no group 'wheel'");
  };
  const std::string img = tmp_.sub("new.img");
  Status s = run(absl::StrCat("[image ", img, " 8M new][end]\n[image vol:thin/new 16M new][end]\n",
                              "[replace /etc/motd archive vol:thin/new\nhi\n] [end]\n",
                              "[hostname web1 archive ", img, "][end]\n"));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr("web1.cfg:6:1: [hostname] no group 'wheel'"));
  EXPECT_EQ(hostFiles(tmp_.path()), (std::vector<std::string>{"src", "work"}));
  EXPECT_TRUE(volumes_.empty());
  EXPECT_EQ(labels_.at("/vol/thin/new"), absl::StrCat("new ", 16u << 20));
  // An existing volume is not made again.
  s = run("[image vol:thin/web1 16M x][end]\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_THAT(s.message(), HasSubstr("vol:thin/web1 already exists"));
}

// [populate] into an existing tree adds the archive's files over it, in
// order with the other statements; an archive entry that would leave the
// tree is refused before anything changes.
TEST_F(ContainerMakeTest, PopulateAnExistingTree) {
  std::string archive;
  {
    core::ByteSink sink = [&](std::string_view c) {
      archive.append(c);
      return absl::OkStatus();
    };
    auto w = image::EntryWriter::open(image::ExportFormat::kTarZst, sink);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->directory("./etc", 0755, 0, 0).ok());
    ASSERT_TRUE((*w)->file("./etc/motd", "from the archive\n", 0600, 0, 0).ok());
    ASSERT_TRUE((*w)->symlink("./etc/mtab", "/proc/self/mounts", 0, 0).ok());
    ASSERT_TRUE((*w)->close().ok());
  }
  fetcher_.serve("file:///srv/etc.tar.zst", archive);
  ASSERT_TRUE(run("[replace /etc/motd archive vol:thin/web1\nbefore\n] [end]\n"
                  "[populate image vol:thin/web1 /mnt /srv/etc.tar.zst][end]\n"
                  "[replace /etc/issue archive vol:thin/web1\nafter\n] [end]\n")
                  .ok());
  EXPECT_EQ(file("/etc/motd"), "from the archive\n");
  EXPECT_EQ(image("/img/web1").stat("/etc/motd")->mode, 0600u);
  EXPECT_EQ(image("/img/web1").stat("/etc/mtab")->link_target, "/proc/self/mounts");
  EXPECT_EQ(file("/etc/issue"), "after\n");
  std::string evil;
  {
    core::ByteSink sink = [&](std::string_view c) {
      evil.append(c);
      return absl::OkStatus();
    };
    auto w = image::EntryWriter::open(image::ExportFormat::kTarZst, sink);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->file("../escape", "x", 0644, 0, 0).ok());
    ASSERT_TRUE((*w)->close().ok());
  }
  fetcher_.serve("file:///srv/evil.tar", evil);
  Status s = run("[replace /etc/motd archive vol:thin/web1\nchanged\n] [end]\n"
                 "[populate image vol:thin/web1 /mnt /srv/evil.tar][end]\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("web1.cfg:4:1: [populate] /srv/evil.tar: "));
  EXPECT_EQ(file("/etc/motd"), "from the archive\n");
}

// A cpio.gz of /etc as the paper's archives hold.
std::string etcArchive() {
  std::string archive;
  core::ByteSink sink = [&](std::string_view c) {
    archive.append(c);
    return absl::OkStatus();
  };
  auto w = image::EntryWriter::open(image::ExportFormat::kCpioGz, sink);
  EXPECT_TRUE(w.ok());
  if (!w.ok()) return "";
  EXPECT_TRUE((*w)->directory(".", 0755, 0, 0).ok());
  EXPECT_TRUE((*w)->directory("./etc", 0755, 0, 0).ok());
  EXPECT_TRUE((*w)->file("./etc/HOSTNAME", "golden\n", 0644, 0, 0).ok());
  EXPECT_TRUE((*w)->file("./etc/hosts", "127.0.0.1 localhost\n", 0644, 0, 0).ok());
  EXPECT_TRUE((*w)->close().ok());
  return archive;
}

// The paper's Figure 1 with a fork: the archive at a URI is fetched once,
// unpacked privately, changed by each statement naming it in order, and
// the changed tree stored as a new archive; the scratch copy goes.
TEST_F(ContainerMakeTest, ArchiveAtAUriIsForked) {
  fetcher_.serve("http://foo.org/images/etc.cpio.gz", etcArchive());
  fetcher_.serve("file:///srv/hosts.patch",
                 "--- a/etc/hosts\n+++ b/etc/hosts\n@@ -1 +1,2 @@\n 127.0.0.1 localhost\n+10.0.0.9 db\n");
  Status s = run("[replace /etc/HOSTNAME\n"
                 "archive http://foo.org/images/etc.cpio.gz\n"
                 "\n"
                 "FCDOBBS\n"
                 "\n"
                 "] [end]\n"
                 "[patch http://foo.org/images/etc.cpio.gz /srv/hosts.patch 1 file:///srv/fcdobbs-etc.cpio.gz][end]\n");
  ASSERT_TRUE(s.ok()) << s;
  unpackStored(fetcher_, "file:///srv/fcdobbs-etc.cpio.gz", tmp_.sub("fork"));
  EXPECT_EQ(readHostFile(tmp_.sub("fork/etc/HOSTNAME")), "FCDOBBS\n");
  EXPECT_EQ(readHostFile(tmp_.sub("fork/etc/hosts")), "127.0.0.1 localhost\n10.0.0.9 db\n");
  const std::vector<std::string> requested = fetcher_.requested();
  EXPECT_EQ(std::count(requested.begin(), requested.end(), "http://foo.org/images/etc.cpio.gz"), 1);
  EXPECT_TRUE(hostFiles(ports_.work_dir).empty()) << "the scratch copy and the unpacked tree are removed";
  // The archive itself is unchanged.
  EXPECT_EQ(fetcher_.requested().size(), requested.size());
}

// An archive changed without a diff or a fork would lose its changes: refused with the first statement's place.
TEST_F(ContainerMakeTest, ArchiveChangesMustLeave) {
  fetcher_.serve("http://foo.org/images/etc.cpio.gz", etcArchive());
  Status s = run("[replace /etc/motd archive vol:thin/web1\nx\n] [end]\n"
                 "[replace /etc/HOSTNAME archive http://foo.org/images/etc.cpio.gz\nFCDOBBS\n] [end]\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("web1.cfg:4:1: [replace] changes the archive at "
                                     "'http://foo.org/images/etc.cpio.gz', which is never written back"));
  EXPECT_EQ(writableOpens(), 0);
  EXPECT_TRUE(hostFiles(ports_.work_dir).empty());
  // A file:// URI or path named like an archive is one too; a missing one is NOT_FOUND.
  s = run("[replace /etc/x archive /srv/none.tar.zst diff /srv/d\nx\n] [end]\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
}

// "root" is the tree at the run's root_path; a run without one refuses it before any change.
TEST_F(ContainerExecutorTest, RootIsTheRunsRootPath) {
  Status s = run("[replace /etc/motd archive vol:thin/web1\nx\n] [end]\n[replace /etc/motd archive root\ny\n] [end]");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("web1.cfg:4:1: [replace] 'root' names the root of a domain being created"));
  EXPECT_EQ(writableOpens(), 0);
  ports_.root_path = "/img/web1";
  ASSERT_TRUE(run("[replace /etc/motd archive root\ny\n] [end]").ok());
  EXPECT_EQ(file("/etc/motd"), "y\n");
}

// Typed expressions go to the Customizer, in order with the others, with
// identity reset only where [reset-identity] asks.
TEST_F(ContainerExecutorTest, TypedExpressionsReachTheCustomizer) {
  std::vector<core::Customizations> seen;
  ports_.customize = [&](core::FileTree& t, const core::Customizations& c) {
    seen.push_back(c);
    EXPECT_EQ(t.readFile("/etc/motd").value_or(""), "first\n");  // the replace before it is made
    return absl::OkStatus();
  };
  ASSERT_TRUE(run("[replace /etc/motd archive vol:thin/web1\nfirst\n] [end]\n"
                  "[hostname web1 archive vol:thin/web1][end]\n"
                  "[reset-identity archive vol:thin/web1][end]\n")
                  .ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].hostname, "web1");
  EXPECT_FALSE(seen[0].reset_identity);
  EXPECT_TRUE(seen[1].reset_identity);
}

// The diff option stores, after the statement, the diff of the tree's
// changes so far; a later run's [patch] applies it to a copy of the
// original tree. (Within one run every URI is fetched before any change.)
TEST_F(ContainerExecutorTest, DiffOptionRoundTripsThroughPatch) {
  images_["/img/web2"] = image("/img/web1").clone();
  ASSERT_TRUE(run("[replace /etc/motd archive /img/web1\none\n2\nthree\nfour\nfive\nsix\nseven\neight\n] [end]\n"
                  "[replace /etc/hostname archive /img/web1 diff file:///srv/web1.patch\nweb1\n] [end]\n")
                  .ok());
  ASSERT_TRUE(run("[patch /img/web2 /srv/web1.patch][end]\n").ok());
  EXPECT_EQ(file("/etc/motd", "/img/web2"), file("/etc/motd"));
  EXPECT_EQ(file("/etc/hostname", "/img/web2"), "web1\n");
  std::string patch;
  fetcher_.fetch("file:///srv/web1.patch", [&](std::string_view c) { patch.append(c); return absl::OkStatus(); }, {})
      .IgnoreError();
  EXPECT_EQ(patch,
            "--- /dev/null\n+++ b/etc/hostname\n@@ -0,0 +1,1 @@\n+web1\n"
            "--- a/etc/motd\n+++ b/etc/motd\n@@ -1,7 +1,8 @@\n one\n-two\n+2\n three\n four\n five\n six\n"
            " seven\n+eight\n");
}

// unifiedDiff and applyFilePatch are inverses: changes far apart (two
// hunks), a missing final newline, a new and a removed file.
TEST(UnifiedDiff, RoundTrip) {
  std::string a, b;
  for (int i = 0; i < 40; ++i) {
    a += absl::StrCat("line ", i, "\n");
    b += i == 3 ? "changed\n" : i == 30 ? "" : absl::StrCat("line ", i, "\n");
  }
  b += "tail without newline";
  struct Case {
    std::optional<std::string> before, after;
  };
  for (const Case& c : std::vector<Case>{{a, b}, {b, a}, {std::nullopt, a}, {a, std::nullopt}, {"x", "y"}}) {
    std::string d = unifiedDiff("/etc/f", c.before, c.after);
    auto parsed = parseUnifiedDiff(d, 1);
    ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << d;
    ASSERT_EQ(parsed->size(), 1u);
    EXPECT_EQ((*parsed)[0].path, "/etc/f");
    auto applied = applyFilePatch(c.before.value_or(""), (*parsed)[0]);
    ASSERT_TRUE(applied.ok()) << applied.status() << "\n" << d;
    EXPECT_EQ(*applied, c.after.value_or("")) << d;
  }
  std::string three_hunks = unifiedDiff("/f", a, b);
  EXPECT_EQ(std::count(three_hunks.begin(), three_hunks.end(), '@'), 3 * 4) << three_hunks;
  EXPECT_EQ(unifiedDiff("/f", a, a), "");
}

// The typed expressions through the real Customizer: hostname and a file
// with its mode and owner, in the image the statements name.
TEST_F(ContainerExecutorTest, TypedExpressionsThroughTheCustomizer) {
  fakes::FakeFileTree& t = image("/img/web1");
  t.addFile("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nwww:x:33:33::/var/www:/usr/sbin/nologin\n");
  t.addFile("/etc/group", "root:x:0:\nwww:x:33:\n");
  t.addFile("/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 golden\n");
  fakes::FakeProcessRunner runner;
  Customizer customizer(runner, ports_.open_tree);
  ports_.customize = [&](core::FileTree& tree, const core::Customizations& c) { return customizer.apply(tree, c); };
  Status s = run("[hostname web1 archive vol:thin/web1][end]\n"
                 "[file /srv/www/index.html 0640 www:www archive vol:thin/web1\n<h1>web1</h1>\n] [end]\n");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(file("/etc/hostname"), "web1\n");
  EXPECT_THAT(file("/etc/hosts"), HasSubstr("127.0.1.1"));
  EXPECT_THAT(file("/etc/hosts"), HasSubstr("web1"));
  EXPECT_EQ(file("/srv/www/index.html"), "<h1>web1</h1>\n");
  auto st = t.stat("/srv/www/index.html");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(std::make_tuple(st->mode, st->uid, st->gid), std::make_tuple(0640u, 33u, 33u));
  EXPECT_TRUE(runner.commands().empty());  // no identity reset unless asked
}

// On a real ext4 image (mkfs.ext4 -d, edited through Ext4FileTree): replace,
// copy and patch land as debugfs reads them, and e2fsck -fn finds it clean.
TEST(ContainerExecutorExt4, ReplaceCopyPatchOnAnImage) {
  test_support::TempDir tmp;
  std::filesystem::create_directories(tmp.sub("src/etc"));
  std::ofstream(tmp.sub("src/etc/motd")) << "one\ntwo\nthree\n";
  const std::string img = tmp.sub("root.img");
  sh({"mkfs.ext4", "-q", "-F", "-d", tmp.sub("src"), img, "16M"});
  fakes::FakeFetcher fetcher;
  fetcher.serve("http://h/issue", "Debian GNU/Linux 12\n");
  fetcher.serve("http://h/motd.patch", "--- a/etc/motd\n+++ b/etc/motd\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n");
  ContainerPorts ports = ext4Ports(&fetcher);
  auto parsed = parseContainer(absl::StrCat("[replace /etc/HOSTNAME archive ", img, "\nFCDOBBS\n] [end]\n",
                                            "[copy /etc/issue archive file://", img, " source http://h/issue] [end]\n",
                                            "[patch ", img, " http://h/motd.patch 1 ftp://h/web1.tar.zst][end]\n"),
                               "web1.cfg");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  Status s = runContainer(*parsed, "web1.cfg", ports);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sh({"debugfs", "-R", "cat /etc/HOSTNAME", img}), "FCDOBBS\n");
  EXPECT_EQ(sh({"debugfs", "-R", "cat /etc/issue", img}), "Debian GNU/Linux 12\n");
  EXPECT_EQ(sh({"debugfs", "-R", "cat /etc/motd", img}), "one\nTWO\nthree\n");
  sh({"e2fsck", "-fn", img});
  // The patched tree, forked, holds what the image holds.
  unpackStored(fetcher, "ftp://h/web1.tar.zst", tmp.sub("fork"));
  EXPECT_EQ(readHostFile(tmp.sub("fork/etc/motd")), "one\nTWO\nthree\n");
  EXPECT_EQ(readHostFile(tmp.sub("fork/etc/HOSTNAME")), "FCDOBBS\n");
  EXPECT_TRUE(std::filesystem::is_directory(tmp.sub("fork/lost+found")));
}

// The paper's [create] / [image] / [populate] on real files: a directory
// packed, a sparse ext4 image made by mkfs.ext4 and labelled, filled from
// the archive and then changed through Ext4FileTree; debugfs reads it back,
// e2fsck -fn finds it clean.
TEST(ContainerExecutorExt4, CreateImagePopulateOnAnImage) {
  test_support::TempDir tmp;
  std::filesystem::create_directories(tmp.sub("src/etc/ssh"));
  std::ofstream(tmp.sub("src/etc/hosts")) << "127.0.0.1 localhost\n";
  std::ofstream(tmp.sub("src/etc/ssh/sshd_config")) << "Port 22\n";
  std::filesystem::create_symlink("/proc/self/mounts", tmp.sub("src/etc/mtab"));
  std::filesystem::create_directory(tmp.sub("work"));
  fakes::FakeFetcher fetcher;
  ContainerPorts ports = ext4Ports(&fetcher);
  ports.make_fs = [](const std::string& path, const std::string& label) {
    sh({"mkfs.ext4", "-q", "-F", "-L", label, path});
    return absl::OkStatus();
  };
  ports.work_dir = tmp.sub("work");
  const std::string img = tmp.sub("fido-etc");
  auto parsed = parseContainer(
      absl::StrCat("[create ", tmp.sub("src"), " ftp://h/images/etc.cpio.gz][end]\n",
                   "[image ", img, " 16M fido_etc][end]\n",
                   "[populate image ", img, " /mnt/ ftp://h/images/etc.cpio.gz][end]\n",
                   "[replace /etc/HOSTNAME archive ", img, "\nFCDOBBS\n] [end]\n"),
      "fido.cfg");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  Status s = runContainer(*parsed, "fido.cfg", ports);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sh({"debugfs", "-R", "cat /etc/hosts", img}), "127.0.0.1 localhost\n");
  EXPECT_EQ(sh({"debugfs", "-R", "cat /etc/ssh/sshd_config", img}), "Port 22\n");
  EXPECT_EQ(sh({"debugfs", "-R", "cat /etc/HOSTNAME", img}), "FCDOBBS\n");
  EXPECT_THAT(sh({"debugfs", "-R", "stat /etc/mtab", img}), HasSubstr("Fast link dest: \"/proc/self/mounts\""));
  EXPECT_EQ(sh({"e2label", img}), "fido_etc\n");
  EXPECT_EQ(std::filesystem::file_size(img), 16u << 20);
  sh({"e2fsck", "-fn", img});
  EXPECT_TRUE(std::filesystem::is_empty(tmp.sub("work")));
  // The archive [create] stored is the directory's.
  unpackStored(fetcher, "ftp://h/images/etc.cpio.gz", tmp.sub("out"));
  EXPECT_EQ(readHostFile(tmp.sub("out/etc/hosts")), "127.0.0.1 localhost\n");
}

// An archive edited on real files: its scratch copy is a real ext4 image
// made by mkfs.ext4, and the fork holds the change.
TEST(ContainerExecutorExt4, ArchiveAtAUriOnAScratchImage) {
  test_support::TempDir tmp;
  std::filesystem::create_directory(tmp.sub("work"));
  fakes::FakeFetcher fetcher;
  fetcher.serve("ftp://h/etc.cpio.gz", etcArchive());
  ContainerPorts ports = ext4Ports(&fetcher);
  std::string made;
  ports.make_fs = [&](const std::string& path, const std::string& label) {
    made = path;
    sh({"mkfs.ext4", "-q", "-F", "-L", label, path});
    return absl::OkStatus();
  };
  ports.work_dir = tmp.sub("work");
  auto parsed = parseContainer("[replace /etc/HOSTNAME archive ftp://h/etc.cpio.gz fork ftp://h/web1-etc.tar.zst\n"
                               "web1\n] [end]\n",
                               "web1.cfg");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  Status s = runContainer(*parsed, "web1.cfg", ports);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(made.empty());
  EXPECT_FALSE(std::filesystem::exists(made)) << "the scratch image is removed";
  unpackStored(fetcher, "ftp://h/web1-etc.tar.zst", tmp.sub("fork"));
  EXPECT_EQ(readHostFile(tmp.sub("fork/etc/HOSTNAME")), "web1\n");
  EXPECT_EQ(readHostFile(tmp.sub("fork/etc/hosts")), "127.0.0.1 localhost\n");
  EXPECT_TRUE(std::filesystem::is_empty(tmp.sub("work")));
}

// A diff that is not one, and a strip level deeper than the names.
TEST(UnifiedDiff, BadDiffs) {
  EXPECT_THAT(parseUnifiedDiff("just text\n", 1).status().message(), HasSubstr("not a unified diff"));
  EXPECT_THAT(parseUnifiedDiff("--- motd\n+++ motd\n@@ -1 +1 @@\n-a\n+b\n", 1).status().message(),
              HasSubstr("line 1 of the diff: 'motd' has fewer than 1 leading components"));
  EXPECT_THAT(parseUnifiedDiff("--- a/m\n+++ b/m\n@@ -1,2 +1,2 @@\n-a\n+b\n", 1).status().message(),
              HasSubstr("ends before its header's count"));
  EXPECT_THAT(parseUnifiedDiff("--- a/m\n+++ b/m\n@@ bad @@\n", 1).status().message(),
              HasSubstr("line 3 of the diff: '@@ bad @@' is not a hunk header"));
  auto p = parseUnifiedDiff("--- /etc/m\n+++ /etc/m\n@@ -1 +1 @@\n-a\n+b\n", 0);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)[0].path, "/etc/m");
}

// A hunk found away from its stated line still applies; one whose removed
// line differs does not.
TEST(UnifiedDiff, OffsetAndMismatch) {
  auto p = parseUnifiedDiff("--- a/m\n+++ b/m\n@@ -2,2 +2,2 @@\n c\n-d\n+D\n", 1);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(applyFilePatch("x\ny\nz\nc\nd\n", (*p)[0]).value_or("?"), "x\ny\nz\nc\nD\n");
  auto bad = applyFilePatch("c\ne\n", (*p)[0]);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.status().message(), HasSubstr("hunk 1 of /m (@@ -2,2 +2,2 @@) does not apply"));
}

}  // namespace
}  // namespace xenctl::customize
