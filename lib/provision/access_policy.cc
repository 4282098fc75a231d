#include "lib/provision/access_policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace xenctl::provision {
namespace {

using core::Role;

// How far the origin chain of a volume is followed: clones of clones are
// rare, and a loop in broken metadata must not hang a call.
constexpr int kMaxOriginDepth = 16;

std::string describe(const Scope scope, const Target& t) {
  switch (scope) {
    case Scope::kHost: return t.name.empty() ? "the host" : absl::StrCat("'", t.name, "'");
    case Scope::kDomain: return absl::StrCat("domain '", t.name, "'");
    case Scope::kVolume: return absl::StrCat("volume '", t.pool.empty() ? "(default)" : t.pool, "/", t.name, "'");
    case Scope::kOperation: return absl::StrCat("operation ", t.name);
  }
  return t.name;
}

std::string_view rightOn(Scope scope) {
  switch (scope) {
    case Scope::kDomain: return " as its owner or a grantee (vm-access)";
    case Scope::kVolume: return " on a volume of a domain it owns or was granted";
    case Scope::kOperation: return " on an operation it started or on one of its domains";
    case Scope::kHost: break;
  }
  return "";
}

}  // namespace

AccessPolicy::AccessPolicy(std::vector<RoleBinding> bindings, DomainManager& domains, StorageManager& storage,
                           OperationRegistry& ops)
    : bindings_(std::move(bindings)), domains_(domains), storage_(storage), ops_(ops) {}

Role AccessPolicy::roleOf(const core::Identity& id) const {
  using Kind = core::Identity::Kind;
  if (id.kind == Kind::kUnix && id.uid == 0) return Role::kAdmin;
  Role best = Role::kNone;
  for (const auto& b : bindings_) {
    bool match = false;
    switch (b.kind) {
      case RoleBinding::Kind::kUid: match = id.kind == Kind::kUnix && id.uid == b.id; break;
      case RoleBinding::Kind::kGid:
        match = id.kind == Kind::kUnix &&
                (id.gid == b.id || std::find(id.groups.begin(), id.groups.end(), b.id) != id.groups.end());
        break;
      case RoleBinding::Kind::kSubject:
        match = id.kind == Kind::kCertificate &&
                (id.subject == b.subject || std::find(id.sans.begin(), id.sans.end(), b.subject) != id.sans.end());
        break;
    }
    if (match) best = std::max(best, b.role);
  }
  return best;
}

Status AccessPolicy::authorize(const Caller& caller, std::string_view method, const Rule& rule, const Target& target) {
  if (caller.role >= rule.need && reaches(caller, rule, target)) return absl::OkStatus();
  const std::string who =
      absl::StrCat(core::principal(caller.identity), " (role ", av(core::toString(caller.role)), ")");
  const std::string what = absl::StrCat(av(method), " on ", describe(rule.scope, target));
  if (caller.role < rule.need)
    return absl::PermissionDeniedError(absl::StrCat(
        "permission denied: ", who, " may not call ", what, "; it needs the ", av(core::toString(rule.need)),
        " role", av(rule.need < Role::kAdmin ? rightOn(rule.scope) : ""),
        ", which the [access] table of xenctld's configuration grants"));
  return absl::PermissionDeniedError(absl::StrCat("permission denied: ", who, " may not call ", what,
                                                  "; an operator needs the right", av(rightOn(rule.scope)),
                                                  ", or ask an admin"));
}

Status AccessPolicy::authorizeSpec(const Caller& caller, const core::DomainSpec& spec) {
  if (caller.role == Role::kAdmin) return absl::OkStatus();
  for (const auto& d : spec.disks) {
    if (!core::isVolumeTarget(d.target)) continue;
    auto ref = core::parseVolumeTarget(d.target);
    if (ref.ok() && mayUseVolume(caller, ref->pool, ref->name)) continue;
    return absl::PermissionDeniedError(absl::StrCat(
        "permission denied: ", core::principal(caller.identity), " (role ", av(core::toString(caller.role)),
        ") may not give domain '", spec.name, "' the disk ", d.target, " (", d.vdev,
        "): an operator's domains use only volumes of its own domains, their clones and snapshots"));
  }
  return absl::OkStatus();
}

