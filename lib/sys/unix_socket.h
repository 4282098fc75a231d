// Unix-socket helpers for the daemon's local listener: an owned fd, a
// listening socket that refuses to steal a live daemon's path, and the
// peer's credentials (SO_PEERCRED).
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

#include "lib/core/status.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::sys {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

/// Binds and listens on a Unix stream socket at `path` with permissions
/// `mode`, creating the parent directory. A stale socket file (nobody
/// accepting) is replaced; a live one is ALREADY_EXISTS, so a second daemon
/// never steals the first one's socket.
Result<UniqueFd> listenUnix(const std::string& path, mode_t mode);

/// The credentials of the process at the other end of a connected Unix socket.
Result<PeerCredentials> peerCredentials(int fd);

/// Listening sockets passed by systemd socket activation (LISTEN_FDS),
/// with their paths; empty when not socket-activated.
std::vector<std::pair<std::string, UniqueFd>> systemdListenSockets();

/// Half of systemd's watchdog interval (WATCHDOG_USEC), or zero when no
/// watchdog is asked for.
absl::Duration systemdWatchdogInterval();

/// Tells systemd about the daemon's state ("READY=1", "STOPPING=1"); does
/// nothing when not started by systemd (no NOTIFY_SOCKET).
void notifySystemd(const std::string& state);

/// Sends one datagram made of `iov` to the AF_UNIX datagram socket at
/// `path` (a leading '@': the abstract namespace), passing `fd` with it
/// (SCM_RIGHTS) when >= 0. errno statuses naming the path.
Status sendUnixDatagram(const std::string& path, const std::vector<iovec>& iov, int fd = -1);

}  // namespace xenctl::sys
