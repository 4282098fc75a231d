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
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "lib/xen/libxl_c.h"
#include "lib/xen/libxl_config.h"

namespace xenctl::xen {
namespace {

constexpr std::string_view kSupported[] = {"name",    "uuid",  "type",        "builder",    "memory",
                                           "maxmem",  "vcpus", "maxvcpus",    "kernel",     "ramdisk",
                                           "cmdline", "root",  "extra",       "bootloader", "bootloader_args",
                                           "disk",    "vif",   "on_poweroff", "on_reboot",  "on_crash"};

bool isSupported(std::string_view key) {
  for (std::string_view k : kSupported)
    if (k == key) return true;
  return false;
}

// libxlutil writes what it has to say to a stdio stream; an in-memory one
// turns that into text for the Status. It must outlive the XLU_Config.
class ReportStream {
 public:
  ReportStream() : f_(open_memstream(&buf_, &size_)) {}
  ~ReportStream() {
    if (f_) std::fclose(f_);
    std::free(buf_);
  }
  ReportStream(const ReportStream&) = delete;
  ReportStream& operator=(const ReportStream&) = delete;
  FILE* get() const { return f_; }

  // What libxlutil wrote since the last take(), as one line: its lines
  // joined with "; ", without the "warning:" labels (here every warning
  // refuses the config).
  std::string take() {
    std::fflush(f_);
    std::string text(buf_ + taken_, size_ - taken_);
    taken_ = size_;
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
      std::string l = absl::StrReplaceAll(line, {{"warning:  ", ""}, {"warning: ", ""}});
      absl::StripAsciiWhitespace(&l);
      if (!l.empty()) lines.push_back(std::move(l));
    }
    return absl::StrJoin(lines, "; ");
  }

 private:
  char* buf_ = nullptr;
  size_t size_ = 0;
  size_t taken_ = 0;
  FILE* f_;
};

struct ConfigDeleter {
  void operator()(XLU_Config* c) const { xlu_cfg_destroy(c); }
};

// One setting as it appears in the text: its name and line.
struct Setting {
  std::string name;
  int line;
};

// libxlutil has no call that lists the settings it read, so the names are
// found here, in text that libxlutil has already accepted. Its lexer
// (libxlu_cfg_l.l) makes this small: names are [a-z][._0-9a-z]*, values are
// quoted strings ('...' or "...", backslash escapes, no newlines), numbers
// [0-9][0-9a-fx]* or lists of those, comments run from # to the end of the
// line, and its grammar allows a name nowhere but before = or +=. So every
// name token outside strings and comments is a setting. readXlConfig
// cross-checks each with libxlutil, so a disagreement shows as an error.
std::vector<Setting> scanSettings(std::string_view text) {
  std::vector<Setting> out;
  int line = 1;
  auto isName = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_'; };
  auto isNumber = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == 'x'; };
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (c == '\'' || c == '"') {
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\') ++i;
        if (i < text.size() && text[i] == '\n') ++line;
      }
      ++i;
    } else if (c >= 'a' && c <= 'z') {
      size_t start = i;
      while (i < text.size() && isName(text[i])) ++i;
      out.push_back({std::string(text.substr(start, i - start)), line});
    } else if (c >= '0' && c <= '9') {
      while (i < text.size() && isNumber(text[i])) ++i;
    } else {
      ++i;
    }
  }
  return out;
}

// Reads typed values from a parsed config; every refusal names the file,
// the line and, from libxlutil, what is wrong with the value.
class Reader {
 public:
  Reader(XLU_Config* cfg, ReportStream& report, std::string_view file, const std::vector<Setting>& settings)
      : cfg_(cfg), report_(report), file_(file) {
    for (const Setting& s : settings) lines_[s.name] = s.line;  // the last one wins, as in libxlutil
  }

  int lineOf(const std::string& key) const {
    auto it = lines_.find(key);
    return it == lines_.end() ? 0 : it->second;
  }

  // "xl config FILE:LINE: WHY"
  Status bad(const std::string& key, std::string_view why) const {
    const int line = key.empty() ? 0 : lineOf(key);
    return absl::InvalidArgumentError(line ? absl::StrCat("xl config ", av(file_), ":", line, ": ", av(why))
                                           : absl::StrCat("xl config ", av(file_), ": ", av(why)));
  }

  // libxlutil's own message about `key`, with the key named when it does
  // not name it ("value `0' is smaller than minimum bound '1'").
  Status badFromReport(const std::string& key, std::string_view fallback) {
    std::string said = takeReport();
    if (said.empty()) return bad(key, fallback);
    if (said.find(absl::StrCat("`", key, "'")) == std::string::npos) said = absl::StrCat(key, ": ", said);
    return bad(key, said);
  }

