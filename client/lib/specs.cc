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
  if (f.memory.empty() && !f.image.empty()) {
    s.memory_mib = kImageDefaultMemoryMib;
  } else {
    XENCTL_ASSIGN_OR_RETURN(s.memory_mib, parseSizeFlag("--memory", f.memory));
  }
  if (!f.maxmem.empty()) {
    XENCTL_ASSIGN_OR_RETURN(s.maxmem_mib, parseSizeFlag("--maxmem", f.maxmem));
  }
  s.vcpus = f.vcpus == 0 && !f.image.empty() ? kImageDefaultVcpus : f.vcpus;
  s.maxvcpus = f.maxvcpus;
  if (!f.type.empty()) {
    Result<core::DomainType> t = core::parseDomainType(f.type);
    if (!t.ok()) return flagError("--type", t.status());
    s.type = *t;
  }
  const std::pair<std::string_view, std::pair<const std::string*, core::LifecycleAction*>> actions[] = {
      {"--on-poweroff", {&f.on_poweroff, &s.on_poweroff}},
      {"--on-reboot", {&f.on_reboot, &s.on_reboot}},
      {"--on-crash", {&f.on_crash, &s.on_crash}},
      {"--on-watchdog", {&f.on_watchdog, &s.on_watchdog}}};
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
  if (!f.ip.empty()) {
    if (s.vifs.empty()) s.vifs.emplace_back();  // on Xen's default bridge
    if (!s.vifs[0].ip.empty())
      return absl::InvalidArgumentError(absl::StrCat("--ip '", f.ip, "' and ip=", s.vifs[0].ip,
                                                     " in the first --vif both give its address; give one"));
    s.vifs[0].ip = f.ip;
  }
  protoconv::toProto(s, a.mutable_spec());
  a.set_define_only(f.define_only);
  a.set_paused(f.paused);
  return a;
}

