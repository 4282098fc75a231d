// VolumeCustomizer: CustomizeVolume, the provisioning customizations
// (core::Customizations: hostname, files, SSH keys, users, static addresses,
// a cloud-init seed, the identity reset by default) applied to an existing
// volume as its own operation. It is what a cluster manager's OS hook calls
// on a disk it made itself (docs/ganeti.md): the same Customizer as
// CreateDomain's customize phase, on a volume no running domain uses.
#pragma once

#include <string>

#include "lib/core/customization.h"
#include "lib/provision/caller.h"
#include "lib/provision/operation_registry.h"
#include "lib/provision/provisioner.h"
#include "lib/provision/storage_manager.h"

namespace xenctl::provision {

class VolumeCustomizer {
 public:
  /// Applies customizations to the file system on a device or image file
  /// offline. Real: customize::Customizer::applyToDevice.
  using Customize = Provisioner::Customize;

  /// `customize` may be empty: every request is then refused (UNIMPLEMENTED).
  VolumeCustomizer(StorageManager& storage, OperationRegistry& ops, Customize customize);

  struct Request {
    std::string pool;  ///< "" = the default pool
    std::string name;
    /// Applied as they are; an empty instance_id gets a new uuid, an empty
    /// domain_name names the volume ("POOL/NAME") in errors.
    core::Customizations customizations;
  };

  /// Checked at once, nothing changed: the volume exists (NOT_FOUND), is
  /// writable and not an image's base volume (FAILED_PRECONDITION:
  /// StorageManager::imageOf; golden volumes and snapshots are read-only), no domain uses it
  /// (FAILED_PRECONDITION naming it: one of ours running, or any Xen domain
  /// served its Dom0 device; StorageManager::requireUnused), there is
  /// something to change and every interface has a MAC and an address with a
  /// prefix length (INVALID_ARGUMENT). Then
  /// one operation (kind "customize-volume", target "POOL/NAME", phase
  /// "customize") that checks the use again and applies the customizations
  /// through the volume's Dom0 block device when it is attached (what Dom0
  /// reads from it stays coherent), else its path. The Customizer plans
  /// every change before its first write, so a bad request changes nothing.
  Result<core::OperationRecord> customize(Request req, const Caller& caller);

 private:
  StorageManager& storage_;
  OperationRegistry& ops_;
  Customize customize_;
};

}  // namespace xenctl::provision