  Result<std::optional<std::string>> string(const char* key) {
    const char* v = nullptr;
    int e = xlu_cfg_get_string(cfg_, key, &v, 0);
    if (e == ESRCH) return std::nullopt;
    if (e) return badFromReport(key, absl::StrCat(key, " must be a single value"));
    return std::string(v);
  }

  Result<std::optional<long>> number(const char* key, long min, long max) {
    long v = 0;
    int e = xlu_cfg_get_bounded_long(cfg_, key, min, max, &v, 0);
    if (e == ESRCH) return std::nullopt;
    if (e) return badFromReport(key, absl::StrCat(key, " must be a number from ", min, " to ", max));
    return v;
  }

  // A list of strings. `string_too`: a single string is split at blanks,
  // as xl still takes bootloader_args.
  Result<std::optional<std::vector<std::string>>> list(const char* key, bool string_too = false) {
    XLU_ConfigList* list = nullptr;
    int n = 0;
    int e = xlu_cfg_get_list(cfg_, key, &list, &n, string_too ? 1 : 0);
    if (e == ESRCH) return std::nullopt;
    if (e == EINVAL && string_too) {
      XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> s, string(key));
      return std::vector<std::string>(absl::StrSplit(*s, absl::ByAnyChar(" \t\n"), absl::SkipEmpty()));
    }
    if (e) return badFromReport(key, absl::StrCat(key, " must be a list: [ '...', ... ]"));
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
      const char* item = xlu_cfg_get_listitem(list, i);
      if (!item) return bad(key, absl::StrCat(key, " entry ", i, " is a list; it must be a string"));
      out.emplace_back(item);
    }
    return out;
  }

  XLU_Config* cfg() const { return cfg_; }

  // libxlutil's latest message without the "FILE: " or "FILE:LINE: " it
  // starts with, for messages that say where already.
  std::string takeReport() {
    std::string said = report_.take();
    const std::string file = absl::StrCat(av(file_), ":");
    if (!absl::StartsWith(said, file)) return said;
    size_t i = file.size();
    while (i < said.size() && absl::ascii_isdigit(static_cast<unsigned char>(said[i]))) ++i;
    if (i > file.size() && i < said.size() && said[i] == ':') ++i;
    while (i < said.size() && said[i] == ' ') ++i;
    return said.substr(i);
  }

 private:
  XLU_Config* cfg_;
  ReportStream& report_;
  std::string_view file_;
  std::map<std::string, int> lines_;
};

// The libxl_device_disk that xlu_disk_parse fills, disposed on every path.
class ParsedDisk {
 public:
  ParsedDisk() { libxl_device_disk_init(&d_); }
  ~ParsedDisk() { libxl_device_disk_dispose(&d_); }
  ParsedDisk(const ParsedDisk&) = delete;
  ParsedDisk& operator=(const ParsedDisk&) = delete;
  libxl_device_disk* get() { return &d_; }
  const libxl_device_disk& operator*() const { return d_; }
  const libxl_device_disk* operator->() const { return &d_; }

 private:
  libxl_device_disk d_;
};

// The options of xl-disk-configuration(5) a DiskSpec cannot carry, by the
// names the user wrote them with.
std::vector<std::string> unsupportedDiskOptions(const libxl_device_disk& d) {
  std::vector<std::string> out;
  if (d.is_cdrom) out.emplace_back("cdrom (devtype=cdrom)");
  switch (d.format) {
    case LIBXL_DISK_FORMAT_QCOW: out.emplace_back("format=qcow"); break;
    case LIBXL_DISK_FORMAT_VHD: out.emplace_back("format=vhd"); break;
    case LIBXL_DISK_FORMAT_QED: out.emplace_back("format=qed"); break;
    case LIBXL_DISK_FORMAT_EMPTY:
      if (!d.is_cdrom) out.emplace_back("format=empty");
      break;
    default: break;
  }
  switch (d.backend) {
    case LIBXL_DISK_BACKEND_TAP: out.emplace_back("backendtype=tap"); break;
    case LIBXL_DISK_BACKEND_STANDALONE: out.emplace_back("backendtype=standalone"); break;
    case LIBXL_DISK_BACKEND_QDISK:
      // A qcow2 image is always served by qdisk; qdisk for a raw one is a choice xenctld cannot record.
      if (d.format != LIBXL_DISK_FORMAT_QCOW2) out.emplace_back("backendtype=qdisk");
      break;
    default: break;
  }
  if (d.script) out.push_back(absl::StrCat("script=", d.script));
  if (d.backend_domname) out.push_back(absl::StrCat("backend=", d.backend_domname));
  if (d.direct_io_safe) out.emplace_back("direct-io-safe");
  if (!libxl_defbool_is_default(d.discard_enable))
    out.emplace_back(libxl_defbool_val(d.discard_enable) ? "discard" : "no-discard");
  if (!libxl_defbool_is_default(d.trusted)) out.emplace_back(libxl_defbool_val(d.trusted) ? "trusted" : "untrusted");
  if (d.specification != LIBXL_DISK_SPECIFICATION_UNKNOWN && d.specification != LIBXL_DISK_SPECIFICATION_XEN)
    out.emplace_back("specification=virtio");
  if (!libxl_defbool_is_default(d.colo_enable) || d.colo_host || d.colo_port || d.colo_export || d.active_disk ||
      d.hidden_disk)
    out.emplace_back("colo");
  return out;
}

