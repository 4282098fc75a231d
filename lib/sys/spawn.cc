#include "lib/sys/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace xenctl::sys {

Child::Child(Child&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), pidfd_(std::move(o.pidfd_)), reaped_(o.reaped_), status_(o.status_) {}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    if (running()) kill();
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
    reaped_ = o.reaped_;
    status_ = o.status_;
  }
  return *this;
}

Child::~Child() {
  if (running()) kill();
}

int Child::wait() {
  if (pid_ < 0) return -1;
  if (!reaped_) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    reaped_ = true;
    pidfd_.reset();
  }
  return status_;
}

int Child::kill() {
  if (running()) ::kill(pid_, SIGKILL);
  return wait();
}

namespace {

// What the child does between clone and exec, prepared by the parent: the
// child shares our memory until exec (CLONE_VM | CLONE_VFORK) and calls
// only async-signal-safe functions.
struct ChildPlan {
  char* const* argv;
  char* const* envp;
  std::vector<std::pair<int, int>> dups;  // {from (above every target), to}
  bool dev_null[3];                       // 0, 1, 2 not named: /dev/null
  bool own_process_group;
  pid_t parent;
  int error = 0;  // errno of the step that failed, set by the child
};

int childMain(void* arg) {
  ChildPlan& p = *static_cast<ChildPlan*>(arg);
  // Our handlers must not run in the child while it shares our memory; the
  // spawner thread blocks every signal, so none is delivered until exec
  // (which resets handled signals to default anyway).
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa;
    if (::sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN) {
      sa.sa_handler = SIG_DFL;
      sa.sa_flags = 0;
      ::sigaction(sig, &sa, nullptr);
    }
  }
  // Dies with xenctld (the process: the spawner thread that cloned it lives
  // as long as xenctld), and not started at all when xenctld died already.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != p.parent) {
    p.error = errno ? errno : ESRCH;
    ::_exit(127);
  }
  if (p.own_process_group && ::setpgid(0, 0) != 0) {
    p.error = errno;
    ::_exit(127);
  }
  for (const auto& [from, to] : p.dups)
    if (::dup2(from, to) < 0) {
      p.error = errno;
      ::_exit(127);
    }
  for (int fd = 0; fd <= STDERR_FILENO; ++fd) {
    if (!p.dev_null[fd]) continue;
    const int n = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (n < 0 || (n != fd && ::dup2(n, fd) < 0)) {
      p.error = errno;
      ::_exit(127);
    }
    if (n != fd) ::close(n);
  }
  // The daemon blocks SIGTERM/SIGINT for sigwait; the child must not inherit that.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execvpe(p.argv[0], p.argv, p.envp);
  p.error = errno;
  ::_exit(127);
}

// The one thread that starts children. PR_SET_PDEATHSIG fires when the
// *thread* that created the child exits, not the process: children started
// from an operation's worker (or a gRPC thread) would be killed when that
// thread ends. This thread ends only with the process.
class Spawner {
 public:
  static Spawner& instance() {
    static Spawner* s = new Spawner;  // never destroyed: the thread lives to the end
    return *s;
  }
  /// Runs clone for `plan` on the spawner thread: the child's pid, or -1
  /// with errno in plan.error.
  pid_t run(ChildPlan& plan) {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [&] { return job_ == nullptr; });
    job_ = &plan;
    pid_ = -2;
    ready_.notify_all();
    done_.wait(lock, [&] { return pid_ != -2; });
    const pid_t pid = pid_;
    job_ = nullptr;
    idle_.notify_one();
    return pid;
  }

 private:
  Spawner() : stack_(kStackSize) {
    std::thread([this] { loop(); }).detach();
  }
  void loop() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, nullptr);
    std::unique_lock lock(mu_);
    for (;;) {
      ready_.wait(lock, [&] { return job_ != nullptr && pid_ == -2; });
      ChildPlan& plan = *job_;
      plan.error = 0;
      // The parent waits here until the child has exec'd or exited.
      pid_t pid = ::clone(childMain, stack_.data() + stack_.size(), CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
      if (pid < 0) {
        plan.error = errno;
      } else if (plan.error != 0) {
        int status;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        pid = -1;
      }
      pid_ = pid;
      done_.notify_all();
    }
  }
  static constexpr size_t kStackSize = 256 << 10;
  std::mutex mu_;
  std::condition_variable ready_, done_, idle_;
  ChildPlan* job_ = nullptr;
  pid_t pid_ = -2;
  std::vector<char> stack_;  // the child's, until it execs
};

}  // namespace

Result<Child> spawn(const SpawnOptions& o) {
  if (o.argv.empty()) return absl::InvalidArgumentError("no program to run");
  // A mapping's source may be another's target, or its own target (whose
  // dup2 would keep close-on-exec): move every source above all targets
  // first, so that each dup2 in the child copies.
  int top = STDERR_FILENO;
  for (const auto& [child_fd, ours] : o.fds) top = std::max(top, child_fd);
  std::vector<UniqueFd> moved;
  ChildPlan plan{};
  for (const auto& [child_fd, ours] : o.fds) {
    int from = ours;
    if (from <= top) {
      moved.emplace_back(::fcntl(ours, F_DUPFD_CLOEXEC, top + 1));
      if (!moved.back()) return errnoStatus(errno, absl::StrCat("fcntl for `", absl::StrJoin(o.argv, " "), "`"));
      from = moved.back().get();
    }
    plan.dups.emplace_back(from, child_fd);
  }
  for (int fd = 0; fd <= STDERR_FILENO; ++fd) plan.dev_null[fd] = true;
  for (const auto& [child_fd, ours] : o.fds)
    if (child_fd >= 0 && child_fd <= STDERR_FILENO) plan.dev_null[child_fd] = false;
  std::vector<char*> args;
  for (const auto& a : o.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  if (o.env) {
    for (const auto& e : *o.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  plan.argv = args.data();
  plan.envp = o.env ? envp.data() : environ;
  plan.own_process_group = o.own_process_group;
  plan.parent = ::getpid();
  const pid_t pid = Spawner::instance().run(plan);
  if (pid < 0 && plan.error == ENOENT)
    return absl::NotFoundError(absl::StrCat("program '", o.argv[0], "' not found (is it installed and on PATH?)"));
  if (pid < 0) return errnoStatus(plan.error, absl::StrCat("starting `", absl::StrJoin(o.argv, " "), "`"));
  Child c;
  c.pid_ = pid;
  // glibc 2.36 declares pidfd_open without extern "C"; the syscall is the same.
  c.pidfd_ = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  return c;
}

Result<Pipe> makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errnoStatus(errno, "pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace xenctl::sys
