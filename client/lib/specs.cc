#include "client/lib/specs.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/convert/convert.h"

namespace xenctl::client {
namespace {

Status bad(std::string_view flag, std::string_view text, std::string_view why, std::string_view forms) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ", av(flag), " '", av(text), "': ", av(why), "; use ", av(forms)));
}

// Debian's abseil has its own string_view, so split std::string_views by hand.
std::vector<std::string_view> splitCommas(std::string_view text) {
  std::vector<std::string_view> out;
  for (size_t start = 0;;) {
    size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma - start));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

constexpr std::string_view kDiskForms = "TARGET[,VDEV[,MODE]] or target=T,vdev=V,access=r|w[,format=F]";
constexpr std::string_view kVifForms = "bridge=BRIDGE[,mac=MAC][,ip=IP]";

Result<std::string> diskMode(std::string_view text, std::string_view mode) {
  if (mode == "w" || mode == "rw") return std::string("w");
  if (mode == "r" || mode == "ro") return std::string("r");
  return bad("--disk", text, absl::StrCat("mode '", av(mode), "' is not r, ro, w or rw"), kDiskForms);
}

}  // namespace

Result<core::DiskSpec> parseDiskSpec(std::string_view text) {
  std::vector<std::string_view> fields = splitCommas(text);
  core::DiskSpec disk;
  disk.mode.clear();  // the daemon fills "w"
  const bool keyed = text.find('=') != std::string_view::npos;
  if (!keyed) {
    if (fields.size() > 3) return bad("--disk", text, "too many fields", kDiskForms);
    disk.target = std::string(fields[0]);
    if (fields.size() > 1) disk.vdev = std::string(fields[1]);
    if (fields.size() > 2) {
      XENCTL_ASSIGN_OR_RETURN(disk.mode, diskMode(text, fields[2]));
    }
  } else {
    for (std::string_view field : fields) {
      size_t eq = field.find('=');
      if (eq == std::string_view::npos)
        return bad("--disk", text, absl::StrCat("'", av(field), "' is not key=value"), kDiskForms);
      std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
      if (key == "target")
        disk.target = std::string(value);
      else if (key == "vdev")
        disk.vdev = std::string(value);
      else if (key == "access" || key == "mode") {
        XENCTL_ASSIGN_OR_RETURN(disk.mode, diskMode(text, value));
      } else if (key == "format")
        disk.format = std::string(value);
      else
        return bad("--disk", text, absl::StrCat("key '", av(key), "' is not supported"), kDiskForms);
    }
  }
  if (disk.target.empty()) return bad("--disk", text, "the target is empty", kDiskForms);
  return disk;
}

Result<core::VifSpec> parseVifSpec(std::string_view text) {
  core::VifSpec vif;
  if (text.empty()) return vif;  // all defaults, as xl's vif = ['']
  for (std::string_view field : splitCommas(text)) {
    size_t eq = field.find('=');
    if (eq == std::string_view::npos)
      return bad("--vif", text, absl::StrCat("'", av(field), "' is not key=value"), kVifForms);
    std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
    if (!core::setVifField(vif, key, value))
      return bad("--vif", text, absl::StrCat("key '", av(key), "' is not supported"), kVifForms);
  }
  return vif;
}

Result<uint64_t> parseSizeFlag(std::string_view flag, std::string_view text) {
  Result<uint64_t> mib = core::parseSizeMib(text);
  if (!mib.ok()) return absl::InvalidArgumentError(absl::StrCat(av(flag), ": ", mib.status().message()));
  return mib;
}

