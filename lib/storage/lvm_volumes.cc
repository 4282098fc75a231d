#include "lib/storage/lvm_volumes.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "lib/storage/file_ops.h"
#include "lib/storage/loop_devices.h"

namespace xenctl::storage {
namespace {

constexpr std::string_view kPoolTag = "xenctl.pool";
constexpr std::string_view kOriginTag = "xenctl.origin";
constexpr std::string_view kReadOnlyTag = "xenctl.readonly";  // =1: marked read-only (lvm-snapshot)
constexpr std::string_view kNew = "++new";
constexpr std::string_view kOld = "++old";

bool isSnapshotRef(const std::string& ref) { return ref.find('@') != std::string::npos; }

std::string gib(uint64_t bytes) { return absl::StrFormat("%.2f GiB", static_cast<double>(bytes) / (1 << 30)); }
std::string mib(uint64_t bytes) { return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20)); }
std::string bytesArg(uint64_t bytes) { return absl::StrCat(bytes, "b"); }
std::string tagArg(std::string_view key, const std::string& value) { return absl::StrCat(av(key), "=", value); }

// LVM's own rules for LV names beyond the characters (lvm(8), "VALID NAMES").
Status lvmAccepts(const std::string& name) {
  static const char* const kReserved[] = {"_cdata", "_cmeta", "_corig", "_iorig", "_mimage", "_mlog", "_pmspare",
                                          "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig"};
  if (absl::StartsWith(name, "snapshot") || absl::StartsWith(name, "pvmove"))
    return absl::InvalidArgumentError(
        absl::StrCat("name '", name, "' starts with a word LVM reserves (snapshot, pvmove); choose another"));
  for (const char* r : kReserved)
    if (absl::StrContains(name, r))
      return absl::InvalidArgumentError(absl::StrCat("name '", name, "' contains '", r, "', which LVM reserves; choose another"));
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------- LvmVolumes


LvmVolumes::LvmVolumes(std::string pool, std::string vg, LvmCommon common)
    : pool_(std::move(pool)), vg_(std::move(vg)), common_(std::move(common)),
      lvm_(common_.lvm ? common_.lvm : common_.runner, common_.runner, common_.lvm_timeout) {
  if (!common_.groups) common_.groups = std::make_shared<VolumeGroups>();
}

Status LvmVolumes::checkCommon(const std::string& pool, const LvmCommon& common) {
  if (!common.clock) return absl::InvalidArgumentError(absl::StrCat("pool '", pool, "': LvmCommon has no clock"));
  return absl::OkStatus();
}

std::string LvmVolumes::lvName(const std::string& ref) {
  std::string lv = ref;
  std::replace(lv.begin(), lv.end(), '@', '+');
  return lv;
}

std::string LvmVolumes::refOf(const std::string& lv) {
  if (absl::StrContains(lv, "++")) return "";
  std::string ref = lv;
  std::replace(ref.begin(), ref.end(), '+', '@');
  return validateRef(ref, true).ok() ? ref : "";
}

Status LvmVolumes::validateRef(const std::string& ref, bool allow_snapshot) {
  const size_t at = ref.find('@');
  if (at == std::string::npos) {
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(ref));
    return lvmAccepts(ref);
  }
  if (!allow_snapshot)
    return absl::InvalidArgumentError(
        absl::StrCat("'", ref, "' names a snapshot; give a volume name ([a-z0-9][a-z0-9-_.]{0,62})"));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(ref.substr(0, at)));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(ref.substr(at + 1), "snapshot"));
  return lvmAccepts(lvName(ref));
}

std::string LvmVolumes::who(const std::string& ref) const {
  return absl::StrCat(isSnapshotRef(ref) ? "snapshot '" : "volume '", pool_, "/", ref, "'");
}

Result<LvmVolumes::Reservation> LvmVolumes::reserve(const std::string& exclusive, const std::string& shared) {
  return holds_.hold(exclusive, shared, [this](const std::string& n) { return who(n); });
}

Result<std::vector<LvRow>> LvmVolumes::reportLocked() {
  if (common_.models) {
    auto rows = common_.models->rows(vg_);
    if (rows.ok()) return rows;
    (void)warnOnce(absl::StrCat("models/", rows.status().message()),
                   absl::StrCat("pool '", pool_, "': reading VG ", vg_, " with lvs: ", rows.status().message()));
  }
  const absl::Time now = common_.clock->now();
  if (auto recent = common_.groups->recentReport(vg_, now)) return *std::move(recent);
  auto rows = lvm_.lvs(vg_);
  if (!rows.ok()) return annotate(rows.status(), absl::StrCat("listing pool '", pool_, "' (VG ", vg_, ")"));
  common_.groups->remember(vg_, *rows, now);
  return rows;
}

Status LvmVolumes::change(const std::vector<std::string>& argv) {
  common_.groups->changing(vg_);
  return lvm_.run(argv);
}

Result<std::vector<LvRow>> LvmVolumes::report() {
  std::vector<LvRow> rows;
  {
    std::shared_lock lock(vgLock());
    XENCTL_ASSIGN_OR_RETURN(rows, reportLocked());
  }
  check(rows);
  return rows;
}

const LvRow* LvmVolumes::find(const std::vector<LvRow>& rows, const std::string& lv) {
  for (const auto& r : rows)
    if (r.name == lv) return &r;
  return nullptr;
}

