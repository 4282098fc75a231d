// Pure translations between xenctl's domain vocabulary and libxl's, with no
// libxl_ctx and no Xen, so they are unit-tested on any machine.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lib/core/domain.h"
#include "lib/core/hypervisor.h"
#include "lib/core/status.h"
#include "lib/xen/libxl_c.h"
#include "lib/xen/xl_domain_config.h"

namespace xenctl::xen {

/// A libxl_domain_config that is initialised on construction and disposed
/// on destruction (libxl frees every string and array it points to).
class DomainConfig {
 public:
  DomainConfig() { libxl_domain_config_init(&cfg_); }
  ~DomainConfig() { libxl_domain_config_dispose(&cfg_); }
  DomainConfig(const DomainConfig&) = delete;
  DomainConfig& operator=(const DomainConfig&) = delete;
  libxl_domain_config* get() { return &cfg_; }
  const libxl_domain_config& operator*() const { return cfg_; }
  const libxl_domain_config* operator->() const { return &cfg_; }

 private:
  libxl_domain_config cfg_;
};

/// Where Debian's grub-xen-bin installs the PV and PVH grub images that
/// `bootloader = "pvgrub"` boots as the domain's kernel.
inline constexpr std::string_view kPvGrubPv = "/usr/lib/grub-xen/grub-x86_64-xen.bin";
inline constexpr std::string_view kPvGrubPvh = "/usr/lib/grub-xen/grub-i386-xen_pvh.bin";

/// Fills `cfg`, freshly initialised with libxl_domain_config_init (and
/// disposed by the caller, also on error), from a normalized spec, as xl's
/// parser fills it from the same keys: c_info (type, name, uuid), b_info
/// (memory, vcpus, kernel/ramdisk/cmdline or bootloader), disks, nics and
/// the on_* actions. Defaults are left to libxl (libxl_domain_create_new
/// applies them). The disk backend is chosen as xl does: phy for a block
/// device, otherwise left to libxl (phy through a loop device for raw
/// files, qdisk for qcow2).
/// INVALID_ARGUMENT for what libxl cannot express (a malformed uuid or MAC,
/// a bootloader on an hvm domain, a pv/pvh domain with nothing to boot,
/// a managed volume target (vol:POOL/NAME) that DomainManager did not
/// resolve to its host path).
/// A spec defined from an xl config (xl_config_text) is built from that
/// text instead, as xl builds it (readXlDomainConfig, with `host`), with the
/// uuid, the MACs, the disks' resolved targets and whatever the spec changed
/// since (memory, vcpus, actions, disks and vifs added or dropped) laid over
/// it; the same text gives the same config after a daemon restart.
Status buildDomainConfig(const core::DomainSpec& spec, libxl_domain_config* cfg, const HostCpus& host = {});

/// `cfg` as libxl's JSON (libxl_domain_config_to_json: the form `xl -N
/// create` prints under "config"; fields at their defaults are left out).
Result<std::string> domainConfigJson(const libxl_domain_config& cfg);

libxl_domain_type libxlTypeOf(core::DomainType type);
libxl_action_on_shutdown libxlActionOf(core::LifecycleAction action);

/// The state `xl list` shows for these dominfo flags: dying wins, then
/// shutdown (crashed when the reason is crash or watchdog), paused, blocked,
/// running. A domain with none set is runnable and waiting for a CPU, which
/// xl shows as "------": kRunning.
core::DomainState domainStateOf(const libxl_dominfo& info);

/// DomainInfo from libxl's dominfo; the name comes from xenstore (libxl_domid_to_name).
core::DomainInfo domainInfoOf(const libxl_dominfo& info, std::string name);

/// The uuid in canonical text form ("6f1a...-...").
std::string uuidText(const libxl_uuid& uuid);

/// What a guest's shutdown means for xenctld: the event reported before any
/// on_* action runs, and the spec's action that applies.
struct ShutdownMeaning {
  /// False for a reboot: the action alone is reported (kRebooted after a
  /// restart), as xl reports nothing for a guest that reboots.
  bool report_first = true;
  core::HypervisorEvent::Kind kind = core::HypervisorEvent::Kind::kShutdown;
  core::DomainState state = core::DomainState::kShutdown;
  /// on_poweroff, on_reboot, on_crash or on_watchdog; none (nullopt) for suspend, which
  /// is a toolstack's save in progress and never ours to act on.
  std::optional<core::LifecycleAction> action;
};
ShutdownMeaning shutdownMeaningOf(int libxl_shutdown_reason, const core::DomainSpec& spec);

/// A libxl return code as a Status: the code chosen from the libxl error
/// (NOT_FOUND for a missing domain, INVALID_ARGUMENT, RESOURCE_EXHAUSTED for
/// no memory, FAILED_PRECONDITION for a guest without PV drivers,
/// DEADLINE_EXCEEDED, UNAVAILABLE for lock failures, UNKNOWN for libxl's
/// unspecific failures), the message naming `what` failed, libxl's error
/// name and what libxl logged about it.
Status statusFromLibxl(int rc, std::string_view what, std::string_view libxl_log);

}  // namespace xenctl::xen
