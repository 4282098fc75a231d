#include "lib/storage/dir_volumes.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/storage/file_ops.h"
#include "lib/storage/loop_devices.h"

namespace xenctl::storage {
namespace {

constexpr std::string_view kImageSuffix = ".img";

// "web1" -> {"web1", ""}, "web1@s1" -> {"web1", "s1"}.
std::pair<std::string, std::string> splitRef(const std::string& name) {
  size_t at = name.find('@');
  if (at == std::string::npos) return {name, ""};
  return {name.substr(0, at), name.substr(at + 1)};
}

bool isSnapshot(const std::string& name) { return name.find('@') != std::string::npos; }

// A volume name, or "VOLUME@SNAPSHOT" where `allow_snapshot`.
Status validateRef(const std::string& name, bool allow_snapshot) {
  auto [vol, snap] = splitRef(name);
  if (name.find('@') == std::string::npos) return core::validateVolumeName(vol);
  if (!allow_snapshot)
    return absl::InvalidArgumentError(
        absl::StrCat("'", name, "' names a snapshot; give a volume name ([a-z0-9][a-z0-9-_.]{0,62})"));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(vol));
  return core::validateVolumeName(snap, "snapshot");
}

std::string gib(uint64_t bytes) { return absl::StrFormat("%.2f GiB", static_cast<double>(bytes) / (1 << 30)); }

}  // namespace


Result<std::unique_ptr<DirVolumes>> DirVolumes::open(std::string pool, std::string dir, const core::Clock& clock,
                                                     std::shared_ptr<core::ProcessRunner> tools) {
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(pool, "pool"));
  if (dir.empty() || dir[0] != '/')
    return absl::InvalidArgumentError(absl::StrCat("pool '", pool, "': path '", dir, "' is not absolute"));
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::string what = absl::StrCat("opening pool '", pool, "' at ", dir);
  XENCTL_RETURN_IF_ERROR(annotate(makeDirs(dir + "/.meta"), what));
  XENCTL_RETURN_IF_ERROR(annotate(makeDirs(dir + "/.tmp"), what));
  // What a crash left half-made is not a volume: drop it.
  XENCTL_ASSIGN_OR_RETURN(auto leftovers, listDir(dir + "/.tmp"));
  for (const auto& f : leftovers) (void)removeFile(absl::StrCat(dir, "/.tmp/", f));
  XENCTL_ASSIGN_OR_RETURN(bool reflink, supportsReflink(dir + "/.tmp"));
  return std::unique_ptr<DirVolumes>(new DirVolumes(std::move(pool), std::move(dir), clock, reflink, std::move(tools)));
}

DirVolumes::DirVolumes(std::string pool, std::string dir, const core::Clock& clock, bool reflink,
                       std::shared_ptr<core::ProcessRunner> tools)
    : pool_(std::move(pool)), dir_(std::move(dir)), clock_(clock), reflink_(reflink), tools_(std::move(tools)) {}

Status DirVolumes::runTool(const std::vector<std::string>& argv, int ok_exit) const {
  XENCTL_ASSIGN_OR_RETURN(core::ProcessResult r, tools_->run(argv, kToolTimeout));
  if (r.exit_code == 0 || r.exit_code <= ok_exit) return absl::OkStatus();
  std::string out(absl::StripTrailingAsciiWhitespace(r.output));
  if (out.size() > 2000) out = "..." + out.substr(out.size() - 2000);
  return absl::UnknownError(absl::StrCat("`", absl::StrJoin(argv, " "), "` exited with ", r.exit_code, ": ", out));
}

std::string DirVolumes::imagePath(const std::string& name) const {
  return absl::StrCat(dir_, "/", name, av(kImageSuffix));
}
std::string DirVolumes::metaPath(const std::string& name) const { return absl::StrCat(dir_, "/.meta/", name); }
std::string DirVolumes::tmpPath(const std::string& name) {
  std::lock_guard lock(mu_);
  return absl::StrCat(dir_, "/.tmp/", name, ".", ++tmp_counter_, av(kImageSuffix));
}
std::string DirVolumes::who(const std::string& name) const {
  return absl::StrCat(isSnapshot(name) ? "snapshot '" : "volume '", pool_, "/", name, "'");
}

