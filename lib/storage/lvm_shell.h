// LvmShells: runs lvm2 commands in long-lived `lvm` shells instead of one
// process per command, the way lvm2's own D-Bus daemon (lvmdbusd) drives
// LVM. Every lvm2 tool is the one `lvm` binary; started with no arguments and
// its stdin not a terminal it reads command lines, runs each exactly as the
// tool would, and stays. What a command costs beyond LVM's own work — exec,
// dynamic linking, reading lvm.conf, udev setup — is paid once per shell.
// Measured in the lab (docs/lab.md): a report 0.40 s as a tool, 0.08 s warm.
//
// The protocol (lvm2 2.03, as lvmdbusd uses it):
//   - the environment names a report fd (LVM_REPORT_FD=3) and a command
//     profile (LVM_COMMAND_PROFILE=lvmdbusd, shipped with lvm2 in
//     /etc/lvm/profile: JSON output, units of bytes, times as epoch seconds,
//     and the command log report on);
//   - a command line goes to stdin; its answer is one JSON document on the
//     report fd: the report (when the command reports) and a "log" array
//     whose last "shell" status entry carries the command's return code
//     (1 is success, lvm2's ECMD_PROCESSED);
//   - after a failure, the shell's `lastlog` command answers with the failed
//     command's whole log: its error messages.
//
// Each shell runs one command at a time; up to `max_shells` run at once (the
// LVM pools' own locks decide what may run in parallel). A shell that dies,
// answers with something that is not the protocol, or overruns a command's
// deadline is killed and replaced on the next call, so a stuck or crashed
// LVM costs one command, never the daemon.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/core/process_runner.h"

namespace xenctl::storage {

/// The line the shell reads for `argv`: arguments joined by spaces, one in
/// quotes when it has spaces or starts with '#' (the shell's own splitting:
/// an argument is bare or wholly in '...' or "...", without escapes).
/// INVALID_ARGUMENT for an argument holding a newline, or both quote marks.
Result<std::string> lvmShellLine(const std::vector<std::string>& argv);

struct LvmShellOptions {
  std::string lvm = "lvm";         ///< the binary, a path or a name looked up in PATH
  std::string profile = "lvmdbusd";
  size_t max_shells = 4;
};

/// A ProcessRunner for lvm2 commands (argv[0] is the tool: "lvs",
/// "lvcreate" ...). A result's exit_code is 0 on success, else lvm2's return
/// code (5 for a failed command, 3 for a bad command line); stdout_text is
/// the command's JSON document; output holds its error messages. Thread-safe.
class LvmShells final : public core::ProcessRunner {
 public:
  explicit LvmShells(LvmShellOptions options = {});
  ~LvmShells() override;

  Result<core::ProcessResult> run(const std::vector<std::string>& argv, absl::Duration timeout) override;

  /// Shells started so far (a replaced shell counts again).
  size_t started() const;

  class Shell;

 private:
  Result<std::unique_ptr<Shell>> take();
  void give(std::unique_ptr<Shell> shell);

  const LvmShellOptions opt_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Shell>> idle_;
  size_t busy_ = 0, started_ = 0;
};

}  // namespace xenctl::storage
