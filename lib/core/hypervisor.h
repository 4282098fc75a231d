// The Hypervisor port: everything xenctld asks of Xen.
// Real: xen::LibxlHypervisor (libxenlight). In-memory: testhv::TestHypervisor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/core/domain.h"
#include "lib/core/status.h"

namespace xenctl::core {

struct HypervisorInfo {
  std::string name;     ///< "xen" or "test"
  std::string version;  ///< "4.17.7"
  uint32_t cpus = 0;
  uint64_t memory_total_mib = 0;
  uint64_t memory_free_mib = 0;
};

/// A change the hypervisor reports on its own (a guest shutting down,
/// crashing, a domain dying) or as the result of a call.
struct HypervisorEvent {
  enum class Kind { kStarted, kPaused, kUnpaused, kShutdown, kRebooted, kCrashed, kDestroyed, kResourcesChanged };
  Kind kind;
  std::string uuid;
  std::string name;
  int64_t domid = -1;
  DomainState state = DomainState::kStopped;  ///< state after the event
  std::string message;
};

/// Controls Xen domains. Domains are addressed by uuid, which is stable;
/// domids change on every reboot. All methods are thread-safe.
class Hypervisor {
 public:
  using EventSink = std::function<void(const HypervisorEvent&)>;
  virtual ~Hypervisor() = default;

  virtual Result<HypervisorInfo> hostInfo() = 0;
  /// Creates and starts the domain (paused when `paused`). The spec is
  /// normalized and its disk targets are host paths: a managed volume
  /// ("vol:POOL/NAME") is resolved by the caller (DomainManager), and one
  /// left unresolved is INVALID_ARGUMENT, naming the disk. ALREADY_EXISTS
  /// when a domain with that uuid or name is present; RESOURCE_EXHAUSTED
  /// when the host lacks the memory.
  virtual Result<DomainInfo> createDomain(const DomainSpec& spec, bool paused) = 0;
  /// Takes back a domain this daemon created before it restarted: when a
  /// domain with the spec's uuid is present, it is this daemon's again (its
  /// on_* actions apply, as for one it created). Nothing about the running
  /// domain changes. The spec's disks are as for createDomain: they are
  /// what an on_* restart builds the domain with again. NOT_FOUND when no
  /// such domain is present.
  virtual Status adopt(const DomainSpec& spec) = 0;
  /// Every domain present in the hypervisor, ours or not.
  virtual Result<std::vector<DomainInfo>> listDomains() = 0;
  /// NOT_FOUND when no domain with that uuid is present.
  virtual Result<DomainInfo> domainInfo(const std::string& uuid) = 0;
  /// Asks the guest to shut down and returns at once; the event sink hears
  /// when it has (kShutdown, then kDestroyed unless on_poweroff preserves it).
  virtual Status shutdownDomain(const std::string& uuid) = 0;
  /// Asks the guest to reboot; kRebooted follows.
  virtual Status rebootDomain(const std::string& uuid) = 0;
  /// Hard stop; returns once the domain is gone.
  virtual Status destroyDomain(const std::string& uuid) = 0;
  /// FAILED_PRECONDITION when the domain is not in a state that allows it.
  virtual Status pauseDomain(const std::string& uuid) = 0;
  virtual Status unpauseDomain(const std::string& uuid) = 0;
  /// Online vcpus, 1..maxvcpus (INVALID_ARGUMENT outside).
  virtual Status setVcpus(const std::string& uuid, uint32_t vcpus) = 0;
  /// Memory target in MiB, up to maxmem (INVALID_ARGUMENT above).
  virtual Status setMemory(const std::string& uuid, uint64_t memory_mib) = 0;
  /// The Dom0 path of the slave end of the domain's console pty (the end a
  /// console client opens; see sys::ConsolePty). NOT_FOUND when the domain
  /// is not present; FAILED_PRECONDITION when it has no console.
  virtual Result<std::string> consolePath(const std::string& uuid) = 0;
  /// Installs the one receiver of events; called from the hypervisor's own
  /// thread or from inside the call that caused the event, never under a
  /// lock the sink could need.
  virtual void setEventSink(EventSink sink) = 0;
  /// True when every call above changes only memory and returns within
  /// microseconds, never waiting on a guest, a device or a disk (the test
  /// hypervisor): an operation made of such calls may then run on the
  /// thread that asked for it (OperationRegistry::Request::run_inline).
  virtual bool callsReturnAtOnce() const { return false; }
};

}  // namespace xenctl::core
