#include "lib/storage/loop_devices.h"

#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>

#include "tests/unit/storage/storage_test_util.h"

namespace xenctl::storage {
namespace {

using testing::TempDir;

void fakeLoop(const TempDir& sys, const std::string& dev, const std::string& backing) {
  std::filesystem::create_directories(sys.sub(dev + "/loop"));
  std::ofstream(sys.sub(dev + "/loop/backing_file")) << backing << "\n";
}

// Bound loop devices are read from sysfs by their backing file, and a
// volume's devices are found by its canonical path.
TEST(LoopDevices, FindsTheDevicesBackedByAFile) {
  TempDir sys, pool;
  std::ofstream(pool.sub("web1.img")) << "x";
  const std::string canonical = std::filesystem::canonical(pool.sub("web1.img")).string();
  fakeLoop(sys, "loop3", canonical);
  fakeLoop(sys, "loop1", canonical);
  fakeLoop(sys, "loop0", "/srv/other.img");
  std::filesystem::create_directories(sys.sub("loop7"));  // unbound: no loop/ directory
  std::filesystem::create_directories(sys.sub("sda"));

  auto bound = boundLoopDevices(sys.path());
  EXPECT_EQ(bound.size(), 3u);
  EXPECT_EQ(bound["/dev/loop0"], "/srv/other.img");
  // The path as the pool names it, with a redundant component, still matches.
  EXPECT_EQ(loopDevicesOf(bound, pool.path() + "/./web1.img"),
            (std::vector<std::string>{"/dev/loop1", "/dev/loop3"}));
  EXPECT_TRUE(loopDevicesOf(bound, pool.sub("web2.img")).empty());
  EXPECT_TRUE(boundLoopDevices(sys.sub("missing")).empty());
}

// blkback's served devices are read by domid from their hex MAJOR:MINOR;
// backends not yet connected (no physical_device) and a path that is not a
// block device give no domain.
TEST(LoopDevices, ReadsTheDevicesXenServesToDomains) {
  TempDir xen;
  auto vbd = [&](const std::string& name, const std::string& physical) {
    std::filesystem::create_directories(xen.sub(name));
    if (!physical.empty()) std::ofstream(xen.sub(name + "/physical_device")) << physical << "\n";
  };
  vbd("vbd-7-51712", "fe:3");
  vbd("vbd-3-51712", "fe:3");
  vbd("vbd-9-51728", "7:0");
  vbd("vbd-11-51712", "");
  vbd("vif-7-0", "fe:3");
  auto served = xenBlockBackends(xen.path());
  ASSERT_EQ(served.size(), 2u);
  EXPECT_EQ(served[makedev(0xfe, 3)], (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(served[makedev(7, 0)], (std::vector<int64_t>{9}));
  EXPECT_TRUE(domainsServing(served, xen.sub("vbd-7-51712/physical_device")).empty());
  EXPECT_TRUE(xenBlockBackends(xen.sub("missing")).empty());
}

}  // namespace
}  // namespace xenctl::storage