Result<core::DiskSpec> diskOf(Reader& r, size_t index, const std::string& text) {
  const std::string where = absl::StrCat("disk ", index, " '", text, "'");
  ParsedDisk d;
  const char* specs[] = {text.c_str()};
  if (xlu_disk_parse(r.cfg(), 1, specs, d.get()) != 0)
    return r.bad("disk", absl::StrCat(where, ": ", r.takeReport(), "; see xl-disk-configuration(5)"));
  std::vector<std::string> unsupported = unsupportedDiskOptions(*d);
  if (!unsupported.empty())
    return r.bad("disk", absl::StrCat(where, ": xenctld does not support ", absl::StrJoin(unsupported, ", "),
                                      "; its disks take a target, a vdev, an access (r or w) and the format phy, "
                                      "raw or qcow2"));
  core::DiskSpec disk;
  disk.target = d->pdev_path ? d->pdev_path : "";
  disk.vdev = d->vdev ? d->vdev : "";
  disk.mode = d->readwrite ? "w" : "r";
  if (d->backend == LIBXL_DISK_BACKEND_PHY) {
    if (d->format != LIBXL_DISK_FORMAT_RAW)
      return r.bad("disk", absl::StrCat(where, ": backendtype=phy serves raw devices only"));
    disk.format = "phy";
  } else if (d->format == LIBXL_DISK_FORMAT_QCOW2) {
    disk.format = "qcow2";
  }
  // raw (xl's default format) stays "": the backend is then chosen from the
  // target, phy for a block device, as libxl does.
  return disk;
}

constexpr std::string_view kVifKeys = "bridge, mac and ip";

Result<core::VifSpec> vifOf(Reader& r, size_t index, const std::string& text) {
  const std::string where = absl::StrCat("vif ", index, " '", text, "'");
  core::VifSpec vif;
  std::vector<std::string> unsupported;
  for (absl::string_view token : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    token = absl::StripAsciiWhitespace(token);
    size_t eq = token.find('=');
    if (eq == absl::string_view::npos)
      return r.bad("vif", absl::StrCat(where, ": '", token, "' is not key=value; its keys are ", av(kVifKeys)));
    absl::string_view key = token.substr(0, eq), value = token.substr(eq + 1);
    if (!core::setVifField(vif, std::string_view(key.data(), key.size()), std::string_view(value.data(), value.size())))
      unsupported.emplace_back(key);
  }
  if (!unsupported.empty())
    return r.bad("vif", absl::StrCat(where, ": xenctld does not support ", absl::StrJoin(unsupported, ", "),
                                     "; its vifs take ", av(kVifKeys)));
  return vif;
}

Result<core::LifecycleAction> actionOf(Reader& r, const char* key, core::LifecycleAction dflt) {
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> v, r.string(key));
  if (!v) return dflt;
  Result<core::LifecycleAction> a = core::parseLifecycleAction(*v);
  if (!a.ok()) return r.bad(key, absl::StrCat(key, ": ", a.status().message()));
  return a;
}

