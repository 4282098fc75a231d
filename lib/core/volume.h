// The VolumeManager port: one storage pool's copy-on-write volumes.
// Real: storage::DirVolumes (files; reflink clones on btrfs/xfs),
// storage::LvmThinVolumes (thin snapshots), storage::LvmSnapshotVolumes
// (classic LVM COW snapshots).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "lib/core/status.h"

namespace xenctl::core {

/// A volume or a snapshot in a pool. A snapshot's name is "VOLUME@SNAPSHOT".
struct Volume {
  std::string pool;
  std::string name;
  uint64_t size_bytes = 0;
  uint64_t used_bytes = 0;             ///< space allocated to it (thin / sparse)
  std::string origin;                  ///< the volume it was cloned or snapshotted from; "" for a base
  bool read_only = false;              ///< snapshots, and golden volumes marked so
  std::vector<std::string> snapshots;  ///< snapshot names (the part after '@'), sorted
  std::string path;                    ///< host path of the backing file or device
  absl::Time created_at = absl::UnixEpoch();
  std::string used_by;                 ///< the running domain using it ("": none); StorageManager::list fills it
  std::string host_device;             ///< its block device in Dom0 after attachToHost ("": none)
  /// The Xen domains Dom0's block backend serves host_device to (any
  /// domain, ours or not: a cluster manager's guest), by domid.
  std::vector<int64_t> host_device_domids;
};

struct PoolInfo {
  std::string name;
  std::string driver;  ///< "dir", "lvm-thin", "lvm-snapshot"
  std::string path;    ///< directory, or VG/pool
  uint64_t size_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t allocated_bytes = 0;  ///< sum of the volumes' sizes (may exceed size: over-commit)
  double metadata_percent = 0;   ///< thin pools only
  size_t volumes = 0;            ///< volumes and snapshots
};

/// What keeps a volume or a snapshot from being deleted. The one answer to
/// "does it have snapshots or clones": the backends' remove(), and the
/// managers' checks before they start work, all read it.
struct VolumeDependents {
  std::vector<std::string> snapshots;  ///< its snapshots' names (the part after '@'), sorted
  std::vector<std::string> clones;     ///< the volumes cloned from it, sorted
  bool empty() const { return snapshots.empty() && clones.empty(); }
};
/// OK when `d` is empty; else FAILED_PRECONDITION, "STEP: it has snapshots
/// (...); delete them first" or "STEP: volumes were cloned from it (...);
/// delete them first".
Status requireNoDependents(const VolumeDependents& d, std::string_view step);

/// The step of VolumeManager::setReadOnly on `name` ("marking WHO read-only"),
/// or FAILED_PRECONDITION for a snapshot ("VOL@SNAP"), which is always read-only.
Result<std::string> readOnlyMarkStep(std::string_view who, std::string_view name, bool read_only);

/// Told how far a long copy has come; returns false to stop it (the call
/// then returns CANCELLED and leaves nothing behind).
using CopyProgress = std::function<bool(uint64_t bytes_done, uint64_t bytes_total)>;

/// Volume and snapshot names follow the domain name rule,
/// [a-z0-9][a-z0-9-_.]{0,62}. INVALID_ARGUMENT otherwise, naming `what`.
Status validateVolumeName(std::string_view name, std::string_view what = "volume");
/// "web1@before-upgrade".
std::string snapshotName(std::string_view volume, std::string_view snapshot);
/// Sizes are whole 512-byte sectors, at least one MiB. INVALID_ARGUMENT otherwise.
Status validateVolumeSize(uint64_t size_bytes);
inline constexpr uint64_t kMinVolumeBytes = uint64_t{1} << 20;
inline constexpr uint64_t kMaxVolumeBytes = uint64_t{1} << 60;  // 1 EiB

/// A managed volume as a disk or an export names it: "vol:POOL/NAME", where
/// NAME is a volume or a snapshot ("VOLUME@SNAPSHOT").
struct VolumeRef {
  std::string pool;
  std::string name;
  /// "vol:POOL/NAME".
  std::string target() const;
  bool operator==(const VolumeRef&) const = default;
};
/// True when `target` starts with "vol:" (it names a volume, not a host path).
bool isVolumeTarget(std::string_view target);
/// The volume "vol:POOL/NAME" names. INVALID_ARGUMENT when `target` is not
/// of that form or a name breaks the naming rule.
Result<VolumeRef> parseVolumeTarget(std::string_view target);

/// One pool's volumes. Every method is thread-safe. Failures leave nothing
/// behind: no half-made volume, no temporary file. Common codes:
/// INVALID_ARGUMENT for a bad name or size; NOT_FOUND for a missing volume
/// or snapshot; ALREADY_EXISTS for a taken name; FAILED_PRECONDITION when the
/// object is in the wrong state or busy with another call; RESOURCE_EXHAUSTED
/// when the pool lacks the space, with the numbers.
class VolumeManager {
 public:
  virtual ~VolumeManager() = default;

