#include "lib/xen/xl_domain_config.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <functional>
#include <map>
#include <optional>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/core/domain.h"
#include "lib/xen/xl_reader.h"

extern "C" {
#include <xen/hvm/e820.h>
#include <xen/hvm/params.h>
#include <xen/io/kbdif.h>
#include <xen/io/sndif.h>
}

namespace xenctl::xen {
namespace {

using xlread::Parsed;

// The refusals, each with why the key cannot apply to a domain xenctld owns.
constexpr std::string_view kNoViewer =
    "asks `xl create` to start a VNC viewer on the terminal that runs it (xl only warns and ignores it in the file; "
    "`xl create -V` does it); xenctld has no terminal: point a VNC client at the domain's display";
constexpr std::string_view kNoDeviceModel =
    "is ignored by xl, with a warning; name another device model binary with device_model_override";
constexpr std::string_view kNoVif2 = "netchannel2 is deprecated and ignored by xl, with a warning; use vif";

// Every key xl 4.17's parse_config_data reads (tools/xl/xl_parse.c), in its order.
constexpr XlKey kKeys[] = {
    {"init_seclabel", {}}, {"seclabel", {}}, {"type", {}}, {"builder", {}}, {"hap", {}}, {"name", {}},
    {"uuid", {}}, {"oos", {}}, {"pool", {}}, {"pvshim", {}}, {"pvshim_path", {}}, {"pvshim_cmdline", {}},
    {"pvshim_extra", {}}, {"cpu_weight", {}}, {"cap", {}}, {"period", {}}, {"slice", {}}, {"latency", {}},
    {"extratime", {}}, {"memory", {}}, {"maxmem", {}}, {"vcpus", {}}, {"maxvcpus", {}}, {"vuart", {}},
    {"vnuma", {}}, {"cpus", {}}, {"cpus_soft", {}}, {"max_grant_frames", {}}, {"max_maptrack_frames", {}},
    {"max_grant_version", {}}, {"on_poweroff", {}}, {"on_reboot", {}}, {"on_watchdog", {}}, {"on_crash", {}},
    {"on_soft_reset", {}}, {"e820_host", {}}, {"pci_msitranslate", {}}, {"pci_power_mgmt", {}},
    {"pci_permissive", {}}, {"pci_seize", {}}, {"rdm", {}}, {"pci", {}}, {"dtdev", {}}, {"passthrough", {}},
    {"shadow_memory", {}}, {"nomigrate", {}}, {"tsc_mode", {}}, {"rtc_timeoffset", {}}, {"vncviewer", kNoViewer},
    {"localtime", {}}, {"videoram", {}}, {"max_event_channels", {}}, {"kernel", {}}, {"ramdisk", {}},
    {"device_tree", {}}, {"cmdline", {}}, {"root", {}}, {"extra", {}}, {"driver_domain", {}}, {"acpi", {}},
    {"bootloader", {}}, {"bootloader_args", {}}, {"timer_mode", {}}, {"nestedhvm", {}},
    {"firmware_override", {}}, {"bios_path_override", {}}, {"bios", {}}, {"pae", {}}, {"acpi_s3", {}},
    {"acpi_s4", {}}, {"acpi_laptop_slate", {}}, {"nx", {}}, {"hpet", {}}, {"vpt_align", {}}, {"apic", {}},
    {"viridian", {}}, {"mmio_hole", {}}, {"altp2mhvm", {}}, {"smbios_firmware", {}}, {"acpi_firmware", {}},
    {"ms_vm_genid", {}}, {"rdm_mem_boundary", {}}, {"mca_caps", {}}, {"firmware", {}}, {"altp2m", {}},
    {"vmtrace_buf_kb", {}}, {"ioports", {}}, {"irqs", {}}, {"iomem", {}}, {"disk", {}}, {"p9", {}},
    {"vtpm", {}}, {"vdispl", {}}, {"pvcalls", {}}, {"vsnd", {}}, {"channel", {}}, {"vif", {}},
    {"vif2", kNoVif2}, {"vfb", {}}, {"usbctrl", {}}, {"usbdev", {}}, {"cpuid", {}},
    {"device_model", kNoDeviceModel}, {"device_model_override", {}}, {"device_model_version", {}},
    {"device_model_stubdomain_override", {}}, {"device_model_stubdomain_seclabel", {}},
    {"device_model_user", {}}, {"stubdomain_kernel", {}}, {"stubdomain_cmdline", {}},
    {"stubdomain_ramdisk", {}}, {"stubdomain_memory", {}}, {"device_model_args", {}},
    {"device_model_args_pv", {}}, {"device_model_args_hvm", {}}, {"vnc", {}}, {"vnclisten", {}},
    {"vncpasswd", {}}, {"vncdisplay", {}}, {"vncunused", {}}, {"sdl", {}}, {"opengl", {}}, {"display", {}},
    {"xauthority", {}}, {"keymap", {}}, {"dm_restrict", {}}, {"vga", {}}, {"stdvga", {}}, {"hdtype", {}},
    {"spice", {}}, {"spiceport", {}}, {"spicetls_port", {}}, {"spicehost", {}},
    {"spicedisable_ticketing", {}}, {"spicepasswd", {}}, {"spiceagent_mouse", {}}, {"spicevdagent", {}},
    {"spice_clipboard_sharing", {}}, {"spiceusbredirection", {}}, {"spice_image_compression", {}},
    {"spice_streaming_video", {}}, {"nographic", {}}, {"gfx_passthru", {}}, {"serial", {}}, {"boot", {}},
    {"usb", {}}, {"usbversion", {}}, {"usbdevice", {}}, {"vkb_device", {}}, {"soundhw", {}},
    {"xen_platform_pci", {}}, {"vendor_device", {}}, {"gic_version", {}}, {"tee", {}}, {"vkb", {}},
    {"xend_suspend_evtchn_compat", {}}, {"msr_relaxed", {}}, {"vpmu", {}},
};

// The keys xl reads for hvm guests only (it ignores them for the others).
constexpr absl::string_view kHvmOnly[] = {
    "firmware_override", "bios_path_override", "bios", "pae", "acpi_s3", "acpi_s4", "acpi_laptop_slate", "nx",
    "hpet", "vpt_align", "apic", "viridian", "mmio_hole", "altp2mhvm", "smbios_firmware", "acpi_firmware",
    "ms_vm_genid", "rdm_mem_boundary", "mca_caps", "rdm", "vga", "stdvga", "hdtype", "spice", "spiceport",
    "spicetls_port", "spicehost", "spicedisable_ticketing", "spicepasswd", "spiceagent_mouse", "spicevdagent",
    "spice_clipboard_sharing", "spiceusbredirection", "spice_image_compression", "spice_streaming_video",
    "nographic", "gfx_passthru", "serial", "boot", "usb", "usbversion", "usbdevice", "vkb_device", "soundhw",
    "xen_platform_pci", "vendor_device"};
constexpr absl::string_view kPvhOnly[] = {"pvshim", "pvshim_path", "pvshim_cmdline", "pvshim_extra"};
// The top-level display keys: an hvm guest's device model display, or a pv
// guest's framebuffer when it has vnc=1 and no vfb=.
constexpr absl::string_view kDisplayKeys[] = {"vnc",    "vnclisten", "vncpasswd", "vncdisplay", "vncunused",
                                             "sdl",    "opengl",    "display",   "xauthority", "keymap"};

template <size_t N>
bool among(const absl::string_view (&keys)[N], absl::string_view k) {
  for (absl::string_view x : keys)
    if (x == k) return true;
  return false;
}

// libxl_domain_config_dispose frees every pointer with free(): all of it
// comes from malloc.
char* dup(absl::string_view s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (!p) std::abort();  // as libxl itself does when memory runs out
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

void replace(char** field, absl::string_view s) {
  std::free(*field);
  *field = dup(s);
}

// Appends one element to a malloc'd array of libxl devices, initialised.
template <class T>
T* extend(T*& array, int& count, void (*init)(T*)) {
  void* p = std::realloc(array, sizeof(T) * static_cast<size_t>(count + 1));
  if (!p) std::abort();
  array = static_cast<T*>(p);
  T* item = &array[count++];
  init(item);
  return item;
}

// A bitmap of `bits` bits, all clear (libxl_bitmap_alloc without a ctx).
void allocBitmap(libxl_bitmap* map, int bits) {
  libxl_bitmap_init(map);
  map->size = static_cast<uint32_t>((bits + 7) / 8);
  map->map = static_cast<uint8_t*>(std::calloc(map->size ? map->size : 1, 1));
  if (!map->map) std::abort();
}

libxl_string_list stringList(const std::vector<std::string>& items) {
  auto* l = static_cast<char**>(std::calloc(items.size() + 1, sizeof(char*)));
  if (!l) std::abort();
  for (size_t i = 0; i < items.size(); ++i) l[i] = dup(items[i]);
  return l;
}

// "key=value" items of a device spec as xl's strtok splits them: at
// commas, empty items skipped, leading blanks dropped.
std::vector<std::string> commaItems(absl::string_view spec) {
  std::vector<std::string> out;
  for (absl::string_view t : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    if (!t.empty()) out.emplace_back(t);
  }
  return out;
}

using Fail = std::function<Status(std::string)>;

// The KEY=VALUE items of one device entry, split as commaItems splits them
// and at their first '='; `fail` says which item is not KEY=VALUE.
Result<std::vector<std::pair<std::string, std::string>>> keyValues(absl::string_view spec, const Fail& fail) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& item : commaItems(spec)) {
    size_t eq = item.find('=');
    if (eq == std::string::npos) return fail(absl::StrCat("'", item, "' is not key=value"));
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return out;
}

// A number as C's strtoul(s, NULL, base) reads the whole of `s`; nullopt
// for anything else (xl takes trailing junk; xenctld does not).
std::optional<unsigned long> wholeNumber(absl::string_view s, int base) {
  std::string t(absl::StripAsciiWhitespace(s));
  if (t.empty() || t[0] == '-') return std::nullopt;
  errno = 0;
  char* end = nullptr;
  unsigned long v = std::strtoul(t.c_str(), &end, base);
  if (errno || *end != '\0') return std::nullopt;
  return v;
}

class Builder {
 public:
  Builder(Parsed& p, const HostCpus& host, libxl_domain_config* d, bool require_boot)
      : p_(p), host_(host), d_(d), require_boot_(require_boot) {}

  Status build();

 private:
  libxl_domain_create_info& c() { return d_->c_info; }
  libxl_domain_build_info& b() { return d_->b_info; }
  bool hvm() const { return d_->c_info.type == LIBXL_DOMAIN_TYPE_HVM; }
  bool pv() const { return d_->c_info.type == LIBXL_DOMAIN_TYPE_PV; }

  Status bad(const std::string& key, absl::string_view why) const { return p_.bad(key, std::string_view(why.data(), why.size())); }

