// Guest consoles as Dom0 sees them: a pseudo-terminal whose master side the
// console daemon holds (xenconsoled for Xen, the test hypervisor for its
// domains) and whose slave side, named in xenstore's console/tty, a console
// client opens. ConsolePty is that client side; openPtyPair makes the other
// side for the test hypervisor.
#pragma once

#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "lib/core/status.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::sys {

/// A new pseudo-terminal: the master end (the guest's side, as xenconsoled
/// holds it) and the path of the slave end for ConsolePty::open.
struct PtyPair {
  UniqueFd master;
  std::string slave_path;
};
Result<PtyPair> openPtyPair();

/// One attached console: the slave end of a guest's pty in raw mode (no
/// echo, no line editing, bytes through unchanged, as `xl console` sets it).
/// Reading and writing may happen from two threads at once.
class ConsolePty {
 public:
  /// FAILED_PRECONDITION naming `what` when the path cannot be opened.
  static Result<ConsolePty> open(const std::string& path, const std::string& what);

  /// What the guest wrote, waiting up to `timeout` for the first byte: ""
  /// when nothing came. OUT_OF_RANGE once the console has closed (the
  /// domain is gone: the master end was closed).
  Result<std::string> read(absl::Duration timeout);
  /// Writes all of `data`, waiting up to `timeout` in total for the guest
  /// side to take it. DEADLINE_EXCEEDED when it does not; OUT_OF_RANGE when
  /// the console has closed.
  Status write(std::string_view data, absl::Duration timeout);
  /// Writes what the guest side takes now, without waiting: the bytes
  /// taken (0 when it is full). OUT_OF_RANGE when the console has closed.
  Result<size_t> writeSome(std::string_view data);
  /// The descriptor, for an FdPoller: read(ZeroDuration()) and writeSome()
  /// do not block.
  int fd() const { return fd_.get(); }

 private:
  ConsolePty(UniqueFd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}
  UniqueFd fd_;
  std::string what_;
};

}  // namespace xenctl::sys
