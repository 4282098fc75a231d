// The `test` hypervisor: an in-memory Xen with the real lifecycle state
// machine, for trying the API and for tests where no Xen runs (as libvirt's
// test:///default driver is). Nothing it holds survives the process.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "lib/core/hypervisor.h"
#include "lib/sys/console_pty.h"

namespace xenctl::testhv {

class TestHypervisor final : public core::Hypervisor {
 public:
  struct Options {
    uint32_t cpus = 8;
    uint64_t memory_mib = 65536;
    std::string version = "test";
  };
  TestHypervisor() : TestHypervisor(Options{}) {}
  explicit TestHypervisor(Options options) : options_(std::move(options)) {}

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
  /// A pty made on first use whose guest side prints one line naming the
  /// domain, then one line per disk with the host path it was given
  /// ("disk xvda: /srv/web1.img (w)"), and is closed when the domain ends or restarts (a console client
  /// then sees it close, as with Xen). Nothing reads what is typed into it.
  Result<std::string> consolePath(const std::string& uuid) override;
  void setEventSink(EventSink sink) override;
  /// Its domains are in memory only.
  bool callsReturnAtOnce() const override { return true; }

  /// Makes the guest crash, as a kernel panic would; on_crash decides what follows.
  Status crashDomain(const std::string& uuid);
  /// What a daemon restart does to what the hypervisor side knows: every
  /// domain keeps running, but none is managed until adopt()ed again, and
  /// an unmanaged domain's shutdown or crash is only reported (it stays shut
  /// down or crashed), as LibxlHypervisor does for domains it did not create.
  void forgetManaged();
  /// The spec the domain was last created or adopted with: what a real
  /// backend would build it from (disks as host paths). NOT_FOUND when absent.
  Result<core::DomainSpec> specOf(const std::string& uuid);

 private:
  struct Dom {
    core::DomainSpec spec;
    core::DomainInfo info;
    bool managed = true;  // its on_* actions apply; see forgetManaged
    std::shared_ptr<sys::PtyPair> console;  // made by consolePath
  };
  using Events = std::vector<core::HypervisorEvent>;

  // The guest went down for `why`: apply the spec's action for it.
  void applyAction(Dom& d, core::LifecycleAction action, core::HypervisorEvent::Kind why, Events& events);
  Result<Dom*> find(const std::string& uuid);
  uint64_t usedMemoryMib() const;
  /// The one way a present domain's memory changes, and the one way it
  /// goes: used_mib_ and names_ follow.
  void setMemoryLocked(Dom& d, uint64_t memory_mib);
  void eraseLocked(Dom& d);
  void emit(const Events& events);
  static core::HypervisorEvent eventFor(const Dom& d, core::HypervisorEvent::Kind kind);

  const Options options_;
  std::mutex mu_;
  std::map<std::string, Dom> domains_;  // by uuid
  // Of domains_: their names, and their memory's sum (a create checks both
  // without a walk over every domain).
  std::set<std::string> names_;
  uint64_t used_mib_ = 0;
  int64_t next_domid_ = 1;
  EventSink sink_;
};

}  // namespace xenctl::testhv