  // The getters below leave the field alone when the key is absent and
  // refuse a value of the wrong form, naming the key.
  Status flag(const char* key, libxl_defbool* out) {
    if (!p_.has(key)) return absl::OkStatus();
    if (xlu_cfg_get_defbool(p_.cfg(), key, out, 0) != 0)
      return p_.badFromReport(key, absl::StrCat(key, " takes 0 or 1", p_.valueAsGiven(key)));
    return absl::OkStatus();
  }
  Status text(const char* key, char** out) {
    if (!p_.has(key)) return absl::OkStatus();
    if (xlu_cfg_replace_string(p_.cfg(), key, out, 0) != 0)
      return p_.badFromReport(key, absl::StrCat(key, " takes one value ('...' or a number), not a list"));
    return absl::OkStatus();
  }
  Result<std::optional<long>> num(const char* key, long min = LONG_MIN, long max = LONG_MAX) {
    return p_.number(key, min, max);
  }
  template <class T>
  Status numInto(const char* key, T* out, long scale = 1, long min = LONG_MIN, long max = LONG_MAX) {
    XENCTL_ASSIGN_OR_RETURN(std::optional<long> v, num(key, min, max));
    if (v) *out = static_cast<T>(*v * scale);
    return absl::OkStatus();
  }
  // A list of strings; empty when the key is absent.
  Result<std::vector<std::string>> items(const char* key, bool string_too = false) {
    XENCTL_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> l, p_.list(key, string_too));
    std::vector<std::string> out;
    if (l) out = std::move(*l);
    return out;
  }
  Status strList(const char* key, libxl_string_list* out) {
    if (!p_.has(key)) return absl::OkStatus();
    XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items(key));
    libxl_string_list_dispose(out);
    *out = stringList(l);
    return absl::OkStatus();
  }
  // A list, or a single string (serial, usbdevice): into `list` or `single`.
  Status listOrString(const char* key, libxl_string_list* list, char** single) {
    if (!p_.has(key)) return absl::OkStatus();
    if (p_.isList(key)) return strList(key, list);
    return text(key, single);
  }
  // A key that is a number (deprecated) or a name: the enum from either.
  template <class E>
  Status numberOrName(const char* key, E* out, int (*from_string)(const char*, E*), long min, long max,
                      absl::string_view names) {
    if (!p_.has(key)) return absl::OkStatus();
    long l = 0;
    if (xlu_cfg_get_long(p_.cfg(), key, &l, 1) == 0) {
      if (l < min || l > max) return bad(key, absl::StrCat(key, " ", l, " is out of range; use one of ", names));
      *out = static_cast<E>(l);
      return absl::OkStatus();
    }
    XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> s, p_.string(key, std::string_view(names.data(), names.size())));
    if (from_string(s->c_str(), out) != 0)
      return bad(key, absl::StrCat(key, " '", *s, "' is not one of ", names));
    return absl::OkStatus();
  }

  Status checkKeys();
  Status identity();
  Status resources();
  Status affinity(const char* key, bool hard);
  Status cpumapUpdate(const std::string& key, absl::string_view range, libxl_bitmap* map);
  Status vnuma();
  Status actions();
  Status pci();
  Status boot();
  Status hvmOptions();
  Status pvFirmware();
  Status ranges();
  Status disks();
  Status p9s();
  Status vtpms();
  Status vdispls();
  Status pvcalls();
  Status vsnds();
  Status channels();
  Status nics();
  Status vfbs();
  Status usb();
  Status cpuid();
  Status deviceModel();
  Status display();
  Status hvmDevices();
  Status arch();
  Status vkbs();

  Parsed& p_;
  const HostCpus& host_;
  libxl_domain_config* d_;
  bool require_boot_;
  long vcpus_ = 0;  // vcpus=, 0 when absent
};

Status Builder::checkKeys() {
  std::vector<std::string> unknown, refused;
  std::map<std::string, bool> seen;
  for (const xlread::Setting& s : p_.settings()) {
    if (seen[s.name]) continue;
    seen[s.name] = true;
    const XlKey* k = nullptr;
    for (const XlKey& x : kKeys)
      if (x.name == s.name) k = &x;
    if (!k)
      unknown.push_back(absl::StrCat(s.name, " (line ", s.line, ")"));
    else if (!k->refusal.empty())
      refused.push_back(absl::StrCat(s.name, " (line ", s.line, ") ", av(k->refusal)));
  }
  if (!refused.empty())
    return absl::InvalidArgumentError(absl::StrCat("xl config ", p_.file(), ": xenctld refuses ",
                                                   absl::StrJoin(refused, "; "), "; remove it"));
  if (!unknown.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        "xl config ", p_.file(), ": xenctld does not support ", unknown.size() == 1 ? "the key " : "the keys ",
        absl::StrJoin(unknown, ", "), ": ", unknown.size() == 1 ? "it is" : "they are",
        " not keys of xl.cfg(5) for Xen 4.17 (xl would ignore ", unknown.size() == 1 ? "it" : "them",
        " silently); check the spelling or remove ", unknown.size() == 1 ? "it" : "them"));
  return absl::OkStatus();
}

Status Builder::identity() {
  XENCTL_RETURN_IF_ERROR(text("init_seclabel", &c().ssid_label));
  if (p_.has("seclabel")) XENCTL_RETURN_IF_ERROR(text("seclabel", c().ssid_label ? &b().exec_ssid_label : &c().ssid_label));
  libxl_defbool_set(&c().run_hotplug_scripts, true);  // xl.conf's run_hotplug_scripts default

  // type= wins; the deprecated builder= must agree; neither means pv on x86.
  // xl matches a prefix of the name ("h" is hvm); so does xenctld.
  c().type = LIBXL_DOMAIN_TYPE_INVALID;
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> type, p_.string("type", "pv, pvh or hvm"));
  auto prefixOf = [](const std::string& v, absl::string_view full) {
    return !v.empty() && v.size() <= full.size() && full.substr(0, v.size()) == v;
  };
  if (type) {
    // xl tries hvm, pv, pvh in that order: "p" and "pv" are pv.
    if (prefixOf(*type, "hvm")) c().type = LIBXL_DOMAIN_TYPE_HVM;
    else if (prefixOf(*type, "pv")) c().type = LIBXL_DOMAIN_TYPE_PV;
    else if (prefixOf(*type, "pvh")) c().type = LIBXL_DOMAIN_TYPE_PVH;
    else return bad("type", absl::StrCat("type '", *type, "' is not pv, pvh or hvm"));
  }
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> builder, p_.string("builder", "hvm or generic"));
  if (builder) {
    libxl_domain_type bt;
    if (prefixOf(*builder, "hvm")) bt = LIBXL_DOMAIN_TYPE_HVM;
    else if (prefixOf(*builder, "generic")) bt = LIBXL_DOMAIN_TYPE_PV;
    else return bad("builder", absl::StrCat("builder '", *builder, "' is not hvm or generic; better, use type = "
                                                                   "\"pv\", \"pvh\" or \"hvm\""));
    if (c().type != LIBXL_DOMAIN_TYPE_INVALID && c().type != bt)
      return bad("builder", absl::StrCat("builder '", *builder, "' contradicts type '", type.value_or(""),
                                         "'; drop builder, which xl deprecates"));
    c().type = bt;
  }
  if (c().type == LIBXL_DOMAIN_TYPE_INVALID) c().type = LIBXL_DOMAIN_TYPE_PV;

  // A key xl reads only for another type of guest would be silently lost.
  const absl::string_view type_name = libxl_domain_type_to_string(c().type);
  for (const xlread::Setting& s : p_.settings()) {
    if (!hvm() && among(kHvmOnly, s.name))
      return bad(s.name, absl::StrCat(s.name, " applies to hvm guests only and xl ignores it for a ", type_name,
                                      " guest; remove it"));
    if (c().type != LIBXL_DOMAIN_TYPE_PVH && among(kPvhOnly, s.name))
      return bad(s.name, absl::StrCat(s.name, " applies to pvh guests only and xl ignores it for a ", type_name,
                                      " guest; remove it"));
    if (!pv() && s.name == "e820_host")
      return bad(s.name, absl::StrCat("e820_host applies to pv guests only and xl ignores it for a ", type_name,
                                      " guest; remove it"));
    if (pv() && s.name == "timer_mode")
      return bad(s.name, "timer_mode is not supported for pv guests (xl refuses it too); remove it");
  }

  XENCTL_RETURN_IF_ERROR(flag("hap", &c().hap));
  XENCTL_RETURN_IF_ERROR(text("name", &c().name));
  if (!c().name) return bad("", "name is missing; add name = \"NAME\"");
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> uuid, p_.string("uuid"));
  if (uuid && libxl_uuid_from_string(&c().uuid, uuid->c_str()) != 0)
    return bad("uuid", absl::StrCat("uuid '", *uuid, "' is not a uuid (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"));
  XENCTL_RETURN_IF_ERROR(flag("oos", &c().oos));
  XENCTL_RETURN_IF_ERROR(text("pool", &c().pool_name));

  libxl_domain_build_info_init_type(&b(), c().type);
  if (c().type == LIBXL_DOMAIN_TYPE_PVH) {
    XENCTL_RETURN_IF_ERROR(flag("pvshim", &b().u.pvh.pvshim));
    XENCTL_RETURN_IF_ERROR(text("pvshim_path", &b().u.pvh.pvshim_path));
    XENCTL_RETURN_IF_ERROR(text("pvshim_cmdline", &b().u.pvh.pvshim_cmdline));
    XENCTL_RETURN_IF_ERROR(text("pvshim_extra", &b().u.pvh.pvshim_extra));
  }
  return absl::OkStatus();
}

Status Builder::resources() {
  XENCTL_RETURN_IF_ERROR(numInto("cpu_weight", &b().sched_params.weight));
  XENCTL_RETURN_IF_ERROR(numInto("cap", &b().sched_params.cap));
  XENCTL_RETURN_IF_ERROR(numInto("period", &b().sched_params.period));
  XENCTL_RETURN_IF_ERROR(numInto("slice", &b().sched_params.slice));
  XENCTL_RETURN_IF_ERROR(numInto("latency", &b().sched_params.latency));
  XENCTL_RETURN_IF_ERROR(numInto("extratime", &b().sched_params.extratime));
  // In MiB, as DomainSpec takes them (xl takes any number; Xen no more).
  constexpr long kMaxMib = static_cast<long>(core::kMaxMemoryMib);
  XENCTL_RETURN_IF_ERROR(numInto("memory", &b().target_memkb, 1024, 1, kMaxMib));
  XENCTL_RETURN_IF_ERROR(numInto("maxmem", &b().max_memkb, 1024, 1, kMaxMib));
  XENCTL_ASSIGN_OR_RETURN(std::optional<long> vcpus, num("vcpus", 1, INT_MAX));
  if (vcpus) {
    vcpus_ = *vcpus;
    allocBitmap(&b().avail_vcpus, static_cast<int>(*vcpus));
    for (int i = 0; i < *vcpus; ++i) libxl_bitmap_set(&b().avail_vcpus, i);
  }
  XENCTL_RETURN_IF_ERROR(numInto("maxvcpus", &b().max_vcpus, 1, 1, INT_MAX));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> vuart, p_.string("vuart", "sbsa_uart"));
  if (vuart && libxl_vuart_type_from_string(vuart->c_str(), &b().arch_arm.vuart) != 0)
    return bad("vuart", absl::StrCat("vuart '", *vuart, "' is not sbsa_uart"));
  XENCTL_RETURN_IF_ERROR(vnuma());
  // The maxima default to the current values, as in xl.
  if (b().max_memkb == LIBXL_MEMKB_DEFAULT) b().max_memkb = b().target_memkb;
  if (b().max_vcpus == 0) b().max_vcpus = static_cast<int>(vcpus_);
  if (b().max_vcpus < vcpus_)
    return bad("maxvcpus", absl::StrCat("maxvcpus ", b().max_vcpus, " is below vcpus ", vcpus_,
                                        "; maxvcpus must be at least vcpus"));
  XENCTL_RETURN_IF_ERROR(affinity("cpus", true));
  XENCTL_RETURN_IF_ERROR(affinity("cpus_soft", false));
  XENCTL_RETURN_IF_ERROR(numInto("max_grant_frames", &b().max_grant_frames, 1, 0, INT_MAX));
  XENCTL_RETURN_IF_ERROR(numInto("max_maptrack_frames", &b().max_maptrack_frames, 1, 0, INT_MAX));
  XENCTL_RETURN_IF_ERROR(numInto("max_grant_version", &b().max_grant_version, 1, 0, INT_MAX));
  libxl_defbool_set(&b().claim_mode, true);  // xl.conf's claim_mode default
  return absl::OkStatus();
}

// One item of a CPULIST ("3", "0-3", "^1", "nodes:0-1", "^node:2", "all").
Status Builder::cpumapUpdate(const std::string& key, absl::string_view item, libxl_bitmap* map) {
  absl::string_view s = item;
  const bool is_not = absl::ConsumePrefix(&s, "^");
  const bool is_nodes = absl::ConsumePrefix(&s, "nodes:") || absl::ConsumePrefix(&s, "node:");
  if (s == "all") {
    if (is_not) return bad(key, absl::StrCat(key, ": '", item, "' cannot combine ^ and all"));
    for (int i = 0; i < static_cast<int>(map->size) * 8; ++i) libxl_bitmap_set(map, i);
    return absl::OkStatus();
  }
  std::pair<absl::string_view, absl::string_view> ab = absl::StrSplit(s, absl::MaxSplits('-', 1));
  std::optional<unsigned long> a = wholeNumber(ab.first, 10);
  std::optional<unsigned long> z = ab.second.empty() && s.find('-') == absl::string_view::npos
                                       ? a
                                       : wholeNumber(ab.second, 10);
  if (!a || !z || *z < *a || *z > 65535)
    return bad(key, absl::StrCat(key, ": '", item,
                                 "' is not a cpu range (N, N-M, ^N, nodes:N-M or all; see xl.cfg(5) CPULIST)"));
  for (unsigned long i = *a; i <= *z; ++i) {
    if (is_nodes) {
      if (host_.node_cpus.empty()) continue;  // checked where the host is known
      if (i >= host_.node_cpus.size())
        return bad(key, absl::StrCat(key, ": node ", i, " is not a NUMA node of this host (it has ",
                                     host_.node_cpus.size(), ")"));
      for (int cpu : host_.node_cpus[i]) is_not ? libxl_bitmap_reset(map, cpu) : libxl_bitmap_set(map, cpu);
    } else {
      is_not ? libxl_bitmap_reset(map, static_cast<int>(i)) : libxl_bitmap_set(map, static_cast<int>(i));
    }
  }
  return absl::OkStatus();
}

