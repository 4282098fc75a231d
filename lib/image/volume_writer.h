// Writing a file system image onto a volume in few, large writes.
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>

#include "lib/core/status.h"

namespace xenctl::image {

struct WriteStats {
  uint64_t written = 0;  ///< bytes written onto the target
  uint64_t skipped = 0;  ///< bytes of holes and all-zero blocks left unwritten
};

/// Copies `image` (a regular file, usually sparse: what mkfs.ext4 made in
/// a staging directory) onto `target`, an existing block device or regular
/// file at least as large, at the same offsets. Only the image's data is
/// written, in runs of up to 4 MiB; its holes and all-zero 64 KiB blocks
/// are skipped, so `target` must read zeros wherever the image does: a
/// volume fresh from VolumeManager::create (a new thin LV, a sparse file,
/// a classic LV that create zero-filled). `target` is synced before it
/// returns. CANCELLED when `stop` is requested (checked between writes);
/// what was written stays, and the caller removes the volume.
///
/// Why not mkfs.ext4 -d straight onto the volume: under Xen's PV Dom0
/// (and worst under emulation) its ~100 000 scattered 4 KiB writes, each
/// allocating in a thin pool, took 20 minutes for a 140 MB Debian root that
/// a staging file holds in seconds (docs/lab.md, "provision").
Result<WriteStats> writeImageOnto(const std::string& image, const std::string& target, std::stop_token stop = {});

}  // namespace xenctl::image
