#include "lib/core/identity.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace xenctl::core {

std::string_view toString(Role r) {
  switch (r) {
    case Role::kNone: return "none";
    case Role::kViewer: return "viewer";
    case Role::kOperator: return "operator";
    case Role::kAdmin: return "admin";
  }
  return "none";
}

Result<Role> parseRole(std::string_view s) {
  for (Role r : {Role::kNone, Role::kViewer, Role::kOperator, Role::kAdmin})
    if (s == toString(r)) return r;
  return absl::InvalidArgumentError(
      absl::StrCat("role '", av(s), "' is unknown; the roles are viewer, operator and admin"));
}

std::string principal(const Identity& id) {
  switch (id.kind) {
    case Identity::Kind::kUnix: return absl::StrCat("uid:", id.uid);
    case Identity::Kind::kCertificate: return absl::StrCat("cert:", id.subject);
    case Identity::Kind::kUnknown: break;
  }
  return "unknown";
}

Status validatePrincipal(std::string_view p) {
  int64_t uid;
  const absl::string_view a = av(p);
  if (absl::StartsWith(a, "uid:") && a.size() > 4 && absl::SimpleAtoi(a.substr(4), &uid) &&
      a.substr(4).find_first_not_of("0123456789") == absl::string_view::npos)
    return absl::OkStatus();
  if (absl::StartsWith(a, "cert:") && a.size() > 5) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("identity '", a,
                                                 "' is not one xenctld knows; write uid:NUMBER for a Unix user or "
                                                 "cert:SUBJECT for a client certificate (\"cert:CN=ci,O=example\")"));
}

}  // namespace xenctl::core
