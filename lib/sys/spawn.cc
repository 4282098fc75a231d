#include "lib/sys/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

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

Result<Child> spawn(const SpawnOptions& o) {
  if (o.argv.empty()) return absl::InvalidArgumentError("no program to run");
  // dup2 of a descriptor onto itself keeps its close-on-exec flag, and one
  // mapping's source may be another's target: move every source above all
  // targets first, so that each dup2 in the child copies.
  int top = STDERR_FILENO;
  for (const auto& [child_fd, ours] : o.fds) top = std::max(top, child_fd);
  std::vector<UniqueFd> moved;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  bool named[3] = {};
  for (const auto& [child_fd, ours] : o.fds) {
    int from = ours;
    if (from <= top) {
      moved.emplace_back(::fcntl(ours, F_DUPFD_CLOEXEC, top + 1));
      if (!moved.back()) {
        const int err = errno;
        posix_spawn_file_actions_destroy(&actions);
        return errnoStatus(err, absl::StrCat("fcntl for `", absl::StrJoin(o.argv, " "), "`"));
      }
      from = moved.back().get();
    }
    posix_spawn_file_actions_adddup2(&actions, from, child_fd);
    if (child_fd >= 0 && child_fd <= STDERR_FILENO) named[child_fd] = true;
  }
  for (int fd = 0; fd <= STDERR_FILENO; ++fd)
    if (!named[fd]) posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
  // The daemon blocks SIGTERM/SIGINT for sigwait; the child must not inherit that.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  short flags = POSIX_SPAWN_SETSIGMASK;
  if (o.own_process_group) {
    posix_spawnattr_setpgroup(&attr, 0);
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  posix_spawnattr_setflags(&attr, flags);

  std::vector<char*> args;
  for (const auto& a : o.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  if (o.env) {
    for (const auto& e : *o.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  pid_t pid = -1;
  const int err = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), o.env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err == ENOENT)
    return absl::NotFoundError(absl::StrCat("program '", o.argv[0], "' not found (is it installed and on PATH?)"));
  if (err != 0) return errnoStatus(err, absl::StrCat("posix_spawn for `", absl::StrJoin(o.argv, " "), "`"));
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
