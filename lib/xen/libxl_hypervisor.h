// LibxlHypervisor: the Hypervisor port on real Xen, through libxenlight.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/hypervisor.h"
#include "lib/xen/libxl_logger.h"
#include "lib/xen/xl_domain_config.h"

// libxl's opaque handles, declared as libxl.h declares them, so that users of
// this header do not see Xen's C headers.
struct libxl__ctx;
struct libxl__evgen_domain_death;
struct libxl_event;

namespace xenctl::xen {

/// Controls Xen domains through one libxl context, the way xl does, with
/// these choices (the contract is core::Hypervisor's):
///
/// Events. A dedicated thread runs libxl's event machinery with
/// libxl_osevent_beforepoll / poll(2) / libxl_osevent_afterpoll, blocking in
/// poll with no timeout of its own (libxl supplies the timeouts it needs), so
/// nothing busy-polls. libxl_event_wait in a thread would do the same work,
/// but it cannot be woken to stop; beforepoll lets us add an eventfd to the
/// poll set. Events are taken with libxl_event_register_callbacks rather
/// than libxl_event_check, because libxl raises an event in whichever thread
/// is inside libxl at the time (a createDomain in a gRPC thread, say), and a
/// queued event would not wake our poll; the callback only queues the event
/// and writes the eventfd. The event thread hands the events, in order, to
/// a second thread, which acts on them: an on_* action destroys and builds
/// domains through synchronous libxl calls that take seconds, the event
/// thread must go on polling meanwhile, and a domain built from the event
/// thread itself never came up (its block hotplug script ran into libxl's
/// 40 s timeout in the lab).
///
/// Domains watched. A death watch (libxl_evenable_domain_death) is enabled
/// for every domain this object creates and for every domain it sees in a
/// list or lookup, so a guest shutting down, crashing or being destroyed
/// behind xenctld's back (`xl destroy`) is reported to the sink.
///
/// on_poweroff / on_reboot / on_crash / on_watchdog. libxl stores these with the domain
/// but acts on none of them; xl's per-domain monitor process does. For the
/// domains it created, xenctld is that monitor: the event thread applies the
/// spec's action as xl does: destroy; restart (destroy, then create the same
/// spec again: same uuid and name, a new domid; kRebooted);
/// rename-restart is a restart (the old domain is not kept under a new
/// name); preserve leaves the domain shut down or crashed for inspection;
/// coredump-* first writes a core to /var/lib/xen/dump/NAME, as xl does.
/// A domain created before xenctld restarted is its again once adopt()ed
/// (DomainManager adopts every stored definition at start). Domains it did
/// not create (xl's) are only reported: their own toolstack acts on them.
///
/// The end of a domain of ours is reported (kDestroyed) with its cause:
/// destroyed through xenctld, by its on_* action, or outside xenctld (`xl
/// destroy`, another toolstack) when xenctld had no part in it.
///
/// Children. libxl forks (bootloader, hotplug scripts, device model). The
/// context uses libxl_sigchld_owner_libxl_always_selective_reap: libxl
/// keeps a SIGCHLD handler installed and reaps only its own children, and
/// the rest of xenctld reaps its own children synchronously with waitpid
/// (and must not install a SIGCHLD handler). At least one thread must leave
/// SIGCHLD unblocked; xenctld blocks only SIGTERM, SIGINT and SIGHUP, and
/// libxl's children start with nothing blocked (libxl stops a device model
/// with SIGHUP).
///
/// Dom0 is not listed: it is the host (hostInfo), not a guest to manage.
/// The host's cpus and NUMA nodes as libxl reports them, for the xl config
/// keys that name them (cpus="all", "nodes:1", vnuma pnode); empty parts
/// where libxl cannot say.
HostCpus hostCpusOf(libxl_ctx* ctx);

class LibxlHypervisor final : public core::Hypervisor {
 public:
  struct Options {
    /// libxl's log lines, from any thread (failures are also returned in statuses).
    LibxlLogger::Sink log;
    LibxlLogLevel min_log_level = LibxlLogLevel::kWarn;
  };

