// What the benchmarks under bench/ share: the real xenctld (test
// hypervisor) started on a temporary Unix socket, a client of its API that
// waits for each operation, percentiles and /proc figures. Prints nothing
// itself; a failed call ends the benchmark with its message.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "xenctl/v1/domain.grpc.pb.h"
#include "xenctl/v1/operation.grpc.pb.h"

namespace xenctl::bench {

namespace v1 = xenctl::v1;
using Clock = std::chrono::steady_clock;

inline double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

/// The daemons a benchmark started and has not stopped: die() stops them too.
inline std::vector<pid_t>& children() {
  static std::vector<pid_t> pids;
  return pids;
}

[[noreturn]] inline void die(const std::string& what, const std::string& why) {
  std::fprintf(stderr, "bench: %s: %s\n", what.c_str(), why.c_str());
  for (pid_t pid : children()) ::kill(pid, SIGTERM);
  std::exit(1);
}
[[noreturn]] inline void die(const std::string& what, const grpc::Status& st) { die(what, st.error_message()); }

/// A field of /proc/PID/status as a number: VmRSS, RssAnon, RssFile (KiB), Threads.
inline long procStatus(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

struct Percentiles {
  double p50, p99, max;
};
inline Percentiles percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  return {at(0.50), at(0.99), v.back()};
}

/// `call` run `calls` times, each timed (ms).
template <class Call>
std::vector<double> timeCalls(int calls, Call call) {
  std::vector<double> lat;
  lat.reserve(calls);
  for (int i = 0; i < calls; ++i) {
    auto a = Clock::now();
    call();
    lat.push_back(ms(Clock::now() - a));
  }
  return lat;
}

/// xenctld on a temporary directory's socket with the test hypervisor,
/// stopped (SIGTERM) and its directory removed when this goes.
class XenctldProcess {
 public:
  /// `config` (TOML) is written to the directory and passed with --config when not empty.
  XenctldProcess(const std::string& binary, const std::string& config = "",
                 const std::vector<std::string>& extra_args = {}) {
    char tmpl[] = "/tmp/xenctl-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) die("mkdtemp", std::strerror(errno));
    dir_ = tmpl;
    sock_ = dir_ + "/xenctld.sock";
    std::vector<std::string> args = {binary,         "--listen",   "unix:" + sock_, "--state-dir", dir_ + "/state",
                                     "--hypervisor", "test",       "--log-level",   "warn",        "--max-operations",
                                     "64"};
    if (!config.empty()) {
      std::ofstream(dir_ + "/xenctld.toml") << config;
      args.insert(args.end(), {"--config", dir_ + "/xenctld.toml"});
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::setenv("LD_BIND_NOW", "1", 1);  // as xenctld.service runs it
      ::execv(binary.c_str(), argv.data());
      std::perror("exec xenctld");
      _exit(127);
    }
    children().push_back(pid_);
    // The socket file appears at bind(), before listen(): wait for a connection to be taken.
    for (int i = 0; i < 500 && !accepting(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // startup only, bounded
    if (!accepting()) die("starting " + binary, "no listening socket after 5 s");
  }
  ~XenctldProcess() {
    if (pid_ > 0) stop();
    std::filesystem::remove_all(dir_);
  }
  /// SIGTERM and wait (SIGKILL after 20 s); its exit status (-1 when killed by a signal).
  int stop() {
    std::erase(children(), pid_);
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 2000 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // bounded
    if (::waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  /// True once a connection to the socket is taken.
  bool accepting() const {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_.c_str());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
  }
  pid_t pid() const { return pid_; }
  const std::string& socket() const { return sock_; }
  std::string address() const { return "unix:" + sock_; }

 private:
  std::string dir_, sock_;
  pid_t pid_ = -1;
};

/// A channel of its own (not shared with other channels to the same
/// address), as another client process would have.
inline std::shared_ptr<grpc::Channel> ownChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

/// The calls the benchmarks make; a mutation waits for its operation's end.
class ApiClient {
 public:
  explicit ApiClient(const std::string& address) : ApiClient(ownChannel(address)) {}
  explicit ApiClient(std::shared_ptr<grpc::Channel> ch)
      : domains_(v1::DomainService::NewStub(ch)), ops_(v1::OperationService::NewStub(ch)) {}

  template <class Req, class Call>
  void run(const std::string& what, const Req& req, Call call) {
    grpc::ClientContext ctx;
    v1::Operation op;
    grpc::Status st = (domains_.get()->*call)(&ctx, req, &op);
    if (!st.ok()) die(what, st);
    // As vm-* wait: WaitOperation answers once the operation has finished
    // (no call at all when the reply came finished).
    while (op.state() != v1::OPERATION_STATE_SUCCEEDED && op.state() != v1::OPERATION_STATE_FAILED &&
           op.state() != v1::OPERATION_STATE_CANCELLED) {
      grpc::ClientContext wctx;
      v1::WaitOperationRequest w;
      w.set_id(op.id());
      st = ops_->WaitOperation(&wctx, w, &op);
      if (!st.ok()) die(what, st);
    }
    if (op.state() != v1::OPERATION_STATE_SUCCEEDED) die(what, op.status_message());
  }
  void create(const std::string& name, bool define_only = false) {
    v1::CreateDomainRequest r;
    r.mutable_spec()->set_name(name);
    r.mutable_spec()->set_memory_mib(32);
    r.mutable_spec()->set_vcpus(1);
    r.set_define_only(define_only);
    run("create " + name, r, &v1::DomainService::Stub::CreateDomain);
  }
  void start(const std::string& name) {
    v1::StartDomainRequest r;
    r.set_name(name);
    run("start " + name, r, &v1::DomainService::Stub::StartDomain);
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
  /// Domains listed (every page).
  size_t list() {
    size_t n = 0;
    v1::ListDomainsRequest req;
    do {
      grpc::ClientContext ctx;
      v1::ListDomainsResponse resp;
      grpc::Status st = domains_->ListDomains(&ctx, req, &resp);
      if (!st.ok()) die("list", st);
      n += resp.domains_size();
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
    return n;
  }
  /// `calls` ListDomains, each timed (ms).
  std::vector<double> timeLists(int calls) {
    return timeCalls(calls, [this] { list(); });
  }

 private:
  std::unique_ptr<v1::DomainService::Stub> domains_;
  std::unique_ptr<v1::OperationService::Stub> ops_;
};

}  // namespace xenctl::bench
