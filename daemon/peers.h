// Who is at the other end of a call. Local connections are accepted by
// xenctld itself so that SO_PEERCRED can be read, then handed to gRPC
// (grpc::AddInsecureChannelFromFd), whose peer string for them is "fd:N".
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/identity.h"
#include "lib/sys/unix_socket.h"

namespace grpc {
class AuthContext;
}

namespace xenctl::daemon {

class PeerRegistry {
 public:
  /// Records the credentials of a newly accepted connection on `fd`
  /// (replacing those of an earlier connection that had the same number).
  void add(int fd, const sys::PeerCredentials& creds);
  /// The credentials for a gRPC peer string; uid -1 for remote peers.
  sys::PeerCredentials lookup(const std::string& grpc_peer) const;
  /// The supplementary groups of a local peer's user (sys::groupsOfUser),
  /// read from the user database at the connection's first call and kept
  /// for its life, as a login session keeps them: reading /etc/group at
  /// every call cost a sixth of a small call.
  std::vector<int64_t> groups(const std::string& grpc_peer, const sys::PeerCredentials& creds) const;

 private:
  struct Peer {
    sys::PeerCredentials creds;
    std::optional<std::vector<int64_t>> groups;
  };
  mutable std::mutex mu_;
  mutable std::map<int, Peer> by_fd_;
};

/// The caller on a mutual-TLS listener: kind kCertificate with the subject of
/// the client certificate the handshake verified, in RFC 4514 form
/// ("CN=orchestrator,O=example"), and its subject alternative names as
/// "DNS:name", "URI:uri", "email:address" or "IP:address". nullopt when the
/// connection carries no verified certificate (a Unix socket, a tcp: listener
/// with insecure = true).
std::optional<core::Identity> certificateIdentity(const grpc::AuthContext& auth);

/// The identity as audit lines name it: "uid=0 gid=0", "cert=\"CN=...\"" or "unknown".
std::string describe(const core::Identity& identity);

}  // namespace xenctl::daemon
