// bench/customize: prints figures, asserts nothing. The edits a provisioned
// server gets (a hostname, 10 files, one SSH key) made offline in a 2 GiB
// Debian-like ext4 image, two ways, alternating which goes first:
//   - in process, with customize::Ext4FileTree (open, edits, close);
//   - `debugfs -w -f CMDS IMAGE` with the same edits (the tool mke2fs's
//     library ships; one exec).
// Each sample runs on a fresh `cp --sparse=always` copy of the image
// (untimed); the first copies of each kind are checked with e2fsck -fn and
// debugfs. Target (issue 12): in-process p50 <= 1.0x debugfs.
//
//   customize_bench [--rounds N] [--workdir DIR] [--files N]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "lib/customize/ext4_file_tree.h"
#include "lib/sys/posix_process_runner.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using xenctl::core::FileAttrs;

namespace {

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"})
    if (::access((dir + name).c_str(), X_OK) == 0) return dir + name;
  return name;
}

xenctl::sys::PosixProcessRunner runner;

bool run(const std::vector<std::string>& argv, std::string* out = nullptr) {
  auto r = runner.run(argv, absl::Minutes(10));
  if (!r.ok() || r->exit_code != 0) {
    std::fprintf(stderr, "customize_bench: %s failed: %s\n", argv[0].c_str(),
                 r.ok() ? r->output.c_str() : std::string(r.status().message()).c_str());
    return false;
  }
  if (out) *out = r->stdout_text;
  return true;
}

