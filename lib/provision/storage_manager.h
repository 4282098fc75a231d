// StorageManager: the use cases on volumes, over one VolumeManager per
// configured pool. Every change runs as an operation (target "POOL/NAME"):
// a retry with the same request_id gets the same operation, the checks that
// can be made at once fail the call, the rest fails the operation.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/volume.h"
#include "lib/provision/caller.h"
#include "lib/provision/operation_registry.h"
#include "lib/provision/volume_usage.h"

namespace xenctl::provision {

class StorageManager {
 public:
  /// `pools` in configuration order; the first is the default for requests
  /// that name no pool. Names must be unique (checked by the caller).
  /// `usage` (which DomainManager keeps) says which volumes running or
  /// starting domains use: those are not deleted, rolled back or resized,
  /// and list() fills Volume::used_by from it.
  StorageManager(std::vector<std::unique_ptr<core::VolumeManager>> pools, OperationRegistry& ops,
                 VolumeUsage& usage);

  struct CreateRequest {
    std::string pool;  ///< "" = the default pool
    std::string name;
    uint64_t size_bytes = 0;
    std::optional<std::string> ext4_label;
  };
  Result<core::OperationRecord> create(const CreateRequest& req, const Caller& caller);
  /// `size_bytes` 0: the source's size.
  Result<core::OperationRecord> clone(const std::string& pool, const std::string& source, const std::string& name,
                                      uint64_t size_bytes, const Caller& caller);
  Result<core::OperationRecord> snapshot(const std::string& pool, const std::string& volume,
                                         const std::string& snapshot, const Caller& caller);
  /// FAILED_PRECONDITION while a running domain uses the volume.
  Result<core::OperationRecord> rollback(const std::string& pool, const std::string& volume,
                                         const std::string& snapshot, const Caller& caller);
  /// Grows the volume and its file system (offline): FAILED_PRECONDITION
  /// while a running domain uses it.
  Result<core::OperationRecord> resize(const std::string& pool, const std::string& name, uint64_t size_bytes,
                                       const Caller& caller);
  /// FAILED_PRECONDITION while a running domain uses the volume, or while
  /// it has snapshots or clones.
  Result<core::OperationRecord> remove(const std::string& pool, const std::string& name, const Caller& caller);

  // The work of the operations above, done at once in the calling thread
  // and starting no operation: for steps of a larger operation (another
  // manager's, a provisioning saga) that must not start one of their own.
  // They make the checks that protect state (a volume in use, the
  // backend's own); the request checks of the methods above are the caller's.

  /// Deletes the volume or snapshot: FAILED_PRECONDITION while a running
  /// domain uses it or while it has dependents; NOT_FOUND for an unknown
  /// pool or volume.
  Status removeNow(const std::string& pool, const std::string& name);
  /// A writable clone of `source` (a volume or "VOL@SNAP") named `name`, of
  /// `size_bytes` (0: the source's), as VolumeManager::clone; `progress`
  /// hears of the copy and may stop it (CANCELLED, nothing left behind).
  Result<core::Volume> cloneNow(const std::string& pool, const std::string& source, const std::string& name,
                                uint64_t size_bytes, const core::CopyProgress& progress = {});
  /// Grows the volume and its file system: FAILED_PRECONDITION while a
  /// running domain uses it, else as VolumeManager::resize.
  Result<core::Volume> resizeNow(const std::string& pool, const std::string& name, uint64_t size_bytes);

  /// The volume as a block device in Dom0 (VolumeManager::attachToHost),
  /// done at once (no operation: it is quick and idempotent); the volume
  /// as it is then, host_device set.
  Result<core::Volume> attach(const std::string& pool, const std::string& name);
  /// VolumeManager::detachFromHost, at once.
  Status detach(const std::string& pool, const std::string& name);

  /// Every pool's volumes ("" = all pools), by pool then name. NOT_FOUND for an unknown pool.
  Result<std::vector<core::Volume>> list(const std::string& pool);
  Result<std::vector<core::PoolInfo>> pools();

  /// NOT_FOUND naming the configured pools when there is no such pool.
  Result<core::VolumeManager*> pool(const std::string& name);

  // Golden image bases, which ImageManager registers (from the catalog at
  // start, and as it imports and deletes images). Such a volume is deleted,
  // resized and rolled back only through the image calls (ImageManager
  // works on the pool itself): every method above refuses it with
  // FAILED_PRECONDITION naming the image and `vm-image delete`. Its
  // backend's read-only mark keeps it from being attached writable.

  /// `pool`/`volume` is the base volume of `image` from now on.
  void protectImageBase(const std::string& pool, const std::string& volume, const std::string& image);
  void unprotectImageBase(const std::string& pool, const std::string& volume);
  /// The image whose base `pool`/`volume` is, if any.
  std::optional<std::string> imageOf(const std::string& pool, const std::string& volume) const;

  /// FAILED_PRECONDITION "STEP: ..." when a running or starting domain of
  /// ours uses the volume, or when a Xen domain is served its Dom0 block
  /// device (Volume::host_device_domids: a domain xenctld does not manage,
  /// such as a Ganeti instance on the device AttachVolume gave), naming it.
  Status requireUnused(const std::string& pool, const std::string& volume, std::string_view step);

 private:
  Status requireNotImageBase(const std::string& pool, const std::string& volume, std::string_view step) const;

  std::vector<std::unique_ptr<core::VolumeManager>> pools_;
  OperationRegistry& ops_;
  VolumeUsage& usage_;
  mutable std::mutex images_mu_;
  std::map<std::string, std::string> image_bases_;  // "POOL/VOLUME" -> image
};

}  // namespace xenctl::provision