// cpus= / cpus_soft=: one CPULIST for every vcpu, or a list, one per vcpu.
Status Builder::affinity(const char* key, bool hard) {
  if (!p_.has(key)) return absl::OkStatus();
  // A cpumap has the host's size (libxl_get_max_cpus), as xl allocates it;
  // unknown, it is as large as the largest cpu named.
  const int bits = host_.max_cpus > 0 ? host_.max_cpus : 4096;
  std::vector<std::string> lists;
  const bool is_list = p_.isList(key);
  if (is_list) {
    XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items(key));
    lists = l;
  } else {
    XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> s, p_.string(key));
    lists.push_back(*s);
  }
  // Entries beyond max_vcpus are ignored, as in xl; a string applies to all.
  int n = is_list ? std::min<int>(static_cast<int>(lists.size()), b().max_vcpus) : b().max_vcpus;
  auto* maps = static_cast<libxl_bitmap*>(std::calloc(static_cast<size_t>(n ? n : 1), sizeof(libxl_bitmap)));
  if (!maps) std::abort();
  if (hard) {
    b().vcpu_hard_affinity = maps;
    b().num_vcpu_hard_affinity = n;
  } else {
    b().vcpu_soft_affinity = maps;
    b().num_vcpu_soft_affinity = n;
  }
  for (int i = 0; i < n; ++i) allocBitmap(&maps[i], bits);
  if (!is_list && n == 0) {
    // No vcpus yet (vcpus= absent): xl parses the CPULIST all the same and
    // refuses a wrong one.
    libxl_bitmap scratch;
    libxl_bitmap_init(&scratch);
    allocBitmap(&scratch, bits);
    Status st;
    for (const std::string& item : commaItems(lists[0])) {
      st = cpumapUpdate(key, item, &scratch);
      if (!st.ok()) break;
    }
    libxl_bitmap_dispose(&scratch);
    XENCTL_RETURN_IF_ERROR(st);
  }
  for (int i = 0; i < n; ++i) {
    const std::string& cpulist = lists[is_list ? static_cast<size_t>(i) : 0];
    for (const std::string& item : commaItems(cpulist)) XENCTL_RETURN_IF_ERROR(cpumapUpdate(key, item, &maps[i]));
  }
  if (is_list || !hard) libxl_defbool_set(&b().numa_placement, false);
  if (host_.max_cpus <= 0) {
    // Without the host's size, trim to the highest cpu set, so the map
    // stays what was asked for.
    for (int i = 0; i < n; ++i) {
      int top = -1;
      for (int c = 0; c < bits; ++c)
        if (libxl_bitmap_test(&maps[i], c)) top = c;
      maps[i].size = static_cast<uint32_t>((top + 8) / 8);
    }
  }
  return absl::OkStatus();
}

// vnuma = [ [ "pnode=0", "size=512", "vcpus=0-1", "vdistances=10,20" ], ... ]
Status Builder::vnuma() {
  if (!p_.has("vnuma")) return absl::OkStatus();
  XLU_ConfigList* nodes = nullptr;
  int count = 0;
  if (xlu_cfg_get_list(p_.cfg(), "vnuma", &nodes, &count, 0) != 0)
    return p_.badFromReport("vnuma", "vnuma must be a list of lists of \"key=value\"");
  if (count == 0) return absl::OkStatus();
  b().num_vnuma_nodes = count;
  b().vnuma_nodes = static_cast<libxl_vnode_info*>(std::calloc(static_cast<size_t>(count), sizeof(libxl_vnode_info)));
  if (!b().vnuma_nodes) std::abort();
  for (int i = 0; i < count; ++i) {
    libxl_vnode_info* v = &b().vnuma_nodes[i];
    libxl_vnode_info_init(v);
    v->num_distances = count;
    v->distances = static_cast<uint32_t*>(std::calloc(static_cast<size_t>(count), sizeof(uint32_t)));
    if (!v->distances) std::abort();
  }
  uint64_t total_kb = 0;
  int total_vcpus = 0;
  std::vector<std::vector<int>> vcpus(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    libxl_vnode_info* v = &b().vnuma_nodes[i];
    XLU_ConfigValue* spec = xlu_cfg_get_listitem2(nodes, i);
    XLU_ConfigList* options = nullptr;
    if (!spec || xlu_cfg_value_get_list(p_.cfg(), spec, &options, 1) != 0 || !options)
      return bad("vnuma", absl::StrCat("vnuma node ", i, " must be a list of \"key=value\" (pnode, size, vcpus, "
                                       "vdistances)"));
    for (int j = 0;; ++j) {
      XLU_ConfigValue* o = xlu_cfg_get_listitem2(options, j);
      if (!o) break;
      if (xlu_cfg_value_type(o) != XLU_STRING) return bad("vnuma", absl::StrCat("vnuma node ", i, ": item ", j, " is a list"));
      const char* item = xlu_cfg_get_listitem(options, j);
      absl::string_view sv = item ? item : "";
      size_t eq = sv.find('=');
      if (eq == absl::string_view::npos)
        return bad("vnuma", absl::StrCat("vnuma node ", i, ": '", sv, "' is not key=value"));
      std::string k(absl::StripAsciiWhitespace(sv.substr(0, eq)));
      std::string val(absl::StripAsciiWhitespace(sv.substr(eq + 1)));
      auto number = [&](absl::string_view s) -> Result<unsigned long> {
        std::optional<unsigned long> n = wholeNumber(s, 10);
        if (!n) return bad("vnuma", absl::StrCat("vnuma node ", i, ": ", k, " '", s, "' is not a number"));
        return *n;
      };
      if (k == "pnode") {
        XENCTL_ASSIGN_OR_RETURN(unsigned long n, number(val));
        if (!host_.node_cpus.empty() && n >= host_.node_cpus.size())
          return bad("vnuma", absl::StrCat("vnuma node ", i, ": pnode ", n, " is not a node of this host (it has ",
                                           host_.node_cpus.size(), ")"));
        v->pnode = static_cast<uint32_t>(n);
        libxl_defbool_set(&b().numa_placement, false);
      } else if (k == "size") {
        XENCTL_ASSIGN_OR_RETURN(unsigned long n, number(val));
        v->memkb = n << 10;
        total_kb += v->memkb;
      } else if (k == "vcpus") {
        for (absl::string_view r0 : absl::StrSplit(val, ',', absl::SkipEmpty())) {
          const std::string r(r0);
          std::pair<std::string, std::string> ab = absl::StrSplit(r, absl::MaxSplits('-', 1));
          XENCTL_ASSIGN_OR_RETURN(unsigned long a, number(ab.first));
          unsigned long z = a;
          if (r.find('-') != std::string::npos) {
            XENCTL_ASSIGN_OR_RETURN(z, number(ab.second));
          }
          if (z < a || z > 65535) return bad("vnuma", absl::StrCat("vnuma node ", i, ": vcpus '", r, "' is not a range"));
          for (unsigned long c = a; c <= z; ++c, ++total_vcpus) vcpus[static_cast<size_t>(i)].push_back(static_cast<int>(c));
        }
      } else if (k == "vdistances") {
        int j2 = 0;
        for (absl::string_view dd : absl::StrSplit(val, ',', absl::SkipEmpty())) {
          XENCTL_ASSIGN_OR_RETURN(unsigned long n, number(dd));
          if (j2 >= count)
            return bad("vnuma", absl::StrCat("vnuma node ", i, ": vdistances has more than ", count, " entries"));
          v->distances[j2++] = static_cast<uint32_t>(n);
        }
      } else {
        return bad("vnuma", absl::StrCat("vnuma node ", i, ": '", k, "' is not pnode, size, vcpus or vdistances"));
      }
    }
  }
  if (b().max_vcpus != 0) {
    if (b().max_vcpus != total_vcpus)
      return bad("vnuma", absl::StrCat("vnuma gives ", total_vcpus, " vcpus but maxvcpus is ", b().max_vcpus));
  } else {
    if (host_.online_cpus > 0 && host_.online_cpus < total_vcpus)
      return bad("vnuma", "vnuma gives more vcpus than the host has cpus; add maxvcpus= to allow it");
    b().max_vcpus = total_vcpus;
  }
  if (b().max_memkb != LIBXL_MEMKB_DEFAULT && b().max_memkb != total_kb)
    return bad("vnuma", absl::StrCat("vnuma sizes add up to ", total_kb >> 10, " MiB but maxmem is ",
                                     b().max_memkb >> 10, " MiB"));
  b().max_memkb = total_kb;
  // Each node's vcpu map has max_vcpus bits; a vcpu past it is dropped, as libxl_bitmap_set does in xl.
  for (int i = 0; i < count; ++i) {
    libxl_bitmap* m = &b().vnuma_nodes[i].vcpus;
    libxl_bitmap_dispose(m);
    allocBitmap(m, b().max_vcpus);
    for (int c : vcpus[static_cast<size_t>(i)]) libxl_bitmap_set(m, c);
  }
  return absl::OkStatus();
}

Status Builder::actions() {
  struct {
    const char* key;
    const char* dflt;
    libxl_action_on_shutdown* out;
  } const acts[] = {{"on_poweroff", "destroy", &d_->on_poweroff},
                    {"on_reboot", "restart", &d_->on_reboot},
                    {"on_watchdog", "destroy", &d_->on_watchdog},
                    {"on_crash", "destroy", &d_->on_crash},
                    {"on_soft_reset", "soft-reset", &d_->on_soft_reset}};
  // xl's names, matched exactly.
  static constexpr std::pair<absl::string_view, libxl_action_on_shutdown> kNames[] = {
      {"destroy", LIBXL_ACTION_ON_SHUTDOWN_DESTROY},
      {"restart", LIBXL_ACTION_ON_SHUTDOWN_RESTART},
      {"rename-restart", LIBXL_ACTION_ON_SHUTDOWN_RESTART_RENAME},
      {"preserve", LIBXL_ACTION_ON_SHUTDOWN_PRESERVE},
      {"coredump-destroy", LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_DESTROY},
      {"coredump-restart", LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_RESTART},
      {"soft-reset", LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET}};
  constexpr absl::string_view kAll =
      "destroy, restart, rename-restart, preserve, coredump-destroy, coredump-restart or soft-reset";
  for (const auto& a : acts) {
    XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> v, p_.string(a.key, std::string_view(kAll.data(), kAll.size())));
    const std::string name = v.value_or(a.dflt);
    bool found = false;
    for (const auto& [n, action] : kNames)
      if (n == name) {
        *a.out = action;
        found = true;
      }
    if (!found)
      return bad(a.key, absl::StrCat(a.key, " '", name, "' is not ", kAll));
  }
  if (pv()) XENCTL_RETURN_IF_ERROR(flag("e820_host", &b().u.pv.e820_host));
  return absl::OkStatus();
}