void put(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

/// A Debian-like root: the usual top-level directories, /etc with its
/// account files, and a few thousand files under /usr and /var of the sizes
/// a minimal Debian 12 has (mostly small, some binaries and libraries).
size_t buildTree(const fs::path& root, int scale) {
  std::mt19937 rng(12);
  auto blob = [&](size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  };
  size_t files = 0;
  for (const char* d : {"bin", "boot", "dev", "home", "media", "mnt", "opt", "proc", "run", "sbin", "srv", "sys",
                        "tmp", "var/log", "var/cache/apt", "var/tmp", "usr/local/bin", "root"})
    fs::create_directories(root / d);
  put(root / "etc/hostname", "debian\n");
  put(root / "etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  put(root / "etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n");
  put(root / "etc/group", "root:x:0:\ndaemon:x:1:\n");
  put(root / "etc/shadow", "root:*:19000:0:99999:7:::\n");
  put(root / "etc/machine-id", "0123456789abcdef0123456789abcdef\n");
  put(root / "etc/motd", "Debian GNU/Linux\n");
  put(root / "root/.bashrc", "# ~/.bashrc\n");
  files += 8;
  for (int i = 0; i < 40 * scale; ++i, ++files) put(root / absl::StrCat("etc/conf.d/c", i, ".conf"), blob(200 + rng() % 2000));
  for (int i = 0; i < 20 * scale; ++i, ++files)
    put(root / absl::StrCat("etc/ssh/ssh_config.d/s", i), blob(100 + rng() % 500));
  for (int i = 0; i < 100 * scale; ++i, ++files) put(root / absl::StrCat("usr/bin/tool", i), blob(8000 + rng() % 120000));
  for (int i = 0; i < 60 * scale; ++i, ++files)
    put(root / absl::StrCat("usr/lib/x86_64-linux-gnu/lib", i, ".so.1"), blob(20000 + rng() % 400000));
  for (int i = 0; i < 300 * scale; ++i, files += 2) {
    put(root / absl::StrCat("usr/share/doc/pkg", i, "/copyright"), blob(500 + rng() % 6000));
    put(root / absl::StrCat("usr/share/doc/pkg", i, "/changelog.Debian.gz"), blob(300 + rng() % 3000));
  }
  for (int i = 0; i < 300 * scale; ++i, ++files)
    put(root / absl::StrCat("var/lib/dpkg/info/pkg", i, ".list"), blob(100 + rng() % 3000));
  return files;
}

struct Edits {
  std::string hostname = "web1\n";
  std::string hosts = "127.0.0.1\tlocalhost\n127.0.1.1\tweb1\n\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  std::vector<std::pair<std::string, std::string>> files;  // guest path, content
  std::string key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBench0000000000000000000000000000000000 bench@host\n";
};

Edits makeEdits(int nfiles) {
  Edits e;
  for (int i = 0; i < nfiles; ++i)
    e.files.emplace_back(absl::StrCat("/etc/xenctl/file", i), std::string(1000 + 300 * i, static_cast<char>('a' + i)));
  return e;
}

struct Phases {
  std::vector<double> open, edit, close;
};

/// The edits in process, timing each phase into `ph`. Empty on success, else the error.
std::string editInProcess(const std::string& image, const Edits& e, Phases& ph) {
  auto t0 = Clock::now();
  auto t = xenctl::customize::Ext4FileTree::open(image, true);
  if (!t.ok()) return std::string(t.status().message());
  auto t1 = Clock::now();
  auto& tree = **t;
  std::vector<xenctl::Status> st;
  st.push_back(tree.writeFile("/etc/hostname", e.hostname, FileAttrs{0644, 0, 0}));
  st.push_back(tree.writeFile("/etc/hosts", e.hosts, FileAttrs{0644, 0, 0}));
  st.push_back(tree.mkdirs("/etc/xenctl", FileAttrs{0755, 0, 0}));
  for (const auto& [path, content] : e.files) st.push_back(tree.writeFile(path, content, FileAttrs{0644, 0, 0}));
  st.push_back(tree.mkdirs("/root/.ssh", FileAttrs{0700, 0, 0}));
  st.push_back(tree.writeFile("/root/.ssh/authorized_keys", e.key, FileAttrs{0600, 0, 0}));
  auto t2 = Clock::now();
  st.push_back(tree.close());
  ph.open.push_back(secs(t1 - t0));
  ph.edit.push_back(secs(t2 - t1));
  ph.close.push_back(secs(Clock::now() - t2));
  for (const auto& s : st)
    if (!s.ok()) return std::string(s.message());
  return "";
}

/// The same edits as a debugfs command file; contents come from host files
/// written once beforehand (untimed, in debugfs's favour).
std::string debugfsScript(const fs::path& dir, const Edits& e) {
  auto local = [&](const std::string& name, const std::string& content) {
    fs::path p = dir / name;
    put(p, content);
    return p.string();
  };
  auto writeCmd = [&](const std::string& guest, const std::string& host, int mode, bool replace) {
    std::string s;
    if (replace) s += absl::StrCat("rm ", guest, "\n");
    s += absl::StrCat("write ", host, " ", guest, "\n");
    s += absl::StrFormat("sif %s mode 0%o\nsif %s uid 0\nsif %s gid 0\n", guest, 0100000 | mode, guest, guest);
    return s;
  };
  std::string cmds;
  cmds += writeCmd("/etc/hostname", local("hostname", e.hostname), 0644, true);
  cmds += writeCmd("/etc/hosts", local("hosts", e.hosts), 0644, true);
  cmds += "mkdir /etc/xenctl\nsif /etc/xenctl mode 040755\n";
  int i = 0;
  for (const auto& [path, content] : e.files) cmds += writeCmd(path, local(absl::StrCat("f", i++), content), 0644, false);
  cmds += "mkdir /root/.ssh\nsif /root/.ssh mode 040700\n";
  cmds += writeCmd("/root/.ssh/authorized_keys", local("key", e.key), 0600, false);
  fs::path script = dir / "cmds";
  put(script, cmds);
  return script.string();
}

double cpuSeconds(int who) {
  struct rusage u;
  ::getrusage(who, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double p50(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

/// e2fsck -fn clean and the edits visible to debugfs.
bool check(const std::string& image, const Edits& e, const char* who) {
  std::string out;
  bool ok = run({tool("e2fsck"), "-fn", image}) && run({tool("debugfs"), "-R", "cat /root/.ssh/authorized_keys", image}, &out) &&
            out == e.key && run({tool("debugfs"), "-R", "cat /etc/hostname", image}, &out) && out == e.hostname &&
            run({tool("debugfs"), "-R", "cat " + e.files.back().first, image}, &out) && out == e.files.back().second;
  std::printf("  check (%s): %s\n", who, ok ? "e2fsck -fn clean, edits read back by debugfs" : "FAILED");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 20, nfiles = 10, scale = 3;
  std::string workdir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (a == "--files") nfiles = std::atoi(argv[i + 1]);
    else if (a == "--scale") scale = std::atoi(argv[i + 1]);
    else if (a == "--workdir") workdir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: customize_bench [--rounds N] [--files N] [--scale N] [--workdir DIR]\n");
      return 2;
    }
  }
  if (workdir.empty()) {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/var/tmp") + "/customize-bench-XXXXXX";
    if (!::mkdtemp(templ.data())) {
      std::perror("mkdtemp");
      return 1;
    }
    workdir = templ;
  }
  fs::path dir(workdir);
  fs::path tree = dir / "tree", image = dir / "golden.img", work = dir / "copy.img";
  auto t0 = Clock::now();
  size_t files = buildTree(tree, scale);
  if (!run({tool("mkfs.ext4"), "-q", "-F", "-d", tree.string(), image.string(), "2G"})) return 1;
  fs::remove_all(tree);
  std::string used;
  (void)run({"du", "-m", image.string()}, &used);
  std::printf("customize bench: 2 GiB ext4 image (mkfs.ext4 -d, this host's mke2fs.conf) with %zu files, "
              "%s MiB allocated, made in %.1f s\n",
              files, used.substr(0, used.find('\t')).c_str(), secs(Clock::now() - t0));
  Edits e = makeEdits(nfiles);
  std::string script = debugfsScript(dir / "debugfs-input", e);
  std::printf("  edits: /etc/hostname and /etc/hosts replaced, %d files in /etc/xenctl, /root/.ssh 0700 + "
              "authorized_keys 0600; %d rounds, fresh copy each, alternating\n",
              nfiles, rounds);

  // The copy is synced before the clock starts: both editors fsync on
  // close, which would otherwise write back the copy's 100+ MiB as well.
  auto fresh = [&] {
    return run({"cp", "--sparse=always", image.string(), work.string()}) && run({"sync", work.string()});
  };
  std::vector<double> lib, dbg, lib_cpu, dbg_cpu;
  Phases phases;
  for (int r = 0; r < rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      bool lib_turn = (k == 0) == (r % 2 == 0);
      if (!fresh()) return 1;
      auto s = Clock::now();
      double cpu0 = cpuSeconds(RUSAGE_SELF), child0 = cpuSeconds(RUSAGE_CHILDREN);
      if (lib_turn) {
        std::string err = editInProcess(work.string(), e, phases);
        lib.push_back(secs(Clock::now() - s));
        lib_cpu.push_back(cpuSeconds(RUSAGE_SELF) - cpu0);
        if (!err.empty()) {
          std::fprintf(stderr, "customize_bench: Ext4FileTree: %s\n", err.c_str());
          return 1;
        }
        if (r == 0) check(work.string(), e, "Ext4FileTree");
      } else {
        bool ok = run({tool("debugfs"), "-w", "-f", script, work.string()});
        dbg.push_back(secs(Clock::now() - s));
        dbg_cpu.push_back(cpuSeconds(RUSAGE_CHILDREN) - child0);
        if (!ok) return 1;
        if (r == 0) check(work.string(), e, "debugfs");
      }
    }
  }
  fs::remove_all(dir);
  double a = p50(lib), b = p50(dbg);
  std::printf("  Ext4FileTree (in process):  p50 %7.2f ms  (min %.2f, max %.2f)\n", a * 1e3,
              *std::min_element(lib.begin(), lib.end()) * 1e3, *std::max_element(lib.begin(), lib.end()) * 1e3);
  std::printf("    phases p50: open %.2f ms, edits %.2f ms, close (flush + fsync) %.2f ms\n", p50(phases.open) * 1e3,
              p50(phases.edit) * 1e3, p50(phases.close) * 1e3);
  std::printf("  debugfs -w -f CMDS:         p50 %7.2f ms  (min %.2f, max %.2f)\n", b * 1e3,
              *std::min_element(dbg.begin(), dbg.end()) * 1e3, *std::max_element(dbg.begin(), dbg.end()) * 1e3);
  std::printf("  ratio Ext4FileTree / debugfs: %.2fx (target <= 1.0x)\n", b > 0 ? a / b : 0.0);
  // CPU time (user + system; debugfs's as a waited-for child) is steadier on a busy machine.
  double ac = p50(lib_cpu), bc = p50(dbg_cpu);
  std::printf("  CPU time p50: Ext4FileTree %.2f ms, debugfs %.2f ms, ratio %.2fx\n", ac * 1e3, bc * 1e3,
              bc > 0 ? ac / bc : 0.0);
  return 0;
}
