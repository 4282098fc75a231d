#include "daemon/peers.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "lib/sys/user_groups.h"

namespace xenctl::daemon {

namespace {
// The fd of a local connection's gRPC peer string ("fd:N"), or -1.
int peerFd(const std::string& grpc_peer) {
  absl::string_view p = grpc_peer;
  int fd;
  if (!absl::ConsumePrefix(&p, "fd:") || !absl::SimpleAtoi(p, &fd)) return -1;
  return fd;
}
}  // namespace

void PeerRegistry::add(int fd, const sys::PeerCredentials& creds) {
  std::lock_guard lock(mu_);
  by_fd_[fd] = Peer{creds, std::nullopt};
}

sys::PeerCredentials PeerRegistry::lookup(const std::string& grpc_peer) const {
  sys::PeerCredentials unknown{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
  const int fd = peerFd(grpc_peer);
  std::lock_guard lock(mu_);
  auto it = by_fd_.find(fd);
  return it == by_fd_.end() ? unknown : it->second.creds;
}

std::vector<int64_t> PeerRegistry::groups(const std::string& grpc_peer, const sys::PeerCredentials& creds) const {
  const int fd = peerFd(grpc_peer);
  {
    std::lock_guard lock(mu_);
    auto it = by_fd_.find(fd);
    if (it != by_fd_.end() && it->second.groups && it->second.creds.uid == creds.uid &&
        it->second.creds.gid == creds.gid)
      return *it->second.groups;
  }
  std::vector<int64_t> groups = sys::groupsOfUser(creds.uid, creds.gid);
  std::lock_guard lock(mu_);
  auto it = by_fd_.find(fd);
  if (it != by_fd_.end() && it->second.creds.uid == creds.uid && it->second.creds.gid == creds.gid)
    it->second.groups = groups;
  return groups;
}

std::optional<core::Identity> certificateIdentity(const grpc::AuthContext& auth) {
  // gRPC fills these only from a certificate its TLS handshake verified
  // against [daemon.tls] client_ca; the subject is OpenSSL's RFC 2253 print,
  // which is RFC 4514's form.
  auto first = [&](const char* name) -> std::string {
    std::vector<grpc::string_ref> v = auth.FindPropertyValues(name);
    return v.empty() ? std::string() : std::string(v.front().data(), v.front().size());
  };
  if (first(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME) != GRPC_SSL_TRANSPORT_SECURITY_TYPE ||
      !auth.IsPeerAuthenticated())
    return std::nullopt;
  core::Identity id;
  id.kind = core::Identity::Kind::kCertificate;
  id.subject = first(GRPC_X509_SUBJECT_PROPERTY_NAME);
  for (auto [property, prefix] : {std::pair{GRPC_PEER_DNS_PROPERTY_NAME, "DNS:"},
                                  std::pair{GRPC_PEER_URI_PROPERTY_NAME, "URI:"},
                                  std::pair{GRPC_PEER_EMAIL_PROPERTY_NAME, "email:"},
                                  std::pair{GRPC_PEER_IP_PROPERTY_NAME, "IP:"}})
    for (const grpc::string_ref& v : auth.FindPropertyValues(property))
      id.sans.push_back(absl::StrCat(prefix, absl::string_view(v.data(), v.size())));
  if (id.subject.empty() && id.sans.empty()) return std::nullopt;  // nothing to name it by
  return id;
}

std::string describe(const core::Identity& identity) {
  switch (identity.kind) {
    case core::Identity::Kind::kUnix: return absl::StrCat("uid=", identity.uid, " gid=", identity.gid);
    case core::Identity::Kind::kCertificate:
      return absl::StrCat("cert=\"", identity.subject, "\"",
                          identity.sans.empty() ? "" : absl::StrCat(" sans=\"", absl::StrJoin(identity.sans, ","), "\""));
    case core::Identity::Kind::kUnknown: break;
  }
  return "identity=unknown";
}

}  // namespace xenctl::daemon
