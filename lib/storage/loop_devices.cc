#include "lib/storage/loop_devices.h"

#include <filesystem>
#include <fstream>

namespace xenctl::storage {

std::map<std::string, std::string> boundLoopDevices(const std::string& sys_block) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(sys_block, ec)) {
    const std::string dev = entry.path().filename().string();
    if (!dev.starts_with("loop")) continue;
    // Present only while the device is bound.
    std::ifstream in(entry.path() / "loop" / "backing_file");
    std::string file;
    if (!in || !std::getline(in, file) || file.empty()) continue;
    out["/dev/" + dev] = file;
  }
  return out;
}

std::vector<std::string> loopDevicesOf(const std::map<std::string, std::string>& bound, const std::string& file) {
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(file, ec);
  const std::string want = ec ? file : canonical.string();
  std::vector<std::string> out;
  for (const auto& [dev, backing] : bound)
    if (backing == want) out.push_back(dev);
  return out;
}

}  // namespace xenctl::storage
