#include "lib/provision/domain_manager.h"

#include <algorithm>
#include <set>
#include <stop_token>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace xenctl::provision {

using core::DomainState;
using core::OperationRecord;

namespace {

std::string quoted(const std::string& name) { return absl::StrCat("domain '", name, "'"); }

// "domain 'web1': disk xvda (vol:main/web1-root)".
std::string diskOf(const std::string& domain, const core::DiskSpec& d) {
  return absl::StrCat(quoted(domain), ": disk ", d.vdev, " (", d.target, ")");
}

// Disk `wanted` of domain `self` names the volume that disk `used` of domain
// `user` (present or starting) names. Readers share; a writer shares with no one.
Status volumeConflict(const std::string& self, const core::DiskSpec& wanted, const std::string& user,
                      const core::DiskSpec& used) {
  if (wanted.mode == "r" && used.mode == "r") return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(diskOf(self, wanted), ": domain '", user, "' uses it (mode ", used.mode,
                   "); a volume written by one domain is used by no other; shut '", user,
                   "' down first, or give this domain a clone (`vm-volume clone`)"));
}

core::DomainEventKind eventKindFor(core::HypervisorEvent::Kind k) {
  using H = core::HypervisorEvent::Kind;
  using D = core::DomainEventKind;
  switch (k) {
    case H::kStarted: return D::kStarted;
    case H::kPaused: return D::kPaused;
    case H::kUnpaused: return D::kUnpaused;
    case H::kShutdown: return D::kShutdown;
    case H::kRebooted: return D::kRebooted;
    case H::kCrashed: return D::kCrashed;
    case H::kDestroyed: return D::kDestroyed;
    case H::kResourcesChanged: return D::kResourcesChanged;
  }
  return D::kResourcesChanged;
}

// The domain whose row the operation running inline on this thread writes
// with its end (DomainManager::writeWithEnd): what the hypervisor reports
// from inside that operation's calls changes the cache only meanwhile.
thread_local const std::string* t_row_with_end = nullptr;

class RowWithEnd {
 public:
  explicit RowWithEnd(const std::string& name) { t_row_with_end = &name; }
  ~RowWithEnd() { t_row_with_end = nullptr; }
  RowWithEnd(const RowWithEnd&) = delete;
  RowWithEnd& operator=(const RowWithEnd&) = delete;
};

}  // namespace

DomainManager::DomainManager(core::Hypervisor& hv, StorageManager& storage, VolumeUsage& usage,
                             state::Store& store, OperationRegistry& ops, EventBus& events, const core::Clock& clock,
                             HostPaths host_paths)
    : hv_(hv),
      storage_(storage),
      usage_(usage),
      store_(store),
      ops_(ops),
      events_(events),
      clock_(clock),
      host_paths_(std::move(host_paths)),
      hv_quick_(hv.callsReturnAtOnce()) {}

DomainManager::~DomainManager() { hv_.setEventSink(nullptr); }

Status DomainManager::load() {
  XENCTL_ASSIGN_OR_RETURN(core::HypervisorInfo host, hv_.hostInfo());
  hv_name_ = host.name;
  XENCTL_ASSIGN_OR_RETURN(auto records, store_.listDomains());
  {
    std::lock_guard lock(mu_);
    for (auto& r : records) {
      names_by_uuid_[r.spec.uuid] = r.spec.name;
      putLocked(std::move(r));
    }
  }
  hv_.setEventSink([this](const core::HypervisorEvent& e) { onHypervisorEvent(e); });
  // Only what is present is adopted; the rest shows as stopped or vanished.
  XENCTL_ASSIGN_OR_RETURN(auto present, hv_.listDomains());
  std::vector<std::pair<core::DomainSpec, int64_t>> ours;  // with the domid
  {
    std::lock_guard lock(mu_);
    for (const auto& info : present)
      if (auto n = names_by_uuid_.find(info.uuid); n != names_by_uuid_.end())
        ours.emplace_back(defs_.at(n->second).rec.spec, info.domid);
  }
  for (const auto& [spec, domid] : ours) {
    recordRun(spec, domid);
    // A volume that cannot be resolved now (its pool left the config) does
    // not stop the daemon: the domain runs on, and the backend refuses the
    // unresolved disk only if it has to build the domain again.
    auto resolved = resolveDisks(spec);
    const core::DomainSpec& given = resolved.ok() ? *resolved : spec;
    if (!resolved.ok()) {
      std::lock_guard lock(mu_);
      unresolved_[spec.uuid] = std::string(resolved.status().message());
      load_warnings_.push_back(absl::StrCat("adopted running ", quoted(spec.name), " (domid ", domid,
                                            ") with a disk that cannot be resolved: ", resolved.status().message(),
                                            "; it runs on, but its on_* restart will be refused"));
    }
    if (Status st = hv_.adopt(given); !st.ok() && !absl::IsNotFound(st))  // NOT_FOUND: it ended meanwhile
      return annotate(st, absl::StrCat("taking back ", quoted(spec.name), " (uuid ", spec.uuid, ")"));
  }
  return absl::OkStatus();
}

std::string DomainManager::vanishedReason() const {
  if (hv_name_ == "test")
    return "it was running when xenctld stopped; the test hypervisor keeps no running state across daemon restarts";
  return "it was running and is gone from the hypervisor without xenctld stopping it (destroyed outside xenctld?)";
}