Status Builder::pci() {
  long msitranslate = 0, power_mgmt = 0, permissive = 0, seize = 0;
  struct {
    const char* key;
    long* out;
  } const globals[] = {{"pci_msitranslate", &msitranslate},
                       {"pci_power_mgmt", &power_mgmt},
                       {"pci_permissive", &permissive},
                       {"pci_seize", &seize}};
  for (const auto& g : globals) {
    XENCTL_ASSIGN_OR_RETURN(std::optional<long> v, num(g.key));
    if (v) *g.out = *v;
  }
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> rdm, p_.string("rdm"));
  if (rdm) {
    libxl_rdm_reserve r;
    libxl_rdm_reserve_init(&r);
    if (xlu_rdm_parse(p_.cfg(), &r, rdm->c_str()) != 0) {
      libxl_rdm_reserve_dispose(&r);
      // libxlutil 4.17 takes a valid policy= for an error (and xl then
      // ignores the whole rdm setting without a word).
      return p_.badFromReport("rdm", absl::StrCat("rdm '", *rdm,
                                                  "' is not read by xl 4.17 (its parser refuses every policy=, and xl "
                                                  "then ignores rdm); give rdm = \"strategy=host\" and the policy "
                                                  "per device (pci = [ 'BDF,rdm_policy=relaxed' ])"));
    }
    b().u.hvm.rdm.strategy = r.strategy;
    b().u.hvm.rdm.policy = r.policy;
    libxl_rdm_reserve_dispose(&r);
  }
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> pcis, items("pci"));
  for (size_t i = 0; i < pcis.size(); ++i) {
    libxl_device_pci* dev = extend(d_->pcidevs, d_->num_pcidevs, libxl_device_pci_init);
    dev->msitranslate = msitranslate;
    dev->power_mgmt = power_mgmt;
    dev->permissive = permissive;
    dev->seize = seize;
    // xl reads the policy from the hvm part of b_info whatever the type;
    // for pv and pvh that is the union's other member, as it is in xl.
    dev->rdm_policy = b().u.hvm.rdm.policy;
    if (xlu_pci_parse_spec_string(p_.cfg(), dev, pcis[i].c_str()) != 0)
      return p_.badFromReport("pci", absl::StrCat("pci ", i, " '", pcis[i],
                                                  "' is not a PCI_SPEC_STRING ([DDDD:]BB:DD.F[@VSLOT][,KEY=VALUE...]; "
                                                  "see xl-pci-configuration(5))"));
  }
  if (d_->num_pcidevs && pv()) libxl_defbool_set(&b().u.pv.e820_host, true);
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> dtdevs, items("dtdev"));
  for (size_t i = 0; i < dtdevs.size(); ++i) {
    libxl_device_dtdev* dt = extend(d_->dtdevs, d_->num_dtdevs, libxl_device_dtdev_init);
    dt->path = dup(dtdevs[i]);
  }
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> passthrough, p_.string("passthrough", "default, disabled, enabled, sync_pt or share_pt"));
  if (passthrough && libxl_passthrough_from_string(passthrough->c_str(), &c().passthrough) != 0)
    return bad("passthrough", absl::StrCat("passthrough '", *passthrough,
                                           "' is not default, disabled, enabled, sync_pt or share_pt"));
  return absl::OkStatus();
}

Status Builder::boot() {
  XENCTL_RETURN_IF_ERROR(numInto("shadow_memory", &b().shadow_memkb, 1024, 0, LONG_MAX / 1024));
  XENCTL_RETURN_IF_ERROR(flag("nomigrate", &b().disable_migrate));
  XENCTL_RETURN_IF_ERROR(numberOrName("tsc_mode", &b().tsc_mode, libxl_tsc_mode_from_string, LIBXL_TSC_MODE_DEFAULT,
                                      LIBXL_TSC_MODE_NATIVE_PARAVIRT,
                                      "default, always_emulate, native, native_paravirt"));
  XENCTL_RETURN_IF_ERROR(numInto("rtc_timeoffset", &b().rtc_timeoffset));
  XENCTL_RETURN_IF_ERROR(flag("localtime", &b().localtime));
  XENCTL_RETURN_IF_ERROR(numInto("videoram", &b().video_memkb, 1024, 0, LONG_MAX / 1024));
  XENCTL_RETURN_IF_ERROR(numInto("max_event_channels", &b().event_channels));
  XENCTL_RETURN_IF_ERROR(text("kernel", &b().kernel));
  XENCTL_RETURN_IF_ERROR(text("ramdisk", &b().ramdisk));
  XENCTL_RETURN_IF_ERROR(text("device_tree", &b().device_tree));
  // cmdline, else root=ROOT EXTRA; xl ignores root and extra beside cmdline (with a warning).
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> cmdline, p_.string("cmdline"));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> root, p_.string("root"));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> extra, p_.string("extra"));
  if (cmdline && (root || extra))
    return bad(root ? "root" : "extra",
               "give cmdline, or root and extra, not both (xl would ignore root and extra); put all of it in cmdline");
  if (cmdline) b().cmdline = dup(*cmdline);
  else if (root && extra) b().cmdline = dup(absl::StrCat("root=", *root, " ", *extra));
  else if (root) b().cmdline = dup(absl::StrCat("root=", *root));
  else if (extra) b().cmdline = dup(*extra);
  XENCTL_RETURN_IF_ERROR(flag("driver_domain", &c().driver_domain));
  XENCTL_RETURN_IF_ERROR(flag("acpi", &b().acpi));
  XENCTL_RETURN_IF_ERROR(text("bootloader", &b().bootloader));
  if (p_.has("bootloader_args")) {
    XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> args, items("bootloader_args", true));
    b().bootloader_args = stringList(args);
  }
  XENCTL_RETURN_IF_ERROR(numberOrName("timer_mode", &b().timer_mode, libxl_timer_mode_from_string,
                                      LIBXL_TIMER_MODE_DELAY_FOR_MISSED_TICKS,
                                      LIBXL_TIMER_MODE_ONE_MISSED_TICK_PENDING,
                                      "delay_for_missed_ticks, no_delay_for_missed_ticks, "
                                      "no_missed_ticks_pending, one_missed_tick_pending"));
  XENCTL_RETURN_IF_ERROR(flag("nestedhvm", &b().nested_hvm));
  return absl::OkStatus();
}

Status Builder::hvmOptions() {
  if (b().kernel) {
    const char* base = std::strrchr(b().kernel, '/');
    if (std::strcmp(base ? base + 1 : b().kernel, "hvmloader") == 0)
      return bad("kernel", "kernel names hvmloader, which xl ignores for an hvm guest; use firmware_override for a "
                           "firmware of your own, or remove kernel");
  }
  XENCTL_RETURN_IF_ERROR(text("firmware_override", &b().u.hvm.firmware));
  XENCTL_RETURN_IF_ERROR(text("bios_path_override", &b().u.hvm.system_firmware));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> bios, p_.string("bios", "rombios, seabios or ovmf"));
  if (bios && libxl_bios_type_from_string(bios->c_str(), &b().u.hvm.bios) != 0)
    return bad("bios", absl::StrCat("bios '", *bios, "' is not rombios, seabios or ovmf"));
  for (auto [key, field] : {std::pair{"pae", &b().u.hvm.pae}, {"acpi_s3", &b().u.hvm.acpi_s3},
                            {"acpi_s4", &b().u.hvm.acpi_s4}, {"acpi_laptop_slate", &b().u.hvm.acpi_laptop_slate},
                            {"nx", &b().u.hvm.nx}, {"hpet", &b().u.hvm.hpet}, {"vpt_align", &b().u.hvm.vpt_align},
                            {"apic", &b().apic}})
    XENCTL_RETURN_IF_ERROR(flag(key, field));

  // viridian: a boolean, or a list of enlightenments ("all", "defaults",
  // NAME, "!NAME").
  if (p_.has("viridian")) {
    if (p_.isList("viridian")) {
      XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> groups, items("viridian"));
      if (!groups.empty()) {
        allocBitmap(&b().u.hvm.viridian_enable, LIBXL_BUILDINFO_HVM_VIRIDIAN_ENABLE_DISABLE_WIDTH);
        allocBitmap(&b().u.hvm.viridian_disable, LIBXL_BUILDINFO_HVM_VIRIDIAN_ENABLE_DISABLE_WIDTH);
      }
      for (const std::string& g : groups) {
        if (g == "all") {
          libxl_bitmap_set_any(&b().u.hvm.viridian_enable);
        } else if (g == "defaults") {
          libxl_defbool_set(&b().u.hvm.viridian, true);
        } else {
          const bool off = absl::StartsWith(g, "!");
          libxl_viridian_enlightenment v;
          if (libxl_viridian_enlightenment_from_string(g.c_str() + (off ? 1 : 0), &v) != 0)
            return bad("viridian", absl::StrCat("viridian: '", g, "' is not an enlightenment (see xl.cfg(5))"));
          libxl_bitmap_set(off ? &b().u.hvm.viridian_disable : &b().u.hvm.viridian_enable, v);
          libxl_bitmap_reset(off ? &b().u.hvm.viridian_enable : &b().u.hvm.viridian_disable, v);
        }
      }
    } else {
      XENCTL_RETURN_IF_ERROR(flag("viridian", &b().u.hvm.viridian));
    }
  }
  XENCTL_ASSIGN_OR_RETURN(std::optional<long> hole, num("mmio_hole", 0, LONG_MAX / (1024 * 1024)));
  if (hole) {
    const uint64_t bytes = static_cast<uint64_t>(*hole) << 20;
    if (bytes < HVM_BELOW_4G_MMIO_LENGTH || bytes > HVM_BELOW_4G_MMIO_START)
      return bad("mmio_hole", absl::StrCat("mmio_hole ", *hole, " MiB is out of range; use ",
                                           HVM_BELOW_4G_MMIO_LENGTH >> 20, " to ", HVM_BELOW_4G_MMIO_START >> 20));
    b().u.hvm.mmio_hole_memkb = static_cast<uint64_t>(*hole) * 1024;
  }
  XENCTL_RETURN_IF_ERROR(flag("altp2mhvm", &b().u.hvm.altp2m));
  XENCTL_RETURN_IF_ERROR(text("smbios_firmware", &b().u.hvm.smbios_firmware));
  XENCTL_RETURN_IF_ERROR(text("acpi_firmware", &b().u.hvm.acpi_firmware));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> genid, p_.string("ms_vm_genid", "generate or none"));
  if (genid && *genid == "generate") {
    // xl draws a new one for every create (libxl_ms_vm_genid_generate);
    // 128 random bits, never all zero (zero means none).
    std::random_device rd;
    do {
      for (auto& byte : b().u.hvm.ms_vm_genid.bytes) byte = static_cast<uint8_t>(rd());
    } while (libxl_ms_vm_genid_is_zero(&b().u.hvm.ms_vm_genid));
  } else if (genid && *genid != "none") {
    return bad("ms_vm_genid", absl::StrCat("ms_vm_genid '", *genid, "' is not generate or none"));
  }
  XENCTL_RETURN_IF_ERROR(numInto("rdm_mem_boundary", &b().u.hvm.rdm_mem_boundary_memkb, 1024, 0, LONG_MAX / 1024));
  if (p_.has("mca_caps")) {
    XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> caps, items("mca_caps"));
    for (const std::string& cap : caps) {
      if (cap != "lmce") return bad("mca_caps", absl::StrCat("mca_caps: '", cap, "' is not lmce"));
      b().u.hvm.mca_caps |= XEN_HVM_MCA_CAP_LMCE;
    }
  }
  // firmware = rombios | seabios | ovmf | uefi (ovmf) | bios (the default) | a path.
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> fw, p_.string("firmware"));
  if (fw && libxl_bios_type_from_string(fw->c_str(), &b().u.hvm.bios) != 0) {
    // As xl: a prefix of uefi is ovmf, a prefix of bios the default.
    auto prefixOf = [&](absl::string_view full) { return fw->size() <= full.size() && full.substr(0, fw->size()) == *fw; };
    if (prefixOf("uefi")) b().u.hvm.bios = LIBXL_BIOS_TYPE_OVMF;
    else if (!prefixOf("bios")) replace(&b().u.hvm.firmware, *fw);
  }
  return absl::OkStatus();
}

Status Builder::pvFirmware() {
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> fw, p_.string("firmware"));
  if (fw) {
    if (b().kernel) return bad("firmware", "give kernel or firmware, not both");
    auto prefixOf = [&](absl::string_view full) { return fw->size() <= full.size() && full.substr(0, fw->size()) == *fw; };
    if (!prefixOf("pvgrub32") && !prefixOf("pvgrub64"))
      return bad("firmware", absl::StrCat("firmware '", *fw, "' is not pvgrub32 or pvgrub64, the firmware a ",
                                          libxl_domain_type_to_string(c().type), " guest can boot"));
    b().kernel = dup(absl::StrCat(av(kXenFirmwareDir), "/", *fw, ".bin"));
  }
  if (require_boot_ && !b().bootloader && !b().kernel)
    return bad("", absl::StrCat("a ", libxl_domain_type_to_string(c().type),
                                " guest needs a kernel, a bootloader or a firmware (pvgrub32, pvgrub64)"));
  return absl::OkStatus();
}

