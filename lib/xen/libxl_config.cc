#include "lib/xen/libxl_config.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/core/volume.h"
#include "lib/xen/xl_config.h"
#include "lib/xen/xl_domain_config.h"

namespace xenctl::xen {

using core::DomainState;
using core::DomainType;
using core::LifecycleAction;
using Kind = core::HypervisorEvent::Kind;

namespace {

// libxl_domain_config_dispose frees every pointer in the config with free(),
// so everything placed in it comes from malloc.
char* dup(const std::string& s) {
  char* p = strdup(s.c_str());
  if (!p) std::abort();  // as libxl itself does when memory runs out
  return p;
}

template <class T>
T* callocArray(size_t n) {
  void* p = std::calloc(n, sizeof(T));
  if (!p && n) std::abort();
  return static_cast<T*>(p);
}

Status fillDisk(const std::string& who, const core::DiskSpec& d, libxl_device_disk* disk) {
  if (core::isVolumeTarget(d.target))
    return absl::InvalidArgumentError(absl::StrCat(who, "disk ", d.vdev, " names volume ", d.target,
                                                   " instead of a host path; xenctld resolves volumes before the "
                                                   "domain is built, so its pool or volume was missing then "
                                                   "(see `vm-volume list`)"));
  std::string format = d.format;
  if (format.empty()) {
    if (absl::StartsWith(d.target, "/dev/")) format = "phy";
    else if (absl::EndsWith(d.target, ".qcow2")) format = "qcow2";
    else format = "raw";
  }
  if (format == "phy") {
    disk->backend = LIBXL_DISK_BACKEND_PHY;
    disk->format = LIBXL_DISK_FORMAT_RAW;
  } else if (format == "raw") {
    disk->format = LIBXL_DISK_FORMAT_RAW;  // backend left to libxl: phy (loop) when it can, else qdisk
  } else if (format == "qcow2") {
    disk->backend = LIBXL_DISK_BACKEND_QDISK;  // only qemu reads qcow2
    disk->format = LIBXL_DISK_FORMAT_QCOW2;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(who, "disk ", d.vdev, ": format '", format, "' is not phy, raw or qcow2"));
  }
  disk->pdev_path = dup(d.target);
  disk->vdev = dup(d.vdev);
  disk->readwrite = d.mode == "w" ? 1 : 0;
  disk->removable = 0;
  disk->is_cdrom = 0;
  return absl::OkStatus();
}

Status fillNic(const std::string& who, size_t index, const core::VifSpec& v, libxl_device_nic* nic) {
  unsigned b[6];
  char tail;
  if (v.mac.size() != 17 ||
      std::sscanf(v.mac.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
    return absl::InvalidArgumentError(absl::StrCat(who, "vif ", index, ": '", v.mac,
                                                   "' is not a MAC address (the spec must be normalized first)"));
  for (int i = 0; i < 6; ++i) nic->mac[i] = static_cast<uint8_t>(b[i]);
  nic->devid = static_cast<libxl_devid>(index);
  if (!v.bridge.empty()) nic->bridge = dup(v.bridge);
  if (!v.ip.empty()) nic->ip = dup(v.ip);
  return absl::OkStatus();
}

void setVcpus(libxl_domain_build_info& b, uint32_t vcpus, uint32_t maxv) {
  // vcpus online at boot are the set bits of avail_vcpus; max_vcpus is the
  // ceiling vcpu-set can reach later.
  libxl_bitmap_dispose(&b.avail_vcpus);
  libxl_bitmap_init(&b.avail_vcpus);
  b.max_vcpus = static_cast<int>(maxv);
  b.avail_vcpus.size = (maxv + 7) / 8;
  b.avail_vcpus.map = callocArray<uint8_t>(b.avail_vcpus.size);
  for (uint32_t i = 0; i < vcpus && i < maxv; ++i) libxl_bitmap_set(&b.avail_vcpus, static_cast<int>(i));
}

// A spec defined from an xl config: the config xl would build from its text,
// then what the daemon owns or changed since laid over it. Always: the uuid,
// the MACs (stable per domain) and each disk's target (a managed volume
// resolved to its path). Where the spec differs from what its text says:
// the name, memory, vcpus, actions, and the disks (matched by vdev) and vifs
// (by position) added, dropped or changed (a root cloned for it, a fork).
Status buildFromXlConfig(const core::DomainSpec& spec, const HostCpus& host, libxl_domain_config* cfg) {
  const std::string who = absl::StrCat("domain '", spec.name, "': ");
  XENCTL_RETURN_IF_ERROR(readXlDomainConfig(spec.xl_config_text, spec.xl_config_file, host, cfg));
  XENCTL_ASSIGN_OR_RETURN(core::DomainSpec base, readXlConfig(spec.xl_config_text, spec.xl_config_file, host));
  base.uuid = spec.uuid;
  XENCTL_ASSIGN_OR_RETURN(base, core::normalizeSpec(std::move(base)));

  if (libxl_uuid_from_string(&cfg->c_info.uuid, spec.uuid.c_str()) != 0)
    return absl::InvalidArgumentError(absl::StrCat(who, "'", spec.uuid, "' is not a uuid"));
  if (spec.name != base.name) {
    std::free(cfg->c_info.name);
    cfg->c_info.name = dup(spec.name);
  }
  libxl_domain_build_info& b = cfg->b_info;
  if (spec.memory_mib != base.memory_mib || spec.maxmem_mib != base.maxmem_mib) {
    b.target_memkb = spec.memory_mib * 1024;
    b.max_memkb = (spec.maxmem_mib ? spec.maxmem_mib : spec.memory_mib) * 1024;
  }
  if (spec.vcpus != base.vcpus || spec.maxvcpus != base.maxvcpus)
    setVcpus(b, spec.vcpus, spec.maxvcpus ? spec.maxvcpus : spec.vcpus);
  if (spec.on_poweroff != base.on_poweroff) cfg->on_poweroff = libxlActionOf(spec.on_poweroff);
  if (spec.on_reboot != base.on_reboot) cfg->on_reboot = libxlActionOf(spec.on_reboot);
  if (spec.on_crash != base.on_crash) cfg->on_crash = libxlActionOf(spec.on_crash);
  if (spec.on_watchdog != base.on_watchdog) cfg->on_watchdog = libxlActionOf(spec.on_watchdog);

  // Disks in the spec's order; one the text has under the same vdev keeps
  // all of its options.
  auto* disks = callocArray<libxl_device_disk>(spec.disks.size());
  int n = 0;
  Status st;
  for (const auto& d : spec.disks) {
    libxl_device_disk* out = &disks[n++];
    libxl_device_disk_init(out);
    int from = -1;
    for (int i = 0; i < cfg->num_disks && from < 0; ++i)
      if (cfg->disks[i].vdev && d.vdev == cfg->disks[i].vdev) from = i;
    if (from < 0) {
      if (st.ok()) st = fillDisk(who, d, out);
      continue;
    }
    std::memcpy(out, &cfg->disks[from], sizeof(*out));  // moved: the old array is disposed below
    libxl_device_disk_init(&cfg->disks[from]);
    if (core::isVolumeTarget(d.target) && st.ok())
      st = fillDisk(who, d, out);  // says what is wrong: the volume was not resolved
    if (!d.target.empty() && (!out->pdev_path || d.target != out->pdev_path)) {
      std::free(out->pdev_path);
      out->pdev_path = dup(d.target);
    }
    out->readwrite = d.mode == "w" ? 1 : 0;
  }
  for (int i = 0; i < cfg->num_disks; ++i) libxl_device_disk_dispose(&cfg->disks[i]);
  std::free(cfg->disks);
  cfg->disks = disks;
  cfg->num_disks = n;
  XENCTL_RETURN_IF_ERROR(st);

  // Vifs by position: the spec's MAC always, its bridge and ip where they
  // differ from the text's; vifs past the text's are the spec's alone.
  auto* nics = callocArray<libxl_device_nic>(spec.vifs.size());
  for (size_t i = 0; i < spec.vifs.size(); ++i) {
    libxl_device_nic* out = &nics[i];
    libxl_device_nic_init(out);
    if (i < static_cast<size_t>(cfg->num_nics)) {
      std::memcpy(out, &cfg->nics[i], sizeof(*out));  // moved: the old array is disposed below
      libxl_device_nic_init(&cfg->nics[i]);
      const core::VifSpec& v = spec.vifs[i];
      const core::VifSpec& t = base.vifs[i];
      core::VifSpec mac_only;
      mac_only.mac = v.mac;
      if (v.bridge != t.bridge) {
        std::free(out->bridge);
        out->bridge = v.bridge.empty() ? nullptr : dup(v.bridge);
      }
      if (v.ip != t.ip) {
        std::free(out->ip);
        out->ip = v.ip.empty() ? nullptr : dup(v.ip);
      }
      // fillNic on a scratch nic parses the MAC.
      libxl_device_nic scratch;
      libxl_device_nic_init(&scratch);
      Status m = fillNic(who, i, mac_only, &scratch);
      std::memcpy(out->mac, scratch.mac, sizeof(out->mac));
      libxl_device_nic_dispose(&scratch);
      if (!m.ok() && st.ok()) st = m;
    } else if (st.ok()) {
      st = fillNic(who, i, spec.vifs[i], out);
    }
  }
  for (int i = 0; i < cfg->num_nics; ++i) libxl_device_nic_dispose(&cfg->nics[i]);
  std::free(cfg->nics);
  cfg->nics = nics;
  cfg->num_nics = static_cast<int>(spec.vifs.size());
  return st;
}

}  // namespace

Result<std::string> domainConfigJson(const libxl_domain_config& cfg) {
  // libxl 4.17 serializes without a ctx (one is only needed to log a failure).
  char* text = libxl_domain_config_to_json(nullptr, const_cast<libxl_domain_config*>(&cfg));
  if (!text) return absl::InternalError("libxl could not write the domain configuration as JSON");
  std::string out(text);
  std::free(text);
  return out;
}

libxl_domain_type libxlTypeOf(DomainType type) {
  switch (type) {
    case DomainType::kPv: return LIBXL_DOMAIN_TYPE_PV;
    case DomainType::kPvh: return LIBXL_DOMAIN_TYPE_PVH;
    case DomainType::kHvm: return LIBXL_DOMAIN_TYPE_HVM;
  }
  return LIBXL_DOMAIN_TYPE_INVALID;
}

libxl_action_on_shutdown libxlActionOf(LifecycleAction action) {
  switch (action) {
    case LifecycleAction::kDestroy: return LIBXL_ACTION_ON_SHUTDOWN_DESTROY;
    case LifecycleAction::kRestart: return LIBXL_ACTION_ON_SHUTDOWN_RESTART;
    case LifecycleAction::kPreserve: return LIBXL_ACTION_ON_SHUTDOWN_PRESERVE;
    case LifecycleAction::kRenameRestart: return LIBXL_ACTION_ON_SHUTDOWN_RESTART_RENAME;
    case LifecycleAction::kCoredumpDestroy: return LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_DESTROY;
    case LifecycleAction::kCoredumpRestart: return LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_RESTART;
  }
  return LIBXL_ACTION_ON_SHUTDOWN_DESTROY;
}

Status buildDomainConfig(const core::DomainSpec& spec, libxl_domain_config* cfg, const HostCpus& host) {
  if (!spec.xl_config_text.empty()) return buildFromXlConfig(spec, host, cfg);
  const std::string who = absl::StrCat("domain '", spec.name, "': ");
  const libxl_domain_type type = libxlTypeOf(spec.type);

  libxl_domain_create_info& c = cfg->c_info;
  c.type = type;
  c.name = dup(spec.name);
  if (libxl_uuid_from_string(&c.uuid, spec.uuid.c_str()) != 0)
    return absl::InvalidArgumentError(absl::StrCat(who, "'", spec.uuid, "' is not a uuid"));

  libxl_domain_build_info& b = cfg->b_info;
  libxl_domain_build_info_init_type(&b, type);  // selects the union member for the type, as xl does
  b.max_memkb = (spec.maxmem_mib ? spec.maxmem_mib : spec.memory_mib) * 1024;
  b.target_memkb = spec.memory_mib * 1024;

  setVcpus(b, spec.vcpus, spec.maxvcpus ? spec.maxvcpus : spec.vcpus);

  std::string kernel = spec.kernel;
  std::string bootloader = spec.bootloader;
  if (bootloader == "pvgrub") {
    // pvgrub is not a Dom0-side bootloader but a grub image booted as the
    // guest's kernel, which then reads the guest's own grub.cfg.
    if (type == LIBXL_DOMAIN_TYPE_HVM)
      return absl::InvalidArgumentError(who + "pvgrub boots pv and pvh domains; an hvm domain boots from its disk");
    kernel = std::string(type == LIBXL_DOMAIN_TYPE_PV ? kPvGrubPv : kPvGrubPvh);
    bootloader.clear();
  }
  if (type == LIBXL_DOMAIN_TYPE_HVM && !bootloader.empty())
    return absl::InvalidArgumentError(
        absl::StrCat(who, "bootloader '", bootloader, "' runs for pv and pvh domains; an hvm domain boots from its "
                          "disk through its firmware, so drop the bootloader"));
  if (type != LIBXL_DOMAIN_TYPE_HVM && kernel.empty() && bootloader.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        who, "a ", av(core::toString(spec.type)), " domain needs a kernel or a bootloader (pygrub or pvgrub)"));
  // Since Xen 4.10 kernel, ramdisk, cmdline and bootloader are type-neutral
  // b_info fields (the u.pv ones are deprecated); for hvm a kernel means
  // direct kernel boot through the device model.
  if (!kernel.empty()) b.kernel = dup(kernel);
  if (!spec.ramdisk.empty()) b.ramdisk = dup(spec.ramdisk);
  if (!spec.cmdline.empty()) b.cmdline = dup(spec.cmdline);
  if (!bootloader.empty()) {
    b.bootloader = dup(bootloader);  // libxl finds a bare name in Xen's private bin directory
    if (!spec.bootloader_args.empty()) {
      b.bootloader_args = callocArray<char*>(spec.bootloader_args.size() + 1);  // NULL-terminated
      for (size_t i = 0; i < spec.bootloader_args.size(); ++i) b.bootloader_args[i] = dup(spec.bootloader_args[i]);
    }
  }

  cfg->disks = callocArray<libxl_device_disk>(spec.disks.size());
  for (const auto& d : spec.disks) {
    libxl_device_disk* disk = &cfg->disks[cfg->num_disks++];  // counted first, so dispose covers a partial fill
    libxl_device_disk_init(disk);
    XENCTL_RETURN_IF_ERROR(fillDisk(who, d, disk));
  }
  cfg->nics = callocArray<libxl_device_nic>(spec.vifs.size());
  for (size_t i = 0; i < spec.vifs.size(); ++i) {
    libxl_device_nic* nic = &cfg->nics[cfg->num_nics++];
    libxl_device_nic_init(nic);
    XENCTL_RETURN_IF_ERROR(fillNic(who, i, spec.vifs[i], nic));
  }

  // libxl stores these with the domain (xl list -l shows them) but does not
  // act on them: the toolstack watching the domain does (xl's monitor, here
  // LibxlHypervisor's event thread).
  cfg->on_poweroff = libxlActionOf(spec.on_poweroff);
  cfg->on_reboot = libxlActionOf(spec.on_reboot);
  cfg->on_crash = libxlActionOf(spec.on_crash);
  cfg->on_watchdog = libxlActionOf(spec.on_watchdog);
  return absl::OkStatus();
}

DomainState domainStateOf(const libxl_dominfo& info) {
  if (info.dying) return DomainState::kDying;
  if (info.shutdown)
    return info.shutdown_reason == LIBXL_SHUTDOWN_REASON_CRASH || info.shutdown_reason == LIBXL_SHUTDOWN_REASON_WATCHDOG
               ? DomainState::kCrashed
               : DomainState::kShutdown;
  if (info.paused) return DomainState::kPaused;
  if (info.blocked) return DomainState::kBlocked;
  return DomainState::kRunning;
}

std::string uuidText(const libxl_uuid& uuid) {
  char buf[LIBXL_UUID_FMTLEN + 1];
  std::snprintf(buf, sizeof(buf), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(uuid));
  return buf;
}

core::DomainInfo domainInfoOf(const libxl_dominfo& info, std::string name) {
  core::DomainInfo out;
  out.name = std::move(name);
  out.uuid = uuidText(info.uuid);
  out.domid = info.domid;
  out.state = domainStateOf(info);
  out.vcpus_online = info.vcpu_online;
  out.memory_mib = info.current_memkb / 1024;
  out.cpu_time_seconds = static_cast<double>(info.cpu_time) / 1e9;  // libxl reports nanoseconds
  switch (info.domain_type) {
    case LIBXL_DOMAIN_TYPE_HVM: out.type = DomainType::kHvm; break;
    case LIBXL_DOMAIN_TYPE_PV: out.type = DomainType::kPv; break;
    default: out.type = DomainType::kPvh; break;
  }
  return out;
}

ShutdownMeaning shutdownMeaningOf(int reason, const core::DomainSpec& spec) {
  ShutdownMeaning m;
  switch (reason) {
    case LIBXL_SHUTDOWN_REASON_REBOOT:
    case LIBXL_SHUTDOWN_REASON_SOFT_RESET:  // xenctld does not soft-reset (kexec keeping memory); it reboots
      m.report_first = false;
      m.action = spec.on_reboot;
      return m;
    case LIBXL_SHUTDOWN_REASON_CRASH:
    case LIBXL_SHUTDOWN_REASON_WATCHDOG:  // reported as a crash; its own action applies
      m.kind = Kind::kCrashed;
      m.state = DomainState::kCrashed;
      m.action = reason == LIBXL_SHUTDOWN_REASON_WATCHDOG ? spec.on_watchdog : spec.on_crash;
      return m;
    case LIBXL_SHUTDOWN_REASON_SUSPEND:
      return m;
    case LIBXL_SHUTDOWN_REASON_POWEROFF:
    default:  // an unknown reason is treated as xl treats it: a poweroff
      m.action = spec.on_poweroff;
      return m;
  }
}

Status statusFromLibxl(int rc, std::string_view what, std::string_view libxl_log) {
  absl::StatusCode code;
  switch (rc) {
    case ERROR_DOMAIN_NOTFOUND:
    case ERROR_NOTFOUND: code = absl::StatusCode::kNotFound; break;
    case ERROR_INVAL:
    case ERROR_VNUMA_CONFIG_INVALID: code = absl::StatusCode::kInvalidArgument; break;
    case ERROR_NOMEM: code = absl::StatusCode::kResourceExhausted; break;
    case ERROR_NOPARAVIRT:
    case ERROR_DOMAIN_DESTROYED: code = absl::StatusCode::kFailedPrecondition; break;
    case ERROR_DEVICE_EXISTS: code = absl::StatusCode::kAlreadyExists; break;
    case ERROR_TIMEDOUT:
    case ERROR_GUEST_TIMEDOUT: code = absl::StatusCode::kDeadlineExceeded; break;
    case ERROR_LOCK_FAIL:
    case ERROR_NOT_READY: code = absl::StatusCode::kUnavailable; break;
    case ERROR_NI:
    case ERROR_FEATURE_REMOVED: code = absl::StatusCode::kUnimplemented; break;
    default: code = absl::StatusCode::kUnknown; break;  // ERROR_FAIL: libxl's log says what
  }
  const char* name = libxl_error_to_string(static_cast<libxl_error>(rc));
  std::string msg = absl::StrCat(av(what), ": libxl error ", name ? name : "unknown", " (", rc, ")");
  if (!libxl_log.empty()) absl::StrAppend(&msg, ": ", av(libxl_log));
  return Status(code, msg);
}

}  // namespace xenctl::xen