Result<core::DomainSpec> DomainManager::resolveDisks(const core::DomainSpec& spec) {
  core::DomainSpec out = spec;
  for (core::DiskSpec& d : out.disks) {
    if (!core::isVolumeTarget(d.target)) continue;
    const std::string who = diskOf(spec.name, d);
    auto ref = core::parseVolumeTarget(d.target);
    XENCTL_RETURN_IF_ERROR(annotate(ref.status(), who));
    auto pool = storage_.pool(ref->pool);
    if (absl::IsNotFound(pool.status()))
      return absl::FailedPreconditionError(
          absl::StrCat(who, ": ", pool.status().message(), "; `vm-volume pools` lists them"));
    XENCTL_RETURN_IF_ERROR(annotate(pool.status(), who));
    auto vol = (*pool)->get(ref->name);
    if (absl::IsNotFound(vol.status()))
      return absl::FailedPreconditionError(absl::StrCat(who, ": pool '", ref->pool, "' has no volume '", ref->name,
                                                        "'; create it, or see `vm-volume list --pool ", ref->pool,
                                                        "`"));
    XENCTL_RETURN_IF_ERROR(annotate(vol.status(), who));
    if (auto image = storage_.imageOf(ref->pool, ref->name); image && d.mode != "r")
      return absl::FailedPreconditionError(absl::StrCat(
          who, ": the volume is the base of image '", *image, "', which stays read-only; attach it with mode r, or ",
          "give the domain a clone (`vm-volume clone ", ref->name, " NEW --pool ", ref->pool, "`, or `vm-create --image ",
          *image, "`)"));
    if (vol->read_only && d.mode != "r")
      return absl::FailedPreconditionError(absl::StrCat(
          who, ": the volume is read-only (a snapshot or a golden base) and the disk is writable; attach it with "
               "mode r, or give the domain a clone (`vm-volume clone ",
          ref->name, " NEW --pool ", ref->pool, "`)"));
    d.target = vol->path;
  }
  return out;
}

Status DomainManager::checkNotDeleting(const core::DomainSpec& spec) const {
  for (const auto& d : spec.disks)
    if (core::isVolumeTarget(d.target) && usage_.deleting(d.target))
      return absl::FailedPreconditionError(
          absl::StrCat(diskOf(spec.name, d), ": the volume is being deleted; give the domain another volume"));
  return absl::OkStatus();
}

Status DomainManager::checkVolumesFree(const core::DomainSpec& spec) {
  XENCTL_RETURN_IF_ERROR(checkNotDeleting(spec));
  for (const auto& want : spec.disks) {
    if (!core::isVolumeTarget(want.target)) continue;
    for (const auto& use : usage_.usesOf(want.target, spec.name))
      XENCTL_RETURN_IF_ERROR(volumeConflict(spec.name, want, use.domain, use.disk));
  }
  return absl::OkStatus();
}

Result<core::DomainInfo> DomainManager::startInHypervisor(const core::DomainSpec& spec, bool paused) {
  // Record first, then check: of two domains starting at once on one
  // volume, the second to record sees the first's use.
  usage_.record(spec, -1);
  auto started = [&]() -> Result<core::DomainInfo> {
    XENCTL_RETURN_IF_ERROR(checkVolumesFree(spec));
    XENCTL_ASSIGN_OR_RETURN(core::DomainSpec resolved, resolveDisks(spec));
    return hv_.createDomain(resolved, paused);
  }();
  if (!started.ok()) {
    usage_.release(spec.name);
    return started;
  }
  recordRun(spec, started->domid);
  return started;
}

Status DomainManager::destroyInHypervisor(const state::DomainRecord& rec) {
  XENCTL_RETURN_IF_ERROR(
      annotate(hv_.destroyDomain(rec.spec.uuid), absl::StrCat("destroying ", quoted(rec.spec.name))));
  usage_.release(rec.spec.name);  // gone now, whenever the hypervisor's report comes
  return absl::OkStatus();
}

void DomainManager::recordRun(const core::DomainSpec& spec, int64_t domid) {
  usage_.record(spec, domid);
  if (absl::IsNotFound(hv_.domainInfo(spec.uuid).status())) usage_.release(spec.name, domid);
}

Result<std::vector<core::VolumeRef>> DomainManager::deletableVolumes(const state::DomainRecord& rec) {
  const std::string& name = rec.spec.name;
  std::vector<core::VolumeRef> out;
  for (const auto& d : rec.spec.disks) {
    if (!core::isVolumeTarget(d.target)) continue;
    const std::string who = absl::StrCat("deleting ", quoted(name), " with its volumes: disk ", d.vdev, " (",
                                         d.target, ")");
    const std::string instead = "; nothing was deleted; delete the domain without --delete-volumes";
    auto ref = core::parseVolumeTarget(d.target);
    XENCTL_RETURN_IF_ERROR(annotate(ref.status(), who));
    if (std::find(out.begin(), out.end(), *ref) != out.end()) continue;
    auto pool = storage_.pool(ref->pool);
    if (!pool.ok())
      return absl::FailedPreconditionError(absl::StrCat(who, ": ", pool.status().message(), instead));
    if (auto image = storage_.imageOf(ref->pool, ref->name))
      return absl::FailedPreconditionError(absl::StrCat(who, ": it is the base volume of image '", *image,
                                                        "', which only `vm-image delete` deletes", instead));
    auto deps = (*pool)->dependents(ref->name);
    if (absl::IsNotFound(deps.status())) continue;  // already gone: nothing to delete
    XENCTL_RETURN_IF_ERROR(deps.status());
    // Clones of its snapshots need no check of their own: the snapshots refuse first.
    if (!deps->snapshots.empty())
      return absl::FailedPreconditionError(absl::StrCat(
          who, ": the volume has snapshots ", absl::StrJoin(deps->snapshots, ", "),
          "; delete them first (`vm-volume delete ", core::snapshotName(ref->name, deps->snapshots.front()),
          " --pool ", ref->pool, "`)", instead));
    if (!deps->clones.empty())
      return absl::FailedPreconditionError(absl::StrCat(who, ": volumes ", absl::StrJoin(deps->clones, ", "),
                                                        " are cloned from it; delete them first", instead));
    {
      std::lock_guard lock(mu_);
      for (const auto& [other, odef] : defs_) {
        if (other == name) continue;
        for (const auto& od : odef.rec.spec.disks)
          if (od.target == d.target)
            return absl::FailedPreconditionError(absl::StrCat(who, ": domain '", other, "' also has it as disk ",
                                                              od.vdev, instead));
      }
    }
    out.push_back(*std::move(ref));
  }
  return out;
}

