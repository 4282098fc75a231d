// The LVM pools: LvmThinVolumes (thin volumes in a VG's thin pool, clones
// and snapshots are thin snapshots) and LvmSnapshotVolumes (plain LVs in a
// VG, clones and snapshots are classic copy-on-write snapshots of a set size).
//
// Names. A volume NAME is the LV VG/NAME (so /dev/VG/NAME is its path, as an
// administrator expects); its snapshot NAME@SNAP is the LV VG/NAME+SNAP ('+'
// is legal in LV names and never in ours). Work in progress uses names with
// "++" (NAME++new, NAME++old), never shown as volumes and cleaned up when
// the pool is opened.
//
// Metadata lives in LV tags, so the VG describes itself as a dir pool's
// directory does: "xenctl.pool=POOL" marks a classic pool's LVs (a VG also
// holds Dom0's own), "xenctl.origin=LV" names what a clone or snapshot was
// made from. The creation time is LVM's lv_time.
//
// Golden volumes. A snapshot (NAME@SNAP) is read-only from birth (-p r);
// on lvm-thin it also carries the activation-skip flag and stays inactive:
// a thin snapshot can be cloned without being active, so a golden image
// kept as a snapshot (`vm-volume snapshot base golden`, then clones of
// base@golden) is never activated. Clones are writable, active and without
// the skip flag (-kn). Clones of clones work on lvm-thin. Classic snapshots
// cannot be snapshotted, so on lvm-snapshot a clone or a snapshot is made
// from a plain volume only (FAILED_PRECONDITION otherwise, saying so).
//
// Clones and udev (lvm-thin, with LvmCommon::await_device): the lvcreate
// runs with --noudevsync and the clone waits for its /dev/VG/LV link after
// releasing the VG lock, the name still reserved, so a clone is returned
// usable at its path and udev's work on it does not hold up the next one.
// A link that does not come within lvm_timeout fails the clone, whose LV is
// removed.
//
// Rollback. lvm-thin: a writable thin snapshot of the snapshot is made as
// NAME++new, then NAME is renamed NAME++old, NAME++new renamed NAME and
// NAME++old removed, all under the VG lock and the volume's reservation, so
// a caller sees the old volume or the new one. A crash between the renames
// leaves NAME++old: opening the pool renames it back (the rollback did not
// happen) or, when NAME exists, removes it. lvm-snapshot: `lvconvert
// --merge` (the kernel shows the snapshot's content at once and merges in
// the background; the command waits for the end), then the snapshot is taken
// again under its name, so it is kept as the port promises.
//
// Guard rails (lvm-thin). A create, clone or resize is refused
// (RESOURCE_EXHAUSTED, with the numbers) when the thin LVs' total size would
// exceed max_overcommit times the pool's data size, or when the pool's data
// or metadata use is at or past its watermark. (lvm-snapshot) A clone or
// snapshot needs a COW store of snapshot_bytes (or snapshot_percent of the
// origin) free in the VG; a COW store at or past snapshot_watermark percent
// is reported through `warn`, and rolling back onto it is refused (an
// overflowed snapshot has lost its content).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>

#include "absl/strings/str_cat.h"

#include "lib/core/clock.h"
#include "lib/core/process_runner.h"
#include "lib/core/volume.h"
#include "lib/storage/name_holds.h"
#include "lib/storage/lvm.h"
#include "lib/storage/lvm_metadata.h"