std::vector<std::string> LvmVolumes::childrenOf(const std::vector<LvRow>& rows, const std::string& lv) const {
  std::vector<std::string> out;
  for (const auto& r : rows) {
    const std::string ref = refOf(r.name);
    if (!ref.empty() && !isSnapshotRef(ref) && ours(r) && r.tag(kOriginTag) == lv) out.push_back(ref);
  }
  return out;
}

std::vector<std::string> LvmVolumes::snapshotsOf(const std::vector<LvRow>& rows, const std::string& ref) const {
  std::vector<std::string> out;
  const std::string prefix = ref + "+";
  for (const auto& r : rows)
    if (absl::StartsWith(r.name, prefix) && ours(r) && !refOf(r.name).empty()) out.push_back(r.name.substr(prefix.size()));
  std::sort(out.begin(), out.end());
  return out;
}

Result<core::Volume> LvmVolumes::volumeOf(const std::vector<LvRow>& rows, const std::string& ref) const {
  const LvRow* lv = find(rows, lvName(ref));
  if (!lv || !ours(*lv))
    return absl::NotFoundError(absl::StrCat(who(ref), " not found; `vm-volume list` shows the volumes"));
  core::Volume v;
  v.pool = pool_;
  v.name = ref;
  v.path = lvPath(lv->name);
  if (lv->active()) v.host_device = v.path;
  v.read_only = lv->readOnly() || isSnapshotRef(ref) || lv->tag(kReadOnlyTag) == "1";
  v.created_at = lv->time;
  std::string origin = lv->tag(kOriginTag);
  if (origin.empty() && !lv->origin.empty()) origin = lv->origin;  // made by hand
  v.origin = origin.empty() ? "" : refOf(origin);
  fill(*lv, v);
  if (!isSnapshotRef(ref)) v.snapshots = snapshotsOf(rows, ref);
  return v;
}

Result<core::VolumeDependents> LvmVolumes::dependentsOf(const std::vector<LvRow>& rows, const std::string& ref) const {
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, volumeOf(rows, ref));
  core::VolumeDependents d{std::move(v.snapshots), childrenOf(rows, lvName(ref))};
  std::sort(d.clones.begin(), d.clones.end());
  return d;
}

Result<core::VolumeDependents> LvmVolumes::dependents(const std::string& name) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  XENCTL_ASSIGN_OR_RETURN(auto rows, report());
  return dependentsOf(rows, name);
}

Result<core::Volume> LvmVolumes::get(const std::string& name) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  XENCTL_ASSIGN_OR_RETURN(auto rows, report());
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, volumeOf(rows, name));
  if (!v.host_device.empty()) v.host_device_domids = domainsServing(xenBlockBackends(), v.host_device);
  return v;
}

Result<std::vector<core::Volume>> LvmVolumes::list() {
  XENCTL_ASSIGN_OR_RETURN(auto rows, report());
  const auto served = xenBlockBackends();
  std::vector<core::Volume> out;
  for (const auto& r : rows) {
    const std::string ref = refOf(r.name);
    if (ref.empty() || !ours(r)) continue;
    XENCTL_ASSIGN_OR_RETURN(core::Volume v, volumeOf(rows, ref));
    if (!v.host_device.empty()) v.host_device_domids = domainsServing(served, v.host_device);
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const core::Volume& a, const core::Volume& b) { return a.name < b.name; });
  return out;
}

Status LvmVolumes::setReadOnly(const std::string& name, bool read_only) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  XENCTL_ASSIGN_OR_RETURN(const std::string step, core::readOnlyMarkStep(who(name), name, read_only));
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  std::unique_lock lock(vgLock());
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, volumeOf(rows, name));
  if (v.read_only == read_only) return absl::OkStatus();
  return annotate(change(readOnlyMarkArgs(*find(rows, lvName(name)), read_only)), step);
}

std::vector<std::string> LvmVolumes::readOnlyMarkArgs(const LvRow& lv, bool read_only) const {
  return {"lvchange", "-p", read_only ? "r" : "rw", vgLv(lv.name)};
}

std::vector<std::string> LvmSnapshotVolumes::readOnlyMarkArgs(const LvRow& lv, bool read_only) const {
  const std::string tag = tagArg(kReadOnlyTag, "1");
  return {"lvchange", read_only ? "--addtag" : "--deltag", tag, vgLv(lv.name)};
}

Result<std::string> LvmVolumes::attachToHost(const std::string& name) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  const std::string step = absl::StrCat("attaching ", who(name), " to Dom0");
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  std::unique_lock lock(vgLock());
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, volumeOf(rows, name));
  if (v.host_device.empty())
    XENCTL_RETURN_IF_ERROR(annotate(change({"lvchange", "-ay", "-K", vgLv(lvName(name))}), step));
  return v.path;
}

Status LvmVolumes::detachFromHost(const std::string& name) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  return get(name).status();
}

Status LvmVolumes::remove(const std::string& name) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  const std::string step = absl::StrCat("deleting ", who(name));
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  std::unique_lock lock(vgLock());
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  XENCTL_ASSIGN_OR_RETURN(core::VolumeDependents deps, dependentsOf(rows, name));
  XENCTL_RETURN_IF_ERROR(core::requireNoDependents(deps, step));
  XENCTL_RETURN_IF_ERROR(annotate(change({"lvremove", "-y", vgLv(lvName(name))}), step));
  rows.erase(std::remove_if(rows.begin(), rows.end(), [&](const LvRow& r) { return r.name == lvName(name); }),
             rows.end());
  common_.groups->amend(vg_, std::move(rows), common_.clock->now());
  return absl::OkStatus();
}

