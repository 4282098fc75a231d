// libFuzzer entry for xenctld's TOML config (loadConfig, then
// validateConfig). loadConfig reads a path, so each input is written to one
// file in a private temporary directory, removed at exit.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "daemon/config.h"

namespace {
std::string& configPath() {
  static std::string path = [] {
    std::string dir = (std::filesystem::temp_directory_path() / "xenctl-fuzz-config.XXXXXX").string();
    if (!mkdtemp(dir.data())) std::abort();
    static std::string keep = dir;
    std::atexit([] { std::filesystem::remove_all(keep); });
    return dir + "/xenctld.toml";
  }();
  return path;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = configPath();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) std::abort();
  }
  auto config = xenctl::daemon::loadConfig(path);
  if (!config.ok()) {
    if (config.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  (void)xenctl::daemon::validateConfig(*config);
  (void)xenctl::daemon::effectivePools(*config);
  return 0;
}
