// bench/cycle: prints figures, asserts nothing (issue 17 part 1).
//
// Starts the real xenctld (test hypervisor) on a temporary Unix socket, as
// bench/api does, and runs create+destroy+delete cycles (each call waiting
// for its operation, as vm-* do) for --seconds. It prints the cycles per
// second, the CPU time xenctld and this client spent per cycle (from
// /proc/PID/stat and getrusage: on a loaded host these move far less than
// throughput does), each call's p50/p99, and the floor of a call: GetHostInfo
// (a handler on gRPC's synchronous API) and WaitOperation of a finished
// operation (callback API, answered at once), with xenctld's CPU per call.
// --domains N defines N domains first; --pidfile FILE writes xenctld's pid
// there before the cycles and waits 0.7 s, for `perf record -p` or
// `strace -c -p` to attach.
//
//   build/bench/cycle/cycle_bench --xenctld build/daemon/xenctld [--seconds 5]
//       [--domains 0] [--pidfile FILE]
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_format.h"
#include "bench/common/xenctld_bench.h"
#include "xenctl/v1/host.grpc.pb.h"

using namespace xenctl::bench;

namespace {

// CPU seconds (user + system) of process `pid`, all its threads.
double cpuOf(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  const std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::istringstream in(all.substr(all.rfind(')') + 2));  // after "PID (COMM) "
  std::string field;
  long ticks = 0;
  for (int i = 0; i < 13 && in >> field; ++i)
    if (i >= 11) ticks += std::stol(field);  // utime, stime: fields 14 and 15
  return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double selfCpu() {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

void printLatency(const char* what, const std::vector<double>& v) {
  const Percentiles p = percentiles(v);
  std::printf("  %-28s p50 %.3f ms  p99 %.3f ms\n", what, p.p50, p.p99);
}

}  // namespace

int main(int argc, char** argv) {
  std::string xenctld = "build/daemon/xenctld", pidfile;
  double seconds = 5;
  int domains = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--xenctld") xenctld = argv[i + 1];
    else if (k == "--seconds") seconds = std::stod(argv[i + 1]);
    else if (k == "--pidfile") pidfile = argv[i + 1];
    else if (k == "--domains") domains = std::stoi(argv[i + 1]);
  }
  XenctldProcess daemon(xenctld);
  auto channel = ownChannel(daemon.address());
  ApiClient c(channel);
  auto host = v1::HostService::NewStub(channel);
  auto ops = v1::OperationService::NewStub(channel);
  auto doms = v1::DomainService::NewStub(channel);
  c.list();  // connects
  for (int i = 0; i < domains; ++i) c.create(absl::StrFormat("bench%04d", i));
  for (int i = 0; i < 50; ++i) {  // warms the daemon's caches and the store
    const std::string name = absl::StrFormat("warm%02d", i);
    c.create(name);
    c.destroy(name);
    c.remove(name);
  }
  if (!pidfile.empty()) {
    std::ofstream(pidfile) << daemon.pid() << "\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(700));  // for a profiler to attach
  }

  std::vector<double> created, destroyed, deleted;
  const double daemon_cpu0 = cpuOf(daemon.pid()), client_cpu0 = selfCpu();
  const auto t0 = Clock::now();
  int n = 0;
  while (ms(Clock::now() - t0) < seconds * 1000) {
    const std::string name = absl::StrFormat("cycle%06d", n++);
    const auto a = Clock::now();
    c.create(name);
    const auto b = Clock::now();
    c.destroy(name);
    const auto d = Clock::now();
    c.remove(name);
    const auto e = Clock::now();
    created.push_back(ms(b - a));
    destroyed.push_back(ms(d - b));
    deleted.push_back(ms(e - d));
  }
  const double elapsed = ms(Clock::now() - t0) / 1000;
  const double daemon_cpu = cpuOf(daemon.pid()) - daemon_cpu0, client_cpu = selfCpu() - client_cpu0;

  // The floors: a finished operation to wait for.
  v1::Operation finished;
  {
    grpc::ClientContext ctx;
    v1::CreateDomainRequest r;
    r.mutable_spec()->set_name("floor");
    r.mutable_spec()->set_memory_mib(32);
    r.mutable_spec()->set_vcpus(1);
    r.set_define_only(true);
    if (grpc::Status st = doms->CreateDomain(&ctx, r, &finished); !st.ok()) die("create floor", st);
  }
  constexpr int kFloorCalls = 2000;
  const std::vector<double> host_lat = timeCalls(kFloorCalls, [&] {
    grpc::ClientContext ctx;
    v1::HostInfo out;
    if (grpc::Status st = host->GetHostInfo(&ctx, v1::GetHostInfoRequest(), &out); !st.ok()) die("GetHostInfo", st);
  });
  const double wait_cpu0 = cpuOf(daemon.pid());
  const std::vector<double> wait_lat = timeCalls(kFloorCalls, [&] {
    grpc::ClientContext ctx;
    v1::WaitOperationRequest r;
    r.set_id(finished.id());
    v1::Operation out;
    if (grpc::Status st = ops->WaitOperation(&ctx, r, &out); !st.ok()) die("WaitOperation", st);
  });
  const double wait_cpu = cpuOf(daemon.pid()) - wait_cpu0;
  const int status = daemon.stop();

  std::printf("bench/cycle  xenctld %s, test hypervisor, Unix socket, %d domains defined\n", xenctld.c_str(),
              domains);
  std::printf("  create+destroy+delete        %.1f cycles/s over %d cycles (%.2f s)\n", n / elapsed, n, elapsed);
  std::printf("  CPU per cycle                xenctld %.0f us, client %.0f us\n", daemon_cpu / n * 1e6,
              client_cpu / n * 1e6);
  printLatency("CreateDomain", created);
  printLatency("DestroyDomain", destroyed);
  printLatency("DeleteDomain", deleted);
  printLatency("GetHostInfo (sync API)", host_lat);
  printLatency("WaitOperation, finished", wait_lat);
  std::printf("  WaitOperation, finished      xenctld CPU %.0f us per call\n", wait_cpu / kFloorCalls * 1e6);
  std::printf("  xenctld exit status          %d\n", status);
  return 0;
}
