#include "lib/core/volume.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/core/domain.h"

namespace xenctl::core {

Status validateVolumeName(std::string_view name, std::string_view what) { return validateObjectName(name, what); }

std::string snapshotName(std::string_view volume, std::string_view snapshot) {
  return absl::StrCat(av(volume), "@", av(snapshot));
}

Status validateVolumeSize(uint64_t size_bytes) {
  if (size_bytes < kMinVolumeBytes || size_bytes > kMaxVolumeBytes)
    return absl::InvalidArgumentError(absl::StrCat("volume size ", size_bytes, " bytes is out of range; use 1 MiB to ",
                                                   kMaxVolumeBytes >> 60, " EiB"));
  if (size_bytes % 512 != 0)
    return absl::InvalidArgumentError(
        absl::StrCat("volume size ", size_bytes, " bytes is not a whole number of 512-byte sectors"));
  return absl::OkStatus();
}

Result<std::string> readOnlyMarkStep(std::string_view who, std::string_view name, bool read_only) {
  std::string step = absl::StrCat("marking ", av(who), read_only ? " read-only" : " writable");
  if (name.find('@') != std::string_view::npos)
    return absl::FailedPreconditionError(absl::StrCat(step, ": it is a snapshot, which is always read-only"));
  return step;
}

Status requireNoDependents(const VolumeDependents& d, std::string_view step) {
  if (!d.snapshots.empty())
    return absl::FailedPreconditionError(
        absl::StrCat(av(step), ": it has snapshots (", absl::StrJoin(d.snapshots, ", "), "); delete them first"));
  if (!d.clones.empty())
    return absl::FailedPreconditionError(absl::StrCat(av(step), ": volumes were cloned from it (",
                                                      absl::StrJoin(d.clones, ", "), "); delete them first"));
  return absl::OkStatus();
}

std::string VolumeRef::target() const { return absl::StrCat("vol:", pool, "/", name); }

bool isVolumeTarget(std::string_view target) { return absl::StartsWith(av(target), "vol:"); }

Result<VolumeRef> parseVolumeTarget(std::string_view target) {
  auto bad = [&](const Status& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", av(target), "' is not vol:POOL/NAME (NAME a volume or VOLUME@SNAPSHOT): ", why.message()));
  };
  if (!isVolumeTarget(target)) return bad(absl::InvalidArgumentError("it does not start with vol:"));
  std::string_view ref = target.substr(4);
  const size_t slash = ref.find('/');
  if (slash == std::string_view::npos) return bad(absl::InvalidArgumentError("it has no '/'"));
  VolumeRef out{std::string(ref.substr(0, slash)), std::string(ref.substr(slash + 1))};
  if (Status st = validateVolumeName(out.pool, "pool"); !st.ok()) return bad(st);
  const size_t at = out.name.find('@');
  if (Status st = validateVolumeName(std::string_view(out.name).substr(0, at)); !st.ok()) return bad(st);
  if (at != std::string::npos)
    if (Status st = validateVolumeName(std::string_view(out.name).substr(at + 1), "snapshot"); !st.ok()) return bad(st);
  return out;
}

Result<std::string> VolumeManager::attachToHost(const std::string& name) {
  return absl::UnimplementedError(absl::StrCat("attaching volume '", poolName(), "/", name, "' to Dom0: pool driver '",
                                               av(driver()), "' has no block devices; use a dir or LVM pool"));
}

Status VolumeManager::detachFromHost(const std::string& name) { return get(name).status(); }

}  // namespace xenctl::core