Status Builder::ranges() {
  XENCTL_RETURN_IF_ERROR(numberOrName("altp2m", &b().altp2m, libxl_altp2m_mode_from_string, LIBXL_ALTP2M_MODE_DISABLED,
                                      LIBXL_ALTP2M_MODE_LIMITED, "disabled, mixed, external, limited"));
  XENCTL_ASSIGN_OR_RETURN(std::optional<long> trace, num("vmtrace_buf_kb", 0, UINT32_MAX));
  if (trace && *trace) b().vmtrace_buf_kb = static_cast<int>(*trace);

  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> ioports, items("ioports"));
  if (!ioports.empty()) {
    b().num_ioports = static_cast<int>(ioports.size());
    b().ioports = static_cast<libxl_ioport_range*>(std::calloc(ioports.size() + 1, sizeof(libxl_ioport_range)));
    for (size_t i = 0; i < ioports.size(); ++i) {
      const std::string& s = ioports[i];
      std::pair<std::string, std::string> ab = absl::StrSplit(s, absl::MaxSplits('-', 1));
      std::optional<unsigned long> a = wholeNumber(ab.first, 16);
      std::optional<unsigned long> z = s.find('-') == std::string::npos ? a : wholeNumber(ab.second, 16);
      if (!a || !z || *z < *a || *z >= UINT32_MAX)
        return bad("ioports", absl::StrCat("ioports: '", s, "' is not IOPORT or IOPORT-IOPORT (hexadecimal)"));
      libxl_ioport_range_init(&b().ioports[i]);
      b().ioports[i].first = static_cast<uint32_t>(*a);
      b().ioports[i].number = static_cast<uint32_t>(*z - *a + 1);
    }
  }
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> irqs, items("irqs"));
  if (!irqs.empty()) {
    b().num_irqs = static_cast<int>(irqs.size());
    b().irqs = static_cast<uint32_t*>(std::calloc(irqs.size() + 1, sizeof(uint32_t)));
    for (size_t i = 0; i < irqs.size(); ++i) {
      std::optional<unsigned long> n = wholeNumber(irqs[i], 10);
      if (!n || *n >= UINT32_MAX) return bad("irqs", absl::StrCat("irqs: '", irqs[i], "' is not an irq number"));
      b().irqs[i] = static_cast<uint32_t>(*n);
    }
  }
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> iomem, items("iomem"));
  if (!iomem.empty()) {
    b().num_iomem = static_cast<int>(iomem.size());
    b().iomem = static_cast<libxl_iomem_range*>(std::calloc(iomem.size() + 1, sizeof(libxl_iomem_range)));
    for (size_t i = 0; i < iomem.size(); ++i) {
      const std::string& s = iomem[i];
      libxl_iomem_range_init(&b().iomem[i]);
      std::pair<std::string, std::string> at = absl::StrSplit(s, absl::MaxSplits('@', 1));
      std::pair<std::string, std::string> sn = absl::StrSplit(at.first, absl::MaxSplits(',', 1));
      std::optional<unsigned long> start = wholeNumber(sn.first, 16), number = wholeNumber(sn.second, 16);
      std::optional<unsigned long> gfn = s.find('@') == std::string::npos ? std::optional<unsigned long>(0)
                                                                          : wholeNumber(at.second, 16);
      if (!start || !number || !gfn)
        return bad("iomem", absl::StrCat("iomem: '", s, "' is not IOMEM_START,NUM_PAGES[@GFN] (hexadecimal)"));
      b().iomem[i].start = *start;
      b().iomem[i].number = *number;
      if (s.find('@') != std::string::npos) b().iomem[i].gfn = *gfn;
    }
  }
  return absl::OkStatus();
}

Status Builder::disks() {
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> disks, items("disk"));
  for (size_t i = 0; i < disks.size(); ++i) {
    libxl_device_disk* disk = extend(d_->disks, d_->num_disks, libxl_device_disk_init);
    const char* specs[] = {disks[i].c_str()};
    if (xlu_disk_parse(p_.cfg(), 1, specs, disk) != 0)
      return bad("disk", absl::StrCat("disk ", i, " '", disks[i], "': ", p_.takeReport(),
                                      "; see xl-disk-configuration(5)"));
  }
  return absl::OkStatus();
}

Status Builder::p9s() {
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items("p9"));
  for (size_t i = 0; i < l.size(); ++i) {
    // xl initialises a p9 twice, the second time after setting its devid:
    // a p9 keeps libxl's default devid.
    libxl_device_p9* p9 = extend(d_->p9s, d_->num_p9s, libxl_device_p9_init);
    std::optional<std::string> model, path, tag, backend;
    auto fail = [&](std::string why) { return bad("p9", absl::StrCat("p9 ", i, ": ", why)); };
    XENCTL_ASSIGN_OR_RETURN(auto kvs, keyValues(l[i], fail));
    for (const auto& [k, v] : kvs) {
      if (k == "security_model") model = v;
      else if (k == "path") path = v;
      else if (k == "tag") tag = v;
      else if (k == "backend") backend = v;
      else return bad("p9", absl::StrCat("p9 ", i, ": '", k, "' is not tag, path, security_model or backend"));
    }
    if (!model || !path || !tag)
      return bad("p9", absl::StrCat("p9 ", i, " needs tag=, path= and security_model="));
    p9->tag = dup(*tag);
    p9->security_model = dup(*model);
    p9->path = dup(*path);
    if (backend) p9->backend_domname = dup(*backend);
  }
  return absl::OkStatus();
}

Status Builder::vtpms() {
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items("vtpm"));
  for (size_t i = 0; i < l.size(); ++i) {
    libxl_device_vtpm* t = extend(d_->vtpms, d_->num_vtpms, libxl_device_vtpm_init);
    t->devid = static_cast<libxl_devid>(i);
    bool backend = false;
    auto fail = [&](std::string why) { return bad("vtpm", absl::StrCat("vtpm ", i, ": ", why)); };
    XENCTL_ASSIGN_OR_RETURN(auto kvs, keyValues(l[i], fail));
    for (const auto& [k, v] : kvs) {
      if (k == "backend") {
        replace(&t->backend_domname, v);
        backend = true;
      } else if (k == "uuid") {
        if (libxl_uuid_from_string(&t->uuid, v.c_str()) != 0)
          return bad("vtpm", absl::StrCat("vtpm ", i, ": uuid '", v, "' is not a uuid"));
      } else {
        return bad("vtpm", absl::StrCat("vtpm ", i, ": '", k, "' is not backend or uuid"));
      }
    }
    if (!backend) return bad("vtpm", absl::StrCat("vtpm ", i, " needs backend= (the vTPM stub domain)"));
  }
  return absl::OkStatus();
}

Status Builder::vdispls() {
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items("vdispl"));
  for (size_t i = 0; i < l.size(); ++i) {
    libxl_device_vdispl* v = extend(d_->vdispls, d_->num_vdispls, libxl_device_vdispl_init);
    v->devid = static_cast<libxl_devid>(i);
    for (const std::string& item : commaItems(l[i])) {
      absl::string_view s = item;
      if (absl::ConsumePrefix(&s, "backend=")) {
        replace(&v->backend_domname, s);
      } else if (absl::ConsumePrefix(&s, "be-alloc=")) {
        std::optional<unsigned long> n = wholeNumber(s, 0);
        if (!n) return bad("vdispl", absl::StrCat("vdispl ", i, ": be-alloc '", s, "' is not 0 or 1"));
        v->be_alloc = *n != 0;
      } else if (absl::ConsumePrefix(&s, "connectors=")) {
        std::vector<std::string> conns = absl::StrSplit(s, ';', absl::SkipEmpty());
        std::free(v->connectors);
        v->num_connectors = static_cast<int>(conns.size());
        v->connectors = static_cast<libxl_connector_param*>(std::calloc(conns.size() + 1, sizeof(libxl_connector_param)));
        for (size_t j = 0; j < conns.size(); ++j) {
          size_t colon = conns[j].find(':');
          unsigned w = 0, h = 0;
          char tail;
          if (colon == std::string::npos ||
              std::sscanf(conns[j].c_str() + colon + 1, "%ux%u%c", &w, &h, &tail) != 2)
            return bad("vdispl", absl::StrCat("vdispl ", i, ": connector '", conns[j], "' is not ID:WIDTHxHEIGHT"));
          libxl_connector_param_init(&v->connectors[j]);
          v->connectors[j].unique_id = dup(conns[j].substr(0, colon));
          v->connectors[j].width = w;
          v->connectors[j].height = h;
        }
      } else {
        return bad("vdispl", absl::StrCat("vdispl ", i, ": '", item, "' is not backend=, be-alloc= or connectors="));
      }
    }
    if (v->num_connectors == 0)
      return bad("vdispl", absl::StrCat("vdispl ", i, " needs connectors=ID:WIDTHxHEIGHT[;...]"));
  }
  return absl::OkStatus();
}

Status Builder::pvcalls() {
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items("pvcalls"));
  for (size_t i = 0; i < l.size(); ++i) {
    libxl_device_pvcallsif* c = extend(d_->pvcallsifs, d_->num_pvcallsifs, libxl_device_pvcallsif_init);
    c->devid = static_cast<libxl_devid>(i);
    for (const std::string& item : commaItems(l[i])) {
      absl::string_view s = item;
      if (!absl::ConsumePrefix(&s, "backend="))
        return bad("pvcalls", absl::StrCat("pvcalls ", i, ": '", item, "' is not backend=DOMAIN"));
      replace(&c->backend_domname, s);
    }
  }
  return absl::OkStatus();
}

// A vsnd params item (sample-rates, sample-formats, channels-min/max,
// buffer-size); false when `item` is none of those.
Result<bool> vsndParam(libxl_vsnd_params* params, absl::string_view item, const Fail& fail) {
  auto number = [&](absl::string_view s) -> Result<uint32_t> {
    std::optional<unsigned long> n = wholeNumber(s, 0);
    if (!n || *n > UINT32_MAX) return fail(absl::StrCat("'", s, "' is not a number"));
    return static_cast<uint32_t>(*n);
  };
  absl::string_view s = item;
  if (absl::ConsumePrefix(&s, XENSND_FIELD_SAMPLE_RATES "=")) {
    std::vector<std::string> rates = absl::StrSplit(s, ';', absl::SkipEmpty());
    std::free(params->sample_rates);
    params->num_sample_rates = static_cast<int>(rates.size());
    params->sample_rates = static_cast<uint32_t*>(std::calloc(rates.size() + 1, sizeof(uint32_t)));
    for (size_t i = 0; i < rates.size(); ++i) {
      XENCTL_ASSIGN_OR_RETURN(params->sample_rates[i], number(rates[i]));
    }
  } else if (absl::ConsumePrefix(&s, XENSND_FIELD_SAMPLE_FORMATS "=")) {
    std::vector<std::string> formats = absl::StrSplit(s, ';', absl::SkipEmpty());
    std::free(params->sample_formats);
    params->num_sample_formats = static_cast<int>(formats.size());
    params->sample_formats =
        static_cast<libxl_vsnd_pcm_format*>(std::calloc(formats.size() + 1, sizeof(libxl_vsnd_pcm_format)));
    for (size_t i = 0; i < formats.size(); ++i)
      if (libxl_vsnd_pcm_format_from_string(formats[i].c_str(), &params->sample_formats[i]) != 0)
        return fail(absl::StrCat("'", formats[i], "' is not a pcm format (s8, u8, s16_le ...)"));
  } else if (absl::ConsumePrefix(&s, XENSND_FIELD_CHANNELS_MIN "=")) {
    XENCTL_ASSIGN_OR_RETURN(params->channels_min, number(s));
  } else if (absl::ConsumePrefix(&s, XENSND_FIELD_CHANNELS_MAX "=")) {
    XENCTL_ASSIGN_OR_RETURN(params->channels_max, number(s));
  } else if (absl::ConsumePrefix(&s, XENSND_FIELD_BUFFER_SIZE "=")) {
    XENCTL_ASSIGN_OR_RETURN(params->buffer_size, number(s));
  } else {
    return false;
  }
  return true;
}