Result<DirVolumes::Reservation> DirVolumes::reserve(const std::string& exclusive, const std::string& shared) {
  return holds_.hold(exclusive, shared, [this](const std::string& n) { return who(n); });
}

Result<DirVolumes::Meta> DirVolumes::readMeta(const std::string& name) const {
  Meta m;
  auto text = readSmallFile(metaPath(name));
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return m;  // an image put there by hand
    return text.status();
  }
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (kv.first == "origin") m.origin = std::string(kv.second);
    if (kv.first == "read_only") m.read_only = kv.second == "1";
    int64_t us = 0;
    if (kv.first == "created_at_us" && absl::SimpleAtoi(kv.second, &us)) m.created_at = absl::FromUnixMicros(us);
  }
  return m;
}

Status DirVolumes::writeMeta(const std::string& name, const Meta& m) const {
  return writeFileAtomic(metaPath(name), absl::StrCat("origin=", m.origin, "\nread_only=", m.read_only ? 1 : 0,
                                                      "\ncreated_at_us=", absl::ToUnixMicros(m.created_at), "\n"));
}

Result<std::vector<std::string>> DirVolumes::imageNames() const {
  XENCTL_ASSIGN_OR_RETURN(auto files, listDir(dir_));
  std::vector<std::string> names;
  for (const auto& f : files) {
    if (f.empty() || f[0] == '.' || !f.ends_with(kImageSuffix)) continue;
    std::string name = f.substr(0, f.size() - kImageSuffix.size());
    if (validateRef(name, true).ok()) names.push_back(std::move(name));  // other files are not ours
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<core::Volume> DirVolumes::load(const std::string& name, const std::vector<std::string>& images) const {
  core::Volume v;
  v.pool = pool_;
  v.name = name;
  v.path = imagePath(name);
  auto info = fileInfo(v.path);
  if (!info.ok()) {
    if (absl::IsNotFound(info.status()))
      return absl::NotFoundError(absl::StrCat(who(name), " not found; `vm-volume list` shows the volumes"));
    return info.status();
  }
  v.size_bytes = info->size;
  v.used_bytes = info->allocated;
  XENCTL_ASSIGN_OR_RETURN(Meta m, readMeta(name));
  v.origin = m.origin;
  v.read_only = m.read_only || isSnapshot(name);
  v.created_at = m.created_at == absl::InfinitePast() ? info->modified : m.created_at;
  if (!isSnapshot(name)) {
    const std::string prefix = name + "@";
    for (const auto& other : images)
      if (other.starts_with(prefix)) v.snapshots.push_back(other.substr(prefix.size()));
  }
  return v;
}

Status DirVolumes::requireExists(const std::string& name) const {
  if (exists(imagePath(name))) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat(who(name), " not found; `vm-volume list` shows the volumes"));
}

Status DirVolumes::withSpace(Status st) const {
  if (!absl::IsResourceExhausted(st)) return st;
  auto space = fsSpace(dir_);
  if (!space.ok()) return st;
  return Status(st.code(), absl::StrCat(st.message(), "; pool '", pool_, "' (", dir_, ") has ", gib(space->free),
                                        " free of ", gib(space->size)));
}

Status DirVolumes::requireSpaceForCopy(const std::string& base, std::string_view step) const {
  if (reflink_) return absl::OkStatus();
  XENCTL_ASSIGN_OR_RETURN(FileInfo info, fileInfo(imagePath(base)));
  XENCTL_ASSIGN_OR_RETURN(FsSpace space, fsSpace(dir_));
  if (space.free >= info.allocated) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat(av(step), ": pool '", pool_, "' cannot reflink, so the copy needs ", info.allocated, " bytes (",
                   gib(info.allocated), ") but its file system has ", space.free, " bytes (", gib(space.free),
                   ") free; free some space or put the pool on btrfs or xfs (reflink=1)"));
}

Result<core::Volume> DirVolumes::copyNew(const std::string& from, const std::string& name, const Meta& meta,
                                         uint64_t grow_to, const core::CopyProgress& progress) {
  const std::string tmp = tmpPath(name);
  XENCTL_RETURN_IF_ERROR(withSpace(cloneFile(imagePath(from), tmp, progress).status()));
  Status st = grow_to ? withSpace(growFile(tmp, grow_to)) : absl::OkStatus();
  // The metadata first: an image never shows without it. A crash before the
  // rename leaves a stray .meta file, which the next create overwrites.
  if (st.ok()) st = writeMeta(name, meta);
  if (st.ok()) {
    st = renameNoReplace(tmp, imagePath(name));
    if (!st.ok()) (void)removeFile(metaPath(name));
  }
  if (!st.ok()) {
    (void)removeFile(tmp);
    return st;
  }
  XENCTL_ASSIGN_OR_RETURN(auto images, imageNames());
  return load(name, images);
}

