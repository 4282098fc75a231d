// PidLock: one process's exclusive hold on a directory, through flock(2) on
// a lock file in it that also names the holder's pid. The kernel drops the
// lock when the process ends however it ends (kill -9 included), so a stale
// file never blocks a new holder; the pid in it is only for the message.
#pragma once

#include <string>

#include "lib/core/status.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::sys {

class PidLock {
 public:
  /// Takes the lock on `path` (created 0644 when absent) without waiting and
  /// writes this process's pid into it. FAILED_PRECONDITION when another
  /// open file holds it, naming `what`, the file and the holder's pid when
  /// the file names one; other errors name the file and the errno.
  static Result<PidLock> acquire(const std::string& path, const std::string& what);

  PidLock(PidLock&&) = default;
  PidLock& operator=(PidLock&&) = default;
  const std::string& path() const { return path_; }

 private:
  PidLock(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;  // held open: closing it releases the lock
};

}  // namespace xenctl::sys
