// Starting child processes: one primitive under PosixProcessRunner and
// LvmShells. clone(CLONE_VM | CLONE_VFORK) and execvpe, as posix_spawnp
// does (vfork speed), with PR_SET_PDEATHSIG(SIGKILL) in between: a child
// (mkfs, an lvm shell) dies with xenctld instead of running on after a
// crash. The clone happens on one long-lived spawner thread, because the
// death signal follows the thread that created the child, and workers or
// gRPC threads come and go. The descriptors the caller names and no others,
// a default signal mask, and the pid owned until it is reaped.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lib/core/status.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::sys {

struct SpawnOptions {
  /// argv[0] is a path or a name looked up in PATH; no shell.
  std::vector<std::string> argv = {};
  /// The whole environment, "NAME=value" each; nullopt: ours.
  std::optional<std::vector<std::string>> env = std::nullopt;
  /// {child fd, our fd}: our descriptor becomes the child's (ours stays
  /// ours; close our copy of a pipe's far end after spawn()). Of 0, 1 and
  /// 2, any not named here is /dev/null; nothing else of ours is passed
  /// (our descriptors are close-on-exec).
  std::vector<std::pair<int, int>> fds = {};
  /// A process group of its own, so that a ^C meant for a foreground
  /// xenctld does not kill the child in the middle of its work.
  bool own_process_group = false;
};

/// A started child process. It owns the pid: destroying a Child that was
/// not waited for kills it (SIGKILL) and reaps it, so none is left running
/// or a zombie.
class Child {
 public:
  Child() = default;
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  ~Child();

  /// The pid (still given after the child is reaped, for messages); -1 for none.
  pid_t pid() const { return pid_; }
  /// Readable once the child has exited (poll it beside its pipes); -1 on
  /// a kernel without pidfd_open.
  int pidfd() const { return pidfd_.get(); }
  /// Not yet reaped.
  bool running() const { return pid_ >= 0 && !reaped_; }
  /// Waits for the child to exit and reaps it: its exit status, or 128 +
  /// the signal that ended it. Returns the same again when called again.
  int wait();
  /// SIGKILL, then wait().
  int kill();

 private:
  friend Result<Child> spawn(const SpawnOptions& options);
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool reaped_ = false;
  int status_ = 0;
};

/// Starts options.argv; the child gets SIGKILL when xenctld's process
/// ends. NOT_FOUND when the program does not exist (it names it);
/// otherwise the failing step's errno as errnoStatus.
Result<Child> spawn(const SpawnOptions& options);

/// A pipe, both ends close-on-exec.
struct Pipe {
  UniqueFd read, write;
};
Result<Pipe> makePipe();

}  // namespace xenctl::sys