Result<core::Volume> DirVolumes::create(const std::string& name, uint64_t size_bytes,
                                        const std::optional<std::string>& ext4_label) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, false));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
  if (ext4_label && !tools_)
    return absl::UnimplementedError(absl::StrCat("creating ", who(name),
                                                 ": this pool has no process runner to run mkfs.ext4; create it "
                                                 "raw and run mkfs.ext4 on its path"));
  if (ext4_label && ext4_label->size() > 16)
    return absl::InvalidArgumentError(
        absl::StrCat("ext4 label '", *ext4_label, "' is longer than 16 bytes, the most ext4 keeps"));
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  if (exists(imagePath(name))) return absl::AlreadyExistsError(absl::StrCat(who(name), " already exists"));
  const std::string tmp = tmpPath(name);
  XENCTL_RETURN_IF_ERROR(withSpace(createSparseFile(tmp, size_bytes)));
  Status st;
  // Formatted before it appears under its name: nobody sees a half-made file system.
  if (ext4_label) st = runTool({"mkfs.ext4", "-q", "-F", "-L", *ext4_label, "-E", "lazy_itable_init=1,nodiscard", tmp});
  if (st.ok()) st = writeMeta(name, Meta{"", false, clock_.now()});
  if (st.ok()) {
    st = renameNoReplace(tmp, imagePath(name));
    if (!st.ok()) (void)removeFile(metaPath(name));
  }
  if (!st.ok()) {
    (void)removeFile(tmp);
    return annotate(st, absl::StrCat("creating ", who(name)));
  }
  return get(name);
}

Result<core::Volume> DirVolumes::clone(const std::string& base, const std::string& name, uint64_t size_bytes,
                                       const core::CopyProgress& progress) {
  XENCTL_RETURN_IF_ERROR(validateRef(base, true));
  XENCTL_RETURN_IF_ERROR(validateRef(name, false));
  if (size_bytes) XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
  const std::string step = absl::StrCat("cloning ", who(base), " to '", name, "'");
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, base));
  XENCTL_RETURN_IF_ERROR(requireExists(base));
  if (exists(imagePath(name))) return absl::AlreadyExistsError(absl::StrCat(who(name), " already exists"));
  XENCTL_ASSIGN_OR_RETURN(FileInfo base_info, fileInfo(imagePath(base)));
  if (size_bytes && size_bytes < base_info.size)
    return absl::InvalidArgumentError(absl::StrCat(step, ": size ", size_bytes, " bytes is below the base's ",
                                                   base_info.size, " bytes; a clone can only be as large or larger"));
  XENCTL_RETURN_IF_ERROR(requireSpaceForCopy(base, step));
  auto v = copyNew(base, name, Meta{base, false, clock_.now()}, size_bytes, progress);
  if (!v.ok()) return annotate(v.status(), step);
  return v;
}

Result<core::Volume> DirVolumes::snapshot(const std::string& volume, const std::string& snapshot,
                                          const core::CopyProgress& progress) {
  if (isSnapshot(volume))
    return absl::FailedPreconditionError(
        absl::StrCat(who(volume), " is a snapshot; snapshots are taken of volumes (clone it first)"));
  XENCTL_RETURN_IF_ERROR(validateRef(volume, false));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(snapshot, "snapshot"));
  const std::string name = core::snapshotName(volume, snapshot);
  const std::string step = absl::StrCat("taking ", who(name));
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, volume));
  XENCTL_RETURN_IF_ERROR(requireExists(volume));
  if (exists(imagePath(name))) return absl::AlreadyExistsError(absl::StrCat(who(name), " already exists"));
  XENCTL_RETURN_IF_ERROR(requireSpaceForCopy(volume, step));
  auto v = copyNew(volume, name, Meta{volume, true, clock_.now()}, 0, progress);
  if (!v.ok()) return annotate(v.status(), step);
  return v;
}