Status AccessPolicy::authorizeAccessChange(const Caller& caller, const std::string& name, bool changes_owner) {
  if (caller.role == Role::kAdmin) return absl::OkStatus();
  const std::string me = core::principal(caller.identity);
  auto access = domains_.access(name);
  const bool owner = caller.role >= Role::kOperator && access.ok() && access->owner == me;
  if (owner && !changes_owner) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "permission denied: ", me, " (role ", av(core::toString(caller.role)),
      ") may not call DomainService.SetDomainAccess on domain '", name, "'; ",
      changes_owner ? "only an admin gives a domain to another owner"
                    : "its owner (an operator) or an admin grants and revokes access"));
}

bool AccessPolicy::reaches(const Caller& caller, const Rule& rule, const Target& target) {
  if (caller.role == Role::kAdmin || rule.scope == Scope::kHost) return true;
  // Below admin, a read reaches what the caller may see, a change what it may use.
  const bool read = rule.need == Role::kViewer;
  switch (rule.scope) {
    case Scope::kDomain: return read ? maySeeDomain(caller, target.name) : mayActOnDomain(caller, target.name);
    case Scope::kVolume:
      return read ? maySeeVolume(caller, target.pool, target.name) : mayUseVolume(caller, target.pool, target.name);
    case Scope::kOperation: {
      auto op = ops_.get(target.name);
      // An unknown id is the registry's NOT_FOUND to tell; it reveals nothing.
      return !op.ok() || maySeeOperation(caller, *op);
    }
    case Scope::kHost: break;
  }
  return true;
}

bool AccessPolicy::mayActOnDomain(const Caller& caller, const std::string& name) {
  if (caller.role == Role::kAdmin) return true;
  if (caller.role < Role::kOperator) return false;
  auto access = domains_.access(name);
  if (!access.ok()) return false;
  const std::string me = core::principal(caller.identity);
  return access->owner == me || std::find(access->grants.begin(), access->grants.end(), me) != access->grants.end();
}

bool AccessPolicy::maySeeDomain(const Caller& caller, const std::string& name) {
  return caller.role == Role::kViewer || caller.role == Role::kAdmin ? true : mayActOnDomain(caller, name);
}

std::vector<core::VolumeRef> AccessPolicy::usableRoots(const Caller& caller) {
  std::vector<core::VolumeRef> out;
  auto views = domains_.list(false);
  if (!views.ok()) return out;
  for (const auto& v : *views) {
    if (!mayActOnDomain(caller, v.spec.name)) continue;
    for (const auto& d : v.spec.disks) {
      if (d.mode == "r" || !core::isVolumeTarget(d.target)) continue;
      auto ref = core::parseVolumeTarget(d.target);
      if (ref.ok()) out.push_back(*std::move(ref));
    }
  }
  return out;
}

bool AccessPolicy::mayUseVolume(const Caller& caller, const std::string& pool, const std::string& name) {
  if (caller.role == Role::kAdmin) return true;
  if (caller.role < Role::kOperator) return false;
  auto vm = storage_.pool(pool);
  if (!vm.ok()) return false;
  const std::string pool_name = (*vm)->poolName();
  const std::vector<core::VolumeRef> roots = usableRoots(caller);
  std::string current = name;
  for (int depth = 0; depth < kMaxOriginDepth && !current.empty(); ++depth) {
    current = current.substr(0, current.find('@'));  // a snapshot goes with its volume
    if (std::find(roots.begin(), roots.end(), core::VolumeRef{pool_name, current}) != roots.end()) return true;
    auto vol = (*vm)->get(current);
    if (!vol.ok()) return false;
    current = vol->origin;
  }
  return false;
}

bool AccessPolicy::maySeeVolume(const Caller& caller, const std::string& pool, const std::string& name) {
  return caller.role == Role::kViewer || caller.role == Role::kAdmin ? true : mayUseVolume(caller, pool, name);
}

bool AccessPolicy::maySeeOperation(const Caller& caller, const core::OperationRecord& op) {
  if (caller.role == Role::kViewer || caller.role == Role::kAdmin) return true;
  if (caller.role < Role::kOperator) return false;
  if (caller.identity.kind == core::Identity::Kind::kUnix && caller.identity.uid >= 0 &&
      op.caller_uid == caller.identity.uid)
    return true;
  // A certificate caller has no uid: the operation it started is known by its
  // caller key (stored with it), so an operator can watch its own
  // CreateDomain before the domain (and the right on it) exists.
  if (!op.caller_key.empty() && op.caller_key == caller.key()) return true;
  if (auto slash = op.target.find('/'); slash != std::string::npos)
    return mayUseVolume(caller, op.target.substr(0, slash), op.target.substr(slash + 1));
  return mayActOnDomain(caller, op.target);
}

}  // namespace xenctl::provision
