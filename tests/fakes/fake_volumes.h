// FakeVolumes: a core::VolumeManager in memory, as LLVM's InMemoryFileSystem
// is a file system. It keeps real state (volumes, snapshots, origins, sizes,
// read-only flags) and refuses what the port says a pool refuses (a bad name
// or size, a taken name, a missing volume, a read-only target, dependents),
// so tests assert on state and codes. Content is not kept: a volume's path
// is "/fake/POOL/NAME", and nothing is there.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/core/volume.h"

namespace xenctl::fakes {

class FakeVolumes final : public core::VolumeManager {
 public:
  /// A pool's volumes. Share it between two FakeVolumes to open the same
  /// pool again (a daemon restart).
  struct State {
    std::mutex mu;
    std::map<std::string, core::Volume> volumes;  // by name; snapshots as "VOL@SNAP"
    Status remove_failure;                        // what remove() returns while not OK
    Status clone_failure, resize_failure;         // what clone() and resize() return while not OK
  };

  explicit FakeVolumes(std::string pool, std::shared_ptr<State> state = std::make_shared<State>())
      : pool_(std::move(pool)), state_(std::move(state)) {}

  std::shared_ptr<State> state() const { return state_; }
  /// From now on remove() fails with `st`, as a backend does when something
  /// outside xenctld holds the volume open; OK makes it work again.
  void failRemove(Status st) {
    std::lock_guard lock(state_->mu);
    state_->remove_failure = std::move(st);
  }

  /// From now on clone() or resize() fails with `st` (a full pool, say)
  /// and changes nothing; OK makes it work again.
  void failClone(Status st) {
    std::lock_guard lock(state_->mu);
    state_->clone_failure = std::move(st);
  }
  void failResize(Status st) {
    std::lock_guard lock(state_->mu);
    state_->resize_failure = std::move(st);
  }

  const std::string& poolName() const override { return pool_; }

  Status setReadOnly(const std::string& name, bool read_only) override {
    std::lock_guard lock(state_->mu);
    XENCTL_RETURN_IF_ERROR(find(name).status());
    if (name.find('@') != std::string::npos)
      return absl::FailedPreconditionError(absl::StrCat(who(name), " is a snapshot, which is always read-only"));
    state_->volumes[name].read_only = read_only;
    return absl::OkStatus();
  }
  std::string_view driver() const override { return "fake"; }

  Result<core::Volume> create(const std::string& name, uint64_t size_bytes,
                              const std::optional<std::string>& ext4_label) override {
    (void)ext4_label;
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(name));
    XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
    std::lock_guard lock(state_->mu);
    XENCTL_RETURN_IF_ERROR(requireFree(name));
    return add(name, size_bytes, "", false);
  }

