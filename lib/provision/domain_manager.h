// DomainManager: the use cases on domains. Definitions live in the store
// (and a write-through cache here); observed state always comes from the
// hypervisor. Every change runs as an operation.
//
// Disks may name managed volumes ("vol:POOL/NAME"). The definition keeps
// that name; each time the domain is handed to the hypervisor (create,
// start, adoption at load) the disks are resolved here to the volumes'
// host paths, so no hypervisor backend knows about pools and a volume whose
// path changes (a rollback) is found again at the next start. The refusals,
// all FAILED_PRECONDITION naming the domain and the disk: the pool or the
// volume does not exist (the domain exists, what it needs does not, so not
// NOT_FOUND, which would read as "no such domain"); a read-only volume (a
// snapshot, a golden base) on a writable disk; a volume that a disk of
// another present (or starting) domain names, unless both attach it read-only;
// a volume being deleted (VolumeUsage::holdForDelete), which a definition
// may not name either.
//
// Which volumes our present or starting domains use is recorded in the
// VolumeUsage registry (from the start of a hand-over to the hypervisor
// until the hypervisor reports the domain gone); StorageManager reads it.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "lib/core/clock.h"
#include "lib/core/hypervisor.h"
#include "lib/provision/caller.h"
#include "lib/provision/event_bus.h"
#include "lib/provision/host_paths.h"
#include "lib/provision/operation_registry.h"
#include "lib/provision/storage_manager.h"
#include "lib/provision/volume_usage.h"
#include "lib/state/store.h"

namespace xenctl::provision {

/// A domain as the API shows it.
struct DomainView {
  core::DomainSpec spec;
  core::DomainState state = core::DomainState::kStopped;
  core::DomainInfo live;  ///< domid -1 when not present in the hypervisor
  bool foreign = false;   ///< present in the hypervisor, not defined by xenctld
  std::string state_reason;
  absl::Time created_at = absl::UnixEpoch();
  int64_t owner_uid = -1;
  /// Who owns it and who was granted operator rights on it (state::DomainRecord).
  std::string owner;
  std::vector<std::string> grants;
  /// Of one of ours: a number that its definition (spec, created_at,
  /// owner, grants, what it ran and why it stopped) takes anew at each
  /// change, from one sequence for all domains, so a version is never seen
  /// twice, not even for a domain deleted and defined again under its name.
  /// 0 for a foreign one. What the hypervisor reports (state, live) is not
  /// covered: it is read anew for each view.
  uint64_t version = 0;
};

/// Who may act on a domain besides admins.
struct DomainAccess {
  std::string owner;                ///< core::principal, "" for none
  std::vector<std::string> grants;  ///< sorted
};

class DomainManager {
 public:
  struct CreateRequest {
    core::DomainSpec spec;  ///< uuid is assigned here when empty
    bool define_only = false;
    bool paused = false;
  };
  /// Who a new domain belongs to: its creator's uid and principal
  /// (ownerOf); a principal "" is "uid:UID", or none for uid -1.
  struct Owner {
    Owner(int64_t u) : uid(u) {}  // NOLINT: a uid alone is an owner
    Owner(int64_t u, std::string p) : uid(u), principal(std::move(p)) {}
    int64_t uid = -1;
    std::string principal;
  };
  /// A change of who may act on a domain: a new owner (when set; "" for
  /// none), identities to grant operator rights to and to revoke them from.
  struct AccessChange {
    std::optional<std::string> owner;
    std::vector<std::string> grant;
    std::vector<std::string> revoke;
  };
  struct ShutdownRequest {
    absl::Duration timeout = absl::Seconds(60);
    bool force = false;  ///< destroy when it has not gone down in time
  };
  struct Resources {
    uint32_t vcpus = 0;       ///< 0: unchanged
    uint64_t memory_mib = 0;  ///< 0: unchanged
  };
  struct Counts {
    size_t defined = 0, present = 0;
    size_t locks = 0;  ///< names whose per-domain lock is held or waited for (op_locks_; tests)
  };

  /// `usage` is where this manager records which volumes its present and
  /// starting domains use (StorageManager reads it).
  /// `host_paths` says which host paths (disks, kernels, bootloaders) a
  /// caller may name in a spec; by default only admins may name any.
  DomainManager(core::Hypervisor& hv, StorageManager& storage, VolumeUsage& usage, state::Store& store,
                OperationRegistry& ops, EventBus& events, const core::Clock& clock, HostPaths host_paths = {});

  /// PERMISSION_DENIED when `spec` names a host path (or a bootloader)
  /// `caller` may not use (HostPaths::checkSpec). create() checks it; the
  /// Provisioner and the DomainForker check the specs they make with it.
  Status checkHostPaths(const core::DomainSpec& spec, const Caller& caller) const {
    return host_paths_.checkSpec(caller, spec);
  }
  ~DomainManager();