  /// Opens libxl and starts the event thread. UNAVAILABLE, with libxl's
  /// reason, when this is not a Xen Dom0 with xencommons running.
  static Result<std::unique_ptr<LibxlHypervisor>> create(Options options);
  static Result<std::unique_ptr<LibxlHypervisor>> create();
  ~LibxlHypervisor() override;

  Result<core::HypervisorInfo> hostInfo() override;
  Result<core::DomainInfo> createDomain(const core::DomainSpec& spec, bool paused) override;
  Status adopt(const core::DomainSpec& spec) override;
  Result<std::vector<core::DomainInfo>> listDomains() override;
  Result<core::DomainInfo> domainInfo(const std::string& uuid) override;
  Status shutdownDomain(const std::string& uuid) override;
  Status rebootDomain(const std::string& uuid) override;
  Status destroyDomain(const std::string& uuid) override;
  Status pauseDomain(const std::string& uuid) override;
  Status unpauseDomain(const std::string& uuid) override;
  Status setVcpus(const std::string& uuid, uint32_t vcpus) override;
  Status setMemory(const std::string& uuid, uint64_t memory_mib) override;
  /// xenconsoled's pty for the domain's first PV console (an hvm domain's
  /// serial console when it has no PV one), from xenstore.
  Result<std::string> consolePath(const std::string& uuid) override;
  void setEventSink(EventSink sink) override;

 private:
  // A domain as found in Xen, with what the checks need beyond DomainInfo.
  struct Present {
    uint32_t domid = 0;
    core::DomainInfo info;
    uint32_t max_vcpus = 0;
    uint64_t max_memkb = 0;
    bool hvm = false;
  };
  // A domain this object created: its spec decides the on_* actions.
  struct Ours {
    core::DomainSpec spec;
    uint32_t domid = 0;
    // Set when xenctld ends the domain (destroyDomain, an on_* destroy): its
    // shutdown is no reason to act, and the death is reported with this
    // cause. Empty: a death is the work of someone else.
    std::string ending;
  };
  struct Watch {
    libxl__evgen_domain_death* evgen = nullptr;
    std::string uuid, name;
  };
  // What the libxl callback hands to the event thread.
  struct Pending {
    int type;
    uint32_t domid;
    int shutdown_reason;
  };

  LibxlHypervisor(Options options);
  Status start();

  Result<std::vector<Present>> present();
  Result<Present> lookup(const std::string& uuid);
  void watch(const Present& p);
  void watch(uint32_t domid, const std::string& uuid, const std::string& name);
  // Creates and (unless paused) unpauses; the caller has checked uniqueness.
  Result<Present> build(const core::DomainSpec& spec, bool paused);

  void eventLoop();
  void actionLoop();
  static void onLibxlEvent(void* self, libxl_event* event);
  void handle(const Pending& p);
  void onShutdown(uint32_t domid, int reason);
  void onDeath(uint32_t domid);
  void emit(const core::HypervisorEvent& e);
  core::HypervisorEvent event(core::HypervisorEvent::Kind kind, const std::string& uuid, const std::string& name,
                              int64_t domid, core::DomainState state, std::string message = "");

  Options options_;
  LibxlLogger logger_;
  libxl__ctx* ctx_ = nullptr;
  int wake_fd_ = -1;
  std::thread thread_;         // eventLoop
  std::thread action_thread_;  // actionLoop
  std::mutex actions_mu_;
  std::condition_variable actions_cv_;
  std::vector<Pending> actions_;  // events for actionLoop, in order
  bool actions_stop_ = false;

  std::mutex mu_;  // guards what follows; never held while calling the sink
  std::map<std::string, Ours> ours_;    // by uuid
  std::map<uint32_t, Watch> watches_;   // by domid
  EventSink sink_;
  bool stopping_ = false;

  // Bounded by nature: each watch yields at most one shutdown and one death.
  std::mutex pending_mu_;
  std::vector<Pending> pending_;
};

}  // namespace xenctl::xen