void DomainManager::publish(core::DomainEventKind kind, const core::DomainSpec& spec, int64_t domid,
                            DomainState state, std::string message) {
  events_.publish({kind, spec.name, spec.uuid, domid, state, clock_.now(), std::move(message)});
}

void DomainManager::onHypervisorEvent(const core::HypervisorEvent& e) {
  {
    std::lock_guard lock(mu_);
    ++hv_event_count_;
    auto n = names_by_uuid_.find(e.uuid);
    Definition* def = n != names_by_uuid_.end() ? &defs_.at(n->second) : nullptr;
    state::DomainRecord* rec = def ? &def->rec : nullptr;
    bool changed = false;
    if (rec && e.kind == core::HypervisorEvent::Kind::kStarted) {
      unresolved_.erase(e.uuid);  // built anew, from resolved disks
      changed = !rec->stop_reason.empty();
      rec->stop_reason.clear();
    }
    // The hypervisor's word on presence: a restart runs on (as another
    // domid), an end frees the volumes (unless a later run holds them).
    if (n != names_by_uuid_.end() &&
        (e.kind == core::HypervisorEvent::Kind::kStarted || e.kind == core::HypervisorEvent::Kind::kRebooted))
      usage_.record(defs_.at(n->second).rec.spec, e.domid);
    if (n != names_by_uuid_.end() && e.kind == core::HypervisorEvent::Kind::kDestroyed)
      usage_.release(n->second, e.domid);
    if (rec && e.kind == core::HypervisorEvent::Kind::kDestroyed) {
      std::string reason = e.message;
      // Adopted with a disk that cannot be resolved: the rebuild of its
      // on_* restart was refused for that disk; say why in our words.
      if (auto u = unresolved_.find(e.uuid); u != unresolved_.end()) {
        if (absl::StartsWith(reason, "restart failed"))
          reason = absl::StrCat("its on_* restart was refused: ", u->second,
                                "; put the pool back in the config (and restart xenctld), or give the domain "
                                "another disk, then start it");
        unresolved_.erase(u);
      }
      if (!reason.empty() && reason != rec->stop_reason) {
        rec->stop_reason = std::move(reason);
        changed = true;
      }
      if (rec->running_expected) {
        rec->running_expected = false;
        changed = true;
      }
    }
    if (changed) {
      rec->updated_at = clock_.now();
      def->version = ++last_version_;
      // On failure the next save fixes it; state comes from the hypervisor.
      if (!t_row_with_end || *t_row_with_end != rec->spec.name) (void)store_.updateDomain(*rec);
    }
  }
  hv_changed_.notify_all();
  events_.publish({eventKindFor(e.kind), e.name, e.uuid, e.domid, e.state, clock_.now(), e.message});
}

DomainManager::DomainLock DomainManager::domainLock(const std::string& name) {
  std::map<std::string, OpLock>::iterator it;
  {
    std::lock_guard lock(mu_);
    it = op_locks_.try_emplace(name).first;
    ++it->second.users;  // a waiter: the entry stays until it is done
  }
  it->second.m.lock();  // not under mu_: the domain's lock comes first
  return DomainLock(this, it);
}

DomainManager::DomainLock DomainManager::tryDomainLock(const std::string& name) {
  std::map<std::string, OpLock>::iterator it;
  {
    std::lock_guard lock(mu_);
    it = op_locks_.try_emplace(name).first;
    if (!it->second.m.try_lock()) {  // held: by a user, unless the try failed spuriously
      if (it->second.users == 0) op_locks_.erase(it);
      return {};
    }
    ++it->second.users;
  }
  return DomainLock(this, it);
}

void DomainManager::DomainLock::release() {
  if (!mgr_) return;
  it_->second.m.unlock();
  std::lock_guard lock(mgr_->mu_);
  if (--it_->second.users == 0) mgr_->op_locks_.erase(it_);
  mgr_ = nullptr;
}

Result<state::DomainRecord> DomainManager::definition(const std::string& name) {
  {
    std::lock_guard lock(mu_);
    auto it = defs_.find(name);
    if (it != defs_.end()) return it->second.rec;
  }
  XENCTL_ASSIGN_OR_RETURN(auto present, hv_.listDomains());
  for (const auto& d : present)
    if (d.name == name)
      return absl::FailedPreconditionError(
          absl::StrCat(quoted(name), " was created outside xenctld (foreign) and is read-only here"));
  return absl::NotFoundError(absl::StrCat(quoted(name), " not found; `vm-list` shows the defined domains"));
}

Status DomainManager::saveDefinition(const state::DomainRecord& rec) {
  std::lock_guard lock(mu_);
  state::DomainRecord updated = rec;
  updated.updated_at = clock_.now();
  // The stop reason is the hypervisor events' to write: a copy of the
  // definition taken before an event must not bring back an older one.
  if (auto it = defs_.find(rec.spec.name); it != defs_.end()) updated.stop_reason = it->second.rec.stop_reason;
  XENCTL_RETURN_IF_ERROR(store_.updateDomain(updated));
  putLocked(std::move(updated));
  return absl::OkStatus();
}

