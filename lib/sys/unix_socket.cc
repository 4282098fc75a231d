#include "lib/sys/unix_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <filesystem>

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

std::vector<std::pair<std::string, UniqueFd>> systemdListenSockets() {
  std::vector<std::pair<std::string, UniqueFd>> out;
  const int n = ::sd_listen_fds(/*unset_environment=*/1);
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
    if (::sd_is_socket_unix(fd, SOCK_STREAM, /*listening=*/1, nullptr, 0) <= 0) continue;
    sockaddr_un addr{};
    socklen_t len = sizeof(addr);
    std::string path = "(systemd socket)";
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && addr.sun_path[0])
      path = addr.sun_path;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    out.emplace_back(path, UniqueFd(fd));
  }
  return out;
}

absl::Duration systemdWatchdogInterval() {
  uint64_t usec = 0;
  if (::sd_watchdog_enabled(/*unset_environment=*/0, &usec) <= 0) return absl::ZeroDuration();
  return absl::Microseconds(usec) / 2;
}

void notifySystemd(const std::string& state) { ::sd_notify(0, state.c_str()); }

}  // namespace xenctl::sys