Result<core::Volume> DirVolumes::rollback(const std::string& volume, const std::string& snapshot,
                                          const core::CopyProgress& progress) {
  XENCTL_RETURN_IF_ERROR(validateRef(volume, false));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(snapshot, "snapshot"));
  const std::string snap = core::snapshotName(volume, snapshot);
  const std::string step = absl::StrCat("rolling ", who(volume), " back to snapshot '", snapshot, "'");
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(volume, snap));
  XENCTL_RETURN_IF_ERROR(requireExists(volume));
  XENCTL_RETURN_IF_ERROR(requireExists(snap));
  XENCTL_ASSIGN_OR_RETURN(Meta meta, readMeta(volume));
  if (meta.read_only) return absl::FailedPreconditionError(absl::StrCat(step, ": the volume is read-only"));
  XENCTL_RETURN_IF_ERROR(requireSpaceForCopy(snap, step));
  // The new content is made whole beside the volume, then one rename(2)
  // swaps it in: a reader (or a crash) sees the old image or the new one.
  const std::string tmp = tmpPath(volume);
  Status st = withSpace(cloneFile(imagePath(snap), tmp, progress).status());
  if (st.ok()) st = renameReplace(tmp, imagePath(volume));
  if (!st.ok()) {
    (void)removeFile(tmp);
    return annotate(st, step);
  }
  return get(volume);
}

Result<core::Volume> DirVolumes::resize(const std::string& name, uint64_t size_bytes) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
  const std::string step = absl::StrCat("resizing ", who(name));
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, get(name));
  if (v.read_only) return absl::FailedPreconditionError(absl::StrCat(step, ": it is read-only"));
  if (size_bytes < v.size_bytes)
    return absl::InvalidArgumentError(absl::StrCat(step, ": ", size_bytes, " bytes is below its size of ", v.size_bytes,
                                                   " bytes; volumes only grow"));
  XENCTL_RETURN_IF_ERROR(annotate(withSpace(growFile(v.path, size_bytes)), step));
  // An attached volume's loop device learns the new size, and the file
  // system is grown through it: what Dom0 reads from the device stays
  // coherent with what was written.
  std::string fs_path = v.path;
  if (!v.host_device.empty() && tools_) {
    XENCTL_RETURN_IF_ERROR(annotate(runTool({"losetup", "-c", v.host_device}), step));
    fs_path = v.host_device;
  }
  XENCTL_ASSIGN_OR_RETURN(bool ext, hasExtSuperblock(v.path));
  if (ext && tools_) {
    // resize2fs grows an unmounted file system only after a forced check;
    // e2fsck -p exits 1 when it fixed something, which is fine.
    XENCTL_RETURN_IF_ERROR(annotate(runTool({"e2fsck", "-f", "-p", fs_path}, 1), step));
    XENCTL_RETURN_IF_ERROR(annotate(runTool({"resize2fs", fs_path}), step));
  }
  return get(name);
}

Status DirVolumes::setReadOnly(const std::string& name, bool read_only) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  XENCTL_ASSIGN_OR_RETURN(const std::string step, core::readOnlyMarkStep(who(name), name, read_only));
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  XENCTL_RETURN_IF_ERROR(requireExists(name));
  XENCTL_ASSIGN_OR_RETURN(Meta meta, readMeta(name));
  if (meta.read_only == read_only) return absl::OkStatus();
  meta.read_only = read_only;
  return annotate(withSpace(writeMeta(name, meta)), step);
}

Status DirVolumes::remove(const std::string& name) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  const std::string step = absl::StrCat("deleting ", who(name));
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  XENCTL_ASSIGN_OR_RETURN(auto images, imageNames());
  XENCTL_ASSIGN_OR_RETURN(core::VolumeDependents deps, dependentsOf(name, images));
  XENCTL_RETURN_IF_ERROR(core::requireNoDependents(deps, step));
  // A loop device would keep the deleted file's space and its content.
  if (auto devices = loopDevices(name); !devices.empty())
    return absl::FailedPreconditionError(absl::StrCat(step, ": it is attached to Dom0 at ", devices.front(),
                                                      "; detach it first (`vm-volume detach ", name, " --pool ",
                                                      pool_, "`)"));
  XENCTL_RETURN_IF_ERROR(annotate(removeFile(imagePath(name)), step));
  if (Status st = removeFile(metaPath(name)); !st.ok() && !absl::IsNotFound(st)) return annotate(st, step);
  return absl::OkStatus();
}