Status DomainManager::setRunningExpected(const std::string& name, bool running, OperationContext* ctx) {
  XENCTL_ASSIGN_OR_RETURN(state::DomainRecord rec, definition(name));
  if (rec.running_expected == running) return absl::OkStatus();
  if (writeWithEnd(ctx, name)) {
    std::lock_guard lock(mu_);
    if (auto it = defs_.find(name); it != defs_.end()) {
      state::DomainRecord updated = it->second.rec;
      updated.running_expected = running;
      updated.updated_at = clock_.now();
      putLocked(std::move(updated));
    }
    return absl::OkStatus();
  }
  rec.running_expected = running;
  return saveDefinition(rec);
}

bool DomainManager::writeWithEnd(OperationContext* ctx, const std::string& name) {
  if (!ctx || !ctx->onStartingThread()) return false;
  ctx->storeEndWith([this, name](const OperationRecord& end) -> Status {
    // Under mu_, as every write of a definition: the row is the cache's newest.
    std::lock_guard lock(mu_);
    state::Store::DomainChange change{name, std::nullopt};
    if (auto it = defs_.find(name); it != defs_.end()) change.rec = it->second.rec;
    Status st = store_.finishOperation(end, change);
    if (st.ok()) return st;
    // The operation fails (OperationRegistry::finish), so the cache goes
    // back to the row as stored, as when a worker's write in the work fails.
    restoreStoredLocked(name);
    return Status(st.code(), absl::StrCat("storing the definition of ", quoted(name), " with the end of operation ",
                                          end.id, ": ", st.message(),
                                          "; the definition stays as it was: check the state database, then retry"));
  });
  return true;
}

void DomainManager::restoreStoredLocked(const std::string& name) {
  auto rows = store_.listDomains();
  if (!rows.ok()) return;  // the store fails to read too: a restart reads it again
  auto row = std::find_if(rows->begin(), rows->end(), [&](const state::DomainRecord& r) { return r.spec.name == name; });
  if (auto it = defs_.find(name); it != defs_.end() && (row == rows->end() || row->spec.uuid != it->second.rec.spec.uuid))
    names_by_uuid_.erase(it->second.rec.spec.uuid);
  if (row == rows->end()) {
    defs_.erase(name);
    return;
  }
  names_by_uuid_[row->spec.uuid] = name;
  putLocked(std::move(*row));
}

Result<core::DomainInfo> DomainManager::presentInfo(const state::DomainRecord& rec) {
  return hv_.domainInfo(rec.spec.uuid);
}

void DomainManager::putLocked(state::DomainRecord rec) {
  Definition& def = defs_[rec.spec.name];
  def.rec = std::move(rec);
  def.version = ++last_version_;
}

void DomainManager::viewOf(const Definition& def, const core::DomainInfo* live, bool with_definition,
                           DomainView& v) const {
  const state::DomainRecord& rec = def.rec;
  v.version = def.version;
  if (with_definition) {
    v.spec = rec.spec;
    v.created_at = rec.created_at;
    v.owner_uid = rec.owner_uid;
    v.owner = rec.owner;
    v.grants = rec.grants;
  } else {
    v.spec.name = rec.spec.name;
  }
  if (live) {
    if (with_definition) {
      v.live = *live;
    } else {  // its numbers: the strings are the definition's
      v.live.domid = live->domid;
      v.live.state = live->state;
      v.live.vcpus_online = live->vcpus_online;
      v.live.memory_mib = live->memory_mib;
      v.live.cpu_time_seconds = live->cpu_time_seconds;
      v.live.type = live->type;
    }
    v.state = live->state;
    if (auto u = unresolved_.find(rec.spec.uuid); u != unresolved_.end())
      v.state_reason = absl::StrCat("running since before xenctld's restart with a disk that cannot be resolved: ",
                                    u->second, "; its on_* restart will be refused");
  } else {
    v.state = rec.running_expected ? DomainState::kVanished : DomainState::kStopped;
    if (rec.running_expected) {
      v.state_reason = vanishedReason();
    } else {
      v.state_reason = rec.stop_reason;
    }
  }
}

DomainView DomainManager::foreignView(const core::DomainInfo& info) {
  DomainView v;
  v.spec.name = info.name;
  v.spec.uuid = info.uuid;
  v.spec.type = info.type;
  v.live = info;
  v.state = info.state;
  v.foreign = true;
  return v;
}

Result<DomainView> DomainManager::get(const std::string& name) {
  XENCTL_ASSIGN_OR_RETURN(auto present, hv_.listDomains());
  {
    std::lock_guard lock(mu_);
    if (auto it = defs_.find(name); it != defs_.end()) {
      const auto live = std::find_if(present.begin(), present.end(),
                                     [&](const core::DomainInfo& i) { return i.uuid == it->second.rec.spec.uuid; });
      DomainView v;
      viewOf(it->second, live == present.end() ? nullptr : &*live, true, v);
      return v;
    }
  }
  for (const auto& info : present)
    if (info.name == name) return foreignView(info);
  return absl::NotFoundError(absl::StrCat(quoted(name), " not found; `vm-list` shows the defined domains"));
}

Result<std::vector<DomainView>> DomainManager::list(bool include_foreign) {
  return list(include_foreign, [](const std::string&, uint64_t) { return false; });
}

Result<std::vector<DomainView>> DomainManager::list(bool include_foreign,
                                                    absl::FunctionRef<bool(const std::string&, uint64_t)> known) {
  XENCTL_ASSIGN_OR_RETURN(auto present, hv_.listDomains());
  absl::flat_hash_map<std::string_view, const core::DomainInfo*> by_uuid;
  by_uuid.reserve(present.size());
  for (const auto& info : present) by_uuid[info.uuid] = &info;
  std::vector<DomainView> out;
  {
    // Views are built straight from the cache: at most one copy of each spec, no hypervisor call under the lock.
    std::lock_guard lock(mu_);
    out.reserve(defs_.size() + (include_foreign ? present.size() : 0));
    for (const auto& [name, def] : defs_) {
      auto it = by_uuid.find(def.rec.spec.uuid);
      viewOf(def, it == by_uuid.end() ? nullptr : it->second, !known(name, def.version), out.emplace_back());
      if (it != by_uuid.end()) by_uuid.erase(it);
    }
  }
  if (include_foreign)
    for (const auto& info : present)
      if (by_uuid.contains(info.uuid)) out.push_back(foreignView(info));
  return out;
}

