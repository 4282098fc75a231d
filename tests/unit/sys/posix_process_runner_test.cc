#include "lib/sys/posix_process_runner.h"

#include <gtest/gtest.h>

namespace xenctl::sys {
namespace {

// Output (stdout and stderr) and the exit code come back; a failing exit is a result.
TEST(PosixProcessRunner, OutputAndExitCode) {
  PosixProcessRunner r;
  auto ok = r.run({"sh", "-c", "echo out; echo err >&2; exit 3"}, absl::Seconds(20));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->exit_code, 3);
  EXPECT_EQ(ok->output, "out\nerr\n");
}

// stdout comes back alone too, whole (beyond the 64 KiB kept of the mix), so a
// warning on stderr never corrupts machine-read output.
TEST(PosixProcessRunner, StdoutAlone) {
  PosixProcessRunner r;
  auto res = r.run({"sh", "-c", "echo '{\"a\":'; head -c 200000 /dev/zero | tr '\\0' x; echo; echo WARNING >&2; echo '1}'"},
                   absl::Seconds(20));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->stdout_text.size(), 6u + 200000u + 1u + 3u);
  EXPECT_EQ(res->stdout_text.substr(0, 7), "{\"a\":\nx");
  EXPECT_EQ(res->stdout_text.substr(res->stdout_text.size() - 5), "x\n1}\n");
  EXPECT_FALSE(res->stdout_truncated);
  EXPECT_NE(res->output.find("WARNING"), std::string::npos);
  EXPECT_EQ(res->stdout_text.find("WARNING"), std::string::npos);
}

// A missing program is NOT_FOUND and says which.
TEST(PosixProcessRunner, MissingProgram) {
  PosixProcessRunner r;
  auto res = r.run({"xenctl-no-such-program"}, absl::Seconds(5));
  EXPECT_EQ(res.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(res.status().message().find("xenctl-no-such-program"), std::string::npos);
}

// A program past its deadline is killed and the call says DEADLINE_EXCEEDED.
TEST(PosixProcessRunner, Timeout) {
  PosixProcessRunner r;
  const absl::Time start = absl::Now();
  auto res = r.run({"sleep", "30"}, absl::Milliseconds(200));
  EXPECT_EQ(res.status().code(), absl::StatusCode::kDeadlineExceeded) << res.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// A child that leaves a background process holding the pipe still returns when it exits.
TEST(PosixProcessRunner, BackgroundGrandchildDoesNotHold) {
  PosixProcessRunner r;
  const absl::Time start = absl::Now();
  auto res = r.run({"sh", "-c", "sleep 5 & echo done"}, absl::Seconds(20));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->output, "done\n");
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
}

}  // namespace
}  // namespace xenctl::sys
