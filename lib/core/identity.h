// Who calls xenctld, and what the daemon's authorization lets it do. The
// daemon fills these from the connection (SO_PEERCRED on the Unix socket, the
// client certificate on a TLS listener); lib/ only reads them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"

namespace xenctl::core {

struct Identity {
  enum class Kind { kUnknown, kUnix, kCertificate };
  Kind kind = Kind::kUnknown;
  /// kUnix: the peer's credentials; supplementary groups as resolved by the daemon.
  int64_t uid = -1;
  int64_t gid = -1;
  std::vector<int64_t> groups;
  /// kCertificate: the verified client certificate's subject (RFC 4514 form,
  /// e.g. "CN=orchestrator,O=example") and subject alternative names.
  std::string subject;
  std::vector<std::string> sans;
};

/// Ordered: each role may do what the ones before it may, on what it may
/// reach. A viewer reads the whole host; an operator reads and acts on the
/// domains it owns or was granted, and their volumes (see
/// provision::AccessPolicy); an admin reaches everything.
enum class Role { kNone, kViewer, kOperator, kAdmin };

/// One binding of a role to identities (the configuration's [access]
/// table, names resolved to ids).
struct RoleBinding {
  enum class Kind { kUid, kGid, kSubject };
  Kind kind = Kind::kUid;
  int64_t id = -1;      ///< kUid, kGid
  std::string subject;  ///< kSubject: a certificate's subject or one of its SANs, exactly
  Role role = Role::kNone;
};

/// "none", "viewer", "operator", "admin".
std::string_view toString(Role r);
/// INVALID_ARGUMENT naming the roles for anything else.
Result<Role> parseRole(std::string_view s);

/// The one string that names an identity in the store (a domain's owner, a
/// grant) and in logs: "uid:1000" or "cert:CN=orchestrator,O=example";
/// "unknown" for an identity the daemon could not establish.
std::string principal(const Identity& id);

/// Checks a principal given by a person or a client ("uid:N" with N >= 0,
/// or "cert:SUBJECT" with a non-empty subject); INVALID_ARGUMENT naming it
/// and the accepted forms otherwise.
Status validatePrincipal(std::string_view p);

}  // namespace xenctl::core