Status LvmVolumes::validateCreate(const std::string& name, uint64_t size_bytes,
                                  const std::optional<std::string>& ext4_label) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, false));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
  if (ext4_label && ext4_label->size() > 16)
    return absl::InvalidArgumentError(
        absl::StrCat("ext4 label '", *ext4_label, "' is longer than 16 bytes, the most ext4 keeps"));
  return absl::OkStatus();
}

Result<core::Volume> LvmVolumes::finishCreate(const std::string& work, const std::string& name, Status made,
                                              const std::string& step) {
  std::unique_lock lock(vgLock());
  if (made.ok()) made = change({"lvrename", vg_, work, name});
  if (!made.ok()) {
    (void)change({"lvremove", "-y", vgLv(work)});
    return annotate(made, step);
  }
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  return volumeOf(rows, name);
}

Result<LvmVolumes::Making> LvmVolumes::beginClone(const std::string& base, const std::string& name,
                                                  uint64_t size_bytes) {
  XENCTL_RETURN_IF_ERROR(validateRef(base, true));
  XENCTL_RETURN_IF_ERROR(validateRef(name, false));
  if (size_bytes) XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
  std::string step = absl::StrCat("cloning ", who(base), " to '", name, "'");
  XENCTL_ASSIGN_OR_RETURN(Reservation names, reserve(name, base));
  std::unique_lock vg(vgLock());
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  XENCTL_ASSIGN_OR_RETURN(core::Volume b, volumeOf(rows, base));
  if (find(rows, name)) return absl::AlreadyExistsError(absl::StrCat(who(name), " already exists"));
  if (size_bytes && size_bytes < b.size_bytes)
    return absl::InvalidArgumentError(absl::StrCat(step, ": size ", size_bytes, " bytes is below the base's ",
                                                   b.size_bytes, " bytes; a clone can only be as large or larger"));
  return Making{std::move(names), std::move(vg), std::move(rows), std::move(b), std::move(step)};
}

Result<LvmVolumes::Making> LvmVolumes::beginRollback(const std::string& volume, const std::string& snapshot) {
  XENCTL_RETURN_IF_ERROR(validateRef(volume, false));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(snapshot, "snapshot"));
  const std::string snap = core::snapshotName(volume, snapshot);
  std::string step = absl::StrCat("rolling ", who(volume), " back to snapshot '", snapshot, "'");
  XENCTL_ASSIGN_OR_RETURN(Reservation names, reserve(volume, snap));
  std::unique_lock vg(vgLock());
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, volumeOf(rows, volume));
  XENCTL_RETURN_IF_ERROR(volumeOf(rows, snap).status());
  return Making{std::move(names), std::move(vg), std::move(rows), std::move(v), std::move(step)};
}

Result<LvmVolumes::Making> LvmVolumes::beginResize(const std::string& name, uint64_t size_bytes) {
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
  std::string step = absl::StrCat("resizing ", who(name));
  XENCTL_ASSIGN_OR_RETURN(Reservation names, reserve(name, ""));
  std::unique_lock vg(vgLock());
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, volumeOf(rows, name));
  if (v.read_only) return absl::FailedPreconditionError(absl::StrCat(step, ": it is read-only"));
  if (size_bytes < v.size_bytes)
    return absl::InvalidArgumentError(absl::StrCat(step, ": ", size_bytes, " bytes is below its size of ",
                                                   v.size_bytes, " bytes; volumes only grow"));
  return Making{std::move(names), std::move(vg), std::move(rows), std::move(v), std::move(step)};
}

Result<LvmVolumes::Making> LvmVolumes::beginSnapshot(const std::string& volume, const std::string& snapshot) {
  if (isSnapshotRef(volume))
    return absl::FailedPreconditionError(
        absl::StrCat(who(volume), " is a snapshot; snapshots are taken of volumes (clone it first)"));
  XENCTL_RETURN_IF_ERROR(validateRef(volume, false));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(snapshot, "snapshot"));
  const std::string name = core::snapshotName(volume, snapshot);
  XENCTL_RETURN_IF_ERROR(validateRef(name, true));
  std::string step = absl::StrCat("taking ", who(name));
  XENCTL_ASSIGN_OR_RETURN(Reservation names, reserve(name, volume));
  std::unique_lock vg(vgLock());
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, volumeOf(rows, volume));
  if (find(rows, lvName(name))) return absl::AlreadyExistsError(absl::StrCat(who(name), " already exists"));
  return Making{std::move(names), std::move(vg), std::move(rows), std::move(v), std::move(step)};
}

Status LvmVolumes::makeExt4(const std::string& lv, const std::string& label) {
  return lvm_.runTool({"mkfs.ext4", "-q", "-F", "-L", label, "-E", "lazy_itable_init=1,nodiscard", lvPath(lv)},
                      common_.tool_timeout);
}

Status LvmVolumes::growFs(const std::string& lv) {
  XENCTL_ASSIGN_OR_RETURN(bool ext, hasExtSuperblock(lvPath(lv)));
  if (!ext) return absl::OkStatus();
  // resize2fs grows an unmounted file system only after a forced check;
  // e2fsck -p exits 1 when it fixed something, which is fine.
  XENCTL_RETURN_IF_ERROR(lvm_.runTool({"e2fsck", "-f", "-p", lvPath(lv)}, common_.tool_timeout, 1));
  return lvm_.runTool({"resize2fs", lvPath(lv)}, common_.tool_timeout);
}