Status mapSpec(Reader& r, core::DomainSpec& s) {
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

  // xl: type= wins; the deprecated builder= ("hvm" or "generic", which is
  // pv) must agree with it; neither means pv on x86.
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> type, r.string("type"));
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> builder, r.string("builder"));
  s.type = core::DomainType::kPv;
  if (type) {
    Result<core::DomainType> t = core::parseDomainType(*type);
    if (!t.ok()) return r.bad("type", absl::StrCat("type: ", t.status().message()));
    s.type = *t;
  }
  if (builder) {
    core::DomainType b;
    if (*builder == "hvm")
      b = core::DomainType::kHvm;
    else if (*builder == "generic")
      b = core::DomainType::kPv;
    else
      return r.bad("builder", absl::StrCat("builder '", *builder,
                                           "' is not hvm or generic; better, use type = "
                                           "\"pv\", \"pvh\" or \"hvm\""));
    if (type && b != s.type)
      return r.bad("builder", absl::StrCat("builder '", *builder, "' contradicts type '", *type,
                                           "'; drop builder, which xl deprecates"));
    s.type = b;
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

  XENCTL_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> disks, r.list("disk"));
  for (size_t i = 0; disks && i < disks->size(); ++i) {
    XENCTL_ASSIGN_OR_RETURN(core::DiskSpec d, diskOf(r, i, (*disks)[i]));
    s.disks.push_back(std::move(d));
  }
  XENCTL_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> vifs, r.list("vif"));
  for (size_t i = 0; vifs && i < vifs->size(); ++i) {
    XENCTL_ASSIGN_OR_RETURN(core::VifSpec v, vifOf(r, i, (*vifs)[i]));
    s.vifs.push_back(std::move(v));
  }

  XENCTL_ASSIGN_OR_RETURN(s.on_poweroff, actionOf(r, "on_poweroff", core::LifecycleAction::kDestroy));
  XENCTL_ASSIGN_OR_RETURN(s.on_reboot, actionOf(r, "on_reboot", core::LifecycleAction::kRestart));
  XENCTL_ASSIGN_OR_RETURN(s.on_crash, actionOf(r, "on_crash", core::LifecycleAction::kDestroy));
  return absl::OkStatus();
}

}  // namespace

std::span<const std::string_view> supportedXlKeys() { return kSupported; }

Result<core::DomainSpec> readXlConfig(std::string_view text, std::string_view file_name) {
  const std::string file = file_name.empty() ? std::string("(unnamed)") : std::string(file_name);
  if (text.size() > kMaxXlConfigBytes)
    return absl::InvalidArgumentError(absl::StrCat("xl config ", file, " is ", text.size(),
                                                   " bytes; xenctld reads at most ", kMaxXlConfigBytes,
                                                   " (is it an xl config file?)"));
  // libxlutil's lexer asserts (aborting the daemon) on a NUL inside a quoted
  // string, and no xl.cfg(5) value may hold one: a NUL anywhere is refused.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos)
    return absl::InvalidArgumentError(absl::StrCat(
        "xl config ", file, ":", 1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(nul), '\n'),
        ": holds a NUL byte (at offset ", nul, "); an xl config is text (is it an xl config file?)"));
  ReportStream report;
  if (!report.get()) return absl::ResourceExhaustedError("reading an xl config: no memory for libxlutil's report");
  std::unique_ptr<XLU_Config, ConfigDeleter> cfg(xlu_cfg_init(report.get(), file.c_str()));
  if (!cfg) return absl::ResourceExhaustedError("reading an xl config: libxlutil is out of memory");

  if (int e = xlu_cfg_readdata(cfg.get(), text.data(), static_cast<int>(text.size())); e != 0) {
    std::string said = report.take();
    if (said.empty()) said = absl::StrCat(file, ": ", std::strerror(e));
    return absl::InvalidArgumentError(absl::StrCat("xl config ", said, "; see xl.cfg(5) for the syntax"));
  }

  const std::vector<Setting> settings = scanSettings(text);
  std::vector<std::string> unsupported;
  std::map<std::string, bool> seen;
  for (const Setting& s : settings) {
    if (xlu_cfg_get_list(cfg.get(), s.name.c_str(), nullptr, nullptr, 1) == ESRCH)
      return absl::InternalError(absl::StrCat("xl config ", file, ":", s.line, ": found '", s.name,
                                              "' where libxlutil found no setting; this is a bug in xenctld's "
                                              "reader, please report it with the file"));
    if (isSupported(s.name) || seen[s.name]) continue;
    seen[s.name] = true;
    unsupported.push_back(absl::StrCat(s.name, " (line ", s.line, ")"));
  }
  if (!unsupported.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("xl config ", file, ": xenctld does not support ",
                     unsupported.size() == 1 ? "the key " : "the keys ", absl::StrJoin(unsupported, ", "), "; remove ",
                     unsupported.size() == 1 ? "it" : "them", " or create the domain with xl. Supported: ",
                     absl::StrJoin(std::begin(kSupported), std::end(kSupported), ", ",
                                   [](std::string* out, std::string_view k) { out->append(k.data(), k.size()); })));

  Reader reader(cfg.get(), report, file, settings);
  core::DomainSpec spec;
  XENCTL_RETURN_IF_ERROR(mapSpec(reader, spec));
  return spec;
}

}  // namespace xenctl::xen
