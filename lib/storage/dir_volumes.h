// DirVolumes: a pool that is a directory of raw image files.
//
//   DIR/NAME.img          a volume, handed to Xen as a raw disk
//   DIR/NAME@SNAP.img     a snapshot of NAME
//   DIR/.meta/NAME        its metadata: origin, read_only, created_at (key=value lines)
//   DIR/.tmp/             work in progress, emptied when the pool is opened
//
// Clones and snapshots are reflinks (FICLONE) where the file system shares
// extents (btrfs, xfs with reflink=1), sparse copies elsewhere. The metadata
// lives beside the images rather than in the daemon's store so that the pool
// describes itself (it can be moved, backed up or opened by another daemon)
// and lib/storage needs nothing from lib/state; a file dropped in by hand is a
// volume with no origin, created at its mtime.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "lib/core/clock.h"
#include "lib/core/process_runner.h"
#include "lib/core/volume.h"
#include "lib/storage/name_holds.h"

namespace xenctl::storage {

class DirVolumes final : public core::VolumeManager {
 public:
  /// Opens (creating) the pool directory, empties its .tmp/ and finds out
  /// whether its file system can reflink. `dir` must be absolute. `tools`
  /// runs mkfs.ext4, e2fsck and resize2fs; without it, ext4 is not made nor grown.
  static Result<std::unique_ptr<DirVolumes>> open(std::string pool, std::string dir, const core::Clock& clock,
                                                  std::shared_ptr<core::ProcessRunner> tools = nullptr);
  /// How long one mkfs.ext4 / e2fsck / resize2fs may run.
  static constexpr absl::Duration kToolTimeout = absl::Minutes(10);

  const std::string& poolName() const override { return pool_; }
  std::string_view driver() const override { return "dir"; }
  /// True when clones share extents (FICLONE works in this directory).
  bool reflink() const { return reflink_; }

  /// With `ext4_label`, runs mkfs.ext4 on the image before it appears
  /// (UNIMPLEMENTED without `tools`; INVALID_ARGUMENT for a label over 16 bytes).
  Result<core::Volume> create(const std::string& name, uint64_t size_bytes,
                              const std::optional<std::string>& ext4_label) override;
  /// Without reflink, RESOURCE_EXHAUSTED when the file system has less
  /// free space than the base's allocated bytes.
  Result<core::Volume> clone(const std::string& base, const std::string& name, uint64_t size_bytes,
                             const core::CopyProgress& progress) override;
  Result<core::Volume> snapshot(const std::string& volume, const std::string& snapshot,
                                const core::CopyProgress& progress) override;
  /// Clones the snapshot into .tmp/ and rename(2)s it over the volume.
  Result<core::Volume> rollback(const std::string& volume, const std::string& snapshot,
                                const core::CopyProgress& progress) override;
  /// An ext2/3/4 file system filling the image is grown too (e2fsck -f, then
  /// resize2fs), when `tools` is given; the guest must not have it mounted.
  Result<core::Volume> resize(const std::string& name, uint64_t size_bytes) override;
  Status remove(const std::string& name) override;
  Result<core::VolumeDependents> dependents(const std::string& name) override;
  /// The mark is read_only in .meta/NAME.
  Status setReadOnly(const std::string& name, bool read_only) override;
  Result<core::Volume> get(const std::string& name) override;
  Result<std::vector<core::Volume>> list() override;
  Result<core::PoolInfo> poolInfo() override;
  /// A loop device bound to the volume's file (`losetup --find --show`,
  /// read-only for a snapshot or a read-only volume); UNIMPLEMENTED without
  /// `tools`. While attached, resize refreshes the device's size
  /// (`losetup -c`) and grows the file system through the device, and
  /// remove is refused (FAILED_PRECONDITION: detach first).
  Result<std::string> attachToHost(const std::string& name) override;
  /// Releases every loop device bound to the volume's file (`losetup -d`).
  Status detachFromHost(const std::string& name) override;

 private:
  /// The loop devices bound to `name`'s file, sorted.
  std::vector<std::string> loopDevices(const std::string& name) const;
  DirVolumes(std::string pool, std::string dir, const core::Clock& clock, bool reflink,
             std::shared_ptr<core::ProcessRunner> tools);
  /// Runs a tool; a non-zero exit (beyond `ok_exit`) is UNKNOWN with its output.
  Status runTool(const std::vector<std::string>& argv, int ok_exit = 0) const;

  struct Meta {
    std::string origin;
    bool read_only = false;
    absl::Time created_at = absl::InfinitePast();  ///< unknown: the file's mtime
  };
  // Holds names for the length of a call: shared (a clone's base) or
  // exclusive (the volume being made, changed or removed).
  using Reservation = NameHolds::Hold;
  Result<Reservation> reserve(const std::string& exclusive, const std::string& shared);

  std::string imagePath(const std::string& name) const;
  std::string metaPath(const std::string& name) const;
  std::string tmpPath(const std::string& name);
  Result<Meta> readMeta(const std::string& name) const;
  Status writeMeta(const std::string& name, const Meta& meta) const;
  Result<core::Volume> load(const std::string& name, const std::vector<std::string>& images) const;
  Result<std::vector<std::string>> imageNames() const;
  /// dependents() of `name` among `images` (from imageNames()).
  Result<core::VolumeDependents> dependentsOf(const std::string& name, const std::vector<std::string>& images) const;
  Status requireExists(const std::string& name) const;
  Status requireSpaceForCopy(const std::string& base, std::string_view step) const;
  /// Copies `from` into .tmp/, then moves it to `name` with `meta`.
  Result<core::Volume> copyNew(const std::string& from, const std::string& name, const Meta& meta, uint64_t grow_to,
                               const core::CopyProgress& progress);
  Status withSpace(Status st) const;
  std::string who(const std::string& name) const;

  const std::string pool_, dir_;
  const core::Clock& clock_;
  const bool reflink_;
  const std::shared_ptr<core::ProcessRunner> tools_;
  NameHolds holds_;
  std::mutex mu_;  // guards tmp_counter_
  uint64_t tmp_counter_ = 0;
};

}  // namespace xenctl::storage
