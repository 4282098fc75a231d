#include "daemon/peers.h"

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"

namespace xenctl::daemon {

void PeerRegistry::add(int fd, const sys::PeerCredentials& creds) {
  std::lock_guard lock(mu_);
  by_fd_[fd] = creds;
}

sys::PeerCredentials PeerRegistry::lookup(const std::string& grpc_peer) const {
  sys::PeerCredentials unknown{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
  absl::string_view p = grpc_peer;
  int fd;
  if (!absl::ConsumePrefix(&p, "fd:") || !absl::SimpleAtoi(p, &fd)) return unknown;
  std::lock_guard lock(mu_);
  auto it = by_fd_.find(fd);
  return it == by_fd_.end() ? unknown : it->second;
}

}  // namespace xenctl::daemon
