#include "lib/sys/console_pty.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <termios.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace xenctl::sys {

namespace {

int pollMs(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d) + 1, 60'000));
}

}  // namespace

Result<PtyPair> openPtyPair() {
  UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  if (!master || ::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0)
    return errnoStatus(errno, "cannot open a pseudo-terminal");
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof(name)) != 0)
    return errnoStatus(errno, "ptsname");
  // Raw from the start, as xenconsoled makes its ptys: what the guest side
  // writes before anyone attaches is kept as written (no \r to \n).
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  termios t;
  if (!slave || ::tcgetattr(slave.get(), &t) != 0)
    return errnoStatus(errno, absl::StrCat("opening ", name));
  ::cfmakeraw(&t);
  if (::tcsetattr(slave.get(), TCSANOW, &t) != 0)
    return errnoStatus(errno, absl::StrCat("tcsetattr ", name));
  return PtyPair{std::move(master), name};
}

Result<ConsolePty> ConsolePty::open(const std::string& path, const std::string& what) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  if (!fd)
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the console of ", what, " (", path, "): ", std::strerror(errno)));
  termios t;
  if (::tcgetattr(fd.get(), &t) == 0) {
    ::cfmakeraw(&t);
    (void)::tcsetattr(fd.get(), TCSANOW, &t);
  }
  return ConsolePty(std::move(fd), what);
}

Result<std::string> ConsolePty::read(absl::Duration timeout) {
  pollfd p{fd_.get(), POLLIN, 0};
  int n = ::poll(&p, 1, pollMs(timeout));
  if (n < 0 && errno != EINTR) return errnoStatus(errno, "poll on the console");
  if (n <= 0) return std::string();
  std::string out(4096, '\0');
  ssize_t got = ::read(fd_.get(), out.data(), out.size());
  if (got > 0) {
    out.resize(static_cast<size_t>(got));
    return out;
  }
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return std::string();
  // EIO (or EOF) on a pty slave: the master end is closed, the guest gone.
  return absl::OutOfRangeError(absl::StrCat("the console of ", what_, " closed (the domain is gone)"));
}

Status ConsolePty::write(std::string_view data, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!data.empty()) {
    ssize_t put = ::write(fd_.get(), data.data(), data.size());
    if (put > 0) {
      data.remove_prefix(static_cast<size_t>(put));
      continue;
    }
    if (put < 0 && errno == EINTR) continue;
    if (put < 0 && errno != EAGAIN)
      return absl::OutOfRangeError(absl::StrCat("the console of ", what_, " closed (the domain is gone)"));
    pollfd p{fd_.get(), POLLOUT, 0};
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || ::poll(&p, 1, pollMs(left)) == 0)
      return absl::DeadlineExceededError(
          absl::StrCat("the console of ", what_, " takes no input (", data.size(), " bytes left unsent)"));
  }
  return absl::OkStatus();
}

Result<size_t> ConsolePty::writeSome(std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t put = ::write(fd_.get(), data.data() + done, data.size() - done);
    if (put > 0) {
      done += static_cast<size_t>(put);
      continue;
    }
    if (put < 0 && errno == EINTR) continue;
    if (put < 0 && errno == EAGAIN) break;
    return absl::OutOfRangeError(absl::StrCat("the console of ", what_, " closed (the domain is gone)"));
  }
  return done;
}

}  // namespace xenctl::sys
