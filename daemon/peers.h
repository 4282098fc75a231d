// Who is at the other end of a call. Local connections are accepted by
// xenctld itself so that SO_PEERCRED can be read, then handed to gRPC
// (grpc::AddInsecureChannelFromFd), whose peer string for them is "fd:N".
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

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

 private:
  mutable std::mutex mu_;
  std::map<int, sys::PeerCredentials> by_fd_;
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