Status LvmVolumes::recover() {
  std::unique_lock lock(vgLock());
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  for (const auto& r : rows) {
    if (!ours(r)) continue;
    const std::string what = absl::StrCat("pool '", pool_, "': cleaning up ", vgLv(r.name), " left by a crash");
    if (absl::EndsWith(r.name, av(kNew))) {
      XENCTL_RETURN_IF_ERROR(annotate(change({"lvremove", "-y", vgLv(r.name)}), what));
    } else if (absl::EndsWith(r.name, av(kOld))) {
      const std::string name = r.name.substr(0, r.name.size() - kOld.size());
      if (find(rows, name))
        XENCTL_RETURN_IF_ERROR(annotate(change({"lvremove", "-y", vgLv(r.name)}), what));
      else
        XENCTL_RETURN_IF_ERROR(annotate(change({"lvrename", vg_, r.name, name}), what));
    }
  }
  return absl::OkStatus();
}

Status LvmVolumes::warnOnce(const std::string& key, const std::string& message) {
  {
    std::lock_guard lock(mu_);
    if (!warned_.insert(key).second) return absl::OkStatus();
  }
  if (common_.warn) common_.warn(message);
  return absl::OkStatus();
}

// ------------------------------------------------------------ LvmThinVolumes

LvmThinVolumes::LvmThinVolumes(std::string pool, LvmThinOptions options, LvmCommon common)
    : LvmVolumes(std::move(pool), options.vg, std::move(common)), opt_(std::move(options)) {}

Result<std::unique_ptr<LvmThinVolumes>> LvmThinVolumes::open(std::string pool, LvmThinOptions options,
                                                             LvmCommon common) {
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(pool, "pool"));
  XENCTL_RETURN_IF_ERROR(checkCommon(pool, common));
  if (options.vg.empty() || options.thinpool.empty())
    return absl::InvalidArgumentError(absl::StrCat("pool '", pool, "': an lvm-thin pool needs a vg and a thinpool"));
  std::unique_ptr<LvmThinVolumes> p(new LvmThinVolumes(std::move(pool), std::move(options), std::move(common)));
  const std::string what = absl::StrCat("opening pool '", p->pool_, "' on thin pool ", p->opt_.vg, "/", p->opt_.thinpool);
  XENCTL_ASSIGN_OR_RETURN(auto rows, p->report());
  XENCTL_RETURN_IF_ERROR(annotate(p->thinPoolRow(rows).status(), what));
  XENCTL_RETURN_IF_ERROR(annotate(p->recover(), what));
  return p;
}

Result<const LvRow*> LvmThinVolumes::thinPoolRow(const std::vector<LvRow>& rows) const {
  const LvRow* pool = find(rows, opt_.thinpool);
  if (!pool || !pool->thinPool())
    return absl::FailedPreconditionError(absl::StrCat(
        vg_, "/", opt_.thinpool, pool ? " is not a thin pool" : " does not exist",
        "; make one with `lvcreate --type thin-pool -L SIZE -n ", opt_.thinpool, " ", vg_, "` or fix [[pool]] thinpool"));
  return pool;
}

bool LvmThinVolumes::ours(const LvRow& lv) const { return lv.thinVolume() && lv.pool_lv == opt_.thinpool; }

void LvmThinVolumes::fill(const LvRow& lv, core::Volume& v) const {
  v.size_bytes = lv.size;
  v.used_bytes = lv.data_percent > 0 ? static_cast<uint64_t>(static_cast<double>(lv.size) * lv.data_percent / 100) : 0;
}

Status LvmThinVolumes::checkGuardRails(const std::vector<LvRow>& rows, uint64_t add_bytes, const std::string& step) const {
  XENCTL_ASSIGN_OR_RETURN(const LvRow* pool, thinPoolRow(rows));
  const std::string name = absl::StrCat(vg_, "/", opt_.thinpool);
  if (pool->data_percent >= opt_.data_watermark)
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s: thin pool %s data is %.1f%% full (%s of %s), at or past data_watermark %.1f%%; delete volumes or grow "
        "the pool (lvextend -L +SIZE %s)",
        step, name, pool->data_percent, gib(static_cast<uint64_t>(pool->size * pool->data_percent / 100)),
        gib(pool->size), opt_.data_watermark, name));
  if (pool->metadata_percent >= opt_.metadata_watermark)
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s: thin pool %s metadata is %.1f%% full, at or past metadata_watermark %.1f%%; delete volumes or grow its "
        "metadata (lvextend --poolmetadatasize +SIZE %s)",
        step, name, pool->metadata_percent, opt_.metadata_watermark, name));
  uint64_t virt = 0;
  for (const auto& r : rows)
    if (r.thinVolume() && r.pool_lv == opt_.thinpool) virt += r.size;
  const uint64_t after = virt + add_bytes;
  const double ratio = pool->size ? static_cast<double>(after) / static_cast<double>(pool->size) : INFINITY;
  if (ratio > opt_.max_overcommit)
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s: thin pool %s would be over-committed %.2fx (%s of thin volumes, %s of them new, on %s of data space), "
        "past max_overcommit %.2fx; delete volumes, grow the pool (lvextend -L +SIZE %s) or raise max_overcommit",
        step, name, ratio, gib(after), gib(add_bytes), gib(pool->size), opt_.max_overcommit, name));
  return absl::OkStatus();
}

