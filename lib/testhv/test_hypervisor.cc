#include "lib/testhv/test_hypervisor.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "lib/core/volume.h"

namespace xenctl::testhv {

using core::DomainState;
using Kind = core::HypervisorEvent::Kind;

namespace {
std::string who(const core::DomainSpec& s) { return absl::StrCat("domain '", s.name, "'"); }

// As libxl's config builder: disks are host paths, managed volumes are the caller's to resolve.
Status checkDisks(const core::DomainSpec& s) {
  for (const auto& d : s.disks)
    if (core::isVolumeTarget(d.target))
      return absl::InvalidArgumentError(absl::StrCat(who(s), ": disk ", d.vdev, " names volume ", d.target,
                                                     " instead of a host path"));
  return absl::OkStatus();
}
}  // namespace

core::HypervisorEvent TestHypervisor::eventFor(const Dom& d, Kind kind) {
  return {kind, d.spec.uuid, d.spec.name, d.info.domid, d.info.state, ""};
}

void TestHypervisor::emit(const Events& events) {
  EventSink sink;
  {
    std::lock_guard lock(mu_);
    sink = sink_;
  }
  if (!sink) return;
  for (const auto& e : events) sink(e);
}

void TestHypervisor::setEventSink(EventSink sink) {
  std::lock_guard lock(mu_);
  sink_ = std::move(sink);
}

uint64_t TestHypervisor::usedMemoryMib() const { return used_mib_; }

void TestHypervisor::setMemoryLocked(Dom& d, uint64_t memory_mib) {
  used_mib_ = used_mib_ - d.info.memory_mib + memory_mib;
  d.info.memory_mib = memory_mib;
}

void TestHypervisor::eraseLocked(Dom& d) {
  used_mib_ -= d.info.memory_mib;
  names_.erase(d.spec.name);
  domains_.erase(d.spec.uuid);
}

Result<TestHypervisor::Dom*> TestHypervisor::find(const std::string& uuid) {
  auto it = domains_.find(uuid);
  if (it == domains_.end())
    return absl::NotFoundError(absl::StrCat("no domain with uuid ", uuid, " is present in the test hypervisor"));
  return &it->second;
}

Result<core::HypervisorInfo> TestHypervisor::hostInfo() {
  std::lock_guard lock(mu_);
  return core::HypervisorInfo{"test", options_.version, options_.cpus, options_.memory_mib,
                              options_.memory_mib - usedMemoryMib()};
}

Result<core::DomainInfo> TestHypervisor::createDomain(const core::DomainSpec& spec, bool paused) {
  XENCTL_RETURN_IF_ERROR(checkDisks(spec));
  Events events;
  core::DomainInfo info;
  {
    std::lock_guard lock(mu_);
    if (domains_.count(spec.uuid) || names_.count(spec.name))
      return absl::AlreadyExistsError(absl::StrCat(who(spec), " is already present in the hypervisor"));
    const uint64_t free = options_.memory_mib - usedMemoryMib();
    if (spec.memory_mib > free)
      return absl::ResourceExhaustedError(absl::StrCat("creating ", who(spec), ": it needs ", spec.memory_mib,
                                                       " MiB but the host has ", free, " MiB free"));
    Dom d{spec, {spec.name, spec.uuid, next_domid_++, paused ? DomainState::kPaused : DomainState::kRunning,
                 spec.vcpus, spec.memory_mib, 0.0, spec.type},
          true, nullptr};
    events.push_back(eventFor(d, Kind::kStarted));
    info = d.info;
    domains_.emplace(spec.uuid, std::move(d));
    names_.insert(spec.name);
    used_mib_ += spec.memory_mib;
  }
  emit(events);
  return info;
}

Result<std::vector<core::DomainInfo>> TestHypervisor::listDomains() {
  std::lock_guard lock(mu_);
  std::vector<core::DomainInfo> out;
  out.reserve(domains_.size());
  for (const auto& [uuid, d] : domains_) out.push_back(d.info);
  return out;
}

Result<core::DomainInfo> TestHypervisor::domainInfo(const std::string& uuid) {
  std::lock_guard lock(mu_);
  XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
  return d->info;
}

void TestHypervisor::applyAction(Dom& d, core::LifecycleAction action, Kind why, Events& events) {
  using core::LifecycleAction;
  switch (action) {
    case LifecycleAction::kDestroy:
    case LifecycleAction::kCoredumpDestroy:
      d.info.state = DomainState::kDying;
      events.push_back(eventFor(d, Kind::kDestroyed));
      events.back().state = DomainState::kStopped;
      eraseLocked(d);  // d is gone from here on
      return;
    case LifecycleAction::kRestart:
    case LifecycleAction::kRenameRestart:
    case LifecycleAction::kCoredumpRestart:
      // Xen builds a new domain for a restart: a new domid, the spec's
      // resources. A spec it cannot build from ends the domain, as libxl's
      // restart does.
      if (Status st = checkDisks(d.spec); !st.ok()) {
        d.info.state = DomainState::kDying;
        events.push_back(eventFor(d, Kind::kDestroyed));
        events.back().state = DomainState::kStopped;
        events.back().message = absl::StrCat("restart failed: ", st.message());
        eraseLocked(d);  // d is gone from here on
        return;
      }
      d.info.domid = next_domid_++;
      d.info.state = DomainState::kRunning;
      d.console.reset();  // the old domain's console closes with it
      d.info.vcpus_online = d.spec.vcpus;
      setMemoryLocked(d, d.spec.memory_mib);
      events.push_back(eventFor(d, Kind::kRebooted));
      return;
    case LifecycleAction::kPreserve:
      d.info.state = why == Kind::kCrashed ? DomainState::kCrashed : DomainState::kShutdown;
      events.push_back(eventFor(d, why));
      return;
  }
}

Status TestHypervisor::shutdownDomain(const std::string& uuid) {
  Events events;
  {
    std::lock_guard lock(mu_);
    XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
    if (d->info.state != DomainState::kRunning && d->info.state != DomainState::kBlocked)
      return absl::FailedPreconditionError(absl::StrCat(who(d->spec), " is ", av(core::toString(d->info.state)),
                                                        ", a guest can only shut down while running; ",
                                                        d->info.state == DomainState::kPaused
                                                            ? "unpause it first, or destroy it"
                                                            : "destroy it instead"));
    d->info.state = DomainState::kShutdown;
    events.push_back(eventFor(*d, Kind::kShutdown));
    if (d->managed && d->spec.on_poweroff != core::LifecycleAction::kPreserve)
      applyAction(*d, d->spec.on_poweroff, Kind::kShutdown, events);
  }
  emit(events);
  return absl::OkStatus();
}

Status TestHypervisor::rebootDomain(const std::string& uuid) {
  Events events;
  {
    std::lock_guard lock(mu_);
    XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
    if (d->info.state != DomainState::kRunning && d->info.state != DomainState::kBlocked)
      return absl::FailedPreconditionError(absl::StrCat(who(d->spec), " is ", av(core::toString(d->info.state)),
                                                        "; only a running guest can reboot"));
    applyAction(*d, d->managed ? d->spec.on_reboot : core::LifecycleAction::kPreserve, Kind::kShutdown, events);
  }
  emit(events);
  return absl::OkStatus();
}

Status TestHypervisor::crashDomain(const std::string& uuid) {
  Events events;
  {
    std::lock_guard lock(mu_);
    XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
    d->info.state = DomainState::kCrashed;
    events.push_back(eventFor(*d, Kind::kCrashed));
    if (d->managed && d->spec.on_crash != core::LifecycleAction::kPreserve)
      applyAction(*d, d->spec.on_crash, Kind::kCrashed, events);
  }
  emit(events);
  return absl::OkStatus();
}

Result<std::string> TestHypervisor::consolePath(const std::string& uuid) {
  std::lock_guard lock(mu_);
  XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
  if (!d->console) {
    XENCTL_ASSIGN_OR_RETURN(sys::PtyPair pty, sys::openPtyPair());
    // Then the disks the guest sees, as blkfront lists them at boot.
    std::string banner =
        absl::StrCat("xenctl test hypervisor: console of ", who(d->spec), " (domid ", d->info.domid, ")\r\n");
    for (const auto& disk : d->spec.disks)
      absl::StrAppend(&banner, "disk ", disk.vdev, ": ", disk.target, " (", disk.mode, ")\r\n");
    if (::write(pty.master.get(), banner.data(), banner.size()) != static_cast<ssize_t>(banner.size()))
      return absl::InternalError(absl::StrCat("writing to the console pty of ", who(d->spec)));
    d->console = std::make_shared<sys::PtyPair>(std::move(pty));
  }
  return d->console->slave_path;
}

Status TestHypervisor::adopt(const core::DomainSpec& spec) {
  std::lock_guard lock(mu_);
  XENCTL_ASSIGN_OR_RETURN(Dom * d, find(spec.uuid));
  d->spec = spec;
  d->managed = true;
  return absl::OkStatus();
}

Result<core::DomainSpec> TestHypervisor::specOf(const std::string& uuid) {
  std::lock_guard lock(mu_);
  XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
  return d->spec;
}

void TestHypervisor::forgetManaged() {
  std::lock_guard lock(mu_);
  for (auto& [uuid, d] : domains_) d.managed = false;
}

Status TestHypervisor::destroyDomain(const std::string& uuid) {
  Events events;
  {
    std::lock_guard lock(mu_);
    XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
    applyAction(*d, core::LifecycleAction::kDestroy, Kind::kDestroyed, events);
  }
  emit(events);
  return absl::OkStatus();
}

Status TestHypervisor::pauseDomain(const std::string& uuid) {
  Events events;
  {
    std::lock_guard lock(mu_);
    XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
    if (d->info.state != DomainState::kRunning && d->info.state != DomainState::kBlocked)
      return absl::FailedPreconditionError(
          absl::StrCat(who(d->spec), " is ", av(core::toString(d->info.state)), "; only a running domain can be paused"));
    d->info.state = DomainState::kPaused;
    events.push_back(eventFor(*d, Kind::kPaused));
  }
  emit(events);
  return absl::OkStatus();
}

Status TestHypervisor::unpauseDomain(const std::string& uuid) {
  Events events;
  {
    std::lock_guard lock(mu_);
    XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
    if (d->info.state != DomainState::kPaused)
      return absl::FailedPreconditionError(
          absl::StrCat(who(d->spec), " is ", av(core::toString(d->info.state)), ", not paused"));
    d->info.state = DomainState::kRunning;
    events.push_back(eventFor(*d, Kind::kUnpaused));
  }
  emit(events);
  return absl::OkStatus();
}

Status TestHypervisor::setVcpus(const std::string& uuid, uint32_t vcpus) {
  Events events;
  {
    std::lock_guard lock(mu_);
    XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
    if (vcpus < 1 || vcpus > d->spec.maxvcpus)
      return absl::InvalidArgumentError(absl::StrCat(who(d->spec), ": vcpus ", vcpus, " is out of range; use 1 to ",
                                                     d->spec.maxvcpus, " (maxvcpus)"));
    d->info.vcpus_online = vcpus;
    events.push_back(eventFor(*d, Kind::kResourcesChanged));
  }
  emit(events);
  return absl::OkStatus();
}

Status TestHypervisor::setMemory(const std::string& uuid, uint64_t memory_mib) {
  Events events;
  {
    std::lock_guard lock(mu_);
    XENCTL_ASSIGN_OR_RETURN(Dom * d, find(uuid));
    if (memory_mib < core::kMinMemoryMib || memory_mib > d->spec.maxmem_mib)
      return absl::InvalidArgumentError(absl::StrCat(who(d->spec), ": memory ", memory_mib,
                                                     " MiB is out of range; use ", core::kMinMemoryMib, " to ",
                                                     d->spec.maxmem_mib, " MiB (maxmem)"));
    const uint64_t free = options_.memory_mib - usedMemoryMib();
    if (memory_mib > d->info.memory_mib && memory_mib - d->info.memory_mib > free)
      return absl::ResourceExhaustedError(absl::StrCat(who(d->spec), ": growing to ", memory_mib,
                                                       " MiB needs more than the host's ", free, " MiB free"));
    setMemoryLocked(*d, memory_mib);
    events.push_back(eventFor(*d, Kind::kResourcesChanged));
  }
  emit(events);
  return absl::OkStatus();
}

}  // namespace xenctl::testhv