DomainManager::Counts DomainManager::counts() {
  Counts c;
  {
    std::lock_guard lock(mu_);
    c.defined = defs_.size();
    c.locks = op_locks_.size();
  }
  if (auto present = hv_.listDomains(); present.ok()) c.present = present->size();
  return c;
}

Result<std::string> DomainManager::consolePath(const std::string& name, bool read_only) {
  XENCTL_ASSIGN_OR_RETURN(DomainView v, get(name));
  if (v.foreign && !read_only)
    return absl::FailedPreconditionError(absl::StrCat(
        quoted(name), " was created outside xenctld (foreign) and is read-only here; attach with --read-only"));
  if (v.live.domid < 0)
    return absl::FailedPreconditionError(absl::StrCat(quoted(name), " is not running; start it first"));
  return hv_.consolePath(v.spec.uuid);
}

Result<OperationRecord> DomainManager::create(CreateRequest req, const Caller& caller) {
  auto spec = std::make_shared<core::DomainSpec>(std::move(req.spec));
  auto precheck = [&]() -> Status {
    if (spec->uuid.empty()) spec->uuid = core::newUuid();
    XENCTL_ASSIGN_OR_RETURN(*spec, core::normalizeSpec(std::move(*spec)));
    XENCTL_RETURN_IF_ERROR(host_paths_.checkSpec(caller, *spec));
    std::lock_guard lock(mu_);
    if (defs_.count(spec->name)) return absl::AlreadyExistsError(absl::StrCat(quoted(spec->name), " already exists"));
    if (names_by_uuid_.count(spec->uuid))
      return absl::AlreadyExistsError(absl::StrCat("uuid ", spec->uuid, " is already used by ",
                                                   quoted(names_by_uuid_.at(spec->uuid))));
    return absl::OkStatus();
  };
  // A domain to start now needs its volumes now; a definition alone may
  // name volumes made later (checked when it starts).
  auto precheck_volumes = [&, inner = std::move(precheck)]() -> Status {
    XENCTL_RETURN_IF_ERROR(inner());
    if (req.define_only) return absl::OkStatus();
    XENCTL_RETURN_IF_ERROR(checkVolumesFree(*spec));
    return resolveDisks(*spec).status();
  };
  // Without volumes its work is the store's and the hypervisor's only.
  const bool quick = std::none_of(spec->disks.begin(), spec->disks.end(),
                                  [](const core::DiskSpec& d) { return core::isVolumeTarget(d.target); });
  DomainLock held = inlineLock(spec->name, quick);
  return ops_.startChecked({"create-domain", spec->name, caller.request_id, caller.uid, caller.key(),
                            caller.request_digest, held.owns_lock()},
                           precheck_volumes,
                           [this, spec, req, owner = Owner(caller.uid, ownerOf(caller))](OperationContext& ctx) -> Status {
                             CreateRequest checked = req;
                             checked.spec = *spec;
                             // One journaled step, as the provisioning saga's "define" (recovery.h).
                             // It changes the store and the hypervisor, nothing a power cut leaves.
                             const std::map<std::string, std::string> intent{
                                 {"domain", spec->name}, {"uuid", spec->uuid}, {"define_only", req.define_only ? "1" : "0"}};
                             constexpr auto kDurability = state::Store::Durability::kCommitted;
                             XENCTL_RETURN_IF_ERROR(ctx.journal(0, "define", intent, false, kDurability));
                             Phases phases = phasesOf(ctx);
                             phases.phase = [&ctx](const std::string& name, uint32_t percent, const std::string& message) {
                               if (name == "create") ctx.crashPoint("define:stored");
                               ctx.phase(name, percent, message);
                             };
                             // Run inline, the calling thread holds the domain's lock (inlineLock).
                             XENCTL_RETURN_IF_ERROR(
                                 createNow(checked, owner, phases, /*lock=*/!ctx.onStartingThread(), &ctx).status());
                             return ctx.journalLastDone(0, "define", intent, kDurability);
                           });
}

Result<core::DomainSpec> DomainManager::createNow(CreateRequest req, const Owner& owner, const Phases& phases,
                                                  bool lock, OperationContext* ctx) {
  if (req.spec.uuid.empty()) req.spec.uuid = core::newUuid();
  XENCTL_ASSIGN_OR_RETURN(core::DomainSpec spec, core::normalizeSpec(std::move(req.spec)));
  DomainLock held;
  if (lock) held = domainLock(spec.name);
  phases.enter("define", 5, "storing the definition");
  const absl::Time now = clock_.now();
  state::DomainRecord rec{spec, now, now, owner.uid, owner.principal, {}, false, ""};
  if (rec.owner.empty() && owner.uid >= 0) rec.owner = absl::StrCat("uid:", owner.uid);
  {
    std::lock_guard lock(mu_);
    if (defs_.count(spec.name)) return absl::AlreadyExistsError(absl::StrCat(quoted(spec.name), " already exists"));
    if (names_by_uuid_.count(spec.uuid))
      return absl::AlreadyExistsError(
          absl::StrCat("uuid ", spec.uuid, " is already used by ", quoted(names_by_uuid_.at(spec.uuid))));
    // Under mu_, which a deletion of volumes takes after marking them (removeLocked).
    XENCTL_RETURN_IF_ERROR(checkNotDeleting(spec));
    XENCTL_RETURN_IF_ERROR(store_.insertDomain(rec));
    putLocked(rec);
    names_by_uuid_[spec.uuid] = spec.name;
  }
  publish(core::DomainEventKind::kDefined, spec, -1, DomainState::kStopped);
  if (req.define_only) return spec;

  // Undo: a failed or cancelled create leaves nothing behind.
  auto undefine = [&](Status why) {
    std::lock_guard lock(mu_);
    if (store_.deleteDomain(spec.name).ok()) {
      defs_.erase(spec.name);
      names_by_uuid_.erase(spec.uuid);
    }
    return why;
  };
  if (phases.stop.stop_requested())
    return undefine(absl::CancelledError("cancelled before the domain was created"));
  phases.enter("create", 30, "creating the domain in the hypervisor");
  auto info = startInHypervisor(spec, req.paused);
  if (!info.ok()) {
    Status why = undefine(annotate(info.status(), absl::StrCat("creating ", quoted(spec.name))));
    publish(core::DomainEventKind::kDeleted, spec, -1, DomainState::kStopped, "create failed");
    return why;
  }
  phases.enter("finalize", 90, absl::StrCat("running as domid ", info->domid));
  XENCTL_RETURN_IF_ERROR(setRunningExpected(spec.name, true, ctx));
  return spec;
}