namespace xenctl::storage {

/// Told of conditions an administrator should see (a snapshot nearly full);
/// the daemon logs them.
using WarnFn = std::function<void(const std::string& message)>;

struct LvmCommon {
  /// Required: the age of a reused report (VolumeGroups) and the creation
  /// time of an LV the pool writes into its report itself. Outlives the pools.
  const core::Clock* clock = nullptr;
  std::shared_ptr<core::ProcessRunner> runner;  ///< mkfs.ext4, e2fsck, resize2fs, blkdiscard
  std::shared_ptr<core::ProcessRunner> lvm;     ///< lvm2 commands (LvmShells); `runner` when null
  std::shared_ptr<VolumeGroups> groups;  ///< shared by the pools on one VG; made when null
  /// Reads the VG from its PVs and device-mapper instead of running lvs
  /// (lvm_metadata.h); lvs as before when null, or when it cannot model the VG.
  std::shared_ptr<VgModels> models;
  WarnFn warn;                     ///< may be empty
  /// Waits until a path is a block device (storage::awaitBlockDevice): OK or
  /// DEADLINE_EXCEEDED. When set, a thin clone runs `lvcreate --noudevsync`
  /// and waits for its /dev/VG/LV link with this after it has released the
  /// VG lock, so that udev's work on one clone overlaps the next clone's
  /// lvcreate; when empty, lvcreate itself waits for udev under the lock, as
  /// lvm2 does by default.
  std::function<Status(const std::string& path, absl::Duration timeout)> await_device;
  absl::Duration lvm_timeout = absl::Minutes(5);   ///< each lvm2 command
  absl::Duration tool_timeout = absl::Minutes(10); ///< mkfs.ext4, e2fsck, resize2fs, blkdiscard
};

/// What both LVM pools share: names, reservations, reports, get/list/remove.
class LvmVolumes : public core::VolumeManager {
 public:
  const std::string& poolName() const override { return pool_; }
  const std::string& vg() const { return vg_; }

  Result<core::Volume> get(const std::string& name) override;
  Result<std::vector<core::Volume>> list() override;
  /// FAILED_PRECONDITION while it has snapshots or clones (named).
  Status remove(const std::string& name) override;
  Result<core::VolumeDependents> dependents(const std::string& name) override;
  /// The mark: see readOnlyMarkArgs.
  Status setReadOnly(const std::string& name, bool read_only) override;
  /// The LV's node, activated first when it is not active (`lvchange -ay
  /// -K`: a snapshot carries the activation-skip flag). Volume::host_device
  /// is the node of every active LV.
  Result<std::string> attachToHost(const std::string& name) override;
  /// Leaves the LV active (xenctld's own domains use the same nodes): OK.
  Status detachFromHost(const std::string& name) override;

  /// "web1" -> "web1", "web1@s1" -> "web1+s1".
  static std::string lvName(const std::string& ref);
  /// The inverse; "" for an LV that is not a volume name (work in progress, foreign).
  static std::string refOf(const std::string& lv);
  /// A volume name, or VOLUME@SNAPSHOT where `allow_snapshot`, that LVM accepts
  /// as an LV name too (it reserves some words: "snapshot...", "_tmeta" ...).
  static Status validateRef(const std::string& ref, bool allow_snapshot);

 protected:
  /// `common.clock` must be set (open() checks it).
  LvmVolumes(std::string pool, std::string vg, LvmCommon common);
  /// INVALID_ARGUMENT naming the pool when `common` lacks what it needs.
  static Status checkCommon(const std::string& pool, const LvmCommon& common);

  /// Whether the row is one of this pool's volumes or snapshots (its name aside).
  virtual bool ours(const LvRow& lv) const = 0;
  /// Size and use as the pool sees them.
  virtual void fill(const LvRow& lv, core::Volume& v) const = 0;
  /// Called on every report, under no lock: warns about what needs it.
  virtual void check(const std::vector<LvRow>& rows) { (void)rows; }
  /// The command that marks `lv` read-only (or writable again). Here the
  /// LV's permission (lvchange -p r / -p rw): the kernel refuses writes to
  /// it, and thin snapshots of it are still made writable (-p rw, as
  /// clones of the read-only golden snapshots are).
  virtual std::vector<std::string> readOnlyMarkArgs(const LvRow& lv, bool read_only) const;

  using Reservation = NameHolds::Hold;
  /// Holds names for a call: `exclusive` (made, changed or removed) and `shared` (read from).
  Result<Reservation> reserve(const std::string& exclusive, const std::string& shared);

  /// The VG's LVs, taken under the VG lock shared (or reused, see VolumeGroups).
  Result<std::vector<LvRow>> report();
  /// The same, for a caller holding the VG lock already.
  Result<std::vector<LvRow>> reportLocked();
  static const LvRow* find(const std::vector<LvRow>& rows, const std::string& lv);
  /// The volume `ref` from `rows`; NOT_FOUND naming it when absent.
  Result<core::Volume> volumeOf(const std::vector<LvRow>& rows, const std::string& ref) const;
  /// LVs whose origin tag names `lv` (clones, snapshots).
  std::vector<std::string> childrenOf(const std::vector<LvRow>& rows, const std::string& lv) const;
  std::vector<std::string> snapshotsOf(const std::vector<LvRow>& rows, const std::string& ref) const;
  /// dependents() of `ref` in `rows`; NOT_FOUND when it is not there.
  Result<core::VolumeDependents> dependentsOf(const std::vector<LvRow>& rows, const std::string& ref) const;

