#include "lib/sys/pid_lock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "tests/support/temp_dir.h"

namespace xenctl::sys {
namespace {

using ::testing::HasSubstr;

// A second holder of the lock (another open file, as another daemon has)
// is refused, and the refusal names the directory's owner and its pid.
TEST(PidLock, SecondHolderRefusedNamingThePid) {
  test_support::TempDir dir;
  const std::string path = dir.path() + "/xenctld.lock";
  auto first = PidLock::acquire(path, "state directory " + dir.path());
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = PidLock::acquire(path, "state directory " + dir.path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("state directory " + dir.path()));
  EXPECT_THAT(second.status().message(), HasSubstr(absl::StrCat("(pid ", ::getpid(), ")")));
}

// The lock goes with its holder: once released, the next one takes it,
// even though the file (naming the old pid) is still there.
TEST(PidLock, ReleasedWithItsHolder) {
  test_support::TempDir dir;
  const std::string path = dir.path() + "/xenctld.lock";
  {
    std::optional<PidLock> held;
    auto first = PidLock::acquire(path, "d");
    ASSERT_TRUE(first.ok()) << first.status();
    held.emplace(*std::move(first));
  }
  std::ofstream(path) << "999999\n";  // a stale pid from a holder long gone
  auto again = PidLock::acquire(path, "d");
  ASSERT_TRUE(again.ok()) << again.status();
  std::ifstream in(path);
  std::string pid;
  in >> pid;
  EXPECT_EQ(pid, absl::StrCat(::getpid()));
}

}  // namespace
}  // namespace xenctl::sys
