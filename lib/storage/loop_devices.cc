#include "lib/storage/loop_devices.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
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

std::map<uint64_t, std::vector<int64_t>> xenBlockBackends(const std::string& backends) {
  std::map<uint64_t, std::vector<int64_t>> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(backends, ec)) {
    // vbd-DOMID-DEVID; physical_device is "MAJOR:MINOR" in hex once connected.
    const std::string name = entry.path().filename().string();
    unsigned long long domid = 0;
    unsigned major = 0, minor = 0;
    if (std::sscanf(name.c_str(), "vbd-%llu-", &domid) != 1) continue;
    std::ifstream in(entry.path() / "physical_device");
    std::string text;
    if (!in || !std::getline(in, text) || std::sscanf(text.c_str(), "%x:%x", &major, &minor) != 2) continue;
    out[makedev(major, minor)].push_back(static_cast<int64_t>(domid));
  }
  for (auto& [dev, domids] : out) std::sort(domids.begin(), domids.end());
  return out;
}

std::vector<int64_t> domainsServing(const std::map<uint64_t, std::vector<int64_t>>& served, const std::string& device) {
  struct stat st{};
  if (served.empty() || ::stat(device.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return {};
  auto it = served.find(st.st_rdev);
  return it == served.end() ? std::vector<int64_t>{} : it->second;
}

}  // namespace xenctl::storage