Result<v1::CreateDomainRequest> createArgsFromFlags(const CreateFlags& f, std::string request_id) {
  auto flagError = [](std::string_view flag, const Status& s) {
    return absl::InvalidArgumentError(absl::StrCat(av(flag), ": ", s.message()));
  };
  v1::CreateDomainRequest a;
  a.set_request_id(std::move(request_id));
  core::DomainSpec s;
  s.name = f.name;
  XENCTL_ASSIGN_OR_RETURN(s.memory_mib, parseSizeFlag("--memory", f.memory));
  if (!f.maxmem.empty()) {
    XENCTL_ASSIGN_OR_RETURN(s.maxmem_mib, parseSizeFlag("--maxmem", f.maxmem));
  }
  s.vcpus = f.vcpus;
  s.maxvcpus = f.maxvcpus;
  if (!f.type.empty()) {
    Result<core::DomainType> t = core::parseDomainType(f.type);
    if (!t.ok()) return flagError("--type", t.status());
    s.type = *t;
  }
  const std::pair<std::string_view, std::pair<const std::string*, core::LifecycleAction*>> actions[] = {
      {"--on-poweroff", {&f.on_poweroff, &s.on_poweroff}},
      {"--on-reboot", {&f.on_reboot, &s.on_reboot}},
      {"--on-crash", {&f.on_crash, &s.on_crash}}};
  for (const auto& [flag, io] : actions) {
    if (io.first->empty()) continue;
    Result<core::LifecycleAction> act = core::parseLifecycleAction(*io.first);
    if (!act.ok()) return flagError(flag, act.status());
    *io.second = *act;
  }
  s.kernel = f.kernel;
  s.ramdisk = f.ramdisk;
  s.cmdline = f.cmdline;
  for (const std::string& d : f.disks) {
    XENCTL_ASSIGN_OR_RETURN(core::DiskSpec disk, parseDiskSpec(d));
    s.disks.push_back(std::move(disk));
  }
  for (const std::string& v : f.vifs) {
    XENCTL_ASSIGN_OR_RETURN(core::VifSpec vif, parseVifSpec(v));
    s.vifs.push_back(std::move(vif));
  }
  protoconv::toProto(s, a.mutable_spec());
  a.set_define_only(f.define_only);
  a.set_paused(f.paused);
  return a;
}

// The daemon's limit (lib/xen/xl_config.h), checked here too so a wrong
// file is not sent whole.
constexpr uint64_t kMaxXlConfigBytes = uint64_t{1} << 20;

Result<v1::XlConfig> readXlConfigFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const std::string why = absl::StrCat("cannot read xl config '", path, "': ", std::strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(why) : absl::InvalidArgumentError(why);
  }
  if (!S_ISREG(st.st_mode))
    return absl::InvalidArgumentError(absl::StrCat("xl config '", path, "' is not a regular file"));
  if (static_cast<uint64_t>(st.st_size) > kMaxXlConfigBytes)
    return absl::InvalidArgumentError(absl::StrCat("xl config '", path, "' is ", st.st_size,
                                                   " bytes; xenctld reads at most ", kMaxXlConfigBytes,
                                                   " (is it an xl config file?)"));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::InvalidArgumentError(absl::StrCat("cannot read xl config '", path, "': ", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  v1::XlConfig file;
  file.set_file_name(path);
  file.set_text(std::move(text).str());
  return file;
}

Result<v1::CreateDomainRequest> createArgs(const CreateFlags& f, const std::string& xl_config_path,
                                    const std::vector<std::string>& spec_flags, std::string request_id) {
  std::string path = xl_config_path;
  if (!path.empty() && !f.name.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("--xl-config takes the domain's name from the file; drop '", f.name, "' or --xl-config"));
  struct stat st;
  const bool name_is_file = !f.name.empty() && ::stat(f.name.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  if (path.empty() && spec_flags.empty() && name_is_file) path = f.name;
  if (!path.empty()) {
    if (!spec_flags.empty())
      return absl::InvalidArgumentError(absl::StrCat(absl::StrJoin(spec_flags, ", "),
                                                     " cannot be combined with an xl config ('", path,
                                                     "'), which says what the domain is; edit the file instead"));
    v1::CreateDomainRequest a;
    a.set_request_id(std::move(request_id));
    XENCTL_ASSIGN_OR_RETURN(*a.mutable_xl_config(), readXlConfigFile(path));
    a.set_define_only(f.define_only);
    a.set_paused(f.paused);
    return a;
  }
  if (f.name.empty())
    return absl::InvalidArgumentError("give a new domain's NAME with --memory and --vcpus, or an xl config file");
  auto given = [&](std::string_view flag) {
    for (const std::string& s : spec_flags)
      if (s == flag) return true;
    return false;
  };
  for (std::string_view flag : {"--memory", "--vcpus"})
    if (!given(flag))
      return absl::InvalidArgumentError(
          name_is_file ? absl::StrCat(av(flag), " is required (to create from the xl config '", f.name,
                                      "', give it without spec flags)")
                       : absl::StrCat(av(flag), " is required (to create from an xl config instead, give the file: '",
                                      f.name, "' is not one)"));
  return createArgsFromFlags(f, std::move(request_id));
}

}  // namespace xenctl::client