  /// Loads the definitions, subscribes to the hypervisor's events and
  /// adopts the defined domains still running from before a restart
  /// (Hypervisor::adopt, with the disks resolved), so their on_* actions
  /// apply again. A domain whose volume cannot be resolved is adopted with
  /// the disk as stored: it runs on, its view's state_reason says why and
  /// that its on_* restart will be refused, and the hypervisor refuses that
  /// restart (an unresolved disk), which then shows as its stop reason.
  /// Each such domain is also named in loadWarnings().
  Status load();
  /// What load() found that an administrator should see (the daemon logs it).
  const std::vector<std::string>& loadWarnings() const { return load_warnings_; }

  /// INVALID_ARGUMENT for a bad spec and ALREADY_EXISTS for a taken name
  /// are returned at once; what can only fail later fails the operation,
  /// which then leaves nothing behind.
  Result<core::OperationRecord> create(CreateRequest req, const Caller& caller);
  /// NOT_FOUND when no domain (ours or foreign) has that name.
  Result<DomainView> get(const std::string& name);
  /// Ours by name; foreign ones after them when asked for.
  Result<std::vector<DomainView>> list(bool include_foreign);
  /// As list(), for a caller that keeps what it made of each definition by
  /// its version (the daemon's encoded listing): `known(name, version)` is
  /// asked once for each of ours, in the order of the answer, under the
  /// manager's lock (it must not call back into the manager). The view of
  /// one it says it knows carries of the definition only spec.name: no rest
  /// of the spec, created_at, owner_uid, owner or grants, and of `live`
  /// only the numbers. Its state, state_reason, live numbers and version
  /// are current, as in every view.
  Result<std::vector<DomainView>> list(bool include_foreign,
                                       absl::FunctionRef<bool(const std::string& name, uint64_t version)> known);
  Result<core::OperationRecord> start(const std::string& name, bool paused, const Caller& caller);
  Result<core::OperationRecord> shutdown(const std::string& name, ShutdownRequest req, const Caller& caller);
  Result<core::OperationRecord> reboot(const std::string& name, const Caller& caller);
  Result<core::OperationRecord> destroy(const std::string& name, const Caller& caller);
  /// Removes the definition; FAILED_PRECONDITION while present unless `force`.
  /// With `delete_volumes`, then deletes every volume its disks name (never a
  /// host path). The whole call is refused up front, changing nothing, when
  /// one of them cannot be deleted: its pool is missing, it has snapshots or
  /// clones, another domain's disk names it, or it is an image's base. A volume already gone is
  /// skipped. A volume whose deletion still fails is named in the
  /// operation's error; the domain stays deleted.
  Result<core::OperationRecord> remove(const std::string& name, bool force, bool delete_volumes,
                                       const Caller& caller);

  // The work of create() and remove(), done at once in the calling thread
  // and starting no operation: for steps of a larger operation (a
  // provisioning saga) that must not start one of their own. They take the
  // domain's lock and make the checks that protect state (a taken name or
  // uuid, volumes in use, --delete-volumes' refusals); the request checks
  // of create() and remove() (a running domain without force) are the
  // caller's.

  /// Where the work reports its phases (as an operation's, 0..100) and
  /// hears that it should stop. Both may be empty.
  struct Phases {
    std::function<void(const std::string& name, uint32_t percent, const std::string& message)> phase;
    std::stop_token stop;
    void enter(const std::string& name, uint32_t percent, const std::string& message = "") const {
      if (phase) phase(name, percent, message);
    }
  };
  /// Defines the domain (a uuid is assigned when empty; the spec is
  /// normalized) owned by `owner` and, unless define_only, starts it.
  /// A failed or stopped start undefines it again, leaving nothing behind.
  /// Returns the spec as defined. INVALID_ARGUMENT for a bad spec,
  /// ALREADY_EXISTS for a taken name or uuid, FAILED_PRECONDITION for
  /// volumes that cannot be used (see the top of this file).
  /// `lock`: false when the caller holds the domain's lock already; `ctx`:
  /// the operation doing it (its end may carry the last write).
  Result<core::DomainSpec> createNow(CreateRequest req, const Owner& owner, const Phases& phases = {},
                                     bool lock = true, OperationContext* ctx = nullptr);
  /// Destroys the domain when present, removes its definition and, with
  /// `delete_volumes`, its volumes, as remove() does. NOT_FOUND for an
  /// unknown name.
  Status removeNow(const std::string& name, bool delete_volumes, const Phases& phases = {});
  /// Recovery's forward step for a create interrupted after the hypervisor
  /// made the domain: marks it as expected to run, which createNow's last
  /// phase does. NOT_FOUND when it is not defined.
  Status completeCreate(const std::string& name);
  Result<core::OperationRecord> pause(const std::string& name, const Caller& caller);
  Result<core::OperationRecord> unpause(const std::string& name, const Caller& caller);
  /// Live when present, and kept in the spec for the next start.
  Result<core::OperationRecord> setResources(const std::string& name, Resources r, const Caller& caller);
  Counts counts();
  /// The console pty of a present domain (see sys::ConsolePty). NOT_FOUND
  /// for an unknown name; FAILED_PRECONDITION when it is not running, or
  /// when it is foreign and not `read_only` (typing into it changes it).
  Result<std::string> consolePath(const std::string& name, bool read_only);

