#include "daemon/images.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace xenctl::daemon {

Result<provision::ImageConfig> imageConfig(const Config& config) {
  provision::ImageConfig out;
  for (const std::string& path : config.images.trusted_keys) {
    std::ifstream f(path);
    if (!f)
      return absl::FailedPreconditionError(
          absl::StrCat("[images] trusted_keys: cannot read ", path, "; give minisign public key files"));
    std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    auto key = image::MinisignPublicKey::parse(text);
    if (!key.ok())
      return absl::FailedPreconditionError(absl::StrCat("[images] trusted_keys: ", path, ": ", key.status().message()));
    spdlog::info("images: trusting minisign key {} ({})", image::keyIdString(key->key_id), path);
    out.trusted_keys.push_back(*key);
  }
  out.ca_file = config.images.ca_file;
  out.extract.allow_setid = config.images.allow_setid;
  out.extract.allow_devices = config.images.allow_devices;
  out.work_dir = config.state_dir + "/images.tmp";
  std::error_code ec;
  std::filesystem::remove_all(out.work_dir, ec);
  std::filesystem::create_directories(out.work_dir, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("creating ", out.work_dir, ": ", ec.message()));
  return out;
}

}  // namespace xenctl::daemon
