#include "lib/sys/spawn.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

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

// The helper (a stand-in for xenctld) running, with the pid of the `sleep`
// it started through spawn() from a thread that has exited since.
struct Orphaned {
  Child helper;
  pid_t sleeper = -1;
  UniqueFd sleeper_fd;  // pidfd: readable once the sleeper has exited
};
Orphaned startHelper() {
  Orphaned o;
  auto out = makePipe();
  EXPECT_TRUE(out.ok());
  auto helper = spawn({.argv = {XENCTL_SPAWN_ORPHAN_HELPER}, .fds = {{STDOUT_FILENO, out->write.get()}}});
  EXPECT_TRUE(helper.ok()) << helper.status();
  o.helper = *std::move(helper);
  out->write.reset();
  char buf[32] = {};
  for (size_t got = 0; got < sizeof buf - 1;) {
    const ssize_t n = ::read(out->read.get(), buf + got, 1);
    if (n <= 0 || buf[got] == '\n') break;
    got += static_cast<size_t>(n);
  }
  o.sleeper = static_cast<pid_t>(std::atoi(buf));
  EXPECT_GT(o.sleeper, 0) << "the helper printed no pid";
  o.sleeper_fd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, o.sleeper, 0)));
  EXPECT_TRUE(o.sleeper_fd) << "pidfd_open: " << errno;
  return o;
}
bool exitsWithin(const UniqueFd& pidfd, int ms) {
  pollfd p{pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

// A child (mkfs, an lvm shell) does not outlive a killed xenctld: SIGKILL
// to the parent takes the child with it.
TEST(Spawn, ChildDiesWithKilledParent) {
  Orphaned o = startHelper();
  ASSERT_TRUE(o.sleeper_fd);
  EXPECT_FALSE(exitsWithin(o.sleeper_fd, 0));
  o.helper.kill();
  // Bounded only so that a regression fails instead of hanging: it ends at once.
  EXPECT_TRUE(exitsWithin(o.sleeper_fd, 10000)) << "sleep " << o.sleeper << " outlived its killed parent";
  if (::kill(o.sleeper, 0) == 0) ::kill(o.sleeper, SIGKILL);
}

// The death signal follows the thread that created a child: spawn() creates
// every child on one thread that lives as long as the process, so a child
// started from a worker that has since exited keeps running.
TEST(Spawn, ChildOutlivesItsThread) {
  Orphaned o = startHelper();
  ASSERT_TRUE(o.sleeper_fd);
  EXPECT_FALSE(exitsWithin(o.sleeper_fd, 300)) << "the child died with the thread that started it";
  o.helper.kill();
  EXPECT_TRUE(exitsWithin(o.sleeper_fd, 10000));
}

}  // namespace
}  // namespace xenctl::sys