Result<core::Volume> LvmThinVolumes::create(const std::string& name, uint64_t size_bytes,
                                            const std::optional<std::string>& ext4_label) {
  XENCTL_RETURN_IF_ERROR(validateCreate(name, size_bytes, ext4_label));
  const std::string step = absl::StrCat("creating ", who(name));
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  // Made under a work name and renamed when whole: nobody sees a half-made file system.
  const std::string work = name + std::string(kNew);
  {
    std::unique_lock lock(vgLock());
    XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
    if (find(rows, name)) return absl::AlreadyExistsError(absl::StrCat(who(name), " already exists"));
    XENCTL_RETURN_IF_ERROR(checkGuardRails(rows, size_bytes, step));
    XENCTL_RETURN_IF_ERROR(annotate(change({"lvcreate", "-y", "-T", vgLv(opt_.thinpool), "-V", bytesArg(size_bytes),
                                             "-n", work, "-kn", "-ay"}),
                                   step));
  }
  Status st = ext4_label ? makeExt4(work, *ext4_label) : absl::OkStatus();
  return finishCreate(work, name, st, step);
}

Result<core::Volume> LvmThinVolumes::clone(const std::string& base, const std::string& name, uint64_t size_bytes,
                                           const core::CopyProgress& progress) {
  (void)progress;  // a thin snapshot copies nothing
  XENCTL_ASSIGN_OR_RETURN(Making m, beginClone(base, name, size_bytes));
  const core::Volume& b = m.source;
  const std::string& step = m.step;
  const uint64_t size = std::max(size_bytes, b.size_bytes);
  XENCTL_RETURN_IF_ERROR(checkGuardRails(m.rows, size, step));
  // -kn: a clone is an ordinary volume (a snapshot gets the activation-skip
  // flag by default and would have no device node); -ay: Xen needs its node.
  // The base is not activated: a thin snapshot needs only the pool.
  // --noudevsync: lvm2 returns once the LV is active (its table loaded and
  // resumed: whole) instead of waiting, under its VG lock and ours, for udev
  // to process the activation (about half of an lvcreate in the lab: 3.29 s
  // against 1.58 s, docs/lab.md); the link udev makes is awaited below, with
  // both locks released, so that concurrent clones overlap there.
  std::vector<std::string> argv = {"lvcreate", "-y", "-s", "-kn", "-ay", "-p", "rw", "-n", name, "--addtag",
                                   tagArg(kOriginTag, lvName(base)), vgLv(lvName(base))};
  if (common_.await_device) argv.insert(argv.begin() + 2, "--noudevsync");
  XENCTL_RETURN_IF_ERROR(annotate(change(argv), step));
  if (size > b.size_bytes) {
    Status st = change({"lvextend", "-L", bytesArg(size), vgLv(name)});
    if (!st.ok()) {
      (void)change({"lvremove", "-y", vgLv(name)});
      return annotate(st, step);
    }
  }
  // The VG as this clone leaves it, without reading it again (with many LVs
  // a report costs a good part of a clone): the rows read under the lock and
  // the LV lvcreate made as lvs would show it, a thin volume mapping what its
  // base maps, writable, active, without the skip flag, tagged with its origin.
  LvRow made = *find(m.rows, lvName(base));
  made.name = name;
  made.origin = lvName(base);
  made.tags = {tagArg(kOriginTag, lvName(base))};
  made.time = common_.clock->now();
  if (made.attr.size() >= 10) {
    made.attr[1] = 'w';
    made.attr[4] = 'a';
    made.attr[5] = '-';
    made.attr[9] = '-';
  }
  if (made.data_percent > 0 && size > made.size)
    made.data_percent = made.data_percent * static_cast<double>(made.size) / static_cast<double>(size);
  made.size = size;
  m.rows.push_back(std::move(made));
  common_.groups->amend(vg_, m.rows, common_.clock->now());
  XENCTL_ASSIGN_OR_RETURN(core::Volume made_volume, volumeOf(m.rows, name));
  if (!common_.await_device) return made_volume;
  // The clone is returned only once its path is a block device. The name
  // stays reserved (m.names) while udev works: no call of ours sees or
  // removes it before it is usable.
  m.vg.unlock();
  Status node = common_.await_device(made_volume.path, common_.lvm_timeout);
  if (node.ok()) return made_volume;
  m.vg.lock();
  (void)change({"lvremove", "-y", vgLv(name)});
  return annotate(node, step);
}

Result<core::Volume> LvmThinVolumes::snapshot(const std::string& volume, const std::string& snapshot,
                                              const core::CopyProgress& progress) {
  (void)progress;
  XENCTL_ASSIGN_OR_RETURN(Making m, beginSnapshot(volume, snapshot));
  const std::string name = core::snapshotName(volume, snapshot);
  XENCTL_RETURN_IF_ERROR(checkGuardRails(m.rows, m.source.size_bytes, m.step));
  // Read-only, and left inactive with the activation-skip flag: a golden copy.
  XENCTL_RETURN_IF_ERROR(annotate(change({"lvcreate", "-y", "-s", "-ky", "-p", "r", "-n", lvName(name), "--addtag",
                                           tagArg(kOriginTag, volume), vgLv(volume)}),
                                 m.step));
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  return volumeOf(rows, name);
}

