// bench/peers: xenctld against libvirtd, the same work side by side; prints
// figures and ratios, asserts nothing (issue 17 part 1).
//
// Installs nothing. It needs libvirt's daemon, its client library and
// headers, from Debian 12's packages (benchmark dependencies only, never
// build ones: without libvirt-dev this program is not built):
//
//   apt-get install --no-install-recommends libvirt-daemon libvirt-clients libvirt-dev
//
// It starts its own libvirtd (/usr/sbin/libvirtd, or --libvirtd PATH) on a
// temporary directory's Unix socket (unix_sock_dir, no authentication) and
// talks to libvirt's built-in test driver through it
// (test+unix:///default?socket=DIR/libvirt-sock): the whole RPC path of a
// real libvirtd, with no hypervisor under it. LIBVIRT_DRIVER_DIR points
// libvirtd at an empty directory so that it loads no hypervisor module (as
// root, Debian's QEMU module refuses to start without the libvirt-qemu user,
// and with it libvirtd). And it starts xenctld (test hypervisor) on another
// socket, as bench/api does.
//
// Work, alternately (the first one swaps each round) for --rounds rounds:
//   lifecycle  libvirt: virDomainDefineXML + virDomainCreate + virDomainDestroy
//              + virDomainUndefine; xenctld: CreateDomain (define and start)
//              + DestroyDomain + DeleteDomain, each waiting for its operation
//              (WatchOperation), as vm-create/vm-destroy/vm-delete do.
//              --cycles each, as cycles per second.
//   list       with --domains running domains on each: virConnectListAllDomains
//              (every domain, a handle each) against ListDomains (every
//              domain's spec and state), --lists calls each, p50/p99.
// Targets: lifecycle >= 2x libvirtd's; ListDomains p99 <= 0.5x libvirtd's.
//
//   build/bench/peers/peers_bench --xenctld build/daemon/xenctld [--rounds 3]
//       [--cycles 300] [--domains 1000] [--lists 1000] [--libvirtd /usr/sbin/libvirtd]
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/common/xenctld_bench.h"

using namespace xenctl::bench;

namespace {

[[noreturn]] void dieVirt(const std::string& what) {
  const virError* e = virGetLastError();
  die(what, e && e->message ? e->message : "libvirt error");
}

// libvirtd on its own socket, stopped when this goes.
class Libvirtd {
 public:
  explicit Libvirtd(const std::string& binary) {
    char tmpl[] = "/tmp/xenctl-peers-XXXXXX";
    if (!::mkdtemp(tmpl)) die("mkdtemp", std::strerror(errno));
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/no-modules");
    std::ofstream(dir_ + "/libvirtd.conf") << "unix_sock_dir = \"" << dir_ << "\"\n"
                                           << "auth_unix_ro = \"none\"\nauth_unix_rw = \"none\"\n";
    const std::string sock = dir_ + "/libvirt-sock";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setenv("LIBVIRT_DRIVER_DIR", (dir_ + "/no-modules").c_str(), 1);
      const std::string conf = dir_ + "/libvirtd.conf", pidfile = dir_ + "/libvirtd.pid", log = dir_ + "/log";
      if (FILE* f = std::fopen(log.c_str(), "w")) ::dup2(fileno(f), 2);
      ::execl(binary.c_str(), binary.c_str(), "-f", conf.c_str(), "-p", pidfile.c_str(), nullptr);
      std::perror("exec libvirtd");
      _exit(127);
    }
    children().push_back(pid_);
    for (int i = 0; i < 1000 && !std::filesystem::exists(sock); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // startup only, bounded
    if (!std::filesystem::exists(sock)) die("starting " + binary, "no socket after 10 s; see " + dir_ + "/log");
    uri_ = "test+unix:///default?socket=" + sock;
    conn_ = virConnectOpen(uri_.c_str());
    if (!conn_) dieVirt("connecting to " + uri_);
  }
  ~Libvirtd() {
    if (conn_) virConnectClose(conn_);
    std::erase(children(), pid_);
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    std::filesystem::remove_all(dir_);
  }
  std::string version() const {
    unsigned long v = 0;
    virConnectGetLibVersion(conn_, &v);
    return absl::StrFormat("%lu.%lu.%lu", v / 1000000, v / 1000 % 1000, v % 1000);
  }

  static std::string xml(const std::string& name) {
    return "<domain type='test'><name>" + name +
           "</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>";
  }
  virDomainPtr defineAndStart(const std::string& name) {
    virDomainPtr d = virDomainDefineXML(conn_, xml(name).c_str());
    if (!d) dieVirt("define " + name);
    if (virDomainCreate(d) < 0) dieVirt("start " + name);
    return d;
  }
  void cycle(const std::string& name) {
    virDomainPtr d = defineAndStart(name);
    if (virDomainDestroy(d) < 0) dieVirt("destroy " + name);
    if (virDomainUndefine(d) < 0) dieVirt("undefine " + name);
    virDomainFree(d);
  }
  size_t list() {
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(conn_, &doms, 0);
    if (n < 0) dieVirt("list");
    for (int i = 0; i < n; ++i) virDomainFree(doms[i]);
    free(doms);
    return static_cast<size_t>(n);
  }
  std::vector<double> timeLists(int calls) {
    return timeCalls(calls, [this] { list(); });
  }