  /// The arguments of create(): a volume name, a size, an ext4 label of 16 bytes at most.
  static Status validateCreate(const std::string& name, uint64_t size_bytes,
                               const std::optional<std::string>& ext4_label);
  /// The end of create(): the LV made as `work` becomes `name` when `made`
  /// is OK (its file system made), else is removed and `made` returned.
  Result<core::Volume> finishCreate(const std::string& work, const std::string& name, Status made,
                                    const std::string& step);
  /// What a call making an LV from another holds while it works: both names
  /// (the one made exclusive, the other shared), the VG lock (exclusive), the
  /// VG's LVs read under it, and the volume it starts from.
  struct Making {
    Reservation names;
    std::unique_lock<std::shared_mutex> vg;
    std::vector<LvRow> rows;
    core::Volume source;
    std::string step;  ///< "cloning volume 'p/base' to 'web1'", for messages
  };
  /// Checks and begins a clone of `base` (a volume or VOLUME@SNAPSHOT) as
  /// `name`: NOT_FOUND without the base, ALREADY_EXISTS when the name is
  /// taken, INVALID_ARGUMENT for a size (0: the base's) below the base's.
  Result<Making> beginClone(const std::string& base, const std::string& name, uint64_t size_bytes);
  /// The same for the snapshot VOLUME@SNAPSHOT; FAILED_PRECONDITION when
  /// `volume` is a snapshot itself.
  Result<Making> beginSnapshot(const std::string& volume, const std::string& snapshot);
  /// The same for rolling `volume` back to its snapshot (the volume is the
  /// one changed; the snapshot is read): NOT_FOUND without either.
  Result<Making> beginRollback(const std::string& volume, const std::string& snapshot);
  /// The same for growing `name` to `size_bytes` (nothing is made; the
  /// volume is the one changed): FAILED_PRECONDITION when it is read-only,
  /// INVALID_ARGUMENT for a smaller size.
  Result<Making> beginResize(const std::string& name, uint64_t size_bytes);

  std::string who(const std::string& ref) const;
  std::string lvPath(const std::string& lv) const { return absl::StrCat("/dev/", vg_, "/", lv); }
  std::string vgLv(const std::string& lv) const { return absl::StrCat(vg_, "/", lv); }
  std::shared_mutex& vgLock() { return common_.groups->lockOf(vg_); }
  /// Runs a command that changes the VG; the caller holds the VG lock exclusively.
  Status change(const std::vector<std::string>& argv);

  /// Formats `lv` ext4 with `label` (mkfs.ext4 without discard: the device is fresh).
  Status makeExt4(const std::string& lv, const std::string& label);
  /// Grows an ext2/3/4 file system filling `lv` (offline: e2fsck -f, resize2fs); no-op without one.
  Status growFs(const std::string& lv);
  /// Renames leftovers of a crash: NAME++old back to NAME (or removed when
  /// NAME exists), NAME++new removed. Called by open() before any use.
  Status recover();
  Status warnOnce(const std::string& key, const std::string& message);

  const std::string pool_, vg_;
  LvmCommon common_;
  Lvm lvm_;

 private:
  NameHolds holds_;
  std::mutex mu_;  // guards warned_
  std::set<std::string> warned_;
};

struct LvmThinOptions {
  std::string vg, thinpool;
  /// The thin LVs' total virtual size may reach this many times the pool's data size.
  double max_overcommit = 10.0;
  /// Percent of the pool's data / metadata space past which nothing new is allocated.
  double data_watermark = 80.0;
  double metadata_watermark = 80.0;
};

class LvmThinVolumes final : public LvmVolumes {
 public:
  /// Checks that VG/thinpool is a thin pool and recovers what a crash left.
  /// FAILED_PRECONDITION (saying how to make one) when it is not.
  static Result<std::unique_ptr<LvmThinVolumes>> open(std::string pool, LvmThinOptions options, LvmCommon common);

