#include "client/lib/convert.h"

namespace xenctl::client {
namespace {

std::optional<absl::Time> fromProto(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return std::nullopt;
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// UNSPECIFIED means the daemon's documented default (domain.proto).
core::DomainType fromProto(v1::DomainType t) {
  switch (t) {
    case v1::DOMAIN_TYPE_PV: return core::DomainType::kPv;
    case v1::DOMAIN_TYPE_HVM: return core::DomainType::kHvm;
    default: return core::DomainType::kPvh;
  }
}

v1::DomainType toProto(core::DomainType t) {
  switch (t) {
    case core::DomainType::kPv: return v1::DOMAIN_TYPE_PV;
    case core::DomainType::kPvh: return v1::DOMAIN_TYPE_PVH;
    case core::DomainType::kHvm: return v1::DOMAIN_TYPE_HVM;
  }
  return v1::DOMAIN_TYPE_UNSPECIFIED;
}

std::optional<core::DomainState> fromProto(v1::DomainState s) {
  switch (s) {
    case v1::DOMAIN_STATE_STOPPED: return core::DomainState::kStopped;
    case v1::DOMAIN_STATE_RUNNING: return core::DomainState::kRunning;
    case v1::DOMAIN_STATE_BLOCKED: return core::DomainState::kBlocked;
    case v1::DOMAIN_STATE_PAUSED: return core::DomainState::kPaused;
    case v1::DOMAIN_STATE_SHUTDOWN: return core::DomainState::kShutdown;
    case v1::DOMAIN_STATE_CRASHED: return core::DomainState::kCrashed;
    case v1::DOMAIN_STATE_DYING: return core::DomainState::kDying;
    case v1::DOMAIN_STATE_VANISHED: return core::DomainState::kVanished;
    default: return std::nullopt;
  }
}

core::LifecycleAction fromProto(v1::LifecycleAction a, core::LifecycleAction unspecified) {
  switch (a) {
    case v1::LIFECYCLE_ACTION_DESTROY: return core::LifecycleAction::kDestroy;
    case v1::LIFECYCLE_ACTION_RESTART: return core::LifecycleAction::kRestart;
    case v1::LIFECYCLE_ACTION_PRESERVE: return core::LifecycleAction::kPreserve;
    case v1::LIFECYCLE_ACTION_RENAME_RESTART: return core::LifecycleAction::kRenameRestart;
    case v1::LIFECYCLE_ACTION_COREDUMP_DESTROY: return core::LifecycleAction::kCoredumpDestroy;
    case v1::LIFECYCLE_ACTION_COREDUMP_RESTART: return core::LifecycleAction::kCoredumpRestart;
    default: return unspecified;
  }
}

v1::LifecycleAction toProto(std::optional<core::LifecycleAction> a) {
  if (!a) return v1::LIFECYCLE_ACTION_UNSPECIFIED;
  switch (*a) {
    case core::LifecycleAction::kDestroy: return v1::LIFECYCLE_ACTION_DESTROY;
    case core::LifecycleAction::kRestart: return v1::LIFECYCLE_ACTION_RESTART;
    case core::LifecycleAction::kPreserve: return v1::LIFECYCLE_ACTION_PRESERVE;
    case core::LifecycleAction::kRenameRestart: return v1::LIFECYCLE_ACTION_RENAME_RESTART;
    case core::LifecycleAction::kCoredumpDestroy: return v1::LIFECYCLE_ACTION_COREDUMP_DESTROY;
    case core::LifecycleAction::kCoredumpRestart: return v1::LIFECYCLE_ACTION_COREDUMP_RESTART;
  }
  return v1::LIFECYCLE_ACTION_UNSPECIFIED;
}

OperationState fromProto(v1::OperationState s) {
  switch (s) {
    case v1::OPERATION_STATE_PENDING: return OperationState::kPending;
    case v1::OPERATION_STATE_RUNNING: return OperationState::kRunning;
    case v1::OPERATION_STATE_SUCCEEDED: return OperationState::kSucceeded;
    case v1::OPERATION_STATE_FAILED: return OperationState::kFailed;
    case v1::OPERATION_STATE_CANCELLED: return OperationState::kCancelled;
    default: return OperationState::kUnknown;
  }
}

}  // namespace

Domain fromProto(const v1::Domain& d) {
  Domain out;
  const v1::DomainSpec& s = d.spec();
  core::DomainSpec& spec = out.spec;
  spec.name = s.name();
  spec.uuid = s.uuid();
  spec.type = fromProto(s.type());
  spec.kernel = s.kernel();
  spec.ramdisk = s.ramdisk();
  spec.cmdline = s.cmdline();
  spec.bootloader = s.bootloader();
  spec.bootloader_args.assign(s.bootloader_args().begin(), s.bootloader_args().end());
  spec.memory_mib = s.memory_mib();
  spec.maxmem_mib = s.maxmem_mib() != 0 ? s.maxmem_mib() : s.memory_mib();
  spec.vcpus = s.vcpus();
  spec.maxvcpus = s.maxvcpus() != 0 ? s.maxvcpus() : s.vcpus();
  for (const v1::Disk& disk : s.disks())
    spec.disks.push_back({.target = disk.target(), .vdev = disk.vdev(), .mode = disk.mode(), .format = disk.format()});
  for (const v1::Vif& vif : s.vifs()) spec.vifs.push_back({.bridge = vif.bridge(), .mac = vif.mac(), .ip = vif.ip()});
  spec.on_poweroff = fromProto(s.on_poweroff(), core::LifecycleAction::kDestroy);
  spec.on_reboot = fromProto(s.on_reboot(), core::LifecycleAction::kRestart);
  spec.on_crash = fromProto(s.on_crash(), core::LifecycleAction::kDestroy);
  out.state = fromProto(d.state());
  out.state_reason = d.state_reason();
  out.domid = d.domid();
  out.vcpus_online = d.vcpus_online();
  out.memory_current_mib = d.memory_mib();
  out.cpu_time_seconds = d.cpu_time_seconds();
  out.foreign = d.foreign();
  if (d.has_created_at()) out.created_at = fromProto(d.created_at());
  out.owner_uid = d.owner_uid();
  return out;
}

Operation fromProto(const v1::Operation& op) {
  Operation out;
  out.id = op.id();
  out.kind = op.kind();
  out.target = op.target();
  out.request_id = op.request_id();
  out.state = fromProto(op.state());
  out.phase = op.phase();
  out.percent = op.percent();
  out.bytes_done = op.bytes_done();
  out.bytes_total = op.bytes_total();
  out.message = op.message();
  if (op.has_created_at()) out.created_at = fromProto(op.created_at());
  if (op.has_updated_at()) out.updated_at = fromProto(op.updated_at());
  if (op.has_finished_at()) out.finished_at = fromProto(op.finished_at());
  out.status_code = op.status_code();
  out.status_message = op.status_message();
  out.caller_uid = op.caller_uid();
  return out;
}

HostInfo fromProto(const v1::HostInfo& h) {
  HostInfo out;
  out.hypervisor = h.hypervisor();
  out.hypervisor_version = h.hypervisor_version();
  out.hostname = h.hostname();
  out.cpus = h.cpus();
  out.memory_total_mib = h.memory_total_mib();
  out.memory_free_mib = h.memory_free_mib();
  out.domains_defined = h.domains_defined();
  out.domains_running = h.domains_running();
  for (const v1::PoolCapacity& p : h.pools())
    out.pools.push_back({.name = p.name(),
                         .driver = p.driver(),
                         .size_bytes = p.size_bytes(),
                         .used_bytes = p.used_bytes(),
                         .metadata_percent = p.metadata_percent()});
  out.daemon_version = h.daemon_version();
  out.operations_active = h.operations_active();
  out.operations_limit = h.operations_limit();
  return out;
}

v1::CreateDomainRequest toProto(const CreateDomainArgs& args) {
  v1::CreateDomainRequest req;
  req.set_request_id(args.request_id);
  req.set_define_only(args.define_only);
  req.set_paused(args.paused);
  v1::DomainSpec* s = req.mutable_spec();
  s->set_name(args.name);
  if (args.type) s->set_type(toProto(*args.type));
  s->set_kernel(args.kernel);
  s->set_ramdisk(args.ramdisk);
  s->set_cmdline(args.cmdline);
  s->set_memory_mib(args.memory_mib);
  s->set_maxmem_mib(args.maxmem_mib);
  s->set_vcpus(args.vcpus);
  s->set_maxvcpus(args.maxvcpus);
  for (const core::DiskSpec& d : args.disks) {
    v1::Disk* disk = s->add_disks();
    disk->set_target(d.target);
    disk->set_vdev(d.vdev);
    disk->set_mode(d.mode);
    disk->set_format(d.format);
  }
  for (const core::VifSpec& v : args.vifs) {
    v1::Vif* vif = s->add_vifs();
    vif->set_bridge(v.bridge);
    vif->set_mac(v.mac);
    vif->set_ip(v.ip);
  }
  s->set_on_poweroff(toProto(args.on_poweroff));
  s->set_on_reboot(toProto(args.on_reboot));
  s->set_on_crash(toProto(args.on_crash));
  return req;
}

}  // namespace xenctl::client
