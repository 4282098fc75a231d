// libFuzzer entry for path handling in Ext4FileTree (the customizations'
// FileTree over libext2fs). Once, a small ext4 image is made with
// `mkfs.ext4 -d` from a tree full of awkward symlinks (loops, absolute,
// relative, through "..", a slow one, one whose target starts with NUL);
// each input runs on a fresh copy of it.
//
// An input is up to 16 lines "OP PATH[\tARG]": OP s stat, r read, l list,
// w write ARG, a append ARG, m mkdirs, L symlink to ARG, d remove, D remove
// recursively, c chmod, o chown. Afterwards the file system closes cleanly,
// and a file just written reads back as written (when the path still leads
// to it).
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "lib/customize/ext4_file_tree.h"
#include "tests/fuzz/fuzz_temp_dir.h"

namespace fs = std::filesystem;
using xenctl::customize::Ext4FileTree;

namespace {
fs::path g_dir;
std::string g_image;  // the pristine image's bytes
std::string g_work;   // the copy each input edits

void run(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) {
    fprintf(stderr, "ext4_path_fuzz: setup failed: %s\n", cmd.c_str());
    std::abort();
  }
}

void makeImage() {
  g_dir = xenctl::fuzz::tempDir("ext4");
  const fs::path t = g_dir / "tree";
  fs::create_directories(t / "etc/ssh");
  fs::create_directories(t / "var/lib/deep/er/still");
  fs::create_directories(t / "home/user");
  std::ofstream(t / "etc/hostname") << "golden\n";
  std::ofstream(t / "etc/ssh/sshd_config") << "PermitRootLogin no\n";
  std::ofstream(t / "home/user/.profile") << "export PATH\n";
  fs::create_symlink("/etc", t / "etcabs");
  fs::create_symlink("../etc/hostname", t / "home/hostname");
  fs::create_symlink("loop2", t / "loop1");
  fs::create_symlink("loop1", t / "loop2");
  fs::create_symlink("..", t / "var/up");
  fs::create_symlink("/../../../etc/ssh", t / "escape");
  fs::create_symlink(".", t / "self");
  fs::create_symlink("missing/file", t / "dangling");
  fs::create_symlink(std::string(120, 'x') + "/../etc/hostname", t / "slow");
  fs::create_symlink("xnul", t / "nulfirst");
  const std::string img = (g_dir / "pristine.img").string();
  run("mkfs.ext4 -q -F -b 1024 -N 128 -O ^has_journal -d '" + t.string() + "' '" + img + "' 1M");
  // A fast symlink whose target starts with NUL: a guest image may hold one.
  run("debugfs -w -R 'sif /nulfirst block[0] 0' '" + img + "' >/dev/null 2>&1");
  std::ifstream in(img, std::ios::binary);
  g_image.assign(std::istreambuf_iterator<char>(in), {});
  g_work = (g_dir / "work.img").string();
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  makeImage();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    int fd = ::open(g_work.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, g_image.data(), g_image.size()) != static_cast<ssize_t>(g_image.size())) std::abort();
    ::close(fd);
  }
  auto tree = Ext4FileTree::open(g_work, /*writable=*/true);
  if (!tree.ok()) std::abort();
  Ext4FileTree& t = **tree;
  const xenctl::core::FileAttrs attrs{};
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int n = 0; n < 16 && !in.empty(); n++) {
    size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    if (line.empty()) continue;
    char op = line[0];
    std::string_view rest = line.substr(1), path = rest, arg;
    if (size_t tab = rest.find('\t'); tab != std::string_view::npos) {
      path = rest.substr(0, tab);
      arg = rest.substr(tab + 1);
    }
    switch (op) {
      case 's': (void)t.stat(path); break;
      case 'r': (void)t.readFile(path); break;
      case 'l': (void)t.list(path); break;
      case 'w':
        // Reading back may fail when the path went through the entry the
        // write replaced ("/var/up/var/up" with up -> ..), as in Linux;
        // when it reads, it reads what was written.
        if (t.writeFile(path, arg, attrs).ok()) {
          auto back = t.readFile(path);
          if (back.ok() && *back != arg) {
            fprintf(stderr, "ext4_path_fuzz: %s read back: %s\n", std::string(path).c_str(),
                    back.ok() ? "other content" : back.status().ToString().c_str());
            std::abort();
          }
        }
        break;
      case 'a': (void)t.appendFile(path, arg, attrs); break;
      case 'm': (void)t.mkdirs(path, attrs); break;
      case 'L': (void)t.symlink(path, arg); break;
      case 'd': (void)t.remove(path, false); break;
      case 'D': (void)t.remove(path, true); break;
      case 'c': (void)t.chmod(path, 0750); break;
      case 'o': (void)t.chown(path, 1000, 1000); break;
      default: break;
    }
  }
  if (auto st = t.close(); !st.ok()) {
    fprintf(stderr, "ext4_path_fuzz: close: %s\n", st.ToString().c_str());
    std::abort();
  }
  return 0;
}
