// DomainForker: `vm-fork SRC NEW` (the paper's §4 "fork" of a customized
// tree): a new domain made from a stopped domain's volumes, with a new
// identity. It runs as one operation, a saga of the Provisioner's kind
// (runSaga): clone each writable volume → reset the identity on the root →
// define (and start). Each step records what its undo needs; a failure or a
// cancel undoes the completed steps in reverse, leaving no clone and no
// definition behind.
//
// The managers do not call one another: the forker calls DomainManager
// (get, createNow, removeNow) and StorageManager (cloneNow, removeNow)
// inside its one operation.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lib/core/domain.h"
#include "lib/provision/caller.h"
#include "lib/provision/domain_manager.h"
#include "lib/provision/operation_registry.h"
#include "lib/provision/provisioner.h"
#include "lib/provision/storage_manager.h"

namespace xenctl::provision {

struct ForkRequest {
  std::string source;  ///< SRC: a defined domain of ours, not running
  std::string name;    ///< NEW: a free domain name
  /// Written into the fork's root (/etc/hostname, /etc/hosts); empty: the
  /// source's hostname is kept.
  std::optional<std::string> hostname;
  bool define_only = false;
  bool paused = false;
};

class DomainForker {
 public:
  /// Applies customizations (here: the identity reset and a hostname) to
  /// the file system on a device offline. Real: customize::Customizer.
  using Customize = Provisioner::Customize;

  /// `customize` may be empty: every fork is then refused (UNIMPLEMENTED),
  /// since a fork without a new identity would be a second copy of SRC.
  DomainForker(DomainManager& domains, StorageManager& storage, OperationRegistry& ops, Customize customize);

  /// Checked at once, nothing made: SRC is one of ours (NOT_FOUND) and not
  /// present in the hypervisor (FAILED_PRECONDITION naming it: stop it
  /// first), NEW is free (ALREADY_EXISTS), SRC has a writable vol: disk,
  /// every writable disk names a managed volume that exists and each clone's
  /// name is free. Then one operation (kind "fork-domain", target NEW) with
  /// the phases clone (one per writable volume), customize, define, start
  /// (unless define_only).
  ///
  /// What NEW gets: SRC's spec with a new uuid, new MACs (derived from the
  /// uuid) and no vif ip (SRC's addresses would clash); each writable vol:
  /// disk replaced by a clone of its volume in the same pool, named by
  /// cloneName(); read-only disks shared as they are; a writable host-path
  /// disk is refused (xenctld cannot clone it). The root (the first cloned
  /// disk) gets a new identity (customize::Customizer's reset_identity:
  /// machine-id, SSH host keys, random seed) and the hostname when given.
  /// While NEW exists, SRC's cloned volumes have dependents and cannot be
  /// deleted.
  Result<core::OperationRecord> fork(ForkRequest req, const Caller& caller);

  /// The clone of `disk` for domain `fork`: "NEW-root" for the root (as
  /// Provisioner::rootVolumeName), else "NEW-VDEV" ("web2-xvdb").
  static std::string cloneName(const std::string& fork, const core::DiskSpec& disk, bool root);

 private:
  struct Plan;
  Status prepare(Plan& plan);
  std::vector<SagaStep> steps(const std::shared_ptr<Plan>& plan);
  /// FAILED_PRECONDITION when `name` is present in the hypervisor.
  Status requireStopped(const std::string& name);

  DomainManager& domains_;
  StorageManager& storage_;
  OperationRegistry& ops_;
  Customize customize_;
};

}  // namespace xenctl::provision
