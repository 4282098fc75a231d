// Dom0's loop devices as the kernel lists them in sysfs
// (/sys/block/loopN/loop/backing_file): how a dir pool's volume files are
// found attached, after a daemon restart too, without running losetup.
#pragma once

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

}  // namespace xenctl::storage
