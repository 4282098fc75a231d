#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "lib/core/identity.h"

namespace xenctl::provision {

/// Who asks, and the idempotency key of the request.
struct Caller {
  Caller() = default;
  Caller(std::string id, int64_t u) : request_id(std::move(id)), uid(u) {}

  std::string request_id;
  /// What the request asks, as a digest of its method and fields other than
  /// request_id (hex; "" when unknown, then a repeat is compared by the
  /// operation's kind and target): a request_id reused for another request
  /// is refused.
  std::string request_digest;
  int64_t uid = -1;
  core::Identity identity;
  /// What the daemon's authorization granted this caller. Managers consult
  /// it only for what they alone can see, such as whether a host path named
  /// inside a request may be used (admins only, or under allowed paths).
  core::Role role = core::Role::kNone;

  /// Who this caller is for per-caller limits (operations running, streams
  /// open): "cert:SUBJECT" for a certificate (its first SAN when the subject
  /// is empty), else "uid:UID".
  std::string key() const {
    if (identity.kind == core::Identity::Kind::kCertificate)
      return "cert:" + (identity.subject.empty() && !identity.sans.empty() ? identity.sans.front() : identity.subject);
    return "uid:" + std::to_string(uid);
  }
};

/// The principal recorded as the owner of what `caller` creates:
/// core::principal of its identity, "uid:N" for a caller known only by its
/// uid (tests, older paths), "" when neither is known.
inline std::string ownerOf(const Caller& caller) {
  if (caller.identity.kind != core::Identity::Kind::kUnknown) return core::principal(caller.identity);
  return caller.uid >= 0 ? "uid:" + std::to_string(caller.uid) : std::string();
}

}  // namespace xenctl::provision
