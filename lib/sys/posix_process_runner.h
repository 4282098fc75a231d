#pragma once

#include "lib/core/process_runner.h"

namespace xenctl::sys {

/// sys::spawn, output through pipes, the deadline kept with poll(2) on the
/// pipe and a pidfd (no sleeping), SIGKILL when it passes.
class PosixProcessRunner final : public core::ProcessRunner {
 public:
  Result<core::ProcessResult> run(const std::vector<std::string>& argv, absl::Duration timeout) override;
};

}  // namespace xenctl::sys