Result<OperationRecord> DomainManager::start(const std::string& name, bool paused, const Caller& caller) {
  auto precheck = [&]() -> Status {
    XENCTL_ASSIGN_OR_RETURN(state::DomainRecord rec, definition(name));
    if (presentInfo(rec).ok())
      return absl::FailedPreconditionError(absl::StrCat(quoted(name), " is already running"));
    XENCTL_RETURN_IF_ERROR(checkVolumesFree(rec.spec));
    return resolveDisks(rec.spec).status();
  };
  // Without volumes its work is the store's and the hypervisor's only.
  bool quick = false;
  if (auto def = definition(name); def.ok())
    quick = std::none_of(def->spec.disks.begin(), def->spec.disks.end(),
                         [](const core::DiskSpec& d) { return core::isVolumeTarget(d.target); });
  return runVerb(
      "start-domain", name, caller, precheck,
      [this, name, paused](OperationContext& ctx, state::DomainRecord& rec) -> Status {
        ctx.phase("create", 10, "creating the domain in the hypervisor");
        auto info = startInHypervisor(rec.spec, paused);
        XENCTL_RETURN_IF_ERROR(annotate(info.status(), absl::StrCat("starting ", quoted(name))));
        return setRunningExpected(name, true, &ctx);
      },
      quick);
}

Result<OperationRecord> DomainManager::shutdown(const std::string& name, ShutdownRequest req, const Caller& caller) {
  auto precheck = [&] { return requirePresent(name); };
  return runVerb("shutdown-domain", name, caller, precheck,
                 [this, name, req](OperationContext& ctx, state::DomainRecord& rec) -> Status {
    ctx.phase("shutdown", 10, "asking the guest to shut down");
    XENCTL_RETURN_IF_ERROR(
        annotate(hv_.shutdownDomain(rec.spec.uuid), absl::StrCat("shutting down ", quoted(name))));
    ctx.phase("wait", 20, absl::StrCat("waiting up to ", absl::FormatDuration(req.timeout), " for the guest"));
    // Wait on hypervisor events (and cancellation), never on a timer tick.
    const absl::Time deadline = clock_.now() + req.timeout;
    std::stop_callback wake(ctx.stopToken(), [this] { hv_changed_.notify_all(); });
    for (;;) {
      uint64_t seen;
      {
        std::lock_guard lock(mu_);
        seen = hv_event_count_;
      }
      auto info = hv_.domainInfo(rec.spec.uuid);
      if (absl::IsNotFound(info.status())) {
        usage_.release(name);
        return setRunningExpected(name, false);
      }
      if (info.ok() && info->state == DomainState::kShutdown) return absl::OkStatus();  // on_poweroff=preserve
      if (ctx.cancelled()) return absl::CancelledError(absl::StrCat("stopped waiting for ", quoted(name)));
      std::unique_lock lock(mu_);
      const absl::Duration left = deadline - clock_.now();
      if (left <= absl::ZeroDuration() ||
          !hv_changed_.wait_for(lock, absl::ToChronoNanoseconds(left),
                                [&] { return hv_event_count_ != seen || ctx.cancelled(); }))
        break;
    }
    if (!req.force)
      return absl::DeadlineExceededError(absl::StrCat(quoted(name), " did not shut down within ",
                                                      absl::FormatDuration(req.timeout),
                                                      "; use --force to destroy it, or a longer --timeout"));
    ctx.phase("destroy", 80, "timed out; destroying");
    XENCTL_RETURN_IF_ERROR(destroyInHypervisor(rec));
    return setRunningExpected(name, false);
  });
}

Result<OperationRecord> DomainManager::reboot(const std::string& name, const Caller& caller) {
  auto precheck = [&] { return requirePresent(name); };
  return runVerb("reboot-domain", name, caller, precheck,
                 [this, name](OperationContext& ctx, state::DomainRecord& rec) -> Status {
    ctx.phase("reboot", 10, "asking the guest to reboot");
    return annotate(hv_.rebootDomain(rec.spec.uuid), absl::StrCat("rebooting ", quoted(name)));
  });
}

Result<OperationRecord> DomainManager::destroy(const std::string& name, const Caller& caller) {
  auto precheck = [&] { return requirePresent(name); };
  return runVerb(
      "destroy-domain", name, caller, precheck,
      [this, name](OperationContext& ctx, state::DomainRecord& rec) -> Status {
        ctx.phase("destroy", 10, "destroying the domain");
        XENCTL_RETURN_IF_ERROR(destroyInHypervisor(rec));
        return setRunningExpected(name, false, &ctx);
      },
      /*quick=*/true);
}

