#include "lib/sys/posix_process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace xenctl::sys {
namespace {

constexpr size_t kMaxOutput = 64 * 1024;

Status errnoError(int err, std::string_view what, const std::vector<std::string>& argv) {
  return Status(absl::ErrnoToStatusCode(err),
                absl::StrCat(av(what), " for `", absl::StrJoin(argv, " "), "`: ", std::strerror(err)));
}

}  // namespace

Result<core::ProcessResult> PosixProcessRunner::run(const std::vector<std::string>& argv, absl::Duration timeout) {
  if (argv.empty()) return absl::InvalidArgumentError("no program to run");
  // Two pipes: stdout is also kept alone (machine-read output), stderr only
  // joins the combined `output`.
  int out_fds[2], err_fds[2];
  if (::pipe2(out_fds, O_CLOEXEC) != 0) return errnoError(errno, "pipe", argv);
  if (::pipe2(err_fds, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(out_fds[0]);
    ::close(out_fds[1]);
    return errnoError(err, "pipe", argv);
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fds[1], STDERR_FILENO);
  // The daemon blocks SIGTERM/SIGINT for sigwait; the child must not inherit that.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int spawn_err = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out_fds[1]);
  ::close(err_fds[1]);
  if (spawn_err != 0) {
    ::close(out_fds[0]);
    ::close(err_fds[0]);
    if (spawn_err == ENOENT)
      return absl::NotFoundError(absl::StrCat("program '", argv[0], "' not found (is it installed and on PATH?)"));
    return errnoError(spawn_err, "posix_spawn", argv);
  }
  // glibc 2.36 declares pidfd_open without extern "C"; the syscall is the same.
  const int pid_fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));

  core::ProcessResult result;
  const absl::Time deadline = absl::Now() + timeout;
  struct Stream {
    int fd;
    bool open = true;
    bool is_stdout;
  };
  Stream streams[2] = {{out_fds[0], true, true}, {err_fds[0], true, false}};
  auto drain = [&](Stream& s, bool once) {
    char buf[4096];
    for (;;) {
      ssize_t got = ::read(s.fd, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        if (got == 0 || errno != EAGAIN) s.open = false;
        return;
      }
      result.output.append(buf, static_cast<size_t>(got));
      if (result.output.size() > kMaxOutput) result.output.erase(0, result.output.size() - kMaxOutput);
      if (s.is_stdout) {
        const size_t room = core::ProcessResult::kMaxStdout - result.stdout_text.size();
        if (static_cast<size_t>(got) > room) result.stdout_truncated = true;
        result.stdout_text.append(buf, std::min(room, static_cast<size_t>(got)));
      }
      if (once) return;
    }
  };
  auto any_open = [&] { return streams[0].open || streams[1].open; };
  bool exited = false, timed_out = false;
  // Until the child exits (with a pidfd) or closes its outputs (without one).
  while (pid_fd >= 0 ? !exited : any_open()) {
    pollfd fds[3];
    Stream* of[3] = {};
    nfds_t n = 0;
    for (Stream& s : streams)
      if (s.open) {
        of[n] = &s;
        fds[n++] = {s.fd, POLLIN, 0};
      }
    if (pid_fd >= 0) fds[n++] = {pid_fd, POLLIN, 0};
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    if (::poll(fds, n, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) < 0 && errno != EINTR) break;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == pid_fd)
        exited = true;
      else
        drain(*of[i], true);
    }
  }
  // What it wrote just before exiting; a grandchild keeping a pipe open must not hold us.
  if (!timed_out)
    for (Stream& s : streams)
      if (s.open) {
        ::fcntl(s.fd, F_SETFL, O_NONBLOCK);
        drain(s, false);
      }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  for (Stream& s : streams) ::close(s.fd);
  if (pid_fd >= 0) ::close(pid_fd);
  if (timed_out)
    return absl::DeadlineExceededError(absl::StrCat("`", absl::StrJoin(argv, " "), "` ran longer than ",
                                                    absl::FormatDuration(timeout), " and was killed"));
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace xenctl::sys
