// Who is at the other end of a call. Local connections are accepted by
// xenctld itself so that SO_PEERCRED can be read, then handed to gRPC
// (grpc::AddInsecureChannelFromFd), whose peer string for them is "fd:N".
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "lib/sys/unix_socket.h"

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

}  // namespace xenctl::daemon
