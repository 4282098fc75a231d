#include "lib/sys/unix_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace xenctl::sys {

namespace {

Result<sockaddr_un> unixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return absl::InvalidArgumentError(absl::StrCat("socket path '", path, "' is empty or longer than ",
                                                   sizeof(addr.sun_path) - 1, " bytes; choose a shorter one"));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Result<UniqueFd> listenUnix(const std::string& path, mode_t mode) {
  XENCTL_ASSIGN_OR_RETURN(sockaddr_un addr, unixAddress(path));
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("creating ", parent.string(), ": ", ec.message()));

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return errnoStatus(errno, "socket(AF_UNIX)");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EADDRINUSE) return errnoStatus(errno, absl::StrCat("binding ", path));
    // Is somebody accepting on it? If not, it is a leftover from a crash.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
      return absl::AlreadyExistsError(
          absl::StrCat("another daemon is listening on ", path, "; stop it or choose another --listen path"));
    ::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      return errnoStatus(errno, absl::StrCat("binding ", path));
  }
  if (::chmod(path.c_str(), mode) != 0) return errnoStatus(errno, absl::StrCat("chmod ", path));
  if (::listen(fd.get(), 128) != 0) return errnoStatus(errno, absl::StrCat("listening on ", path));
  return fd;
}

Result<PeerCredentials> peerCredentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return errnoStatus(errno, "getsockopt(SO_PEERCRED)");
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

// systemd's interfaces below are its documented, stable protocols (the
// environment of sd_listen_fds(3) and sd_watchdog_enabled(3), the datagram
// of sd_notify(3)), spoken directly rather than through libsystemd, which
// would map libsystemd, libgcrypt, libgpg-error and libcap into the daemon
// for a few datagrams (issue 17 part 5).

namespace {

// SD_LISTEN_FDS_START: the first descriptor systemd passes.
constexpr int kListenFdsStart = 3;

bool isListeningUnixStream(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  int type = 0, listening = 0;
  socklen_t len = sizeof(int);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return false;
  len = sizeof(int);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) return false;
  sockaddr_storage addr{};
  len = sizeof(addr);
  return ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && addr.ss_family == AF_UNIX;
}

}  // namespace

std::vector<std::pair<std::string, UniqueFd>> systemdListenSockets() {
  std::vector<std::pair<std::string, UniqueFd>> out;
  // LISTEN_PID names the process the descriptors are for; the variables are
  // removed so that children do not take them for their own.
  const char* pid_env = std::getenv("LISTEN_PID");
  const char* fds_env = std::getenv("LISTEN_FDS");
  int64_t pid = 0, n = 0;
  const bool ours = pid_env && fds_env && absl::SimpleAtoi(pid_env, &pid) && pid == ::getpid() &&
                    absl::SimpleAtoi(fds_env, &n) && n > 0;
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (!ours) return out;
  for (int fd = kListenFdsStart; fd < kListenFdsStart + n; ++fd) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (!isListeningUnixStream(fd)) continue;
    sockaddr_un addr{};
    socklen_t len = sizeof(addr);
    std::string path = "(systemd socket)";
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && addr.sun_path[0])
      path = addr.sun_path;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    out.emplace_back(path, UniqueFd(fd));
  }
  return out;
}

absl::Duration systemdWatchdogInterval() {
  const char* usec_env = std::getenv("WATCHDOG_USEC");
  uint64_t usec = 0;
  if (!usec_env || !absl::SimpleAtoi(usec_env, &usec) || usec == 0) return absl::ZeroDuration();
  // WATCHDOG_PID, when set, names the process the watchdog is for.
  if (const char* pid_env = std::getenv("WATCHDOG_PID")) {
    int64_t pid = 0;
    if (!absl::SimpleAtoi(pid_env, &pid) || pid != ::getpid()) return absl::ZeroDuration();
  }
  return absl::Microseconds(usec) / 2;
}

Status sendUnixDatagram(const std::string& path, const std::vector<iovec>& iov, int fd) {
  const std::string what = absl::StrCat("sending a datagram to ", path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || (path[0] != '/' && path[0] != '@') || path.size() >= sizeof(addr.sun_path))
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an absolute path or an abstract '@' name"));
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  UniqueFd sock(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return errnoStatus(errno, what);
  msghdr msg{};
  msg.msg_name = &addr;
  msg.msg_namelen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  msg.msg_iov = const_cast<iovec*>(iov.data());
  msg.msg_iovlen = iov.size();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  if (::sendmsg(sock.get(), &msg, MSG_NOSIGNAL) < 0) return errnoStatus(errno, what);
  return absl::OkStatus();
}

void notifySystemd(const std::string& state) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (!socket || !*socket) return;
  iovec iov{const_cast<char*>(state.data()), state.size()};
  // Best effort, as sd_notify: systemd may be gone while we stop.
  (void)sendUnixDatagram(socket, {iov});
}

}  // namespace xenctl::sys