Result<core::Volume> LvmThinVolumes::rollback(const std::string& volume, const std::string& snapshot,
                                              const core::CopyProgress& progress) {
  (void)progress;
  XENCTL_ASSIGN_OR_RETURN(Making m, beginRollback(volume, snapshot));
  const std::string snap = core::snapshotName(volume, snapshot);
  const std::string& step = m.step;
  std::vector<LvRow>& rows = m.rows;
  const LvRow* row = find(rows, volume);
  if (m.source.read_only) return absl::FailedPreconditionError(absl::StrCat(step, ": the volume is read-only"));
  if (row->open())
    return absl::FailedPreconditionError(absl::StrCat(step, ": ", lvPath(volume), " is open (mounted, or a guest "
                                                      "uses it); close it first"));
  const std::string fresh = volume + std::string(kNew), old = volume + std::string(kOld);
  std::vector<std::string> argv = {"lvcreate", "-y", "-s", "-kn", "-ay", "-p", "rw", "-n", fresh};
  const std::string origin = row->tag(kOriginTag);
  if (!origin.empty()) argv.insert(argv.end(), {"--addtag", tagArg(kOriginTag, origin)});
  argv.push_back(vgLv(lvName(snap)));
  XENCTL_RETURN_IF_ERROR(annotate(change(argv), step));
  // The swap: two renames under the VG lock and the volume's reservation.
  if (Status st = change({"lvrename", vg_, volume, old}); !st.ok()) {
    (void)change({"lvremove", "-y", vgLv(fresh)});
    return annotate(st, step);
  }
  if (Status st = change({"lvrename", vg_, fresh, volume}); !st.ok()) {
    (void)change({"lvrename", vg_, old, volume});
    (void)change({"lvremove", "-y", vgLv(fresh)});
    return annotate(st, step);
  }
  // The old content is gone from the API's view now; a failure here leaves
  // NAME++old for the next open() to remove.
  XENCTL_RETURN_IF_ERROR(annotate(change({"lvremove", "-y", vgLv(old)}), step));
  XENCTL_ASSIGN_OR_RETURN(rows, reportLocked());
  return volumeOf(rows, volume);
}

Result<core::Volume> LvmThinVolumes::resize(const std::string& name, uint64_t size_bytes) {
  XENCTL_ASSIGN_OR_RETURN(Making m, beginResize(name, size_bytes));
  const core::Volume& v = m.source;
  if (size_bytes == v.size_bytes) return v;
  XENCTL_RETURN_IF_ERROR(checkGuardRails(m.rows, size_bytes - v.size_bytes, m.step));
  XENCTL_RETURN_IF_ERROR(annotate(change({"lvextend", "-L", bytesArg(size_bytes), vgLv(name)}), m.step));
  if (!find(m.rows, name)->active())
    XENCTL_RETURN_IF_ERROR(annotate(change({"lvchange", "-ay", "-K", vgLv(name)}), m.step));
  m.vg.unlock();  // the file system is grown under the volume's reservation only
  XENCTL_RETURN_IF_ERROR(annotate(growFs(name), m.step));
  return get(name);
}

Result<core::PoolInfo> LvmThinVolumes::poolInfo() {
  XENCTL_ASSIGN_OR_RETURN(auto rows, report());
  XENCTL_ASSIGN_OR_RETURN(const LvRow* pool, thinPoolRow(rows));
  core::PoolInfo p;
  p.name = pool_;
  p.driver = "lvm-thin";
  p.path = absl::StrCat(vg_, "/", opt_.thinpool);
  p.size_bytes = pool->size;
  p.used_bytes = static_cast<uint64_t>(static_cast<double>(pool->size) * std::max(0.0, pool->data_percent) / 100);
  p.free_bytes = p.size_bytes - std::min(p.size_bytes, p.used_bytes);
  p.metadata_percent = std::max(0.0, pool->metadata_percent);
  for (const auto& r : rows) {
    if (!ours(r)) continue;
    p.allocated_bytes += r.size;
    if (!refOf(r.name).empty()) ++p.volumes;
  }
  return p;
}

// -------------------------------------------------------- LvmSnapshotVolumes

LvmSnapshotVolumes::LvmSnapshotVolumes(std::string pool, LvmSnapshotOptions options, LvmCommon common)
    : LvmVolumes(std::move(pool), options.vg, std::move(common)), opt_(std::move(options)) {}

Result<std::unique_ptr<LvmSnapshotVolumes>> LvmSnapshotVolumes::open(std::string pool, LvmSnapshotOptions options,
                                                                     LvmCommon common) {
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(pool, "pool"));
  XENCTL_RETURN_IF_ERROR(checkCommon(pool, common));
  if (options.vg.empty())
    return absl::InvalidArgumentError(absl::StrCat("pool '", pool, "': an lvm-snapshot pool needs a vg"));
  std::unique_ptr<LvmSnapshotVolumes> p(
      new LvmSnapshotVolumes(std::move(pool), std::move(options), std::move(common)));
  const std::string what = absl::StrCat("opening pool '", p->pool_, "' on VG ", p->vg_);
  XENCTL_RETURN_IF_ERROR(annotate(p->lvm_.vgs(p->vg_).status(), what));
  XENCTL_RETURN_IF_ERROR(annotate(p->recover(), what));
  return p;
}

bool LvmSnapshotVolumes::ours(const LvRow& lv) const { return lv.tag(kPoolTag) == pool_; }