// vsnd = [ [ 'CARD, KEY=VALUE...', 'PCM, ...', 'STREAM, ...' ], ... ]: each
// card a list of items, each item's first word card, pcm or stream.
Status Builder::vsnds() {
  if (!p_.has("vsnd")) return absl::OkStatus();
  XLU_ConfigList* cards = nullptr;
  if (xlu_cfg_get_list(p_.cfg(), "vsnd", &cards, nullptr, 0) != 0)
    return p_.badFromReport("vsnd", "vsnd must be a list of lists");
  for (int ci = 0;; ++ci) {
    XLU_ConfigValue* card = xlu_cfg_get_listitem2(cards, ci);
    if (!card) break;
    XLU_ConfigList* items = nullptr;
    if (xlu_cfg_value_get_list(p_.cfg(), card, &items, 1) != 0 || !items)
      return bad("vsnd", absl::StrCat("vsnd card ", ci, " must be a list of 'card, ...', 'pcm, ...', 'stream, ...'"));
    libxl_device_vsnd* v = extend(d_->vsnds, d_->num_vsnds, libxl_device_vsnd_init);
    v->devid = ci;
    auto fail = [&](std::string why) { return bad("vsnd", absl::StrCat("vsnd card ", ci, ": ", why)); };
    for (int ii = 0;; ++ii) {
      const char* item = xlu_cfg_get_listitem(items, ii);
      if (!item) break;
      std::vector<std::string> tokens = commaItems(item);
      if (tokens.empty()) continue;
      const std::string kind = absl::AsciiStrToLower(tokens[0]);
      if (kind == "pcm") {
        extend(v->pcms, v->num_vsnd_pcms, libxl_vsnd_pcm_init);
      } else if (kind == "stream") {
        if (v->num_vsnd_pcms == 0) extend(v->pcms, v->num_vsnd_pcms, libxl_vsnd_pcm_init);
        libxl_vsnd_pcm* pcm = &v->pcms[v->num_vsnd_pcms - 1];
        extend(pcm->streams, pcm->num_vsnd_streams, libxl_vsnd_stream_init);
      } else if (kind != "card") {
        return fail(absl::StrCat("'", tokens[0], "' is not card, pcm or stream"));
      }
      for (size_t t = 1; t < tokens.size(); ++t) {
        absl::string_view s = tokens[t];
        if (kind == "card") {
          XENCTL_ASSIGN_OR_RETURN(bool done, vsndParam(&v->params, s, fail));
          if (done) continue;
          if (absl::ConsumePrefix(&s, "backend=")) replace(&v->backend_domname, s);
          else if (absl::ConsumePrefix(&s, XENSND_FIELD_VCARD_SHORT_NAME "=")) replace(&v->short_name, s);
          else if (absl::ConsumePrefix(&s, XENSND_FIELD_VCARD_LONG_NAME "=")) replace(&v->long_name, s);
          else return fail(absl::StrCat("card parameter '", tokens[t], "' is unknown"));
        } else if (kind == "pcm") {
          libxl_vsnd_pcm* pcm = &v->pcms[v->num_vsnd_pcms - 1];
          XENCTL_ASSIGN_OR_RETURN(bool done, vsndParam(&pcm->params, s, fail));
          if (done) continue;
          if (absl::ConsumePrefix(&s, XENSND_FIELD_DEVICE_NAME "=")) replace(&pcm->name, s);
          else return fail(absl::StrCat("pcm parameter '", tokens[t], "' is unknown"));
        } else {
          libxl_vsnd_pcm* pcm = &v->pcms[v->num_vsnd_pcms - 1];
          libxl_vsnd_stream* st = &pcm->streams[pcm->num_vsnd_streams - 1];
          XENCTL_ASSIGN_OR_RETURN(bool done, vsndParam(&st->params, s, fail));
          if (done) continue;
          if (absl::ConsumePrefix(&s, XENSND_FIELD_STREAM_UNIQUE_ID "=")) {
            replace(&st->unique_id, s);
          } else if (absl::ConsumePrefix(&s, XENSND_FIELD_TYPE "=")) {
            if (libxl_vsnd_stream_type_from_string(std::string(s).c_str(), &st->type) != 0)
              return fail(absl::StrCat("stream type '", s, "' is not p or c"));
          } else {
            return fail(absl::StrCat("stream parameter '", tokens[t], "' is unknown"));
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

Status Builder::channels() {
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items("channel"));
  for (size_t i = 0; i < l.size(); ++i) {
    libxl_device_channel* ch = extend(d_->channels, d_->num_channels, libxl_device_channel_init);
    ch->devid = static_cast<libxl_devid>(i);
    std::optional<std::string> path;
    for (absl::string_view pair : absl::StrSplit(l[i], ',', absl::SkipEmpty())) {
      size_t eq = pair.find('=');
      if (eq == absl::string_view::npos)
        return bad("channel", absl::StrCat("channel ", i, ": '", pair, "' is not key=value"));
      std::string k(absl::StripAsciiWhitespace(pair.substr(0, eq)));
      std::string v(absl::StripAsciiWhitespace(pair.substr(eq + 1)));
      if (k == "backend") replace(&ch->backend_domname, v);
      else if (k == "name") replace(&ch->name, v);
      else if (k == "path") path = v;
      else if (k == "connection") {
        if (v == "pty") ch->connection = LIBXL_CHANNEL_CONNECTION_PTY;
        else if (v == "socket") ch->connection = LIBXL_CHANNEL_CONNECTION_SOCKET;
        else return bad("channel", absl::StrCat("channel ", i, ": connection '", v, "' is not pty or socket"));
      } else {
        return bad("channel", absl::StrCat("channel ", i, ": '", k,
                                           "' is not backend, name, path or connection (xl would ignore it)"));
      }
    }
    if (ch->connection == LIBXL_CHANNEL_CONNECTION_UNKNOWN)
      return bad("channel", absl::StrCat("channel ", i, " needs connection=pty or connection=socket"));
    if (ch->connection == LIBXL_CHANNEL_CONNECTION_SOCKET) {
      if (!path) return bad("channel", absl::StrCat("channel ", i, ": connection=socket needs path="));
      ch->u.socket.path = dup(*path);
    }
  }
  return absl::OkStatus();
}

// The string-valued options of xl's vif grammar (xl-network-configuration(5)),
// by name, with the libxl_device_nic field each sets.
char** nicField(libxl_device_nic* n, absl::string_view k) {
  struct F {
    absl::string_view name;
    char* libxl_device_nic::*field;
  };
  static constexpr F kFields[] = {
      {"bridge", &libxl_device_nic::bridge},
      {"gatewaydev", &libxl_device_nic::gatewaydev},
      {"netdev", &libxl_device_nic::gatewaydev},  // deprecated spelling of gatewaydev
      {"ip", &libxl_device_nic::ip},
      {"script", &libxl_device_nic::script},
      {"backend", &libxl_device_nic::backend_domname},
      {"vifname", &libxl_device_nic::ifname},
      {"model", &libxl_device_nic::model},
      {"forwarddev", &libxl_device_nic::coloft_forwarddev},
      {"colo_sock_mirror_id", &libxl_device_nic::colo_sock_mirror_id},
      {"colo_sock_mirror_ip", &libxl_device_nic::colo_sock_mirror_ip},
      {"colo_sock_mirror_port", &libxl_device_nic::colo_sock_mirror_port},
      {"colo_sock_compare_sec_in_id", &libxl_device_nic::colo_sock_compare_sec_in_id},
      {"colo_sock_compare_sec_in_ip", &libxl_device_nic::colo_sock_compare_sec_in_ip},
      {"colo_sock_compare_sec_in_port", &libxl_device_nic::colo_sock_compare_sec_in_port},
      {"colo_sock_redirector0_id", &libxl_device_nic::colo_sock_redirector0_id},
      {"colo_sock_redirector0_ip", &libxl_device_nic::colo_sock_redirector0_ip},
      {"colo_sock_redirector0_port", &libxl_device_nic::colo_sock_redirector0_port},
      {"colo_sock_redirector1_id", &libxl_device_nic::colo_sock_redirector1_id},
      {"colo_sock_redirector1_ip", &libxl_device_nic::colo_sock_redirector1_ip},
      {"colo_sock_redirector1_port", &libxl_device_nic::colo_sock_redirector1_port},
      {"colo_sock_redirector2_id", &libxl_device_nic::colo_sock_redirector2_id},
      {"colo_sock_redirector2_ip", &libxl_device_nic::colo_sock_redirector2_ip},
      {"colo_sock_redirector2_port", &libxl_device_nic::colo_sock_redirector2_port},
      {"colo_sock_compare_pri_in_id", &libxl_device_nic::colo_sock_compare_pri_in_id},
      {"colo_sock_compare_pri_in_ip", &libxl_device_nic::colo_sock_compare_pri_in_ip},
      {"colo_sock_compare_pri_in_port", &libxl_device_nic::colo_sock_compare_pri_in_port},
      {"colo_sock_compare_notify_id", &libxl_device_nic::colo_sock_compare_notify_id},
      {"colo_sock_compare_notify_ip", &libxl_device_nic::colo_sock_compare_notify_ip},
      {"colo_sock_compare_notify_port", &libxl_device_nic::colo_sock_compare_notify_port},
      {"colo_filter_mirror_queue", &libxl_device_nic::colo_filter_mirror_queue},
      {"colo_filter_mirror_outdev", &libxl_device_nic::colo_filter_mirror_outdev},
      {"colo_filter_redirector0_queue", &libxl_device_nic::colo_filter_redirector0_queue},
      {"colo_filter_redirector0_indev", &libxl_device_nic::colo_filter_redirector0_indev},
      {"colo_filter_redirector0_outdev", &libxl_device_nic::colo_filter_redirector0_outdev},
      {"colo_filter_redirector1_queue", &libxl_device_nic::colo_filter_redirector1_queue},
      {"colo_filter_redirector1_indev", &libxl_device_nic::colo_filter_redirector1_indev},
      {"colo_filter_redirector1_outdev", &libxl_device_nic::colo_filter_redirector1_outdev},
      {"colo_compare_pri_in", &libxl_device_nic::colo_compare_pri_in},
      {"colo_compare_sec_in", &libxl_device_nic::colo_compare_sec_in},
      {"colo_compare_out", &libxl_device_nic::colo_compare_out},
      {"colo_compare_notify_dev", &libxl_device_nic::colo_compare_notify_dev},
      {"colo_sock_sec_redirector0_id", &libxl_device_nic::colo_sock_sec_redirector0_id},
      {"colo_sock_sec_redirector0_ip", &libxl_device_nic::colo_sock_sec_redirector0_ip},
      {"colo_sock_sec_redirector0_port", &libxl_device_nic::colo_sock_sec_redirector0_port},
      {"colo_sock_sec_redirector1_id", &libxl_device_nic::colo_sock_sec_redirector1_id},
      {"colo_sock_sec_redirector1_ip", &libxl_device_nic::colo_sock_sec_redirector1_ip},
      {"colo_sock_sec_redirector1_port", &libxl_device_nic::colo_sock_sec_redirector1_port},
      {"colo_filter_sec_redirector0_queue", &libxl_device_nic::colo_filter_sec_redirector0_queue},
      {"colo_filter_sec_redirector0_indev", &libxl_device_nic::colo_filter_sec_redirector0_indev},
      {"colo_filter_sec_redirector0_outdev", &libxl_device_nic::colo_filter_sec_redirector0_outdev},
      {"colo_filter_sec_redirector1_queue", &libxl_device_nic::colo_filter_sec_redirector1_queue},
      {"colo_filter_sec_redirector1_indev", &libxl_device_nic::colo_filter_sec_redirector1_indev},
      {"colo_filter_sec_redirector1_outdev", &libxl_device_nic::colo_filter_sec_redirector1_outdev},
      {"colo_filter_sec_rewriter0_queue", &libxl_device_nic::colo_filter_sec_rewriter0_queue},
      {"colo_checkpoint_host", &libxl_device_nic::colo_checkpoint_host},
      {"colo_checkpoint_port", &libxl_device_nic::colo_checkpoint_port},
  };
  for (const F& f : kFields)
    if (f.name == k) return &(n->*f.field);
  return nullptr;
}

Status Builder::nics() {
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items("vif"));
  for (size_t i = 0; i < l.size(); ++i) {
    libxl_device_nic* n = extend(d_->nics, d_->num_nics, libxl_device_nic_init);
    n->devid = static_cast<libxl_devid>(i);
    auto fail = [&](absl::string_view why) {
      return bad("vif", absl::StrCat("vif ", i, " '", l[i], "': ", why, "; see xl-network-configuration(5)"));
    };
    for (const std::string& item : commaItems(l[i])) {
      if (item == "trusted" || item == "untrusted") {
        libxl_defbool_set(&n->trusted, item == "trusted");
        continue;
      }
      size_t eq = item.find('=');
      if (eq == std::string::npos) return fail(absl::StrCat("'", item, "' is not KEY=VALUE, trusted or untrusted"));
      const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
      if (char** field = nicField(n, k)) {
        replace(field, v);
      } else if (k == "type") {
        if (v == "vif") n->nictype = LIBXL_NIC_TYPE_VIF;
        else if (v == "ioemu") n->nictype = LIBXL_NIC_TYPE_VIF_IOEMU;
        else return fail(absl::StrCat("type '", v, "' is not vif or ioemu"));
      } else if (k == "mac") {
        std::vector<std::string> octets = absl::StrSplit(v, ':');
        if (octets.size() != 6) return fail(absl::StrCat("mac '", v, "' is not six hex octets XX:XX:XX:XX:XX:XX"));
        for (size_t j = 0; j < 6; ++j) {
          std::optional<unsigned long> o = wholeNumber(octets[j], 16);
          if (!o || *o > 255) return fail(absl::StrCat("mac '", v, "' is not six hex octets XX:XX:XX:XX:XX:XX"));
          n->mac[j] = static_cast<uint8_t>(*o);
        }
      } else if (k == "rate") {
        if (xlu_vif_parse_rate(p_.cfg(), v.c_str(), n) != 0)
          return fail(absl::StrCat("rate '", v, "': ", p_.takeReport(), " (RATE/s[@INTERVAL], e.g. 10Mb/s@50ms)"));
      } else if (k == "devid" || k == "mtu") {
        std::optional<unsigned long> x = wholeNumber(v, 10);
        if (!x || *x > INT_MAX) return fail(absl::StrCat(k, " '", v, "' is not a number"));
        if (k == "devid") n->devid = static_cast<libxl_devid>(*x);
        else n->mtu = static_cast<unsigned>(*x);
      } else if (k == "accel") {
        return fail("accel is not supported by xl (it ignores it); remove it");
      } else {
        return fail(absl::StrCat("'", k, "' is not an option of a vif"));
      }
    }
  }
  return absl::OkStatus();
}

// One vfb item: vnc, vnclisten, vncpasswd, vncdisplay, vncunused, keymap,
// sdl, opengl, display, xauthority (numbers as C's atoi reads them).
Status vfbItem(libxl_device_vfb* f, absl::string_view k, absl::string_view v, const Fail& fail) {
  auto number = [&]() -> Result<int> {
    int n = 0;
    if (!absl::SimpleAtoi(v, &n)) return fail(absl::StrCat(k, " '", v, "' is not a number"));
    return n;
  };
  if (k == "vnc" || k == "vncunused" || k == "sdl" || k == "opengl") {
    XENCTL_ASSIGN_OR_RETURN(int n, number());
    libxl_defbool* b = k == "vnc" ? &f->vnc.enable : k == "vncunused" ? &f->vnc.findunused
                       : k == "sdl" ? &f->sdl.enable : &f->sdl.opengl;
    libxl_defbool_set(b, n != 0);
  } else if (k == "vncdisplay") {
    XENCTL_ASSIGN_OR_RETURN(int n, number());
    f->vnc.display = static_cast<uint32_t>(n);
  } else if (k == "vnclisten") {
    replace(&f->vnc.listen, v);
  } else if (k == "vncpasswd") {
    replace(&f->vnc.passwd, v);
  } else if (k == "keymap") {
    replace(&f->keymap, v);
  } else if (k == "display") {
    replace(&f->sdl.display, v);
  } else if (k == "xauthority") {
    replace(&f->sdl.xauthority, v);
  } else {
    return fail(absl::StrCat("'", k,
                             "' is not vnc, vnclisten, vncpasswd, vncdisplay, vncunused, keymap, sdl, opengl, "
                             "display or xauthority (xl would ignore it)"));
  }
  return absl::OkStatus();
}

// Each vfb comes with a vkb (keyboard and mouse), as xl adds one.
Status Builder::vfbs() {
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items("vfb"));
  for (size_t i = 0; i < l.size(); ++i) {
    libxl_device_vfb* f = extend(d_->vfbs, d_->num_vfbs, libxl_device_vfb_init);
    f->devid = d_->num_vfbs - 1;
    libxl_device_vkb* k = extend(d_->vkbs, d_->num_vkbs, libxl_device_vkb_init);
    k->devid = d_->num_vkbs - 1;
    auto fail = [&](std::string why) { return bad("vfb", absl::StrCat("vfb ", i, " '", l[i], "': ", why)); };
    XENCTL_ASSIGN_OR_RETURN(auto kvs, keyValues(l[i], fail));
    for (const auto& [k, v] : kvs) {
      XENCTL_RETURN_IF_ERROR(vfbItem(f, k, v, fail));
    }
  }
  return absl::OkStatus();
}

Status Builder::usb() {
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> ctrls, items("usbctrl"));
  for (size_t i = 0; i < ctrls.size(); ++i) {
    libxl_device_usbctrl* u = extend(d_->usbctrls, d_->num_usbctrls, libxl_device_usbctrl_init);
    u->devid = static_cast<libxl_devid>(i);
    for (const std::string& item : commaItems(ctrls[i])) {
      absl::string_view s = item;
      int n = 0;
      if (absl::ConsumePrefix(&s, "type=")) {
        if (libxl_usbctrl_type_from_string(std::string(s).c_str(), &u->type) != 0)
          return bad("usbctrl", absl::StrCat("usbctrl ", i, ": type '", s, "' is not pv, qusb, devicemodel or auto"));
      } else if (absl::ConsumePrefix(&s, "version=") && absl::SimpleAtoi(s, &n)) {
        u->version = n;
      } else if (absl::ConsumePrefix(&s, "ports=") && absl::SimpleAtoi(s, &n)) {
        u->ports = n;
      } else {
        return bad("usbctrl", absl::StrCat("usbctrl ", i, ": '", item, "' is not type=, version=N or ports=N"));
      }
    }
  }
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> devs, items("usbdev"));
  for (size_t i = 0; i < devs.size(); ++i) {
    libxl_device_usbdev* u = extend(d_->usbdevs, d_->num_usbdevs, libxl_device_usbdev_init);
    for (const std::string& item : commaItems(devs[i])) {
      absl::string_view s = item;
      std::optional<unsigned long> n;
      int c = 0;
      if (absl::ConsumePrefix(&s, "type=")) {
        if (libxl_usbdev_type_from_string(std::string(s).c_str(), &u->type) != 0)
          return bad("usbdev", absl::StrCat("usbdev ", i, ": type '", s, "' is not hostdev"));
      } else if (absl::ConsumePrefix(&s, "hostbus=") && (n = wholeNumber(s, 0)) && *n <= 255) {
        u->u.hostdev.hostbus = static_cast<uint8_t>(*n);
      } else if (absl::ConsumePrefix(&s, "hostaddr=") && (n = wholeNumber(s, 0)) && *n <= 255) {
        u->u.hostdev.hostaddr = static_cast<uint8_t>(*n);
      } else if (absl::ConsumePrefix(&s, "controller=") && absl::SimpleAtoi(s, &c)) {
        u->ctrl = c;
      } else if (absl::ConsumePrefix(&s, "port=") && absl::SimpleAtoi(s, &c)) {
        u->port = c;
      } else {
        return bad("usbdev", absl::StrCat("usbdev ", i, ": '", item,
                                          "' is not type=hostdev, hostbus=N, hostaddr=N, controller=N or port=N"));
      }
    }
  }
  return absl::OkStatus();
}

Status Builder::cpuid() {
  if (!p_.has("cpuid")) return absl::OkStatus();
  if (p_.isList("cpuid")) {
    // The xend form: [ "LEAF[,SUBLEAF]:eax=...,ebx=..." ]
    XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items("cpuid"));
    static constexpr absl::string_view kWhy[] = {"",
                                                "illegal leaf number",
                                                "illegal subleaf number",
                                                "missing colon",
                                                "invalid register name (must be e[abcd]x)",
                                                "policy string must be exactly 32 characters long"};
    for (const std::string& item : l)
      if (int e = libxl_cpuid_parse_config_xend(&b().cpuid, item.c_str()); e != 0)
        return bad("cpuid", absl::StrCat("cpuid '", item, "': ", e > 0 && e < 6 ? kWhy[e] : "unknown error"));
    return absl::OkStatus();
  }
  // The libxl form: "host,FLAG=VALUE,..."
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> s, p_.string("cpuid"));
  std::vector<std::string> items = absl::StrSplit(*s, ',', absl::SkipEmpty());
  if (items.empty()) return absl::OkStatus();
  if (items[0] != "host") return bad("cpuid", absl::StrCat("cpuid \"", *s, "\": the first word must be host"));
  for (size_t i = 1; i < items.size(); ++i) {
    int e = libxl_cpuid_parse_config(&b().cpuid, items[i].c_str());
    if (e == 0) continue;
    return bad("cpuid", absl::StrCat("cpuid flag '", items[i], "': ",
                                     e == 1   ? "missing \"=\" in key=value"
                                     : e == 2 ? "unknown CPUID flag name"
                                     : e == 3 ? "illegal CPUID value (must be: [0|1|x|k|s])"
                                              : "unknown error"));
  }
  return absl::OkStatus();
}

