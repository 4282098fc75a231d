#include "daemon/images.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace xenctl::daemon {

namespace {

// Reads minisign public key files; `what` names the config key in messages.
Result<std::vector<image::MinisignPublicKey>> readKeys(const std::vector<std::string>& files, const std::string& what) {
  std::vector<image::MinisignPublicKey> keys;
  for (const std::string& path : files) {
    std::ifstream f(path);
    if (!f)
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": cannot read ", path, "; give minisign public key files"));
    std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    auto key = image::MinisignPublicKey::parse(text);
    if (!key.ok()) return absl::FailedPreconditionError(absl::StrCat(what, ": ", path, ": ", key.status().message()));
    spdlog::info("images: {} trusts minisign key {} ({})", what, image::keyIdString(key->key_id), path);
    keys.push_back(*key);
  }
  return keys;
}

}  // namespace

Result<provision::ImageConfig> imageConfig(const Config& config) {
  provision::ImageConfig out;
  XENCTL_ASSIGN_OR_RETURN(auto default_keys, readKeys(config.images.trusted_keys, "[images] trusted_keys"));
  std::vector<image::ImageSource> sources;
  for (const ImageSourceConfig& sc : config.images.sources) {
    image::ImageSource s;
    s.prefix = sc.prefix;
    XENCTL_ASSIGN_OR_RETURN(s.policy, image::parseSignaturePolicy(sc.policy));
    if (sc.trusted_keys) {
      XENCTL_ASSIGN_OR_RETURN(s.trusted_keys,
                              readKeys(*sc.trusted_keys, absl::StrCat("[[images.source]] \"", sc.prefix, "\" (",
                                                                      sc.where, ") trusted_keys")));
    }
    s.allow_unsigned_requests = sc.allow_unsigned_requests;
    sources.push_back(std::move(s));
    // Checked table by table, so that the error names the table's line.
    auto checked = image::ImageSources::create(sources, default_keys);
    if (!checked.ok())
      return absl::FailedPreconditionError(absl::StrCat("config ", sc.where, ": ", checked.status().message()));
  }
  XENCTL_ASSIGN_OR_RETURN(out.sources, image::ImageSources::create(std::move(sources), std::move(default_keys)));
  for (const ImageSourceConfig& sc : config.images.sources)
    spdlog::info("images: source \"{}\": policy {}{}", sc.prefix, sc.policy,
                 sc.allow_unsigned_requests ? ", requests may lower it" : "");
  out.ca_file = config.images.ca_file;
  out.extract.allow_setid = config.images.allow_setid;
  out.extract.allow_devices = config.images.allow_devices == DeviceNodes::kAll;
  out.extract.allow_standard_devices = config.images.allow_devices == DeviceNodes::kStandard;
  out.max_image_bytes = config.images.max_download_bytes;
  out.fetch_timeout = absl::Seconds(config.images.fetch_timeout_seconds);
  out.fetch_stall_timeout = absl::Seconds(config.images.fetch_stall_timeout_seconds);
  // Unpacked trees (with their set-id files and device nodes) live here
  // until they are copied into a volume: private to xenctld's user.
  out.work_dir = config.state_dir + "/images.tmp";
  std::error_code ec;
  std::filesystem::remove_all(out.work_dir, ec);
  std::filesystem::create_directories(out.work_dir, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("creating ", out.work_dir, ": ", ec.message()));
  if (::chmod(out.work_dir.c_str(), 0700) != 0)
    return absl::FailedPreconditionError(
        absl::StrCat("making ", out.work_dir, " private (mode 0700): ", std::strerror(errno)));
  return out;
}

}  // namespace xenctl::daemon
