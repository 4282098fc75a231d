#include "lib/xen/xl_config.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "lib/xen/libxl_c.h"
#include "lib/xen/libxl_config.h"
#include "lib/xen/xl_domain_config.h"
#include "lib/xen/xl_reader.h"

namespace xenctl::xen {
namespace {

using Reader = xlread::Parsed;

// The typed DiskSpec of a disk of the config: its target, vdev, access and
// format; every other option (cdrom, script, backend, discard ...) is
// carried by the text the spec keeps.
core::DiskSpec diskOf(const libxl_device_disk& d) {
  core::DiskSpec disk;
  disk.target = d.pdev_path ? d.pdev_path : "";
  disk.vdev = d.vdev ? d.vdev : "";
  disk.mode = d.readwrite ? "w" : "r";
  if (d.backend == LIBXL_DISK_BACKEND_PHY && d.format == LIBXL_DISK_FORMAT_RAW)
    disk.format = "phy";
  else if (d.format == LIBXL_DISK_FORMAT_QCOW2)
    disk.format = "qcow2";
  else if (d.format != LIBXL_DISK_FORMAT_RAW && d.format != LIBXL_DISK_FORMAT_UNKNOWN)
    disk.format = absl::AsciiStrToLower(libxl_disk_format_to_string(d.format));  // qcow, vhd, qed, empty
  // raw (xl's default format) stays "": the backend is then chosen from the
  // target, phy for a block device, as libxl does.
  return disk;
}

// The typed VifSpec of a vif: bridge, mac (when given) and ip.
core::VifSpec vifOf(const libxl_device_nic& n) {
  core::VifSpec vif;
  // xl keeps the blanks around a value ("ip=10.0.0.2 ,mac=..."), and so
  // does the config built from the text; the typed fields do not.
  vif.bridge = std::string(absl::StripAsciiWhitespace(n.bridge ? n.bridge : ""));
  vif.ip = std::string(absl::StripAsciiWhitespace(n.ip ? n.ip : ""));
  bool any = false;
  for (uint8_t b : n.mac) any = any || b != 0;
  if (any) vif.mac = absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", n.mac[0], n.mac[1], n.mac[2], n.mac[3],
                                     n.mac[4], n.mac[5]);
  return vif;
}

Result<core::LifecycleAction> actionOf(Reader& r, const char* key, libxl_action_on_shutdown a) {
  switch (a) {
    case LIBXL_ACTION_ON_SHUTDOWN_DESTROY: return core::LifecycleAction::kDestroy;
    case LIBXL_ACTION_ON_SHUTDOWN_RESTART: return core::LifecycleAction::kRestart;
    case LIBXL_ACTION_ON_SHUTDOWN_PRESERVE: return core::LifecycleAction::kPreserve;
    case LIBXL_ACTION_ON_SHUTDOWN_RESTART_RENAME: return core::LifecycleAction::kRenameRestart;
    case LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_DESTROY: return core::LifecycleAction::kCoredumpDestroy;
    case LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_RESTART: return core::LifecycleAction::kCoredumpRestart;
    default: break;
  }
  return r.bad(key, absl::StrCat(key, " soft-reset: xenctld's watcher does not soft-reset a guest (which keeps its "
                                      "memory, for kexec); use restart"));
}

Status mapSpec(Reader& r, const libxl_domain_config& full, core::DomainSpec& s) {
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> name, r.string("name"));
  if (!name) return r.bad("", "name is missing; add name = \"NAME\"");
  s.name = *name;

  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> uuid, r.string("uuid"));
  if (uuid) {
    libxl_uuid u;
    if (libxl_uuid_from_string(&u, uuid->c_str()) != 0)
      return r.bad("uuid", absl::StrCat("uuid '", *uuid, "' is not a uuid (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"));
    s.uuid = uuidText(u);
  }

  switch (full.c_info.type) {  // type= or builder=, as the full reader took them
    case LIBXL_DOMAIN_TYPE_HVM: s.type = core::DomainType::kHvm; break;
    case LIBXL_DOMAIN_TYPE_PVH: s.type = core::DomainType::kPvh; break;
    default: s.type = core::DomainType::kPv; break;
  }

  // Memory in MiB; xl's defaults: maxmem = memory, memory = maxmem, else 32.
  constexpr long kMaxMib = static_cast<long>(core::kMaxMemoryMib);
  XENCTL_ASSIGN_OR_RETURN(std::optional<long> memory, r.number("memory", 1, kMaxMib));
  XENCTL_ASSIGN_OR_RETURN(std::optional<long> maxmem, r.number("maxmem", 1, kMaxMib));
  s.memory_mib = static_cast<uint64_t>(memory ? *memory : maxmem ? *maxmem : 32);
  s.maxmem_mib = maxmem ? static_cast<uint64_t>(*maxmem) : 0;

  XENCTL_ASSIGN_OR_RETURN(std::optional<long> vcpus, r.number("vcpus", 1, INT_MAX));
  XENCTL_ASSIGN_OR_RETURN(std::optional<long> maxvcpus, r.number("maxvcpus", 1, INT_MAX));
  s.vcpus = static_cast<uint32_t>(vcpus ? *vcpus : maxvcpus ? *maxvcpus : 1);
  s.maxvcpus = maxvcpus ? static_cast<uint32_t>(*maxvcpus) : 0;

  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> kernel, r.string("kernel"));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> ramdisk, r.string("ramdisk"));
  s.kernel = kernel.value_or("");
  s.ramdisk = ramdisk.value_or("");

  // xl ignores root and extra, with a warning, when cmdline is given;
  // xenctld refuses what it would ignore.
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> cmdline, r.string("cmdline"));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> root, r.string("root"));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> extra, r.string("extra"));
  if (cmdline && (root || extra))
    return r.bad(root ? "root" : "extra",
                 "give cmdline, or root and extra, not both (xl would ignore root and extra); put all of it in "
                 "cmdline");
  if (cmdline)
    s.cmdline = *cmdline;
  else if (root)
    s.cmdline = extra ? absl::StrCat("root=", *root, " ", *extra) : absl::StrCat("root=", *root);
  else if (extra)
    s.cmdline = *extra;

  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> bootloader, r.string("bootloader"));
  s.bootloader = bootloader.value_or("");
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> bl_args, r.list("bootloader_args", true));
  if (bl_args) s.bootloader_args = *std::move(bl_args);

  for (int i = 0; i < full.num_disks; ++i) s.disks.push_back(diskOf(full.disks[i]));
  for (int i = 0; i < full.num_nics; ++i) s.vifs.push_back(vifOf(full.nics[i]));

  XENCTL_ASSIGN_OR_RETURN(s.on_poweroff, actionOf(r, "on_poweroff", full.on_poweroff));
  XENCTL_ASSIGN_OR_RETURN(s.on_reboot, actionOf(r, "on_reboot", full.on_reboot));
  XENCTL_ASSIGN_OR_RETURN(s.on_crash, actionOf(r, "on_crash", full.on_crash));
  XENCTL_ASSIGN_OR_RETURN(s.on_watchdog, actionOf(r, "on_watchdog", full.on_watchdog));
  return absl::OkStatus();
}

}  // namespace

std::span<const std::string_view> supportedXlKeys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> out;
    for (const XlKey& k : xlKeys())
      if (k.refusal.empty()) out.push_back(k.name);
    return out;
  }();
  return keys;
}

Result<core::DomainSpec> readXlConfig(std::string_view text, std::string_view file_name, const HostCpus& host) {
  // The whole config first, as xl builds it: every key checked, every
  // value read, so that what is accepted here starts the same way later.
  DomainConfig full;
  XENCTL_RETURN_IF_ERROR(readXlDomainConfig(text, file_name, host, full.get(), /*require_boot=*/false));
  XENCTL_ASSIGN_OR_RETURN(std::unique_ptr<Reader> reader, Reader::parse(text, file_name));
  core::DomainSpec spec;
  XENCTL_RETURN_IF_ERROR(mapSpec(*reader, *full, spec));
  spec.xl_config_file = std::string(file_name);
  spec.xl_config_text = std::string(text);
  return spec;
}

}  // namespace xenctl::xen
