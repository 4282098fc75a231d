// systemd's protocols as xenctld speaks them without libsystemd: the
// sd_notify datagram, WATCHDOG_USEC, LISTEN_FDS and the journal's native
// records (one datagram, or a sealed memfd when too big).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "lib/sys/journal.h"
#include "lib/sys/unix_socket.h"
#include "tests/support/temp_dir.h"

namespace xenctl::sys {
namespace {

using test_support::TempDir;

// A datagram socket bound at `path`, for the test to receive on.
UniqueFd boundDatagram(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  return fd;
}

// One datagram: its bytes, and the content of a descriptor passed with it (if any).
std::pair<std::string, std::string> receive(int fd) {
  std::string buf(1 << 20, '\0');
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
  if (n < 0) return {"(nothing)", ""};
  buf.resize(n);
  std::string passed;
  if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) {
    int memfd = -1;
    std::memcpy(&memfd, CMSG_DATA(c), sizeof(int));
    UniqueFd owned(memfd);
    char chunk[65536];
    ssize_t r;
    while ((r = ::pread(memfd, chunk, sizeof chunk, passed.size())) > 0) passed.append(chunk, r);
  }
  return {buf, passed};
}

// notifySystemd sends the state as one datagram to NOTIFY_SOCKET, and does nothing without it.
TEST(SystemdProtocol, NotifySendsOneDatagram) {
  TempDir tmp;
  UniqueFd rx = boundDatagram(tmp.sub("notify"));
  ::setenv("NOTIFY_SOCKET", tmp.sub("notify").c_str(), 1);
  notifySystemd("READY=1");
  EXPECT_EQ(receive(rx.get()).first, "READY=1");
  ::unsetenv("NOTIFY_SOCKET");
  notifySystemd("STOPPING=1");
  EXPECT_EQ(receive(rx.get()).first, "(nothing)");
}

// The watchdog interval is half of WATCHDOG_USEC, and none when WATCHDOG_PID names another process.
TEST(SystemdProtocol, WatchdogInterval) {
  ::setenv("WATCHDOG_USEC", "20000000", 1);
  ::unsetenv("WATCHDOG_PID");
  EXPECT_EQ(systemdWatchdogInterval(), absl::Seconds(10));
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  EXPECT_EQ(systemdWatchdogInterval(), absl::Seconds(10));
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  EXPECT_EQ(systemdWatchdogInterval(), absl::ZeroDuration());
  ::unsetenv("WATCHDOG_PID");
  ::setenv("WATCHDOG_USEC", "garbage", 1);
  EXPECT_EQ(systemdWatchdogInterval(), absl::ZeroDuration());
  ::unsetenv("WATCHDOG_USEC");
  EXPECT_EQ(systemdWatchdogInterval(), absl::ZeroDuration());
}

// Socket activation: a listening Unix socket at fd 3 with LISTEN_PID = us is taken, with its path, and the
// variables are removed; with LISTEN_PID naming another process nothing is taken. Run in a child: fd 3 is moved.
TEST(SystemdProtocol, ListenFdsTakesOurListeningSocket) {
  TempDir tmp;
  const std::string path = tmp.sub("api.sock");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Result<UniqueFd> l = listenUnix(path, 0600);
    if (!l.ok() || ::dup2(l->get(), 3) != 3) _exit(10);
    ::setenv("LISTEN_PID", std::to_string(::getpid() + 1).c_str(), 1);
    ::setenv("LISTEN_FDS", "1", 1);
    if (!systemdListenSockets().empty() || std::getenv("LISTEN_FDS")) _exit(11);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "1", 1);
    auto got = systemdListenSockets();
    if (got.size() != 1 || got[0].first != path || got[0].second.get() != 3) _exit(12);
    if (std::getenv("LISTEN_PID") || std::getenv("LISTEN_FDS")) _exit(13);
    if (!(::fcntl(3, F_GETFD) & FD_CLOEXEC)) _exit(14);
    (void)got[0].second.release();
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Journal records: NAME=value lines, and a value with a newline in the binary form (size, then the bytes).
TEST(SystemdProtocol, JournalRecordEncoding) {
  const std::string r = encodeJournalRecord(6, "two\nlines", {{"XENCTL_METHOD", "CreateDomain"}});
  const std::string size("\x09\0\0\0\0\0\0\0", 8);
  EXPECT_EQ(r, "MESSAGE\n" + size + "two\nlines\nPRIORITY=6\nXENCTL_METHOD=CreateDomain\n");
}

// A record goes to the journal socket as one datagram; one too big for a datagram goes whole in a passed memfd.
TEST(SystemdProtocol, JournalSendsDatagramOrMemfd) {
  TempDir tmp;
  UniqueFd rx = boundDatagram(tmp.sub("journal"));
  ASSERT_TRUE(sendToJournalAt(tmp.sub("journal"), 5, "hello", {{"XENCTL_OP", "op-1"}}));
  EXPECT_EQ(receive(rx.get()).first, "MESSAGE=hello\nPRIORITY=5\nXENCTL_OP=op-1\n");
  const std::string big(600 * 1024, 'x');
  ASSERT_TRUE(sendToJournalAt(tmp.sub("journal"), 6, big, {}));
  auto [datagram, passed] = receive(rx.get());
  EXPECT_EQ(datagram, "");
  EXPECT_EQ(passed, "MESSAGE=" + big + "\nPRIORITY=6\n");
  EXPECT_FALSE(sendToJournalAt(tmp.sub("nobody"), 6, "lost", {}));
}

}  // namespace
}  // namespace xenctl::sys
