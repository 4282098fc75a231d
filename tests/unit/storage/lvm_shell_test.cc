#include "lib/storage/lvm_shell.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <future>
#include <nlohmann/json.hpp>

#include "lib/storage/lvm.h"

namespace xenctl::storage {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string kFake = XENCTL_FAKE_LVM_SHELL;

bool haveLvm() { return ::system("command -v lvm >/dev/null 2>&1") == 0; }

TEST(LvmShellLine, QuotesWhatTheShellWouldSplit) {
  EXPECT_EQ(*lvmShellLine({"lvs", "-o", "lv_name,lv_size", "vg0"}), "lvs -o lv_name,lv_size vg0");
  EXPECT_EQ(*lvmShellLine({"lvs", "--config", "report {time_format=\"%s\"}"}), "lvs --config 'report {time_format=\"%s\"}'");
  // A quote mark counts only at the start of a word.
  EXPECT_EQ(*lvmShellLine({"lvcreate", "--addtag", "it's"}), "lvcreate --addtag it's");
  EXPECT_EQ(*lvmShellLine({"lvcreate", "--addtag", "'x y'"}), "lvcreate --addtag \"'x y'\"");
  EXPECT_EQ(*lvmShellLine({"lvs", "#vg", ""}), "lvs '#vg' ''");
  EXPECT_EQ(lvmShellLine({"lvs", "a'b\"c d"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(lvmShellLine({"lvs", "vg0\nlvremove -y vg0/x"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(lvmShellLine({}).status().code(), absl::StatusCode::kInvalidArgument);
}

// One shell answers command after command; the words arrive as given.
TEST(LvmShells, KeepsOneShellWarm) {
  LvmShells shells({.lvm = kFake});
  const std::vector<std::string> argv = {"lvs", "--config", "report {time_format=\"%s\"}", "vg0"};
  auto first = shells.run(argv, absl::Seconds(20));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->exit_code, 0);
  json doc = json::parse(first->stdout_text);
  EXPECT_EQ(doc["report"][0]["words"], json(argv));
  for (int i = 0; i < 3; ++i) {
    auto again = shells.run({"lvs", "vg0"}, absl::Seconds(20));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(json::parse(again->stdout_text)["pid"], doc["pid"]);
  }
  EXPECT_EQ(shells.started(), 1u);
}

// A failure's code is lvm2's, and its messages come from `lastlog`.
TEST(LvmShells, FailureCarriesTheLastLog) {
  LvmShells shells({.lvm = kFake});
  auto r = shells.run({"fail"}, absl::Seconds(20));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 5);
  EXPECT_THAT(r->output, HasSubstr("Volume group \"vg9\" not found"));
  EXPECT_EQ(statusFromLvm({"fail"}, r->exit_code, r->output).code(), absl::StatusCode::kNotFound);
}

// A command past its deadline kills its shell; the next call starts another.
TEST(LvmShells, DeadlineKillsTheShellAndTheNextCallStartsAnother) {
  LvmShells shells({.lvm = kFake});
  auto hung = shells.run({"hang"}, absl::Milliseconds(300));
  EXPECT_EQ(hung.status().code(), absl::StatusCode::kDeadlineExceeded) << hung.status();
  EXPECT_THAT(std::string(hung.status().message()), HasSubstr("`hang`"));
  auto next = shells.run({"lvs"}, absl::Seconds(20));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->exit_code, 0);
  EXPECT_EQ(shells.started(), 2u);
}

TEST(LvmShells, ADeadShellIsReplaced) {
  LvmShells shells({.lvm = kFake});
  auto died = shells.run({"die"}, absl::Seconds(20));
  EXPECT_EQ(died.status().code(), absl::StatusCode::kUnavailable) << died.status();
  EXPECT_THAT(std::string(died.status().message()), HasSubstr("dying as asked"));
  // Killed from outside between two commands.
  auto ok = shells.run({"lvs"}, absl::Seconds(20));
  ASSERT_TRUE(ok.ok()) << ok.status();
  ::kill(json::parse(ok->stdout_text)["pid"].get<int>(), SIGKILL);
  ::usleep(100 * 1000);  // for the kernel to close its end
  auto after = shells.run({"lvs"}, absl::Seconds(20));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(shells.started(), 3u);
}

TEST(LvmShells, AnswerWithoutALogIsAnError) {
  LvmShells shells({.lvm = kFake});
  auto r = shells.run({"nolog"}, absl::Seconds(20));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal) << r.status();
}

// Commands in flight together get shells of their own, up to max_shells.
TEST(LvmShells, RunsUpToMaxShellsAtOnce) {
  LvmShells shells({.lvm = kFake, .max_shells = 2});
  // Two hanging commands hold both shells until their deadline; a third
  // waits for one of them and then runs in a fresh shell.
  auto a = std::async(std::launch::async, [&] { return shells.run({"hang"}, absl::Seconds(1)); });
  auto b = std::async(std::launch::async, [&] { return shells.run({"hang"}, absl::Seconds(1)); });
  auto ahung = a.get(), bhung = b.get();
  EXPECT_EQ(ahung.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(bhung.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(shells.started(), 2u);
  auto c = shells.run({"lvs"}, absl::Seconds(20));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(shells.started(), 3u);
}

TEST(LvmShells, MissingProgramIsNotFound) {
  LvmShells shells({.lvm = "/nonexistent/lvm"});
  EXPECT_EQ(shells.run({"lvs"}, absl::Seconds(5)).status().code(), absl::StatusCode::kNotFound);
}

// The real lvm2 shell (no device-mapper needed for these): a report of a
// missing VG fails with LVM's own message; an empty report parses.
TEST(LvmShells, RealLvm) {
  if (!haveLvm()) GTEST_SKIP() << "lvm2 is not installed (scripts/install-deps)";
  LvmShells shells;
  auto missing = shells.run(lvsCommand("xenctl-test-no-such-vg"), absl::Seconds(60));
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(missing->exit_code, 5);
  EXPECT_THAT(missing->output, HasSubstr("Volume group \"xenctl-test-no-such-vg\" not found"));
  EXPECT_EQ(statusFromLvm({"lvs"}, missing->exit_code, missing->output).code(), absl::StatusCode::kNotFound);

  auto version = shells.run({"version"}, absl::Seconds(60));
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->exit_code, 0) << version->output;
  EXPECT_EQ(shells.started(), 1u);
}

}  // namespace
}  // namespace xenctl::storage
