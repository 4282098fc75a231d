#include "lib/sys/pid_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace xenctl::sys {

Result<PidLock> PidLock::acquire(const std::string& path, const std::string& what) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd)
    return absl::FailedPreconditionError(
        absl::StrCat("locking ", what, ": opening ", path, ": ", std::strerror(errno), "; check its permissions"));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK)
      return absl::FailedPreconditionError(absl::StrCat("locking ", what, ": flock ", path, ": ", std::strerror(err)));
    char buf[32] = {};
    const ssize_t n = ::pread(fd.get(), buf, sizeof(buf) - 1, 0);
    int64_t pid = 0;
    const bool known = n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(std::string(buf, static_cast<size_t>(n))), &pid) && pid > 0;
    return absl::FailedPreconditionError(absl::StrCat(
        what, " is in use by another process", known ? absl::StrCat(" (pid ", pid, ")") : std::string(),
        " holding ", path, "; stop it first, or give this one a directory of its own"));
  }
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    return absl::FailedPreconditionError(
        absl::StrCat("locking ", what, ": writing the pid into ", path, ": ", std::strerror(errno)));
  return PidLock(path, std::move(fd));
}

}  // namespace xenctl::sys
