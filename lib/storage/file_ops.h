// The file-system calls the dir backend is made of: reflink and sparse
// copies, growing, atomic small writes, extents and space. Errors carry the
// errno's code (ENOENT NOT_FOUND, EEXIST ALREADY_EXISTS, ENOSPC
// RESOURCE_EXHAUSTED ...) and name the call and the path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lib/core/status.h"
#include "lib/core/volume.h"

namespace xenctl::storage {

enum class CopyMethod { kReflink, kSparseCopy };
std::string_view toString(CopyMethod m);

/// Creates `dst` (which must not exist) with the content of `src`: a reflink
/// (ioctl FICLONE: the two share extents until either is written) when the
/// file system can, else a copy of the data regions only (SEEK_DATA /
/// SEEK_HOLE), so holes stay holes. Synced to disk before it returns. On
/// failure or when `progress` says stop (CANCELLED), `dst` is removed.
Result<CopyMethod> cloneFile(const std::string& src, const std::string& dst, const core::CopyProgress& progress);

/// Creates `path` (which must not exist) as a sparse file of `size` bytes.
Status createSparseFile(const std::string& path, uint64_t size);
/// Extends `path` to `size` bytes (a hole at the end); never shrinks.
Status growFile(const std::string& path, uint64_t size);

struct FileInfo {
  uint64_t size = 0;
  uint64_t allocated = 0;  ///< st_blocks * 512
  absl::Time modified = absl::UnixEpoch();
};
Result<FileInfo> fileInfo(const std::string& path);
bool exists(const std::string& path);

/// Writes `content` to a temporary file next to `path`, syncs it and renames
/// it over `path`: readers see the old or the new content, never a part.
Status writeFileAtomic(const std::string& path, const std::string& content);
Result<std::string> readSmallFile(const std::string& path);
/// rename(2), replacing `to`; then syncs the directory.
Status renameReplace(const std::string& from, const std::string& to);
/// renameat2(RENAME_NOREPLACE): ALREADY_EXISTS when `to` exists; then syncs the directory.
Status renameNoReplace(const std::string& from, const std::string& to);
/// NOT_FOUND when missing.
Status removeFile(const std::string& path);
Status makeDirs(const std::string& path);
/// Names in `dir`, "." and ".." left out.
Result<std::vector<std::string>> listDir(const std::string& dir);

struct FsSpace {
  uint64_t size = 0, used = 0, free = 0;  ///< free: what root may still allocate (f_bfree)
};
Result<FsSpace> fsSpace(const std::string& dir);

/// Waits until `path` (a link is followed) is a block device, checking at
/// growing intervals of 2 to 20 ms: OK, or DEADLINE_EXCEEDED naming the path
/// after `timeout`. For the /dev/VG/LV link udev makes after an activation.
Status awaitBlockDevice(const std::string& path, absl::Duration timeout);

/// Whether the image at `path` starts with an ext2/3/4 superblock (magic 0xEF53).
Result<bool> hasExtSuperblock(const std::string& path);

/// Whether `dir`'s file system clones files with FICLONE (tried on two
/// temporary files there).
Result<bool> supportsReflink(const std::string& dir);

/// One mapped extent of a file (FIEMAP).
struct Extent {
  uint64_t logical = 0, physical = 0, length = 0;
  uint32_t flags = 0;
};
/// The file's extents, after syncing it (FIEMAP_FLAG_SYNC).
Result<std::vector<Extent>> fileExtents(const std::string& path);

}  // namespace xenctl::storage
