#include "lib/sys/posix_process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/sys/spawn.h"

namespace xenctl::sys {
namespace {

constexpr size_t kMaxOutput = 64 * 1024;

// Reads a child's stdout and stderr into a ProcessResult: both into the
// combined `output` (its last 64 KiB), stdout also alone.
class OutputReader {
 public:
  OutputReader(UniqueFd out, UniqueFd err, core::ProcessResult& result)
      : streams_{{std::move(out), true, true}, {std::move(err), true, false}}, result_(result) {}

  /// Reads until the child exits (seen on `pidfd`) or, without a pidfd,
  /// until it closes its outputs. False when `deadline` passes first.
  bool readUntilExit(int pidfd, absl::Time deadline) {
    bool exited = false;
    while (pidfd >= 0 ? !exited : anyOpen()) {
      pollfd fds[3];
      Stream* of[3] = {};
      nfds_t n = 0;
      for (Stream& s : streams_)
        if (s.open) {
          of[n] = &s;
          fds[n++] = {s.fd.get(), POLLIN, 0};
        }
      if (pidfd >= 0) fds[n++] = {pidfd, POLLIN, 0};
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      if (::poll(fds, n, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) < 0 && errno != EINTR) break;
      for (nfds_t i = 0; i < n; ++i) {
        if (fds[i].revents == 0) continue;
        if (fds[i].fd == pidfd)
          exited = true;
        else
          drain(*of[i], true);
      }
    }
    return true;
  }

  /// What the child wrote just before exiting, without waiting: a
  /// grandchild keeping a pipe open must not hold us.
  void drainRest() {
    for (Stream& s : streams_)
      if (s.open) {
        ::fcntl(s.fd.get(), F_SETFL, O_NONBLOCK);
        drain(s, false);
      }
  }

 private:
  struct Stream {
    UniqueFd fd;
    bool open;
    bool is_stdout;
  };

  bool anyOpen() const { return streams_[0].open || streams_[1].open; }

  void drain(Stream& s, bool once) {
    char buf[4096];
    for (;;) {
      ssize_t got = ::read(s.fd.get(), buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        if (got == 0 || errno != EAGAIN) s.open = false;
        return;
      }
      keep(s, buf, static_cast<size_t>(got));
      if (once) return;
    }
  }

  void keep(const Stream& s, const char* buf, size_t got) {
    result_.output.append(buf, got);
    if (result_.output.size() > kMaxOutput) result_.output.erase(0, result_.output.size() - kMaxOutput);
    if (!s.is_stdout) return;
    const size_t room = core::ProcessResult::kMaxStdout - result_.stdout_text.size();
    if (got > room) result_.stdout_truncated = true;
    result_.stdout_text.append(buf, std::min(room, got));
  }

  Stream streams_[2];
  core::ProcessResult& result_;
};

}  // namespace

Result<core::ProcessResult> PosixProcessRunner::run(const std::vector<std::string>& argv, absl::Duration timeout) {
  if (argv.empty()) return absl::InvalidArgumentError("no program to run");
  // Two pipes: stdout is also kept alone (machine-read output), stderr only
  // joins the combined `output`.
  const std::string what = absl::StrCat("running `", absl::StrJoin(argv, " "), "`");
  auto out = makePipe();
  if (!out.ok()) return annotate(out.status(), what);
  auto err = makePipe();
  if (!err.ok()) return annotate(err.status(), what);
  XENCTL_ASSIGN_OR_RETURN(Child child,
                          spawn({.argv = argv, .fds = {{STDOUT_FILENO, out->write.get()}, {STDERR_FILENO, err->write.get()}}}));
  out->write.reset();
  err->write.reset();

  core::ProcessResult result;
  OutputReader reader(std::move(out->read), std::move(err->read), result);
  if (!reader.readUntilExit(child.pidfd(), absl::Now() + timeout)) {
    child.kill();
    return absl::DeadlineExceededError(absl::StrCat("`", absl::StrJoin(argv, " "), "` ran longer than ",
                                                    absl::FormatDuration(timeout), " and was killed"));
  }
  reader.drainRest();
  result.exit_code = child.wait();
  return result;
}

}  // namespace xenctl::sys