Result<core::VolumeDependents> DirVolumes::dependentsOf(const std::string& name,
                                                        const std::vector<std::string>& images) const {
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, load(name, images));
  core::VolumeDependents d{std::move(v.snapshots), {}};
  for (const auto& other : images) {  // sorted
    if (isSnapshot(other) || other == name) continue;
    auto m = readMeta(other);
    if (m.ok() && m->origin == name) d.clones.push_back(other);
  }
  return d;
}

Result<core::VolumeDependents> DirVolumes::dependents(const std::string& name) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  XENCTL_ASSIGN_OR_RETURN(auto images, imageNames());
  return dependentsOf(name, images);
}

Result<core::Volume> DirVolumes::get(const std::string& name) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  XENCTL_ASSIGN_OR_RETURN(auto images, imageNames());
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, load(name, images));
  if (auto devices = loopDevices(name); !devices.empty()) {
    v.host_device = devices.front();
    v.host_device_domids = domainsServing(xenBlockBackends(), v.host_device);
  }
  return v;
}

Result<std::vector<core::Volume>> DirVolumes::list() {
  XENCTL_ASSIGN_OR_RETURN(auto images, imageNames());
  const auto bound = boundLoopDevices();
  const auto served = xenBlockBackends();
  std::vector<core::Volume> out;
  out.reserve(images.size());
  for (const auto& name : images) {
    auto v = load(name, images);
    if (absl::IsNotFound(v.status())) continue;  // deleted meanwhile
    if (!v.ok()) return v.status();
    if (auto devices = loopDevicesOf(bound, v->path); !devices.empty()) {
      v->host_device = devices.front();
      v->host_device_domids = domainsServing(served, v->host_device);
    }
    out.push_back(*std::move(v));
  }
  return out;
}

std::vector<std::string> DirVolumes::loopDevices(const std::string& name) const {
  return loopDevicesOf(boundLoopDevices(), imagePath(name));
}

Result<std::string> DirVolumes::attachToHost(const std::string& name) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  const std::string step = absl::StrCat("attaching ", who(name), " to Dom0");
  if (!tools_) return absl::UnimplementedError(absl::StrCat(step, ": this pool runs no tools (losetup)"));
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, get(name));
  if (!v.host_device.empty()) return v.host_device;
  std::vector<std::string> argv = {"losetup", "--find", "--show"};
  if (v.read_only) argv.push_back("--read-only");
  argv.push_back(v.path);
  XENCTL_ASSIGN_OR_RETURN(core::ProcessResult run, tools_->run(argv, kToolTimeout));
  std::string device(absl::StripAsciiWhitespace(run.stdout_text));
  if (run.exit_code != 0 || !device.starts_with("/dev/"))
    return absl::UnavailableError(absl::StrCat(step, ": `", absl::StrJoin(argv, " "), "` exited with ", run.exit_code,
                                               ": ", absl::StripTrailingAsciiWhitespace(run.output),
                                               "; is the loop module loaded (modprobe loop)?"));
  return device;
}

Status DirVolumes::detachFromHost(const std::string& name) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  const std::string step = absl::StrCat("detaching ", who(name), " from Dom0");
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  XENCTL_RETURN_IF_ERROR(requireExists(name));
  for (const std::string& device : loopDevices(name)) {
    if (!tools_) return absl::UnimplementedError(absl::StrCat(step, ": this pool runs no tools (losetup)"));
    XENCTL_RETURN_IF_ERROR(annotate(runTool({"losetup", "-d", device}), step));
  }
  return absl::OkStatus();
}

Result<core::PoolInfo> DirVolumes::poolInfo() {
  XENCTL_ASSIGN_OR_RETURN(FsSpace space, fsSpace(dir_));
  XENCTL_ASSIGN_OR_RETURN(auto volumes, list());
  core::PoolInfo p;
  p.name = pool_;
  p.driver = "dir";
  p.path = dir_;
  p.size_bytes = space.size;
  p.used_bytes = space.used;
  p.free_bytes = space.free;
  p.volumes = volumes.size();
  for (const auto& v : volumes) p.allocated_bytes += v.size_bytes;
  return p;
}

}  // namespace xenctl::storage