Status Builder::deviceModel() {
  XENCTL_RETURN_IF_ERROR(text("device_model_override", &b().device_model));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> version, p_.string("device_model_version", "qemu-xen or qemu-xen-traditional"));
  if (version) {
    if (*version == "qemu-xen-traditional")
      b().device_model_version = LIBXL_DEVICE_MODEL_VERSION_QEMU_XEN_TRADITIONAL;
    else if (*version == "qemu-xen")
      b().device_model_version = LIBXL_DEVICE_MODEL_VERSION_QEMU_XEN;
    else
      return bad("device_model_version",
                 absl::StrCat("device_model_version '", *version, "' is not qemu-xen or qemu-xen-traditional"));
  }
  XENCTL_RETURN_IF_ERROR(flag("device_model_stubdomain_override", &b().device_model_stubdomain));
  XENCTL_RETURN_IF_ERROR(text("device_model_stubdomain_seclabel", &b().device_model_ssid_label));
  XENCTL_RETURN_IF_ERROR(text("device_model_user", &b().device_model_user));
  XENCTL_RETURN_IF_ERROR(text("stubdomain_kernel", &b().stubdomain_kernel));
  XENCTL_RETURN_IF_ERROR(text("stubdomain_cmdline", &b().stubdomain_cmdline));
  XENCTL_RETURN_IF_ERROR(text("stubdomain_ramdisk", &b().stubdomain_ramdisk));
  XENCTL_RETURN_IF_ERROR(numInto("stubdomain_memory", &b().stubdomain_memkb, 1024, 0, LONG_MAX / 1024));
  XENCTL_RETURN_IF_ERROR(strList("device_model_args", &b().extra));
  XENCTL_RETURN_IF_ERROR(strList("device_model_args_pv", &b().extra_pv));
  XENCTL_RETURN_IF_ERROR(strList("device_model_args_hvm", &b().extra_hvm));
  return absl::OkStatus();
}

// The top-level vnc/sdl keys: an hvm guest's display; for a pv guest with
// vnc=1 and no vfb=, a framebuffer (and its keyboard) made from them.
Status Builder::display() {
  if (hvm()) {
    libxl_vnc_info& vnc = b().u.hvm.vnc;
    libxl_sdl_info& sdl = b().u.hvm.sdl;
    XENCTL_RETURN_IF_ERROR(flag("vnc", &vnc.enable));
    XENCTL_RETURN_IF_ERROR(text("vnclisten", &vnc.listen));
    XENCTL_RETURN_IF_ERROR(text("vncpasswd", &vnc.passwd));
    XENCTL_RETURN_IF_ERROR(numInto("vncdisplay", &vnc.display, 1, 0, INT_MAX));
    XENCTL_RETURN_IF_ERROR(flag("vncunused", &vnc.findunused));
    XENCTL_RETURN_IF_ERROR(flag("sdl", &sdl.enable));
    XENCTL_RETURN_IF_ERROR(flag("opengl", &sdl.opengl));
    XENCTL_RETURN_IF_ERROR(text("display", &sdl.display));
    XENCTL_RETURN_IF_ERROR(text("xauthority", &sdl.xauthority));
    return absl::OkStatus();
  }
  std::vector<std::string> given;
  for (const xlread::Setting& s : p_.settings())
    if (among(kDisplayKeys, s.name) && std::find(given.begin(), given.end(), s.name) == given.end())
      given.push_back(s.name);
  if (given.empty()) return absl::OkStatus();
  XENCTL_ASSIGN_OR_RETURN(std::optional<long> vnc, num("vnc"));
  if (vnc && *vnc == 0 && given.size() == 1) return absl::OkStatus();  // vnc = 0 alone: nothing to show, as in xl
  if (!pv() || d_->num_vfbs > 0 || !vnc || *vnc == 0)
    return bad(given[0], absl::StrCat(absl::StrJoin(given, ", "),
                                      " set an hvm guest's display, or a pv guest's framebuffer with vnc=1 and no "
                                      "vfb=; xl would not apply them to this guest: put them into a vfb= entry "
                                      "(vfb = [ 'vnc=1,vnclisten=...' ]) or remove them"));
  libxl_device_vfb* f = extend(d_->vfbs, d_->num_vfbs, libxl_device_vfb_init);
  f->devid = 0;
  libxl_device_vkb* k = extend(d_->vkbs, d_->num_vkbs, libxl_device_vkb_init);
  k->devid = 0;
  XENCTL_RETURN_IF_ERROR(flag("vnc", &f->vnc.enable));
  XENCTL_RETURN_IF_ERROR(text("vnclisten", &f->vnc.listen));
  XENCTL_RETURN_IF_ERROR(text("vncpasswd", &f->vnc.passwd));
  XENCTL_RETURN_IF_ERROR(numInto("vncdisplay", &f->vnc.display, 1, 0, INT_MAX));
  XENCTL_RETURN_IF_ERROR(flag("vncunused", &f->vnc.findunused));
  XENCTL_RETURN_IF_ERROR(flag("sdl", &f->sdl.enable));
  XENCTL_RETURN_IF_ERROR(flag("opengl", &f->sdl.opengl));
  XENCTL_RETURN_IF_ERROR(text("display", &f->sdl.display));
  XENCTL_RETURN_IF_ERROR(text("xauthority", &f->sdl.xauthority));
  XENCTL_RETURN_IF_ERROR(text("keymap", &f->keymap));
  return absl::OkStatus();
}

