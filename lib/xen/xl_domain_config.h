// The whole of an xl config, xl.cfg(5) for Xen 4.17, as a libxl_domain_config:
// what `xl create FILE` hands to libxl, key for key, so a domain defined
// from an xl config is the domain xl would build (the lab's xlfidelity
// scenario compares both with `xl -N create`). A pure function: no libxl_ctx;
// what xl asks the host (its CPUs and NUMA nodes) comes in a HostCpus.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/xen/libxl_c.h"

namespace xenctl::xen {

/// What `cpus=`/`cpus_soft=` ("all", "nodes:N") and `vnuma=` (pnode,
/// the vcpu count check) need to know about the host; libxl reports it in
/// the Dom0 (LibxlHypervisor fills it). Unknown (0 / empty), as where a
/// config is only checked: "all" and "nodes:" select nothing and the
/// checks against the host are skipped; they apply when it is built.
struct HostCpus {
  int max_cpus = 0;     ///< libxl_get_max_cpus: the size of a cpumap
  int online_cpus = 0;  ///< libxl_get_online_cpus
  std::vector<std::vector<int>> node_cpus;  ///< the cpus of each NUMA node, by node
};

/// One key of xl.cfg(5) for Xen 4.17 as xl's parser reads it, and how
/// xenctld takes it: carried into the libxl_domain_config (refusal empty),
/// or refused with this reason.
struct XlKey {
  std::string_view name;
  std::string_view refusal;
};

/// Every key xl's parser reads, in xl.cfg(5)'s spelling. Any other name is
/// refused as unknown (xl would ignore it silently).
std::span<const XlKey> xlKeys();

/// Where Debian 12's Xen 4.17 keeps the firmware `firmware = "pvgrub64"`
/// names (xl's XENFIRMWAREDIR).
inline constexpr std::string_view kXenFirmwareDir = "/usr/lib/xen-4.17/boot";

/// Fills `cfg`, freshly initialised with libxl_domain_config_init (the
/// caller disposes it, also on error), from the xl config `text` as xl's
/// parser fills it, with xl.conf's defaults (hotplug scripts run by libxl,
/// claim mode on). Differences from xl, each refusing the file
/// (INVALID_ARGUMENT naming the file, line and key):
///  - where xl warns and goes on (an unknown channel, vfb, vif or cpuid
///    item, a value of the wrong form), xenctld refuses;
///  - a key that xl ignores for this guest type (pae for pv ...) is refused,
///    naming the type;
///  - the keys that cannot apply to a daemon-owned domain (see xlKeys()).
/// Without a uuid key the uuid stays nil (the caller assigns one).
/// `require_boot` false skips one check, a pv or pvh guest with neither a
/// kernel nor a bootloader: a definition may wait for its boot, as a spec
/// given as one does; the start checks it.
Status readXlDomainConfig(std::string_view text, std::string_view file_name, const HostCpus& host,
                          libxl_domain_config* cfg, bool require_boot = true);

}  // namespace xenctl::xen