  /// Who owns `name` and who was granted rights on it. NOT_FOUND for a
  /// name that is not one of ours (foreign domains have no owner).
  Result<DomainAccess> access(const std::string& name);
  /// Applies `change` at once (no operation: it changes who may act, not
  /// the domain) and returns the domain's view. NOT_FOUND for an unknown
  /// name; INVALID_ARGUMENT, changing nothing, for an identity that is not
  /// a principal (core::validatePrincipal). Granting one already granted,
  /// or revoking one not granted, is not an error.
  Result<DomainView> changeAccess(const std::string& name, const AccessChange& change);

 private:
  /// A domain's lock. Its entry in op_locks_ lives while a thread holds
  /// or waits for it (`users`, counted under mu_ before the wait and after
  /// the release): the map keeps only names in use, and every thread
  /// asking for a name while another holds or waits for it finds the same
  /// mutex.
  struct OpLock {
    std::mutex m;
    size_t users = 0;
  };
  /// A hold of a domain's lock (domainLock, tryDomainLock), or an empty
  /// one. Releasing it drops the name's entry when no one else holds or
  /// waits for it.
  class DomainLock {
   public:
    DomainLock() = default;
    DomainLock(DomainLock&& o) noexcept : mgr_(std::exchange(o.mgr_, nullptr)), it_(o.it_) {}
    DomainLock& operator=(DomainLock&& o) noexcept {
      if (this != &o) {
        release();
        mgr_ = std::exchange(o.mgr_, nullptr);
        it_ = o.it_;
      }
      return *this;
    }
    ~DomainLock() { release(); }
    bool owns_lock() const { return mgr_ != nullptr; }

