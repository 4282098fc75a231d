// bench/api: prints figures, asserts nothing.
//
// Starts the real xenctld (test hypervisor) on a temporary Unix socket and
// measures, over gRPC: xenctld's RSS idle; the time to create N domains;
// RSS with N domains; ListDomains latency p50/p99 with N domains; and
// create+destroy+delete cycles per second. Targets (issue 2): ListDomains
// p99 <= 5 ms with 1000 domains, RSS <= 15 MiB idle and <= 40 MiB with 1000.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "xenctl/v1/domain.grpc.pb.h"
#include "xenctl/v1/operation.grpc.pb.h"

namespace v1 = xenctl::v1;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// A field of /proc/PID/status in KiB: VmRSS, RssAnon (heap, stacks), RssFile (library code).
long statusKiB(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

// Fields of /proc/PID/smaps_rollup summed, in KiB: Pss (each shared page
// divided among the processes that map it: it depends on what else runs),
// Private_Clean + Private_Dirty (the pages this process alone maps).
long rollupKiB(pid_t pid, std::initializer_list<std::string> fields) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  long sum = 0;
  while (std::getline(f, line))
    for (const auto& field : fields)
      if (line.rfind(field + ":", 0) == 0) sum += std::stol(line.substr(field.size() + 1));
  return sum;
}

struct Rss {
  double total, anon, file, pss, priv;  // MiB
};
Rss rss(pid_t pid) {
  return {statusKiB(pid, "VmRSS") / 1024.0, statusKiB(pid, "RssAnon") / 1024.0, statusKiB(pid, "RssFile") / 1024.0,
          rollupKiB(pid, {"Pss"}) / 1024.0, rollupKiB(pid, {"Private_Clean", "Private_Dirty"}) / 1024.0};
}

[[noreturn]] void die(const std::string& what, const grpc::Status& st) {
  std::fprintf(stderr, "api_bench: %s: %s\n", what.c_str(), st.error_message().c_str());
  std::exit(1);
}

class Client {
 public:
  explicit Client(const std::string& sock) {
    auto ch = grpc::CreateChannel("unix:" + sock, grpc::InsecureChannelCredentials());
    domains_ = v1::DomainService::NewStub(ch);
    ops_ = v1::OperationService::NewStub(ch);
  }
  // Runs a mutating call and waits for its operation to end.
  template <class Req, class Call>
  void run(const std::string& what, const Req& req, Call call) {
    grpc::ClientContext ctx;
    v1::Operation op;
    grpc::Status st = (domains_.get()->*call)(&ctx, req, &op);
    if (!st.ok()) die(what, st);
    grpc::ClientContext wctx;
    v1::WatchOperationRequest w;
    w.set_id(op.id());
    auto reader = ops_->WatchOperation(&wctx, w);
    while (reader->Read(&op)) {
    }
    if (op.state() != v1::OPERATION_STATE_SUCCEEDED)
      die(what, grpc::Status(grpc::StatusCode::UNKNOWN, op.status_message()));
  }
  void create(const std::string& name) {
    v1::CreateDomainRequest r;
    r.mutable_spec()->set_name(name);
    r.mutable_spec()->set_memory_mib(32);
    r.mutable_spec()->set_vcpus(1);
    run("create " + name, r, &v1::DomainService::Stub::CreateDomain);
  }
  void destroy(const std::string& name) {
    v1::DestroyDomainRequest r;
    r.set_name(name);
    run("destroy " + name, r, &v1::DomainService::Stub::DestroyDomain);
  }
  void remove(const std::string& name) {
    v1::DeleteDomainRequest r;
    r.set_name(name);
    run("delete " + name, r, &v1::DomainService::Stub::DeleteDomain);
  }
  size_t list() {
    grpc::ClientContext ctx;
    v1::ListDomainsResponse resp;
    grpc::Status st = domains_->ListDomains(&ctx, {}, &resp);
    if (!st.ok()) die("list", st);
    return resp.domains_size();
  }

