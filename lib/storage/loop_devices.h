// Dom0's block devices as the kernel lists them in sysfs: the loop devices
// (/sys/block/loopN/loop/backing_file), how a dir pool's volume files are
// found attached, after a daemon restart too, without running losetup; and
// the devices Xen's block backend serves to domains
// (/sys/bus/xen-backend/devices/vbd-DOMID-DEVID/physical_device), how a
// volume in use by a domain xenctld does not manage is recognized.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace xenctl::storage {

/// Every bound loop device: "/dev/loopN" -> the canonical path of its
/// backing file (the kernel's " (deleted)" suffix kept). `sys_block` is
/// /sys/block, or a tree laid out like it in tests.
std::map<std::string, std::string> boundLoopDevices(const std::string& sys_block = "/sys/block");

/// The devices of `bound` backed by `file` (compared by canonical path),
/// sorted.
std::vector<std::string> loopDevicesOf(const std::map<std::string, std::string>& bound, const std::string& file);

/// Device number (st_rdev) -> the domids blkback serves it to, sorted.
/// `backends` is /sys/bus/xen-backend/devices, or a tree laid out like it.
std::map<uint64_t, std::vector<int64_t>> xenBlockBackends(
    const std::string& backends = "/sys/bus/xen-backend/devices");

/// The domids of `served` (from xenBlockBackends) using the block device
/// at `device`; none when it is not a block device.
std::vector<int64_t> domainsServing(const std::map<uint64_t, std::vector<int64_t>>& served, const std::string& device);

}  // namespace xenctl::storage