   private:
    friend class DomainManager;
    DomainLock(DomainManager* mgr, std::map<std::string, OpLock>::iterator it) : mgr_(mgr), it_(it) {}
    void release();
    DomainManager* mgr_ = nullptr;  // null: nothing held
    std::map<std::string, OpLock>::iterator it_;
  };
  /// What a verb does to an existing domain of ours once its operation
  /// runs: it holds the domain's lock and has its definition as stored.
  using VerbWork = std::function<Status(OperationContext& ctx, state::DomainRecord& rec)>;
  /// The one frame of the verbs on an existing domain: `precheck` runs at
  /// once (its error is the call's, and no operation is made), then an
  /// operation `kind` on `name` takes the domain's lock, loads the
  /// definition (the domain may be gone by then) and runs `work`. A verb
  /// built on it cannot forget the lock. `quick`: `work` calls only the
  /// hypervisor and the store (no storage backend, no waiting on a guest):
  /// see inlineLock.
  Result<core::OperationRecord> runVerb(const std::string& kind, const std::string& name, const Caller& caller,
                                        const std::function<Status()>& precheck, VerbWork work, bool quick = false);
  /// For an operation on `name` whose work is quick (see runVerb): when the
  /// hypervisor's calls return at once and no other operation holds the
  /// domain's lock, that lock, taken; the operation may then run on the
  /// calling thread (Request::run_inline), which never waits for a lock
  /// there. Else an empty lock: a worker runs it, taking the lock itself.
  DomainLock inlineLock(const std::string& name, bool quick);
  /// Runs `work` holding `name`'s lock, with its definition loaded: the
  /// frame under runVerb and the *Now methods.
  Status locked(const std::string& name, const std::function<Status(state::DomainRecord&)>& work);
  static Phases phasesOf(OperationContext& ctx);
  Status removeLocked(const state::DomainRecord& rec, bool delete_volumes, const Phases& phases,
                      OperationContext* ctx = nullptr);
  /// A definition as kept here, with its version (DomainView::version).
  struct Definition {
    state::DomainRecord rec;
    uint64_t version = 0;
  };
  /// Keeps `rec` as its name's definition, with a new version. Under mu_.
  void putLocked(state::DomainRecord rec);
  Result<state::DomainRecord> definition(const std::string& name);
  Status saveDefinition(const state::DomainRecord& rec);
  /// Fills `v` (new) as the API's view of one of ours; `live` is null when
  /// it is not in the hypervisor. Without `with_definition`, as list()'s
  /// `known` describes. An out parameter: list() builds its views in place.
  void viewOf(const Definition& def, const core::DomainInfo* live, bool with_definition, DomainView& v) const;
  static DomainView foreignView(const core::DomainInfo& info);
  /// NOT_FOUND for an unknown name, FAILED_PRECONDITION unless present in the hypervisor.
  Status requirePresent(const std::string& name);
  Result<core::DomainInfo> presentInfo(const state::DomainRecord& rec);  // NOT_FOUND if not present
  /// `ctx`: the operation doing it, whose end may carry the write (writeWithEnd).
  Status setRunningExpected(const std::string& name, bool running, OperationContext* ctx = nullptr);
  /// When `ctx` runs on its starting thread (which holds `name`'s lock
  /// until the end is stored: inlineLock): makes the operation's end write
  /// `name`'s row as the cache then has it (or delete it, gone from the
  /// cache), in the end's transaction, and returns true; the caller then
  /// changes the cache only. Else false: the caller writes now.
  /// When that write fails, the operation fails with its error and the
  /// cache takes `name`'s row back as stored (restoreStoredLocked).
  bool writeWithEnd(OperationContext* ctx, const std::string& name);
  /// Puts `name`'s row as the store has it (or its absence) back in the
  /// cache. Under mu_.
  void restoreStoredLocked(const std::string& name);
  void onHypervisorEvent(const core::HypervisorEvent& e);
  void publish(core::DomainEventKind kind, const core::DomainSpec& spec, int64_t domid, core::DomainState state,
               std::string message = "");
  /// `name`'s lock, held: one change at a time per domain. Taken before
  /// the registry's mutex, save_mu_, mu_ and the store.
  DomainLock domainLock(const std::string& name);
  /// As domainLock, or an empty lock when another holds it.
  DomainLock tryDomainLock(const std::string& name);
  std::string vanishedReason() const;
  /// The spec with each vol: disk replaced by its volume's host path.
  Result<core::DomainSpec> resolveDisks(const core::DomainSpec& spec);
  /// FAILED_PRECONDITION when a volume `spec` writes to is used by another
  /// present or starting domain of ours, or one it reads is written by one,
  /// or when one of its volumes is being deleted.
  Status checkVolumesFree(const core::DomainSpec& spec);
  /// FAILED_PRECONDITION when a volume `spec`'s disks name is being deleted.
  Status checkNotDeleting(const core::DomainSpec& spec) const;
  /// Resolves the disks and creates the domain in the hypervisor, the
  /// domain counting as a user of its volumes (in usage_) from the check on.
  Result<core::DomainInfo> startInHypervisor(const core::DomainSpec& spec, bool paused);
  /// Records that `spec`'s domain runs as `domid` and uses its volumes, then
  /// checks that it still does: an end reported before the record must not
  /// leave its volumes counted as in use.
  void recordRun(const core::DomainSpec& spec, int64_t domid);
  /// Destroys `rec`'s present domain; its volumes are free when this returns.
  Status destroyInHypervisor(const state::DomainRecord& rec);
  /// The volumes `rec`'s disks name, each checked deletable (see remove).
  Result<std::vector<core::VolumeRef>> deletableVolumes(const state::DomainRecord& rec);

  core::Hypervisor& hv_;
  StorageManager& storage_;
  VolumeUsage& usage_;
  state::Store& store_;
  OperationRegistry& ops_;
  EventBus& events_;
  const core::Clock& clock_;
  const HostPaths host_paths_;
  std::string hv_name_;

  const bool hv_quick_;  // hv_.callsReturnAtOnce()
  std::mutex mu_;                                     // guards the maps below
  std::condition_variable hv_changed_;                // any hypervisor event
  std::map<std::string, Definition> defs_;            // by name
  uint64_t last_version_ = 0;                         // the last Definition::version given
  std::map<std::string, std::string> names_by_uuid_;  // uuid -> name
  std::map<std::string, OpLock> op_locks_;  // one change at a time per domain: see OpLock
  // Adopted domains (by uuid) whose disks could not be resolved at load
  // (their pool left the config, say): why, shown in their view while they
  // run and in their stop reason when the hypervisor refuses their on_*
  // rebuild.
  std::map<std::string, std::string> unresolved_;
  std::vector<std::string> load_warnings_;
  uint64_t hv_event_count_ = 0;
};

}  // namespace xenctl::provision