Result<OperationRecord> DomainManager::remove(const std::string& name, bool force, bool delete_volumes,
                                              const Caller& caller) {
  auto precheck = [&]() -> Status {
    XENCTL_ASSIGN_OR_RETURN(state::DomainRecord rec, definition(name));
    if (presentInfo(rec).ok() && !force)
      return absl::FailedPreconditionError(
          absl::StrCat(quoted(name), " is running; shut it down or destroy it first, or delete with --force"));
    if (delete_volumes) XENCTL_RETURN_IF_ERROR(deletableVolumes(rec).status());
    return absl::OkStatus();
  };
  return runVerb("delete-domain", name, caller, precheck,
                 [this, delete_volumes](OperationContext& ctx, state::DomainRecord& rec) -> Status {
                   // Journaled with the volumes it will delete: once begun, recovery finishes it.
                   // Synced (surviving a power cut) only when it deletes volumes.
                   std::map<std::string, std::string> intent{{"domain", rec.spec.name}, {"uuid", rec.spec.uuid}};
                   auto durability = state::Store::Durability::kCommitted;
                   if (delete_volumes) {
                     XENCTL_ASSIGN_OR_RETURN(auto volumes, deletableVolumes(rec));
                     std::vector<std::string> targets;
                     for (const auto& v : volumes) targets.push_back(v.target());
                     intent["volumes"] = absl::StrJoin(targets, ",");
                     if (!volumes.empty()) durability = state::Store::Durability::kSynced;
                   }
                   XENCTL_RETURN_IF_ERROR(ctx.journal(0, "delete", intent, false, durability));
                   Phases phases = phasesOf(ctx);
                   phases.phase = [&ctx](const std::string& name, uint32_t percent, const std::string& message) {
                     if (name == "delete-volumes") ctx.crashPoint("delete:undefined");
                     ctx.phase(name, percent, message);
                   };
                   XENCTL_RETURN_IF_ERROR(removeLocked(rec, delete_volumes, phases, &ctx));
                   return ctx.journalLastDone(0, "delete", intent, durability);
                 },
                 /*quick=*/!delete_volumes);
}

Status DomainManager::completeCreate(const std::string& name) {
  DomainLock held = domainLock(name);
  return setRunningExpected(name, true);
}

Status DomainManager::removeNow(const std::string& name, bool delete_volumes, const Phases& phases) {
  return locked(name, [&](state::DomainRecord& rec) { return removeLocked(rec, delete_volumes, phases); });
}

Status DomainManager::removeLocked(const state::DomainRecord& rec, bool delete_volumes, const Phases& phases,
                                   OperationContext* ctx) {
  const std::string& name = rec.spec.name;
  // Checked again before anything changes: a clone or snapshot may have
  // been made since the call.
  std::vector<core::VolumeRef> volumes;
  if (delete_volumes) {
    XENCTL_ASSIGN_OR_RETURN(volumes, deletableVolumes(rec));
  }
  if (presentInfo(rec).ok()) {
    phases.enter("destroy", 10, "destroying the running domain");
    XENCTL_RETURN_IF_ERROR(destroyInHypervisor(rec));
  }
  phases.enter("undefine", 40, "removing the definition");
  // With no volume to delete after it, the row goes with the operation's end.
  const bool with_end = volumes.empty() && writeWithEnd(ctx, name);
  {
    std::lock_guard lock(mu_);
    if (!with_end) XENCTL_RETURN_IF_ERROR(store_.deleteDomain(name));
    defs_.erase(name);
    names_by_uuid_.erase(rec.spec.uuid);
    unresolved_.erase(rec.spec.uuid);
  }
  publish(core::DomainEventKind::kDeleted, rec.spec, -1, DomainState::kStopped);
  if (volumes.empty()) return absl::OkStatus();
  // The domain is gone for good from here: a volume that fails to go is
  // reported, and the others are still deleted.
  phases.enter("delete-volumes", 60, absl::StrCat("deleting ", volumes.size(), " volume(s)"));
  std::vector<std::string> failed;
  Status first;
  for (const auto& ref : volumes) {
    // Marked as being deleted first, then checked against the definitions
    // under mu_: a domain defined since deletableVolumes() either is seen
    // here (and keeps its volume) or was refused (createNow).
    Status st = [&]() -> Status {
      XENCTL_ASSIGN_OR_RETURN(VolumeUsage::DeleteHold hold,
                              usage_.holdForDelete(ref.target(), absl::StrCat("deleting ", ref.target())));
      {
        std::lock_guard lock(mu_);
        for (const auto& [other, odef] : defs_)
          for (const auto& od : odef.rec.spec.disks)
            if (od.target == ref.target())
              return absl::FailedPreconditionError(absl::StrCat("domain '", other, "' was defined with it as disk ",
                                                                od.vdev, " meanwhile, so it was kept"));
      }
      return storage_.removeNow(ref.pool, ref.name);
    }();
    if (st.ok() || absl::IsNotFound(st)) continue;  // NOT_FOUND: the volume, or its pool, is gone
    failed.push_back(absl::StrCat(ref.target(), " (", st.message(), ")"));
    if (first.ok()) first = st;
  }
  if (failed.empty()) return absl::OkStatus();
  return Status(first.code(), absl::StrCat(quoted(name), " is deleted, but not its volumes ",
                                           absl::StrJoin(failed, ", "),
                                           "; delete them with `vm-volume delete NAME --pool POOL`"));
}

DomainManager::Phases DomainManager::phasesOf(OperationContext& ctx) {
  return {[&ctx](const std::string& name, uint32_t percent, const std::string& message) {
            ctx.phase(name, percent, message);
          },
          ctx.stopToken()};
}