 private:
  std::unique_ptr<v1::DomainService::Stub> domains_;
  std::unique_ptr<v1::OperationService::Stub> ops_;
};

struct Percentiles {
  double p50, p99, max;
};
Percentiles percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  return {at(0.50), at(0.99), v.back()};
}

}  // namespace

int main(int argc, char** argv) {
  std::string xenctld = "build/daemon/xenctld";
  int n = 1000, lists = 1000, cycles = 300;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--xenctld") xenctld = argv[i + 1];
    else if (k == "--domains") n = std::stoi(argv[i + 1]);
    else if (k == "--lists") lists = std::stoi(argv[i + 1]);
    else if (k == "--cycles") cycles = std::stoi(argv[i + 1]);
  }
  char tmpl[] = "/tmp/xenctl-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string sock = dir + "/xenctld.sock";
  pid_t pid = ::fork();
  if (pid == 0) {
    const std::string listen = "unix:" + sock, state = dir + "/state";
    ::execl(xenctld.c_str(), xenctld.c_str(), "--listen", listen.c_str(), "--state-dir", state.c_str(),
            "--hypervisor", "test", "--log-level", "warn", "--max-operations", "64", nullptr);
    std::perror("exec xenctld");
    _exit(127);
  }
  for (int i = 0; i < 500 && !std::filesystem::exists(sock); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // startup only, bounded
  Client c(sock);
  c.list();  // connects, and warms the channel
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Rss rss_idle = rss(pid);

  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) c.create(absl::StrFormat("bench%04d", i));
  const double create_s = ms(Clock::now() - t0) / 1000;
  const Rss rss_full = rss(pid);

  std::vector<double> lat;
  lat.reserve(lists);
  size_t seen = 0;
  for (int i = 0; i < lists; ++i) {
    auto a = Clock::now();
    seen = c.list();
    lat.push_back(ms(Clock::now() - a));
  }
  const Percentiles p = percentiles(lat);

  t0 = Clock::now();
  for (int i = 0; i < cycles; ++i) {
    const std::string name = absl::StrFormat("cycle%04d", i);
    c.create(name);
    c.destroy(name);
    c.remove(name);
  }
  const double cycle_s = ms(Clock::now() - t0) / 1000;
  const Rss rss_end = rss(pid);

  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::filesystem::remove_all(dir);

  std::printf("bench/api  xenctld %s, test hypervisor, Unix socket\n", xenctld.c_str());
  std::printf("  RSS idle                      %8.1f MiB   (anon %.1f, file %.1f; target <= 15 MiB: %.2fx of target)\n",
              rss_idle.total, rss_idle.anon, rss_idle.file, rss_idle.total / 15);
  std::printf("  PSS idle                      %8.1f MiB   (private %.1f)\n", rss_idle.pss, rss_idle.priv);
  std::printf("  create %d domains             %8.2f s     (%.0f creates/s)\n", n, create_s, n / create_s);
  std::printf("  RSS with %zu domains         %8.1f MiB   (anon %.1f, file %.1f; target <= 40 MiB: %.2fx of target)\n",
              seen, rss_full.total, rss_full.anon, rss_full.file, rss_full.total / 40);
  std::printf("  PSS with %zu domains         %8.1f MiB   (private %.1f)\n", seen, rss_full.pss, rss_full.priv);
  std::printf("  ListDomains (%zu domains)    p50 %.2f ms  p99 %.2f ms  max %.2f ms over %d calls "
              "(target p99 <= 5 ms: %.2fx of target)\n",
              seen, p.p50, p.p99, p.max, lists, p.p99 / 5);
  std::printf("  create+destroy+delete         %8.1f cycles/s over %d cycles\n", cycles / cycle_s, cycles);
  std::printf("  RSS at the end                %8.1f MiB   (anon %.1f, file %.1f)\n", rss_end.total, rss_end.anon,
              rss_end.file);
  std::printf("  xenctld exit status           %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return 0;
}