void LvmSnapshotVolumes::fill(const LvRow& lv, core::Volume& v) const {
  if (lv.classicSnapshot()) {
    v.size_bytes = lv.origin_size;
    v.used_bytes = lv.data_percent > 0 ? static_cast<uint64_t>(static_cast<double>(lv.size) * lv.data_percent / 100) : 0;
  } else {
    v.size_bytes = lv.size;
    v.used_bytes = lv.size;
  }
}

void LvmSnapshotVolumes::check(const std::vector<LvRow>& rows) {
  for (const auto& r : rows) {
    if (!ours(r) || !r.classicSnapshot()) continue;
    const std::string ref = refOf(r.name);
    if (ref.empty()) continue;
    if (r.invalidSnapshot())
      (void)warnOnce(absl::StrCat(r.name, "/invalid"),
                     absl::StrCat(who(ref), " (", vgLv(r.name), ") overflowed its copy-on-write store of ",
                                  mib(r.size), " and lost its content; delete it"));
    else if (r.data_percent >= opt_.snapshot_watermark)
      (void)warnOnce(absl::StrCat(r.name, "/", static_cast<int>(r.data_percent / 5)),
                     absl::StrFormat("%s (%s) has used %.1f%% of its copy-on-write store of %s (snapshot_watermark "
                                     "%.1f%%); at 100%% it is lost: grow it (lvextend -L +SIZE %s) or delete it",
                                     who(ref), vgLv(r.name), r.data_percent, mib(r.size), opt_.snapshot_watermark,
                                     vgLv(r.name)));
  }
}

uint64_t LvmSnapshotVolumes::cowBytes(uint64_t origin_bytes, uint64_t extent_bytes) const {
  uint64_t want = opt_.snapshot_bytes
                      ? opt_.snapshot_bytes
                      : static_cast<uint64_t>(std::ceil(static_cast<double>(origin_bytes) * opt_.snapshot_percent / 100));
  if (extent_bytes == 0) return want;
  return std::max<uint64_t>(1, (want + extent_bytes - 1) / extent_bytes) * extent_bytes;
}

Status LvmSnapshotVolumes::snapshotLv(const std::vector<LvRow>& rows, const LvRow& origin, const std::string& lv,
                                      bool read_only, const std::string& step) {
  (void)rows;
  XENCTL_ASSIGN_OR_RETURN(VgRow vg, lvm_.vgs(vg_));
  const uint64_t cow = cowBytes(origin.size, vg.extent_size);
  if (cow > vg.free)
    return absl::ResourceExhaustedError(absl::StrCat(
        step, ": its copy-on-write store needs ", cow, " bytes (", gib(cow), ") but VG ", vg_, " has ", vg.free,
        " bytes (", gib(vg.free), ") free; delete volumes, add a PV (vgextend) or lower snapshot_size"));
  return annotate(change({"lvcreate", "-y", "-s", "-L", bytesArg(cow), "-p", read_only ? "r" : "rw", "-n", lv,
                           "--addtag", tagArg(kPoolTag, pool_), "--addtag", tagArg(kOriginTag, origin.name),
                           vgLv(origin.name)}),
                 step);
}

Result<core::Volume> LvmSnapshotVolumes::create(const std::string& name, uint64_t size_bytes,
                                                const std::optional<std::string>& ext4_label) {
  XENCTL_RETURN_IF_ERROR(validateCreate(name, size_bytes, ext4_label));
  const std::string step = absl::StrCat("creating ", who(name));
  XENCTL_ASSIGN_OR_RETURN(Reservation r, reserve(name, ""));
  const std::string work = name + std::string(kNew);
  {
    std::unique_lock lock(vgLock());
    XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
    if (find(rows, name)) return absl::AlreadyExistsError(absl::StrCat(who(name), " already exists"));
    XENCTL_ASSIGN_OR_RETURN(VgRow vg, lvm_.vgs(vg_));
    if (size_bytes > vg.free)
      return absl::ResourceExhaustedError(absl::StrCat(step, ": it needs ", size_bytes, " bytes (", gib(size_bytes),
                                                       ") but VG ", vg_, " has ", vg.free, " bytes (", gib(vg.free),
                                                       ") free; delete volumes or add a PV (vgextend)"));
    XENCTL_RETURN_IF_ERROR(annotate(change({"lvcreate", "-y", "-L", bytesArg(size_bytes), "-n", work, "-ay",
                                             "--addtag", tagArg(kPoolTag, pool_), vg_}),
                                   step));
  }
  // Zeroed: a plain LV holds whatever a deleted one left on its extents.
  Status st = lvm_.runTool({"blkdiscard", "-z", lvPath(work)}, common_.tool_timeout);
  if (st.ok() && ext4_label) st = makeExt4(work, *ext4_label);
  return finishCreate(work, name, st, step);
}

Result<core::Volume> LvmSnapshotVolumes::clone(const std::string& base, const std::string& name, uint64_t size_bytes,
                                               const core::CopyProgress& progress) {
  (void)progress;
  XENCTL_ASSIGN_OR_RETURN(Making m, beginClone(base, name, size_bytes));
  const core::Volume& b = m.source;
  const std::string& step = m.step;
  const LvRow* origin = find(m.rows, lvName(base));
  if (isSnapshotRef(base) || origin->classicSnapshot())
    return absl::FailedPreconditionError(absl::StrCat(
        step, ": ", who(base), " is a classic LVM snapshot, which LVM cannot snapshot again; clone its origin, or use "
        "an lvm-thin pool for clones of clones"));
  if (size_bytes > b.size_bytes)
    return absl::FailedPreconditionError(absl::StrCat(
        step, ": a classic LVM snapshot has its origin's size (", b.size_bytes, " bytes); clone without a size, or "
        "use an lvm-thin pool for larger clones"));
  XENCTL_RETURN_IF_ERROR(snapshotLv(m.rows, *origin, name, false, step));
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  return volumeOf(rows, name);
}