  std::string_view driver() const override { return "lvm-thin"; }

  Result<core::Volume> create(const std::string& name, uint64_t size_bytes,
                              const std::optional<std::string>& ext4_label) override;
  Result<core::Volume> clone(const std::string& base, const std::string& name, uint64_t size_bytes,
                             const core::CopyProgress& progress) override;
  Result<core::Volume> snapshot(const std::string& volume, const std::string& snapshot,
                                const core::CopyProgress& progress) override;
  Result<core::Volume> rollback(const std::string& volume, const std::string& snapshot,
                                const core::CopyProgress& progress) override;
  Result<core::Volume> resize(const std::string& name, uint64_t size_bytes) override;
  Result<core::PoolInfo> poolInfo() override;

  /// The guard rails for adding `add_bytes` of virtual size to the pool
  /// described by `rows`: OK, or RESOURCE_EXHAUSTED saying `step`, the
  /// numbers and what to do. Public for tests.
  Status checkGuardRails(const std::vector<LvRow>& rows, uint64_t add_bytes, const std::string& step) const;

 private:
  LvmThinVolumes(std::string pool, LvmThinOptions options, LvmCommon common);
  bool ours(const LvRow& lv) const override;
  void fill(const LvRow& lv, core::Volume& v) const override;
  Result<const LvRow*> thinPoolRow(const std::vector<LvRow>& rows) const;

  const LvmThinOptions opt_;
};

struct LvmSnapshotOptions {
  std::string vg;
  /// Each clone's and snapshot's COW store: snapshot_bytes when set, else
  /// snapshot_percent of its origin's size (rounded up to whole extents).
  uint64_t snapshot_bytes = 0;
  double snapshot_percent = 20.0;
  /// Percent of a COW store at which it is reported, and rolling back onto it refused.
  double snapshot_watermark = 80.0;
};

class LvmSnapshotVolumes final : public LvmVolumes {
 public:
  /// Checks that the VG exists and recovers what a crash left.
  static Result<std::unique_ptr<LvmSnapshotVolumes>> open(std::string pool, LvmSnapshotOptions options,
                                                          LvmCommon common);

  std::string_view driver() const override { return "lvm-snapshot"; }

  /// The LV is zeroed (blkdiscard -z) before it appears: plain LVs hold what
  /// deleted ones left.
  Result<core::Volume> create(const std::string& name, uint64_t size_bytes,
                              const std::optional<std::string>& ext4_label) override;
  /// FAILED_PRECONDITION for a base that is a clone or a snapshot, or a size
  /// other than the base's (a classic snapshot has its origin's size).
  Result<core::Volume> clone(const std::string& base, const std::string& name, uint64_t size_bytes,
                             const core::CopyProgress& progress) override;
  Result<core::Volume> snapshot(const std::string& volume, const std::string& snapshot,
                                const core::CopyProgress& progress) override;
  Result<core::Volume> rollback(const std::string& volume, const std::string& snapshot,
                                const core::CopyProgress& progress) override;
  /// Plain volumes only; LVM refuses while the volume has active snapshots.
  Result<core::Volume> resize(const std::string& name, uint64_t size_bytes) override;
  Result<core::PoolInfo> poolInfo() override;

  /// The COW store for a snapshot of an origin of `origin_bytes`, in whole extents.
  uint64_t cowBytes(uint64_t origin_bytes, uint64_t extent_bytes) const;

 private:
  LvmSnapshotVolumes(std::string pool, LvmSnapshotOptions options, LvmCommon common);
  bool ours(const LvRow& lv) const override;
  void fill(const LvRow& lv, core::Volume& v) const override;
  void check(const std::vector<LvRow>& rows) override;
  /// The tag xenctl.readonly=1, not the permission: a writable classic
  /// snapshot of a read-only origin is not yet proven in the lab, and a
  /// clone is one. xenctld honours the tag as it does the permission.
  std::vector<std::string> readOnlyMarkArgs(const LvRow& lv, bool read_only) const override;
  /// lvcreate -s of `origin_lv` as `lv`, with a COW store sized by the options.
  Status snapshotLv(const std::vector<LvRow>& rows, const LvRow& origin, const std::string& lv, bool read_only,
                    const std::string& step);

  const LvmSnapshotOptions opt_;
};

}  // namespace xenctl::storage