Result<OperationRecord> DomainManager::runVerb(const std::string& kind, const std::string& name, const Caller& caller,
                                               const std::function<Status()>& precheck, VerbWork work, bool quick) {
  DomainLock held = inlineLock(name, quick);
  return ops_.startChecked(
      {kind, name, caller.request_id, caller.uid, caller.key(), caller.request_digest, held.owns_lock()}, precheck,
      [this, name, work = std::move(work)](OperationContext& ctx) -> Status {
        if (ctx.onStartingThread()) {  // which holds the domain's lock (inlineLock)
          XENCTL_ASSIGN_OR_RETURN(state::DomainRecord rec, definition(name));
          writeWithEnd(&ctx, name);
          RowWithEnd with_end(name);
          return work(ctx, rec);
        }
        return locked(name, [&](state::DomainRecord& rec) { return work(ctx, rec); });
      });
}

DomainManager::DomainLock DomainManager::inlineLock(const std::string& name, bool quick) {
  if (!quick || !hv_quick_) return {};
  return tryDomainLock(name);
}

Status DomainManager::locked(const std::string& name, const std::function<Status(state::DomainRecord&)>& work) {
  DomainLock held = domainLock(name);
  XENCTL_ASSIGN_OR_RETURN(state::DomainRecord rec, definition(name));
  return work(rec);
}

Result<DomainAccess> DomainManager::access(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = defs_.find(name);
  if (it == defs_.end()) return absl::NotFoundError(absl::StrCat(quoted(name), " not found"));
  return DomainAccess{it->second.rec.owner, it->second.rec.grants};
}

Result<DomainView> DomainManager::changeAccess(const std::string& name, const AccessChange& change) {
  if (change.owner && !change.owner->empty())
    XENCTL_RETURN_IF_ERROR(annotate(core::validatePrincipal(*change.owner), absl::StrCat("owner of ", quoted(name))));
  for (const auto* list : {&change.grant, &change.revoke})
    for (const auto& p : *list)
      XENCTL_RETURN_IF_ERROR(annotate(core::validatePrincipal(p), absl::StrCat("access to ", quoted(name))));
  XENCTL_RETURN_IF_ERROR(locked(name, [&](state::DomainRecord& rec) -> Status {
    if (change.owner) rec.owner = *change.owner;
    std::set<std::string> grants(rec.grants.begin(), rec.grants.end());
    for (const auto& p : change.grant) grants.insert(p);
    for (const auto& p : change.revoke) grants.erase(p);
    rec.grants.assign(grants.begin(), grants.end());
    return saveDefinition(rec);
  }));
  return get(name);
}

Status DomainManager::requirePresent(const std::string& name) {
  XENCTL_ASSIGN_OR_RETURN(state::DomainRecord rec, definition(name));
  if (!presentInfo(rec).ok()) return absl::FailedPreconditionError(absl::StrCat(quoted(name), " is not running"));
  return absl::OkStatus();
}

Result<OperationRecord> DomainManager::pause(const std::string& name, const Caller& caller) {
  auto precheck = [&] { return requirePresent(name); };
  return runVerb("pause-domain", name, caller, precheck,
                 [this, name](OperationContext& ctx, state::DomainRecord& rec) -> Status {
    ctx.phase("pause", 10);
    return annotate(hv_.pauseDomain(rec.spec.uuid), absl::StrCat("pausing ", quoted(name)));
  }, /*quick=*/true);
}

Result<OperationRecord> DomainManager::unpause(const std::string& name, const Caller& caller) {
  auto precheck = [&] { return requirePresent(name); };
  return runVerb("unpause-domain", name, caller, precheck,
                 [this, name](OperationContext& ctx, state::DomainRecord& rec) -> Status {
    ctx.phase("unpause", 10);
    return annotate(hv_.unpauseDomain(rec.spec.uuid), absl::StrCat("unpausing ", quoted(name)));
  }, /*quick=*/true);
}

Result<OperationRecord> DomainManager::setResources(const std::string& name, Resources r, const Caller& caller) {
  auto precheck = [&]() -> Status {
    XENCTL_ASSIGN_OR_RETURN(state::DomainRecord rec, definition(name));
    if (r.vcpus == 0 && r.memory_mib == 0)
      return absl::InvalidArgumentError(absl::StrCat(quoted(name), ": nothing to change; give vcpus or memory"));
    if (r.vcpus != 0 && r.vcpus > rec.spec.maxvcpus)
      return absl::InvalidArgumentError(absl::StrCat(quoted(name), ": vcpus ", r.vcpus, " is out of range; use 1 to ",
                                                     rec.spec.maxvcpus, " (maxvcpus)"));
    if (r.memory_mib != 0 && (r.memory_mib < core::kMinMemoryMib || r.memory_mib > rec.spec.maxmem_mib))
      return absl::InvalidArgumentError(absl::StrCat(quoted(name), ": memory ", r.memory_mib,
                                                     " MiB is out of range; use ", core::kMinMemoryMib, " to ",
                                                     rec.spec.maxmem_mib, " MiB (maxmem)"));
    return absl::OkStatus();
  };
  return runVerb("set-domain-resources", name, caller, precheck,
                 [this, name, r](OperationContext& ctx, state::DomainRecord& rec) -> Status {
    if (presentInfo(rec).ok()) {
      ctx.phase("apply", 10, "changing the running domain");
      if (r.vcpus) XENCTL_RETURN_IF_ERROR(annotate(hv_.setVcpus(rec.spec.uuid, r.vcpus), "setting vcpus"));
      if (r.memory_mib)
        XENCTL_RETURN_IF_ERROR(annotate(hv_.setMemory(rec.spec.uuid, r.memory_mib), "setting memory"));
    }
    ctx.phase("store", 80, "keeping the new values in the definition");
    if (r.vcpus) rec.spec.vcpus = r.vcpus;
    if (r.memory_mib) rec.spec.memory_mib = r.memory_mib;
    return saveDefinition(rec);
  }, /*quick=*/true);
}

}  // namespace xenctl::provision