namespace {

// What the daemon takes in one request is bounded; a file meant for a guest
// is refused here rather than sent whole to be refused there.
constexpr uint64_t kMaxFlagFileBytes = uint64_t{1} << 20;

Result<std::string> readFlagFile(std::string_view flag, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return absl::InvalidArgumentError(absl::StrCat(av(flag), ": cannot read '", path, "': ", std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return absl::InvalidArgumentError(absl::StrCat(av(flag), ": '", path, "' is not a regular file"));
  if (static_cast<uint64_t>(st.st_size) > kMaxFlagFileBytes)
    return absl::InvalidArgumentError(absl::StrCat(av(flag), ": '", path, "' is ", st.st_size,
                                                   " bytes; at most ", kMaxFlagFileBytes, " go in one request"));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in)
    return absl::InvalidArgumentError(absl::StrCat(av(flag), ": cannot read '", path, "': ", std::strerror(errno)));
  return text.str();
}

std::vector<std::string> splitOn(std::string_view text, char sep) {
  std::vector<std::string> out;
  for (size_t start = 0;;) {
    size_t at = text.find(sep, start);
    out.emplace_back(text.substr(start, at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

}  // namespace

Status addCustomizationFlags(const CreateFlags& f, google::protobuf::RepeatedPtrField<v1::Customization>& out) {
  if (!f.hostname.empty()) out.Add()->set_hostname(f.hostname);
  for (const std::string& spec : f.files) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || spec[0] != '/')
      return absl::InvalidArgumentError(
          absl::StrCat("invalid --file '", spec, "': use /GUEST/PATH=TEXT or /GUEST/PATH=@LOCAL_FILE"));
    v1::FileContent* file = out.Add()->mutable_file();
    file->set_path(spec.substr(0, eq));
    file->set_mode(0644);
    std::string value = spec.substr(eq + 1);
    if (!value.empty() && value[0] == '@') {
      XENCTL_ASSIGN_OR_RETURN(std::string content, readFlagFile("--file", value.substr(1)));
      file->set_content(std::move(content));
    } else {
      file->set_content(std::move(value));
    }
  }
  if (!f.ssh_key_files.empty()) {
    v1::SshKeys* keys = out.Add()->mutable_ssh_authorized_keys();
    keys->set_user(f.ssh_user.empty() ? "root" : f.ssh_user);
    for (const std::string& path : f.ssh_key_files) {
      XENCTL_ASSIGN_OR_RETURN(std::string text, readFlagFile("--ssh-key", path));
      const int before = keys->keys_size();
      for (std::string& line : splitOn(text, '\n')) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty() && line[0] != '#') keys->add_keys(std::move(line));
      }
      if (keys->keys_size() == before)
        return absl::InvalidArgumentError(
            absl::StrCat("--ssh-key: '", path, "' holds no key; give an OpenSSH public key file (id_ed25519.pub)"));
    }
  } else if (!f.ssh_user.empty()) {
    return absl::InvalidArgumentError("--ssh-user names whose keys --ssh-key installs; give --ssh-key FILE too");
  }
  for (const std::string& spec : f.users) {
    std::vector<std::string> parts = splitOn(spec, ':');
    if (parts.size() > 3 || parts[0].empty())
      return absl::InvalidArgumentError(
          absl::StrCat("invalid --user '", spec, "': use NAME[:HASH][:GROUP,GROUP...] (HASH from mkpasswd; "
                                                 "empty: password login locked)"));
    v1::UserAccount* user = out.Add()->mutable_user();
    user->set_name(parts[0]);
    if (parts.size() > 1) user->set_password_hash(parts[1]);
    if (parts.size() > 2)
      for (std::string& g : splitOn(parts[2], ','))
        if (!g.empty()) user->add_groups(std::move(g));
  }
  if (!f.user_data_file.empty()) {
    XENCTL_ASSIGN_OR_RETURN(std::string user_data, readFlagFile("--user-data", f.user_data_file));
    out.Add()->set_cloud_init_user_data(std::move(user_data));
  }
  return absl::OkStatus();
}

Status addRootFlags(const CreateFlags& f, v1::CreateDomainRequest& a) {
  if (f.image.empty()) {
    const std::pair<bool, std::string_view> needs_image[] = {
        {!f.pool.empty(), "--pool"},          {!f.root_size.empty(), "--root-size"},
        {!f.root_vdev.empty(), "--root-vdev"}, {!f.hostname.empty(), "--hostname"},
        {!f.ssh_key_files.empty(), "--ssh-key"}, {!f.ssh_user.empty(), "--ssh-user"},
        {!f.files.empty(), "--file"},         {!f.users.empty(), "--user"},
        {!f.gateway.empty(), "--gateway"},    {!f.dns.empty(), "--dns"},
        {!f.user_data_file.empty(), "--user-data"}, {f.keep_identity, "--keep-identity"},
        {!f.container_file.empty(), "--container"}};
    for (const auto& [given, flag] : needs_image)
      if (given)
        return absl::InvalidArgumentError(absl::StrCat(
            av(flag), " changes a root cloned from an image; give the image with --image NAME (`vm-image list`)"));
    return absl::OkStatus();
  }
  v1::RootImage* root = a.mutable_root();
  root->set_image(f.image);
  root->set_pool(f.pool);
  root->set_vdev(f.root_vdev);
  if (!f.root_size.empty()) {
    XENCTL_ASSIGN_OR_RETURN(uint64_t mib, parseSizeFlag("--root-size", f.root_size));
    root->set_size_mib(mib);
  }
  a.set_keep_identity(f.keep_identity);
  XENCTL_RETURN_IF_ERROR(addCustomizationFlags(f, *a.mutable_customizations()));
  if (!f.container_file.empty()) {
    XENCTL_ASSIGN_OR_RETURN(std::string text, readFlagFile("--container", f.container_file));
    a.set_container_file_name(f.container_file);
    a.add_customizations()->set_container_text(std::move(text));
  }
  if (f.gateway.empty() && f.dns.empty()) return absl::OkStatus();
  if (f.ip.empty())
    return absl::InvalidArgumentError(absl::StrCat(f.gateway.empty() ? "--dns" : "--gateway",
                                                   " completes the static address --ip gives; give --ip too"));
  v1::NetworkSettings* net = a.add_customizations()->mutable_network();
  net->set_vif(0);  // --ip's
  net->set_gateway(f.gateway);
  for (const std::string& d : f.dns)
    for (std::string& server : splitOn(d, ','))
      if (!server.empty()) net->add_dns(std::move(server));
  return absl::OkStatus();
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
    XENCTL_RETURN_IF_ERROR(addRootFlags(f, a));
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
    if (!given(flag) && f.image.empty())
      return absl::InvalidArgumentError(
          name_is_file ? absl::StrCat(av(flag), " is required (to create from the xl config '", f.name,
                                      "', give it without spec flags)")
                       : absl::StrCat(av(flag), " is required (to create from an xl config instead, give the file: '",
                                      f.name, "' is not one)"));
  XENCTL_ASSIGN_OR_RETURN(v1::CreateDomainRequest a, createArgsFromFlags(f, std::move(request_id)));
  XENCTL_RETURN_IF_ERROR(addRootFlags(f, a));
  return a;
}

}  // namespace xenctl::client
