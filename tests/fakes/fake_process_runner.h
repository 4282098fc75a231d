#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "lib/core/process_runner.h"

namespace xenctl::fakes {

/// A ProcessRunner that runs nothing: it records every command line and
/// answers from what the test queued per program (argv[0]), else exit 0 with
/// no output. Enough to replay recorded lvm2 reports.
class FakeProcessRunner final : public core::ProcessRunner {
 public:
  Result<core::ProcessResult> run(const std::vector<std::string>& argv, absl::Duration timeout) override {
    std::lock_guard lock(mu_);
    calls_.push_back(argv);
    timeouts_.push_back(timeout);
    auto& q = queued_[argv.empty() ? "" : argv[0]];
    if (q.empty()) {
      auto d = defaults_.find(argv.empty() ? "" : argv[0]);
      return d == defaults_.end() ? core::ProcessResult{} : d->second;
    }
    auto r = q.front();
    q.pop_front();
    return r;
  }

  /// The next run of `program` prints `out` on stdout and exits `exit_code`.
  void queue(const std::string& program, std::string out, int exit_code = 0) {
    std::lock_guard lock(mu_);
    queued_[program].push_back(result(std::move(out), exit_code));
  }
  /// What `program` answers when nothing is queued for it.
  void setDefault(const std::string& program, std::string out, int exit_code = 0) {
    std::lock_guard lock(mu_);
    defaults_[program] = result(std::move(out), exit_code);
  }
  /// Every command line run, space-joined, in order.
  std::vector<std::string> commands() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& c : calls_) out.push_back(absl::StrJoin(c, " "));
    return out;
  }
  /// The command lines of `program` only.
  std::vector<std::string> commandsOf(const std::string& program) const {
    std::vector<std::string> out;
    for (const auto& c : commands())
      if (c.rfind(program + " ", 0) == 0) out.push_back(c);
    return out;
  }
  std::vector<absl::Duration> timeouts() const {
    std::lock_guard lock(mu_);
    return timeouts_;
  }

 private:
  static core::ProcessResult result(std::string out, int exit_code) {
    core::ProcessResult r;
    r.exit_code = exit_code;
    r.output = out;
    r.stdout_text = exit_code == 0 ? std::move(out) : "";
    return r;
  }

  mutable std::mutex mu_;
  std::vector<std::vector<std::string>> calls_;
  std::vector<absl::Duration> timeouts_;
  std::map<std::string, std::deque<core::ProcessResult>> queued_;
  std::map<std::string, core::ProcessResult> defaults_;
};

}  // namespace xenctl::fakes
