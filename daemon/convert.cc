#include "daemon/convert.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"

namespace xenctl::daemon {
namespace {

void setTime(absl::Time t, google::protobuf::Timestamp* ts) {
  *ts = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

Result<core::LifecycleAction> actionFromProto(v1::LifecycleAction a, core::LifecycleAction dflt) {
  switch (a) {
    case v1::LIFECYCLE_ACTION_UNSPECIFIED: return dflt;
    case v1::LIFECYCLE_ACTION_DESTROY: return core::LifecycleAction::kDestroy;
    case v1::LIFECYCLE_ACTION_RESTART: return core::LifecycleAction::kRestart;
    case v1::LIFECYCLE_ACTION_PRESERVE: return core::LifecycleAction::kPreserve;
    case v1::LIFECYCLE_ACTION_RENAME_RESTART: return core::LifecycleAction::kRenameRestart;
    case v1::LIFECYCLE_ACTION_COREDUMP_DESTROY: return core::LifecycleAction::kCoredumpDestroy;
    case v1::LIFECYCLE_ACTION_COREDUMP_RESTART: return core::LifecycleAction::kCoredumpRestart;
    default: return absl::InvalidArgumentError(absl::StrCat("unknown lifecycle action ", static_cast<int>(a)));
  }
}

v1::LifecycleAction actionToProto(core::LifecycleAction a) {
  switch (a) {
    case core::LifecycleAction::kDestroy: return v1::LIFECYCLE_ACTION_DESTROY;
    case core::LifecycleAction::kRestart: return v1::LIFECYCLE_ACTION_RESTART;
    case core::LifecycleAction::kPreserve: return v1::LIFECYCLE_ACTION_PRESERVE;
    case core::LifecycleAction::kRenameRestart: return v1::LIFECYCLE_ACTION_RENAME_RESTART;
    case core::LifecycleAction::kCoredumpDestroy: return v1::LIFECYCLE_ACTION_COREDUMP_DESTROY;
    case core::LifecycleAction::kCoredumpRestart: return v1::LIFECYCLE_ACTION_COREDUMP_RESTART;
  }
  return v1::LIFECYCLE_ACTION_UNSPECIFIED;
}

}  // namespace

grpc::Status toGrpc(const Status& st) {
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

Result<core::DomainSpec> fromProto(const v1::DomainSpec& p) {
  core::DomainSpec s;
  s.name = p.name();
  s.uuid = p.uuid();
  switch (p.type()) {
    case v1::DOMAIN_TYPE_UNSPECIFIED:
    case v1::DOMAIN_TYPE_PVH: s.type = core::DomainType::kPvh; break;
    case v1::DOMAIN_TYPE_PV: s.type = core::DomainType::kPv; break;
    case v1::DOMAIN_TYPE_HVM: s.type = core::DomainType::kHvm; break;
    default: return absl::InvalidArgumentError(absl::StrCat("unknown domain type ", static_cast<int>(p.type())));
  }
  s.kernel = p.kernel();
  s.ramdisk = p.ramdisk();
  s.cmdline = p.cmdline();
  s.bootloader = p.bootloader();
  s.bootloader_args.assign(p.bootloader_args().begin(), p.bootloader_args().end());
  s.memory_mib = p.memory_mib();
  s.maxmem_mib = p.maxmem_mib();
  s.vcpus = p.vcpus();
  s.maxvcpus = p.maxvcpus();
  for (const auto& d : p.disks()) s.disks.push_back({d.target(), d.vdev(), d.mode(), d.format()});
  for (const auto& v : p.vifs()) s.vifs.push_back({v.bridge(), v.mac(), v.ip()});
  XENCTL_ASSIGN_OR_RETURN(s.on_poweroff, actionFromProto(p.on_poweroff(), core::LifecycleAction::kDestroy));
  XENCTL_ASSIGN_OR_RETURN(s.on_reboot, actionFromProto(p.on_reboot(), core::LifecycleAction::kRestart));
  XENCTL_ASSIGN_OR_RETURN(s.on_crash, actionFromProto(p.on_crash(), core::LifecycleAction::kDestroy));
  return s;
}

void toProto(const core::DomainSpec& s, v1::DomainSpec* p) {
  p->set_name(s.name);
  p->set_uuid(s.uuid);
  p->set_type(s.type == core::DomainType::kPv    ? v1::DOMAIN_TYPE_PV
              : s.type == core::DomainType::kHvm ? v1::DOMAIN_TYPE_HVM
                                                 : v1::DOMAIN_TYPE_PVH);
  p->set_kernel(s.kernel);
  p->set_ramdisk(s.ramdisk);
  p->set_cmdline(s.cmdline);
  p->set_bootloader(s.bootloader);
  for (const auto& a : s.bootloader_args) p->add_bootloader_args(a);
  p->set_memory_mib(s.memory_mib);
  p->set_maxmem_mib(s.maxmem_mib);
  p->set_vcpus(s.vcpus);
  p->set_maxvcpus(s.maxvcpus);
  for (const auto& d : s.disks) {
    auto* pd = p->add_disks();
    pd->set_target(d.target);
    pd->set_vdev(d.vdev);
    pd->set_mode(d.mode);
    pd->set_format(d.format);
  }
  for (const auto& v : s.vifs) {
    auto* pv = p->add_vifs();
    pv->set_bridge(v.bridge);
    pv->set_mac(v.mac);
    pv->set_ip(v.ip);
  }
  p->set_on_poweroff(actionToProto(s.on_poweroff));
  p->set_on_reboot(actionToProto(s.on_reboot));
  p->set_on_crash(actionToProto(s.on_crash));
}

v1::DomainState toProto(core::DomainState s) {
  switch (s) {
    case core::DomainState::kStopped: return v1::DOMAIN_STATE_STOPPED;
    case core::DomainState::kRunning: return v1::DOMAIN_STATE_RUNNING;
    case core::DomainState::kBlocked: return v1::DOMAIN_STATE_BLOCKED;
    case core::DomainState::kPaused: return v1::DOMAIN_STATE_PAUSED;
    case core::DomainState::kShutdown: return v1::DOMAIN_STATE_SHUTDOWN;
    case core::DomainState::kCrashed: return v1::DOMAIN_STATE_CRASHED;
    case core::DomainState::kDying: return v1::DOMAIN_STATE_DYING;
    case core::DomainState::kVanished: return v1::DOMAIN_STATE_VANISHED;
  }
  return v1::DOMAIN_STATE_UNSPECIFIED;
}

void toProto(const provision::DomainView& v, v1::Domain* p) {
  toProto(v.spec, p->mutable_spec());
  p->set_state(toProto(v.state));
  p->set_domid(v.live.domid);
  p->set_vcpus_online(v.live.vcpus_online);
  p->set_memory_mib(v.live.memory_mib);
  p->set_cpu_time_seconds(v.live.cpu_time_seconds);
  p->set_foreign(v.foreign);
  if (!v.foreign) setTime(v.created_at, p->mutable_created_at());
  p->set_state_reason(v.state_reason);
  p->set_owner_uid(v.owner_uid);
}

void toProto(const core::OperationRecord& r, v1::Operation* p) {
  p->set_id(r.id);
  p->set_kind(r.kind);
  p->set_target(r.target);
  p->set_request_id(r.request_id);
  switch (r.state) {
    case core::OperationState::kPending: p->set_state(v1::OPERATION_STATE_PENDING); break;
    case core::OperationState::kRunning: p->set_state(v1::OPERATION_STATE_RUNNING); break;
    case core::OperationState::kSucceeded: p->set_state(v1::OPERATION_STATE_SUCCEEDED); break;
    case core::OperationState::kFailed: p->set_state(v1::OPERATION_STATE_FAILED); break;
    case core::OperationState::kCancelled: p->set_state(v1::OPERATION_STATE_CANCELLED); break;
  }
  p->set_phase(r.phase);
  p->set_percent(r.percent);
  p->set_bytes_done(r.bytes_done);
  p->set_bytes_total(r.bytes_total);
  p->set_message(r.message);
  setTime(r.created_at, p->mutable_created_at());
  setTime(r.updated_at, p->mutable_updated_at());
  if (core::isFinished(r.state)) {
    setTime(r.finished_at, p->mutable_finished_at());
    p->set_status_code(static_cast<int32_t>(r.status.code()));
    p->set_status_message(std::string(r.status.message()));
  }
  p->set_caller_uid(r.caller_uid);
}

void toProto(const core::DomainEvent& e, v1::DomainEvent* p) {
  using K = core::DomainEventKind;
  v1::DomainEvent::Kind k = v1::DomainEvent::KIND_UNSPECIFIED;
  switch (e.kind) {
    case K::kDefined: k = v1::DomainEvent::KIND_DEFINED; break;
    case K::kStarted: k = v1::DomainEvent::KIND_STARTED; break;
    case K::kPaused: k = v1::DomainEvent::KIND_PAUSED; break;
    case K::kUnpaused: k = v1::DomainEvent::KIND_UNPAUSED; break;
    case K::kShutdown: k = v1::DomainEvent::KIND_SHUTDOWN; break;
    case K::kRebooted: k = v1::DomainEvent::KIND_REBOOTED; break;
    case K::kCrashed: k = v1::DomainEvent::KIND_CRASHED; break;
    case K::kDestroyed: k = v1::DomainEvent::KIND_DESTROYED; break;
    case K::kDeleted: k = v1::DomainEvent::KIND_DELETED; break;
    case K::kResourcesChanged: k = v1::DomainEvent::KIND_RESOURCES_CHANGED; break;
    case K::kVanished: k = v1::DomainEvent::KIND_VANISHED; break;
    case K::kEventsLost: k = v1::DomainEvent::KIND_EVENTS_LOST; break;
  }
  p->set_kind(k);
  p->set_name(e.name);
  p->set_uuid(e.uuid);
  p->set_domid(e.domid);
  p->set_state(toProto(e.state));
  setTime(e.time, p->mutable_time());
  p->set_message(e.message);
}

}  // namespace xenctl::daemon
