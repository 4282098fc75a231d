// The ProcessRunner port: runs an external tool (mkfs.ext4, resize2fs, the
// lvm2 tools) with a deadline. Real: sys::PosixProcessRunner. Test: FakeProcessRunner.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lib/core/status.h"

namespace xenctl::core {

struct ProcessResult {
  int exit_code = 0;   ///< the exit status, or 128 + signal when killed by one
  std::string output;  ///< stdout and stderr together, the last 64 KiB (for messages)
  /// stdout alone and whole, for machine-read output (lvm2's JSON reports)
  /// that a warning on stderr must not corrupt; up to kMaxStdout bytes.
  std::string stdout_text;
  bool stdout_truncated = false;  ///< stdout was longer than kMaxStdout
  static constexpr size_t kMaxStdout = size_t{32} << 20;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  /// Runs argv[0] (a path, or a name looked up in PATH) with `argv`: no
  /// shell, stdin from /dev/null. A non-zero exit is a result, not an error.
  /// NOT_FOUND when the program does not exist; DEADLINE_EXCEEDED (after
  /// killing it) when it runs longer than `timeout`.
  virtual Result<ProcessResult> run(const std::vector<std::string>& argv, absl::Duration timeout) = 0;
};

}  // namespace xenctl::core
