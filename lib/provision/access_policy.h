// AccessPolicy: who may do what (issue 13). Deny by default: an identity
// has no role until the configuration binds one to its uid, one of its
// groups or its certificate subject; root (uid 0 on the Unix socket) is
// always admin. The roles, each including the ones before it:
//
//   viewer    reads the whole host: domains, volumes, pools, images,
//             operations, events, host info, consoles read-only.
//   operator  acts on the domains it owns (it created them, or an admin gave
//             them to it) or was granted by their owner or an admin, and on
//             their volumes: lifecycle, consoles, snapshots, rollbacks,
//             resizes, clones, deletion, forks, diffs; creates domains
//             (provisioned from catalog images into configured pools, on
//             volumes it may use). It sees only those domains, volumes and
//             operations: the lists are filtered and a call on another's
//             domain is PERMISSION_DENIED.
//   admin     everything, including host paths, blank volumes, image
//             sources and trust, containers, ownership.
//
// An operator may use a volume when a writable disk of a domain it may act
// on names it ("vol:POOL/NAME"), or when the volume it was cloned or
// snapshotted from is one it may use: roots of its domains, their clones,
// snapshots and forks. A golden base is never writable, so its clones are
// not all reachable through it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/core/identity.h"
#include "lib/core/operation.h"
#include "lib/core/status.h"
#include "lib/core/volume.h"
#include "lib/provision/caller.h"
#include "lib/provision/domain_manager.h"
#include "lib/provision/storage_manager.h"

namespace xenctl::provision {

using core::RoleBinding;

/// What a call reaches, which decides how its target is checked.
enum class Scope {
  kHost,       ///< no object of an operator's (lists, host info, images, new objects)
  kDomain,     ///< the domain named by the target
  kVolume,     ///< the volume (or VOLUME@SNAPSHOT) named by the target in its pool
  kOperation,  ///< the operation whose id is the target
};

/// What a call needs: at least `need`, and for an operator the right on
/// the target that `scope` names.
struct Rule {
  core::Role need = core::Role::kAdmin;
  Scope scope = Scope::kHost;
};

/// The object a call names; `pool` only for kVolume ("" = the default pool).
struct Target {
  std::string name;
  std::string pool;
};

class AccessPolicy {
 public:
  AccessPolicy(std::vector<RoleBinding> bindings, DomainManager& domains, StorageManager& storage,
               OperationRegistry& ops);

  /// The highest role bound to `id`: uid 0 on the Unix socket is admin;
  /// otherwise what the bindings give its uid, gid, supplementary groups
  /// or certificate (subject or a SAN); kNone when nothing matches.
  core::Role roleOf(const core::Identity& id) const;

  /// OK, or PERMISSION_DENIED naming the identity and its role, the method,
  /// the target and the role (and right) the call needs.
  Status authorize(const Caller& caller, std::string_view method, const Rule& rule, const Target& target);

  /// What an operator may put in a domain it creates: every "vol:" disk a
  /// volume it may use (a host path is the host-path rules' business).
  /// OK for admins; PERMISSION_DENIED naming the disk otherwise.
  Status authorizeSpec(const Caller& caller, const core::DomainSpec& spec);
  /// Who may change a domain's access: admins; its owner may grant and
  /// revoke but not give it away; a grantee may do neither.
  /// PERMISSION_DENIED saying so.
  Status authorizeAccessChange(const Caller& caller, const std::string& name, bool changes_owner);

  /// Whether `caller` may act on domain `name` as an operator: an admin
  /// always; an operator when it owns it or was granted it. Unknown and
  /// foreign domains: admins only.
  bool mayActOnDomain(const Caller& caller, const std::string& name);
  /// Whether `caller` may see domain `name` (a viewer sees every one).
  bool maySeeDomain(const Caller& caller, const std::string& name);
  /// Whether `caller` may use volume `name` (or NAME@SNAPSHOT) of `pool`
  /// ("" = the default pool) as an operator (see the top of this file).
  bool mayUseVolume(const Caller& caller, const std::string& pool, const std::string& name);
  /// A viewer sees every volume; an operator those it may use.
  bool maySeeVolume(const Caller& caller, const std::string& pool, const std::string& name);
  /// A viewer sees every operation; an operator those it started, and
  /// those on a domain or volume it may use.
  bool maySeeOperation(const Caller& caller, const core::OperationRecord& op);

 private:
  /// The writable managed volumes of the domains `caller` may act on.
  std::vector<core::VolumeRef> usableRoots(const Caller& caller);
  bool reaches(const Caller& caller, const Rule& rule, const Target& target);

  std::vector<RoleBinding> bindings_;
  DomainManager& domains_;
  StorageManager& storage_;
  OperationRegistry& ops_;
};

}  // namespace xenctl::provision