Result<core::Volume> LvmSnapshotVolumes::snapshot(const std::string& volume, const std::string& snapshot,
                                                  const core::CopyProgress& progress) {
  (void)progress;
  XENCTL_ASSIGN_OR_RETURN(Making m, beginSnapshot(volume, snapshot));
  const std::string name = core::snapshotName(volume, snapshot);
  const LvRow* origin = find(m.rows, volume);
  if (origin->classicSnapshot())
    return absl::FailedPreconditionError(absl::StrCat(
        m.step, ": ", who(volume), " is a clone, a classic LVM snapshot, which LVM cannot snapshot; use an lvm-thin "
        "pool to snapshot clones"));
  XENCTL_RETURN_IF_ERROR(snapshotLv(m.rows, *origin, lvName(name), true, m.step));
  XENCTL_ASSIGN_OR_RETURN(auto rows, reportLocked());
  return volumeOf(rows, name);
}

Result<core::Volume> LvmSnapshotVolumes::rollback(const std::string& volume, const std::string& snapshot,
                                                  const core::CopyProgress& progress) {
  (void)progress;
  XENCTL_ASSIGN_OR_RETURN(Making m, beginRollback(volume, snapshot));
  const std::string snap = core::snapshotName(volume, snapshot);
  const std::string& step = m.step;
  std::vector<LvRow>& rows = m.rows;
  const LvRow* vol = find(rows, volume);
  const LvRow* s = find(rows, lvName(snap));
  if (m.source.read_only) return absl::FailedPreconditionError(absl::StrCat(step, ": the volume is read-only"));
  if (vol->open())
    return absl::FailedPreconditionError(absl::StrCat(step, ": ", lvPath(volume), " is open (mounted, or a guest "
                                                      "uses it); close it first"));
  if (s->invalidSnapshot())
    return absl::FailedPreconditionError(absl::StrCat(step, ": the snapshot overflowed its copy-on-write store and "
                                                      "lost its content; delete it"));
  if (s->data_percent >= opt_.snapshot_watermark)
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: the snapshot has used %.1f%% of its copy-on-write store, at or past snapshot_watermark %.1f%%; grow it "
        "first (lvextend -L +SIZE %s)",
        step, s->data_percent, opt_.snapshot_watermark, vgLv(s->name)));
  const uint64_t cow = s->size;
  // The origin shows the snapshot's content as soon as the merge starts; the
  // command waits (polling every second) until it ends and the snapshot is gone.
  XENCTL_RETURN_IF_ERROR(annotate(change({"lvconvert", "-y", "--merge", "-i", "1", "--config",
                                           "global {use_lvmpolld=0}", vgLv(s->name)}),
                                 step));
  // Kept, as the port promises: taken again, now equal to the volume.
  XENCTL_RETURN_IF_ERROR(annotate(
      change({"lvcreate", "-y", "-s", "-L", bytesArg(cow), "-p", "r", "-n", s->name, "--addtag",
                tagArg(kPoolTag, pool_), "--addtag", tagArg(kOriginTag, volume), vgLv(volume)}),
      absl::StrCat(step, " (the volume is rolled back; taking the snapshot again failed)")));
  XENCTL_ASSIGN_OR_RETURN(rows, reportLocked());
  return volumeOf(rows, volume);
}

Result<core::Volume> LvmSnapshotVolumes::resize(const std::string& name, uint64_t size_bytes) {
  XENCTL_ASSIGN_OR_RETURN(Making m, beginResize(name, size_bytes));
  const core::Volume& v = m.source;
  if (find(m.rows, name)->classicSnapshot())
    return absl::FailedPreconditionError(absl::StrCat(
        m.step, ": it is a clone, a classic LVM snapshot, which has its origin's size; use an lvm-thin pool"));
  if (size_bytes == v.size_bytes) return v;
  XENCTL_RETURN_IF_ERROR(annotate(change({"lvextend", "-L", bytesArg(size_bytes), vgLv(name)}), m.step));
  m.vg.unlock();  // the file system is grown under the volume's reservation only
  XENCTL_RETURN_IF_ERROR(annotate(growFs(name), m.step));
  return get(name);
}

Result<core::PoolInfo> LvmSnapshotVolumes::poolInfo() {
  XENCTL_ASSIGN_OR_RETURN(auto rows, report());
  VgRow vg;
  {
    std::shared_lock lock(vgLock());
    XENCTL_ASSIGN_OR_RETURN(vg, lvm_.vgs(vg_));
  }
  core::PoolInfo p;
  p.name = pool_;
  p.driver = "lvm-snapshot";
  p.path = vg_;
  p.size_bytes = vg.size;
  p.free_bytes = vg.free;
  p.used_bytes = vg.size - std::min(vg.size, vg.free);
  for (const auto& r : rows) {
    if (!ours(r) || refOf(r.name).empty()) continue;
    ++p.volumes;
    p.allocated_bytes += r.classicSnapshot() ? r.origin_size : r.size;
  }
  return p;
}

}  // namespace xenctl::storage
