#include "proto/convert/convert.h"

#include "absl/strings/str_cat.h"

namespace xenctl::protoconv {
namespace {

// One table per enum pair; both directions read it.
constexpr std::pair<core::DomainType, v1::DomainType> kTypes[] = {
    {core::DomainType::kPv, v1::DOMAIN_TYPE_PV},
    {core::DomainType::kPvh, v1::DOMAIN_TYPE_PVH},
    {core::DomainType::kHvm, v1::DOMAIN_TYPE_HVM}};
constexpr std::pair<core::DomainState, v1::DomainState> kStates[] = {
    {core::DomainState::kStopped, v1::DOMAIN_STATE_STOPPED},
    {core::DomainState::kRunning, v1::DOMAIN_STATE_RUNNING},
    {core::DomainState::kBlocked, v1::DOMAIN_STATE_BLOCKED},
    {core::DomainState::kPaused, v1::DOMAIN_STATE_PAUSED},
    {core::DomainState::kShutdown, v1::DOMAIN_STATE_SHUTDOWN},
    {core::DomainState::kCrashed, v1::DOMAIN_STATE_CRASHED},
    {core::DomainState::kDying, v1::DOMAIN_STATE_DYING},
    {core::DomainState::kVanished, v1::DOMAIN_STATE_VANISHED}};
constexpr std::pair<core::LifecycleAction, v1::LifecycleAction> kActions[] = {
    {core::LifecycleAction::kDestroy, v1::LIFECYCLE_ACTION_DESTROY},
    {core::LifecycleAction::kRestart, v1::LIFECYCLE_ACTION_RESTART},
    {core::LifecycleAction::kPreserve, v1::LIFECYCLE_ACTION_PRESERVE},
    {core::LifecycleAction::kRenameRestart, v1::LIFECYCLE_ACTION_RENAME_RESTART},
    {core::LifecycleAction::kCoredumpDestroy, v1::LIFECYCLE_ACTION_COREDUMP_DESTROY},
    {core::LifecycleAction::kCoredumpRestart, v1::LIFECYCLE_ACTION_COREDUMP_RESTART}};
constexpr std::pair<core::OperationState, v1::OperationState> kOpStates[] = {
    {core::OperationState::kPending, v1::OPERATION_STATE_PENDING},
    {core::OperationState::kRunning, v1::OPERATION_STATE_RUNNING},
    {core::OperationState::kSucceeded, v1::OPERATION_STATE_SUCCEEDED},
    {core::OperationState::kFailed, v1::OPERATION_STATE_FAILED},
    {core::OperationState::kCancelled, v1::OPERATION_STATE_CANCELLED}};

template <class C, class P, size_t N>
P toP(const std::pair<C, P> (&table)[N], C c) {
  for (const auto& [cv, pv] : table)
    if (cv == c) return pv;
  return P{};  // UNSPECIFIED
}

template <class C, class P, size_t N>
std::optional<C> toC(const std::pair<C, P> (&table)[N], P p) {
  for (const auto& [cv, pv] : table)
    if (pv == p) return cv;
  return std::nullopt;
}

// UNSPECIFIED -> `dflt`; an unknown value is an error naming the field.
template <class C, class P, size_t N>
Result<C> toCOr(const std::pair<C, P> (&table)[N], P p, C dflt, const char* field) {
  if (static_cast<int>(p) == 0) return dflt;
  if (auto c = toC(table, p)) return *c;
  return absl::InvalidArgumentError(absl::StrCat("unknown ", field, " value ", static_cast<int>(p)));
}

}  // namespace

Result<core::DomainSpec> fromProto(const v1::DomainSpec& p) {
  core::DomainSpec s;
  s.name = p.name();
  s.uuid = p.uuid();
  XENCTL_ASSIGN_OR_RETURN(s.type, toCOr(kTypes, p.type(), s.type, "type"));
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
  XENCTL_ASSIGN_OR_RETURN(s.on_poweroff, toCOr(kActions, p.on_poweroff(), s.on_poweroff, "on_poweroff"));
  XENCTL_ASSIGN_OR_RETURN(s.on_reboot, toCOr(kActions, p.on_reboot(), s.on_reboot, "on_reboot"));
  XENCTL_ASSIGN_OR_RETURN(s.on_crash, toCOr(kActions, p.on_crash(), s.on_crash, "on_crash"));
  XENCTL_ASSIGN_OR_RETURN(s.on_watchdog, toCOr(kActions, p.on_watchdog(), s.on_watchdog, "on_watchdog"));
  s.xl_config_file = p.xl_config().file_name();
  s.xl_config_text = p.xl_config().text();
  return s;
}

void toProto(const core::DomainSpec& s, v1::DomainSpec* p) {
  p->set_name(s.name);
  p->set_uuid(s.uuid);
  p->set_type(toP(kTypes, s.type));
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
  p->set_on_poweroff(toP(kActions, s.on_poweroff));
  p->set_on_reboot(toP(kActions, s.on_reboot));
  p->set_on_crash(toP(kActions, s.on_crash));
  p->set_on_watchdog(toP(kActions, s.on_watchdog));
  if (!s.xl_config_text.empty()) {
    p->mutable_xl_config()->set_file_name(s.xl_config_file);
    p->mutable_xl_config()->set_text(s.xl_config_text);
  }
}

v1::DomainState toProto(core::DomainState s) { return toP(kStates, s); }
std::optional<core::DomainState> fromProto(v1::DomainState s) { return toC(kStates, s); }
v1::OperationState toProto(core::OperationState s) { return toP(kOpStates, s); }
std::optional<core::OperationState> fromProto(v1::OperationState s) { return toC(kOpStates, s); }

void toProto(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t us = absl::ToUnixMicros(t);
  ts->set_seconds(us / 1'000'000);
  ts->set_nanos(static_cast<int32_t>(us % 1'000'000) * 1000);
}

std::optional<absl::Time> fromProto(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return std::nullopt;
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace xenctl::protoconv