  Result<core::Volume> clone(const std::string& base, const std::string& name, uint64_t size_bytes,
                             const core::CopyProgress& progress) override {
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(name));
    if (size_bytes) XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
    std::lock_guard lock(state_->mu);
    if (!state_->clone_failure.ok())
      return Status(state_->clone_failure.code(),
                    absl::StrCat("cloning ", who(base), ": ", state_->clone_failure.message()));
    XENCTL_ASSIGN_OR_RETURN(core::Volume b, find(base));
    XENCTL_RETURN_IF_ERROR(requireFree(name));
    if (size_bytes && size_bytes < b.size_bytes)
      return absl::InvalidArgumentError(absl::StrCat("cloning ", who(base), ": size ", size_bytes,
                                                     " bytes is below the base's ", b.size_bytes, " bytes"));
    XENCTL_RETURN_IF_ERROR(copied(progress, b.size_bytes, absl::StrCat("cloning ", who(base))));
    return add(name, std::max(size_bytes, b.size_bytes), base, false);
  }

  Result<core::Volume> snapshot(const std::string& volume, const std::string& snapshot,
                                const core::CopyProgress& progress) override {
    if (volume.find('@') != std::string::npos)
      return absl::FailedPreconditionError(absl::StrCat(who(volume), " is a snapshot; snapshots are taken of volumes"));
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(snapshot, "snapshot"));
    const std::string name = core::snapshotName(volume, snapshot);
    std::lock_guard lock(state_->mu);
    XENCTL_ASSIGN_OR_RETURN(core::Volume v, find(volume));
    XENCTL_RETURN_IF_ERROR(requireFree(name));
    XENCTL_RETURN_IF_ERROR(copied(progress, v.size_bytes, absl::StrCat("taking ", who(name))));
    return add(name, v.size_bytes, volume, true);
  }

  Result<core::Volume> rollback(const std::string& volume, const std::string& snapshot,
                                const core::CopyProgress& progress) override {
    const std::string snap = core::snapshotName(volume, snapshot);
    std::lock_guard lock(state_->mu);
    XENCTL_ASSIGN_OR_RETURN(core::Volume v, find(volume));
    XENCTL_ASSIGN_OR_RETURN(core::Volume s, find(snap));
    if (v.read_only) return absl::FailedPreconditionError(absl::StrCat("rolling back ", who(volume), ": read-only"));
    XENCTL_RETURN_IF_ERROR(copied(progress, s.size_bytes, absl::StrCat("rolling back ", who(volume))));
    state_->volumes.at(volume).size_bytes = s.size_bytes;
    return find(volume);
  }

  Result<core::Volume> resize(const std::string& name, uint64_t size_bytes) override {
    XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
    std::lock_guard lock(state_->mu);
    if (!state_->resize_failure.ok())
      return Status(state_->resize_failure.code(),
                    absl::StrCat("resizing ", who(name), ": ", state_->resize_failure.message()));
    XENCTL_ASSIGN_OR_RETURN(core::Volume v, find(name));
    if (v.read_only) return absl::FailedPreconditionError(absl::StrCat("resizing ", who(name), ": it is read-only"));
    if (size_bytes < v.size_bytes)
      return absl::InvalidArgumentError(absl::StrCat("resizing ", who(name), ": volumes only grow"));
    state_->volumes.at(name).size_bytes = size_bytes;
    return find(name);
  }

  Status remove(const std::string& name) override {
    std::lock_guard lock(state_->mu);
    if (!state_->remove_failure.ok())
      return Status(state_->remove_failure.code(),
                    absl::StrCat("removing ", name, ": ", state_->remove_failure.message()));
    XENCTL_ASSIGN_OR_RETURN(core::VolumeDependents deps, dependentsLocked(name));
    XENCTL_RETURN_IF_ERROR(core::requireNoDependents(deps, absl::StrCat("deleting ", who(name))));
    state_->volumes.erase(name);
    return absl::OkStatus();
  }

  Result<core::VolumeDependents> dependents(const std::string& name) override {
    std::lock_guard lock(state_->mu);
    return dependentsLocked(name);
  }

  Result<core::Volume> get(const std::string& name) override {
    std::lock_guard lock(state_->mu);
    return find(name);
  }

  Result<std::vector<core::Volume>> list() override {
    std::lock_guard lock(state_->mu);
    std::vector<core::Volume> out;
    for (const auto& [name, v] : state_->volumes) out.push_back(*find(name));
    return out;
  }

  Result<core::PoolInfo> poolInfo() override {
    std::lock_guard lock(state_->mu);
    core::PoolInfo p;
    p.name = pool_;
    p.driver = "fake";
    p.path = "/fake/" + pool_;
    p.volumes = state_->volumes.size();
    for (const auto& [name, v] : state_->volumes) p.allocated_bytes += v.size_bytes;
    p.size_bytes = p.allocated_bytes;
    return p;
  }

 private:
  std::string who(const std::string& name) const { return absl::StrCat("volume '", pool_, "/", name, "'"); }

  // The rest run under state_->mu.
  Status requireFree(const std::string& name) const {
    if (state_->volumes.count(name)) return absl::AlreadyExistsError(absl::StrCat(who(name), " already exists"));
    return absl::OkStatus();
  }
  Result<core::Volume> find(const std::string& name) const {
    auto it = state_->volumes.find(name);
    if (it == state_->volumes.end()) return absl::NotFoundError(absl::StrCat(who(name), " not found"));
    core::Volume v = it->second;
    v.snapshots.clear();
    const std::string prefix = name + "@";
    for (const auto& [other, ov] : state_->volumes)  // sorted
      if (other.rfind(prefix, 0) == 0) v.snapshots.push_back(other.substr(prefix.size()));
    return v;
  }
  Result<core::VolumeDependents> dependentsLocked(const std::string& name) const {
    XENCTL_ASSIGN_OR_RETURN(core::Volume v, find(name));
    core::VolumeDependents d{std::move(v.snapshots), {}};
    for (const auto& [other, ov] : state_->volumes)
      if (other.find('@') == std::string::npos && ov.origin == name) d.clones.push_back(other);
    return d;
  }
  core::Volume add(const std::string& name, uint64_t size, const std::string& origin, bool read_only) {
    core::Volume v;
    v.pool = pool_;
    v.name = name;
    v.size_bytes = size;
    v.origin = origin;
    v.read_only = read_only;
    v.path = absl::StrCat("/fake/", pool_, "/", name);
    state_->volumes[name] = v;
    return v;
  }
  // A copy of `bytes`, told to `progress`; CANCELLED (nothing made) when it says stop.
  static Status copied(const core::CopyProgress& progress, uint64_t bytes, const std::string& step) {
    if (progress && !progress(bytes, bytes)) return absl::CancelledError(absl::StrCat(step, ": cancelled"));
    return absl::OkStatus();
  }

  const std::string pool_;
  std::shared_ptr<State> state_;
};

}  // namespace xenctl::fakes