 private:
  std::string dir_, uri_;
  pid_t pid_ = -1;
  virConnectPtr conn_ = nullptr;
};

struct Round {
  double virt_cycles_s, xen_cycles_s;
  Percentiles virt_list, xen_list;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string xenctld = "build/daemon/xenctld", libvirtd = "/usr/sbin/libvirtd";
  int rounds = 3, cycles = 300, domains = 1000, lists = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--xenctld") xenctld = argv[i + 1];
    else if (k == "--libvirtd") libvirtd = argv[i + 1];
    else if (k == "--rounds") rounds = std::stoi(argv[i + 1]);
    else if (k == "--cycles") cycles = std::stoi(argv[i + 1]);
    else if (k == "--domains") domains = std::stoi(argv[i + 1]);
    else if (k == "--lists") lists = std::stoi(argv[i + 1]);
  }
  if (!std::filesystem::exists(libvirtd))
    die(libvirtd, "not found; install libvirt-daemon (see bench/peers/peers_bench.cc's header)");
  virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});  // errors are reported by dieVirt, once
  Libvirtd virt(libvirtd);
  XenctldProcess daemon(xenctld);
  ApiClient xen(daemon.address());
  xen.list();

  std::vector<Round> results;
  int cycle_no = 0;
  auto lifecycles = [&](bool libvirt) {
    const auto t0 = Clock::now();
    for (int i = 0; i < cycles; ++i, ++cycle_no) {
      const std::string name = absl::StrFormat("cycle%06d", cycle_no);
      if (libvirt) {
        virt.cycle(name);
      } else {
        xen.create(name);
        xen.destroy(name);
        xen.remove(name);
      }
    }
    return cycles / (ms(Clock::now() - t0) / 1000);
  };
  // The listing work: --domains running domains on each (libvirt's test
  // driver starts with one, "test").
  for (size_t i = virt.list(); i < static_cast<size_t>(domains); ++i)
    virDomainFree(virt.defineAndStart(absl::StrFormat("dom%04zu", i)));
  for (size_t i = xen.list(); i < static_cast<size_t>(domains); ++i) xen.create(absl::StrFormat("dom%04zu", i));
  const size_t virt_n = virt.list(), xen_n = xen.list();
  virt.timeLists(50), xen.timeLists(50);  // warm

  for (int r = 0; r < rounds; ++r) {
    Round out{};
    const bool libvirt_first = r % 2 == 0;
    for (bool libvirt : {libvirt_first, !libvirt_first}) (libvirt ? out.virt_cycles_s : out.xen_cycles_s) = lifecycles(libvirt);
    for (bool libvirt : {libvirt_first, !libvirt_first})
      (libvirt ? out.virt_list : out.xen_list) = percentiles(libvirt ? virt.timeLists(lists) : xen.timeLists(lists));
    results.push_back(out);
  }
  const int status = daemon.stop();

  std::printf("bench/peers  libvirtd %s (test driver, %s) against xenctld %s (test hypervisor), Unix sockets\n",
              virt.version().c_str(), libvirtd.c_str(), xenctld.c_str());
  std::printf("  %d rounds, alternating; lifecycle: %d cycles each; list: %d calls each with %zu (libvirt) and %zu "
              "(xenctld) running domains\n",
              rounds, cycles, lists, virt_n, xen_n);
  std::vector<double> life_ratio, p99_ratio;
  for (size_t r = 0; r < results.size(); ++r) {
    const Round& x = results[r];
    life_ratio.push_back(x.xen_cycles_s / x.virt_cycles_s);
    p99_ratio.push_back(x.xen_list.p99 / x.virt_list.p99);
    std::printf("  round %zu  lifecycle/s  libvirtd %7.1f  xenctld %7.1f  (%.2fx)   list p50/p99 ms  libvirtd %.2f/%.2f"
                "  xenctld %.2f/%.2f  (p99 %.2fx)\n",
                r + 1, x.virt_cycles_s, x.xen_cycles_s, life_ratio.back(), x.virt_list.p50, x.virt_list.p99,
                x.xen_list.p50, x.xen_list.p99, p99_ratio.back());
  }
  const double life = median(life_ratio), p99 = median(p99_ratio);
  std::printf("  lifecycle throughput  xenctld/libvirtd %.2fx (median of rounds; target >= 2x: %s)\n", life,
              life >= 2 ? "met" : "NOT met");
  std::printf("  ListDomains@%zu p99   xenctld/libvirtd %.2fx (median of rounds; target <= 0.5x: %s)\n", xen_n, p99,
              p99 <= 0.5 ? "met" : "NOT met");
  std::printf("  xenctld exit status   %d\n", status);
  return 0;
}