  virtual const std::string& poolName() const = 0;
  virtual std::string_view driver() const = 0;

  /// A new zero-filled volume of `size_bytes`; with `ext4_label`, formatted
  /// ext4 with that label (may be ""). UNIMPLEMENTED when the backend cannot format.
  virtual Result<Volume> create(const std::string& name, uint64_t size_bytes,
                                const std::optional<std::string>& ext4_label) = 0;
  /// A writable copy-on-write clone of `base` (a volume or "VOL@SNAP"),
  /// grown to `size_bytes` when that is larger than the base (0: the base's
  /// size). INVALID_ARGUMENT when `size_bytes` is below the base's size.
  /// Writes to the clone never show in the base, nor the reverse.
  virtual Result<Volume> clone(const std::string& base, const std::string& name, uint64_t size_bytes,
                               const CopyProgress& progress) = 0;
  /// A read-only point-in-time copy of `volume`, named "VOLUME@SNAPSHOT".
  /// FAILED_PRECONDITION when `volume` is itself a snapshot.
  virtual Result<Volume> snapshot(const std::string& volume, const std::string& snapshot,
                                  const CopyProgress& progress) = 0;
  /// Reverts `volume` to the content (and size) of its snapshot. Atomic: at
  /// every moment the volume's path holds either its old content or the
  /// snapshot's, never nothing and never a mix. The snapshot is kept.
  /// FAILED_PRECONDITION for a read-only volume.
  virtual Result<Volume> rollback(const std::string& volume, const std::string& snapshot,
                                  const CopyProgress& progress) = 0;
  /// Grows the volume to `size_bytes`, and an ext4 file system filling it
  /// where the backend can (DirVolumes with a ProcessRunner).
  /// INVALID_ARGUMENT when it would shrink; FAILED_PRECONDITION when read-only.
  virtual Result<Volume> resize(const std::string& name, uint64_t size_bytes) = 0;
  /// Deletes a volume or a snapshot. FAILED_PRECONDITION while it has
  /// dependents (requireNoDependents names them).
  virtual Status remove(const std::string& name) = 0;
  /// What keeps `name` (a volume or "VOL@SNAP") from being deleted: its
  /// snapshots and the volumes cloned from it. NOT_FOUND when there is no
  /// such volume or snapshot.
  virtual Result<VolumeDependents> dependents(const std::string& name) = 0;
  /// Marks a volume read-only, or writable again: a read-only volume is not
  /// resized nor rolled back (FAILED_PRECONDITION) and DomainManager
  /// attaches it only with mode r; it is still cloned (writable clones),
  /// snapshotted and deleted. A golden image's base is marked so. The mark
  /// is kept by the pool (it survives a daemon restart). FAILED_PRECONDITION
  /// for a snapshot, which is read-only always; NOT_FOUND for a missing volume.
  virtual Status setReadOnly(const std::string& name, bool read_only) = 0;
  /// NOT_FOUND when there is no such volume or snapshot.
  virtual Result<Volume> get(const std::string& name) = 0;
  /// Volumes and snapshots, by name.
  virtual Result<std::vector<Volume>> list() = 0;
  virtual Result<PoolInfo> poolInfo() = 0;

  /// The volume (or snapshot, read-only) as a block device in Dom0, for a
  /// program that needs one (a cluster manager's storage hook): the device
  /// path, also shown as Volume::host_device from then on. Idempotent: an
  /// attached volume gives its device again. UNIMPLEMENTED (the default)
  /// when the backend has no way to make one.
  virtual Result<std::string> attachToHost(const std::string& name);
  /// Undoes attachToHost; OK when the volume is not attached. NOT_FOUND for
  /// no such volume.
  virtual Status detachFromHost(const std::string& name);
};

}  // namespace xenctl::core
