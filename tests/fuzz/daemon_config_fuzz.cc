// libFuzzer entry for xenctld's TOML config (loadConfig, then
// validateConfig). loadConfig reads a path, so each input is written to one
// file in a private temporary directory, removed at exit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "daemon/config.h"
#include "tests/fuzz/fuzz_temp_dir.h"

namespace {
const std::string& configPath() {
  static const std::string path = (xenctl::fuzz::tempDir("config") / "xenctld.toml").string();
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
