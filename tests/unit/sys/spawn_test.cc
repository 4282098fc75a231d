#include "lib/sys/spawn.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace xenctl::sys {
namespace {

std::string readAll(UniqueFd fd) {
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The child gets the descriptors named (any number, not only 0..2), the
// environment given, and /dev/null for the standard ones not named.
TEST(Spawn, DescriptorsAndEnvironment) {
  auto report = makePipe();
  ASSERT_TRUE(report.ok()) << report.status();
  auto child = spawn({.argv = {"sh", "-c", "read x; echo \"$XENCTL_T${x}\" >&3"},
                      .env = std::vector<std::string>{"XENCTL_T=given", "PATH=/usr/bin:/bin"},
                      .fds = {{3, report->write.get()}}});
  ASSERT_TRUE(child.ok()) << child.status();
  report->write.reset();
  EXPECT_EQ(readAll(std::move(report->read)), "given\n");
  EXPECT_EQ(child->wait(), 0);
  EXPECT_EQ(child->wait(), 0);  // reaped once, answered again
}

// The exit status comes back; a missing program is NOT_FOUND and names it.
TEST(Spawn, ExitStatusAndMissingProgram) {
  auto child = spawn({.argv = {"sh", "-c", "exit 7"}});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(child->wait(), 7);
  auto missing = spawn({.argv = {"xenctl-no-such-program"}});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("xenctl-no-such-program"), std::string::npos);
  EXPECT_EQ(spawn({}).status().code(), absl::StatusCode::kInvalidArgument);
}

// A Child dropped while running is killed and reaped: no process, no zombie.
TEST(Spawn, DroppedChildIsKilledAndReaped) {
  pid_t pid = -1;
  {
    auto in = makePipe();
    ASSERT_TRUE(in.ok());
    auto child = spawn({.argv = {"cat"}, .fds = {{STDIN_FILENO, in->read.get()}}});  // waits on our pipe forever
    ASSERT_TRUE(child.ok()) << child.status();
    pid = child->pid();
    EXPECT_TRUE(child->running());
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

// kill() ends a running child; its status says the signal.
TEST(Spawn, KillReportsTheSignal) {
  auto in = makePipe();
  ASSERT_TRUE(in.ok());
  auto child = spawn({.argv = {"cat"}, .fds = {{STDIN_FILENO, in->read.get()}}});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(child->kill(), 128 + SIGKILL);
  EXPECT_FALSE(child->running());
}

}  // namespace
}  // namespace xenctl::sys
