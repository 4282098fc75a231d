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
// another present (or starting) domain names, unless both attach it read-only.
//
// Which volumes our present or starting domains use is recorded in the
// VolumeUsage registry (from the start of a hand-over to the hypervisor
// until the hypervisor reports the domain gone); StorageManager reads it.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/core/clock.h"
#include "lib/core/hypervisor.h"
#include "lib/provision/caller.h"
#include "lib/provision/event_bus.h"
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
};

class DomainManager {
 public:
  struct CreateRequest {
    core::DomainSpec spec;  ///< uuid is assigned here when empty
    bool define_only = false;
    bool paused = false;
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
  };

  /// `usage` is where this manager records which volumes its present and
  /// starting domains use (StorageManager reads it).
  DomainManager(core::Hypervisor& hv, StorageManager& storage, VolumeUsage& usage, state::Store& store,
                OperationRegistry& ops, EventBus& events, const core::Clock& clock);
  ~DomainManager();

  /// Loads the definitions, subscribes to the hypervisor's events and
  /// adopts the defined domains still running from before a restart
  /// (Hypervisor::adopt, with the disks resolved), so their on_* actions
  /// apply again. A domain whose volume cannot be resolved is adopted with
  /// the disk as stored: it runs on, and only a restart by its on_* action
  /// fails, naming the disk.
  Status load();

  /// INVALID_ARGUMENT for a bad spec and ALREADY_EXISTS for a taken name
  /// are returned at once; what can only fail later fails the operation,
  /// which then leaves nothing behind.
  Result<core::OperationRecord> create(CreateRequest req, const Caller& caller);
  /// NOT_FOUND when no domain (ours or foreign) has that name.
  Result<DomainView> get(const std::string& name);
  /// Ours by name; foreign ones after them when asked for.
  Result<std::vector<DomainView>> list(bool include_foreign);
  Result<core::OperationRecord> start(const std::string& name, bool paused, const Caller& caller);
  Result<core::OperationRecord> shutdown(const std::string& name, ShutdownRequest req, const Caller& caller);
  Result<core::OperationRecord> reboot(const std::string& name, const Caller& caller);
  Result<core::OperationRecord> destroy(const std::string& name, const Caller& caller);
  /// Removes the definition; FAILED_PRECONDITION while present unless `force`.
  /// With `delete_volumes`, then deletes every volume its disks name (never a
  /// host path). The whole call is refused up front, changing nothing, when
  /// one of them cannot be deleted: its pool is missing, it has snapshots or
  /// clones, or another domain's disk names it. A volume already gone is
  /// skipped. A volume whose deletion still fails is named in the
  /// operation's error; the domain stays deleted.
  Result<core::OperationRecord> remove(const std::string& name, bool force, bool delete_volumes,
                                       const Caller& caller);
  Result<core::OperationRecord> pause(const std::string& name, const Caller& caller);
  Result<core::OperationRecord> unpause(const std::string& name, const Caller& caller);
  /// Live when present, and kept in the spec for the next start.
  Result<core::OperationRecord> setResources(const std::string& name, Resources r, const Caller& caller);
  Counts counts();
  /// The console pty of a present domain (see sys::ConsolePty). NOT_FOUND
  /// for an unknown name; FAILED_PRECONDITION when it is not running, or
  /// when it is foreign and not `read_only` (typing into it changes it).
  Result<std::string> consolePath(const std::string& name, bool read_only);

 private:
  Result<state::DomainRecord> definition(const std::string& name);
  Status saveDefinition(const state::DomainRecord& rec);
  /// The API's view of one of ours; `live` is null when it is not in the hypervisor.
  DomainView viewOf(const state::DomainRecord& rec, const core::DomainInfo* live) const;
  static DomainView foreignView(const core::DomainInfo& info);
  /// NOT_FOUND for an unknown name, FAILED_PRECONDITION unless present in the hypervisor.
  Status requirePresent(const std::string& name);
  Result<core::DomainInfo> presentInfo(const state::DomainRecord& rec);  // NOT_FOUND if not present
  Status setRunningExpected(const std::string& name, bool running);
  void onHypervisorEvent(const core::HypervisorEvent& e);
  void publish(core::DomainEventKind kind, const core::DomainSpec& spec, int64_t domid, core::DomainState state,
               std::string message = "");
  std::shared_ptr<std::mutex> domainLock(const std::string& name);
  std::string vanishedReason() const;
  /// The spec with each vol: disk replaced by its volume's host path.
  Result<core::DomainSpec> resolveDisks(const core::DomainSpec& spec);
  /// FAILED_PRECONDITION when a volume `spec` writes to is used by another
  /// present or starting domain of ours, or one it reads is written by one.
  Status checkVolumesFree(const core::DomainSpec& spec);
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
  std::string hv_name_;

  std::mutex mu_;                                     // guards the maps below
  std::condition_variable hv_changed_;                // any hypervisor event
  std::map<std::string, state::DomainRecord> defs_;   // by name
  std::map<std::string, std::string> names_by_uuid_;  // uuid -> name
  std::map<std::string, std::shared_ptr<std::mutex>> op_locks_;  // one change at a time per domain
  // Why each of ours last stopped, by uuid, as the hypervisor reported it
  // ("destroyed outside xenctld ..."); shown until it starts again. Not
  // stored: after a restart a stopped domain shows no reason.
  std::map<std::string, std::string> stop_reasons_;
  uint64_t hv_event_count_ = 0;
};

}  // namespace xenctl::provision