Status Builder::hvmDevices() {
  XENCTL_RETURN_IF_ERROR(flag("dm_restrict", &b().dm_restrict));
  if (!hvm()) return absl::OkStatus();
  auto& h = b().u.hvm;
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> vga, p_.string("vga", "stdvga, cirrus, none or qxl"));
  if (vga) {
    if (*vga == "stdvga") h.vga.kind = LIBXL_VGA_INTERFACE_TYPE_STD;
    else if (*vga == "cirrus") h.vga.kind = LIBXL_VGA_INTERFACE_TYPE_CIRRUS;
    else if (*vga == "none") h.vga.kind = LIBXL_VGA_INTERFACE_TYPE_NONE;
    else if (*vga == "qxl") h.vga.kind = LIBXL_VGA_INTERFACE_TYPE_QXL;
    else return bad("vga", absl::StrCat("vga '", *vga, "' is not stdvga, cirrus, none or qxl"));
  } else {
    XENCTL_ASSIGN_OR_RETURN(std::optional<long> stdvga, num("stdvga"));
    if (stdvga) h.vga.kind = *stdvga ? LIBXL_VGA_INTERFACE_TYPE_STD : LIBXL_VGA_INTERFACE_TYPE_CIRRUS;
  }
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> hdtype, p_.string("hdtype", "ide or ahci"));
  if (hdtype && libxl_hdtype_from_string(hdtype->c_str(), &h.hdtype) != 0)
    return bad("hdtype", absl::StrCat("hdtype '", *hdtype, "' is not ide or ahci"));
  XENCTL_RETURN_IF_ERROR(text("keymap", &h.keymap));
  XENCTL_RETURN_IF_ERROR(flag("spice", &h.spice.enable));
  XENCTL_RETURN_IF_ERROR(numInto("spiceport", &h.spice.port));
  XENCTL_RETURN_IF_ERROR(numInto("spicetls_port", &h.spice.tls_port));
  XENCTL_RETURN_IF_ERROR(text("spicehost", &h.spice.host));
  XENCTL_RETURN_IF_ERROR(flag("spicedisable_ticketing", &h.spice.disable_ticketing));
  XENCTL_RETURN_IF_ERROR(text("spicepasswd", &h.spice.passwd));
  XENCTL_RETURN_IF_ERROR(flag("spiceagent_mouse", &h.spice.agent_mouse));
  XENCTL_RETURN_IF_ERROR(flag("spicevdagent", &h.spice.vdagent));
  XENCTL_RETURN_IF_ERROR(flag("spice_clipboard_sharing", &h.spice.clipboard_sharing));
  XENCTL_RETURN_IF_ERROR(numInto("spiceusbredirection", &h.spice.usbredirection));
  XENCTL_RETURN_IF_ERROR(text("spice_image_compression", &h.spice.image_compression));
  XENCTL_RETURN_IF_ERROR(text("spice_streaming_video", &h.spice.streaming_video));
  XENCTL_RETURN_IF_ERROR(flag("nographic", &h.nographic));
  if (p_.has("gfx_passthru")) {
    long l = 0;
    if (xlu_cfg_get_long(p_.cfg(), "gfx_passthru", &l, 1) == 0) {
      libxl_defbool_set(&h.gfx_passthru, l != 0);
    } else {
      XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> kind, p_.string("gfx_passthru", "0, 1, default or igd"));
      if (libxl_gfx_passthru_kind_from_string(kind->c_str(), &h.gfx_passthru_kind) != 0)
        return bad("gfx_passthru", absl::StrCat("gfx_passthru '", *kind, "' is not 0, 1, default or igd"));
      libxl_defbool_set(&h.gfx_passthru, true);
    }
  }
  XENCTL_RETURN_IF_ERROR(listOrString("serial", &h.serial_list, &h.serial));
  XENCTL_RETURN_IF_ERROR(text("boot", &h.boot));
  XENCTL_RETURN_IF_ERROR(flag("usb", &h.usb));
  XENCTL_RETURN_IF_ERROR(numInto("usbversion", &h.usbversion));
  XENCTL_RETURN_IF_ERROR(listOrString("usbdevice", &h.usbdevice_list, &h.usbdevice));
  XENCTL_RETURN_IF_ERROR(flag("vkb_device", &h.vkb_device));
  XENCTL_RETURN_IF_ERROR(text("soundhw", &h.soundhw));
  XENCTL_RETURN_IF_ERROR(flag("xen_platform_pci", &h.xen_platform_pci));
  if (h.vnc.listen && h.vnc.display && std::strchr(h.vnc.listen, ':'))
    return bad("vncdisplay", "the display is given both in vnclisten (HOST:DISPLAY) and in vncdisplay; give one");
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> vendor, p_.string("vendor_device", "none or xenserver"));
  if (vendor && libxl_vendor_device_from_string(vendor->c_str(), &h.vendor_device) != 0)
    return bad("vendor_device", absl::StrCat("vendor_device '", *vendor, "' is not none or xenserver"));
  return absl::OkStatus();
}

Status Builder::arch() {
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> gic, p_.string("gic_version", "v2 or v3"));
  if (gic && libxl_gic_version_from_string(gic->c_str(), &b().arch_arm.gic_version) != 0)
    return bad("gic_version", absl::StrCat("gic_version '", *gic, "' is not v2 or v3"));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> tee, p_.string("tee", "none or optee"));
  if (tee && libxl_tee_type_from_string(tee->c_str(), &b().tee) != 0)
    return bad("tee", absl::StrCat("tee '", *tee, "' is not none or optee"));
  return absl::OkStatus();
}

Status Builder::vkbs() {
  XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> l, items("vkb"));
  for (size_t i = 0; i < l.size(); ++i) {
    libxl_device_vkb* k = extend(d_->vkbs, d_->num_vkbs, libxl_device_vkb_init);
    k->devid = d_->num_vkbs - 1;
    auto fail = [&](std::string why) { return bad("vkb", absl::StrCat("vkb ", i, " '", l[i], "': ", why)); };
    XENCTL_ASSIGN_OR_RETURN(auto kvs, keyValues(l[i], fail));
    for (const auto& [key, v] : kvs) {
      if (key == "backend") {
        replace(&k->backend_domname, v);
        continue;
      }
      if (key == "backend-type") {
        if (libxl_vkb_backend_from_string(v.c_str(), &k->backend_type) != 0)
          return fail(absl::StrCat("backend-type '", v, "' is not qemu or linux"));
        continue;
      }
      if (key == XENKBD_FIELD_UNIQUE_ID) {
        replace(&k->unique_id, v);
        continue;
      }
      std::optional<unsigned long> n = wholeNumber(v, 0);
      if (!n || *n > UINT32_MAX) return fail(absl::StrCat(key, " '", v, "' is not a number"));
      const uint32_t x = static_cast<uint32_t>(*n);
      if (key == XENKBD_FIELD_FEAT_DSBL_KEYBRD) k->feature_disable_keyboard = x != 0;
      else if (key == XENKBD_FIELD_FEAT_DSBL_POINTER) k->feature_disable_pointer = x != 0;
      else if (key == XENKBD_FIELD_FEAT_ABS_POINTER) k->feature_abs_pointer = x != 0;
      else if (key == XENKBD_FIELD_FEAT_RAW_POINTER) k->feature_raw_pointer = x != 0;
      else if (key == XENKBD_FIELD_FEAT_MTOUCH) k->feature_multi_touch = x != 0;
      else if (key == XENKBD_FIELD_MT_WIDTH) k->multi_touch_width = x;
      else if (key == XENKBD_FIELD_MT_HEIGHT) k->multi_touch_height = x;
      else if (key == XENKBD_FIELD_MT_NUM_CONTACTS) k->multi_touch_num_contacts = x;
      else if (key == XENKBD_FIELD_WIDTH) k->width = x;
      else if (key == XENKBD_FIELD_HEIGHT) k->height = x;
      else return fail(absl::StrCat("'", key, "' is not an option of a vkb (see xl.cfg(5))"));
    }
    if (k->backend_type == LIBXL_VKB_BACKEND_UNKNOWN) return fail("it needs backend-type=qemu or backend-type=linux");
    if (k->multi_touch_height || k->multi_touch_width || k->multi_touch_num_contacts) k->feature_multi_touch = true;
    if (k->feature_multi_touch && !(k->multi_touch_height || k->multi_touch_width || k->multi_touch_num_contacts))
      return fail("multi touch needs multi-touch-width, multi-touch-height and multi-touch-num-contacts");
  }
  XENCTL_RETURN_IF_ERROR(flag("xend_suspend_evtchn_compat", &c().xend_suspend_evtchn_compat));
  XENCTL_RETURN_IF_ERROR(flag("msr_relaxed", &b().arch_x86.msr_relaxed));
  XENCTL_RETURN_IF_ERROR(flag("vpmu", &b().vpmu));
  return absl::OkStatus();
}

// In xl's order, so that where one key's effect depends on another's (the
// vcpu maps on maxvcpus, a pv guest's framebuffer on vfb=) both agree.
Status Builder::build() {
  XENCTL_RETURN_IF_ERROR(checkKeys());
  XENCTL_RETURN_IF_ERROR(identity());
  XENCTL_RETURN_IF_ERROR(resources());
  XENCTL_RETURN_IF_ERROR(actions());
  XENCTL_RETURN_IF_ERROR(pci());
  XENCTL_RETURN_IF_ERROR(boot());
  XENCTL_RETURN_IF_ERROR(hvm() ? hvmOptions() : pvFirmware());
  XENCTL_RETURN_IF_ERROR(ranges());
  XENCTL_RETURN_IF_ERROR(disks());
  XENCTL_RETURN_IF_ERROR(p9s());
  XENCTL_RETURN_IF_ERROR(vtpms());
  XENCTL_RETURN_IF_ERROR(vdispls());
  XENCTL_RETURN_IF_ERROR(pvcalls());
  XENCTL_RETURN_IF_ERROR(vsnds());
  XENCTL_RETURN_IF_ERROR(channels());
  XENCTL_RETURN_IF_ERROR(nics());
  XENCTL_RETURN_IF_ERROR(vfbs());
  XENCTL_RETURN_IF_ERROR(usb());
  XENCTL_RETURN_IF_ERROR(cpuid());
  XENCTL_RETURN_IF_ERROR(deviceModel());
  XENCTL_RETURN_IF_ERROR(display());
  XENCTL_RETURN_IF_ERROR(hvmDevices());
  XENCTL_RETURN_IF_ERROR(arch());
  XENCTL_RETURN_IF_ERROR(vkbs());
  return absl::OkStatus();
}

}  // namespace

std::span<const XlKey> xlKeys() { return kKeys; }

Status readXlDomainConfig(std::string_view text, std::string_view file_name, const HostCpus& host,
                          libxl_domain_config* cfg, bool require_boot) {
  XENCTL_ASSIGN_OR_RETURN(std::unique_ptr<Parsed> parsed, Parsed::parse(text, file_name));
  Builder b(*parsed, host, cfg, require_boot);
  return b.build();
}

}  // namespace xenctl::xen
