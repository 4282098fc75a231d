// Unpacking an image stream (libarchive) into a directory that nothing in
// the archive can leave, or copying a raw ext2/3/4 image block-wise into a
// sparse file.
#pragma once

#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>

#include "lib/core/status.h"

namespace xenctl::image {

/// Gives the stream's next chunk; an empty string at its end. An error stops
/// the extraction and is returned by it.
using ChunkSource = std::function<Result<std::string>()>;

/// What an archive may contain. The defaults suit an archive from anywhere;
/// an OS root (debootstrap's, say) needs allow_setid (su, passwd, mount) and
/// allow_standard_devices (its /dev nodes). xenctld sets these from its
/// [images] allow_setid and allow_devices, and the refusals name those keys.
/// Keeping set-id bits and device nodes is safe only where no other user can
/// reach the files: importImage checks that of its destination.
struct ExtractPolicy {
  bool allow_devices = false;  ///< any character or block device node (mknod needs root)
  /// The standard nodes only (see isStandardDeviceNode): what debootstrap
  /// creates and systemd lets every container have; no hardware behind them.
  bool allow_standard_devices = false;
  bool allow_setid = false;  ///< set-user-id / set-group-id regular files
  /// Owners from the archive; the default is "when running as root".
  enum class Owners { kAuto, kKeep, kIgnore } owners = Owners::kAuto;
  uint64_t max_total_bytes = uint64_t{64} << 30;  ///< sum of the entries' sizes
  uint64_t max_entries = 2'000'000;
  std::stop_token stop;  ///< CANCELLED between blocks
};

struct ExtractStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;            ///< file data written
  uint64_t xattrs_skipped = 0;   ///< xattrs the kernel refused to an unprivileged caller
  std::string format;            ///< libarchive's name: "POSIX pax interchange format", "SVR4 cpio newc" …
  std::string filter;            ///< "gzip", "xz", "zstd", "bzip2", "none"
};

/// Whether a device node is one of the standard ones, by its type and number
/// wherever it is in the tree: the character devices null 1:3, zero 1:5,
/// full 1:7, random 1:8, urandom 1:9, tty 5:0, console 5:1 and ptmx 5:2 —
/// debootstrap's /dev, and the nodes systemd allows every container.
bool isStandardDeviceNode(bool character, unsigned major, unsigned minor);

/// Reads a tar or cpio archive (gzip, xz, zstd, bzip2 or not compressed)
/// from `source` and recreates it under the existing, empty directory
/// `target`, keeping modes, timestamps, xattrs and (see policy) owners.
///
/// Every name is resolved below `target` with openat2(RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS): absolute names, "..", a parent that is a symlink
/// (written through) and hard links to anything outside are refused with
/// INVALID_ARGUMENT naming the entry. Device nodes and set-id files outside
/// the policy are PERMISSION_DENIED; past a limit RESOURCE_EXHAUSTED; a
/// corrupt stream DATA_LOSS. On error, what was written stays under
/// `target` (the caller removes it) and nothing exists outside it.
Result<ExtractStats> extractArchive(const ChunkSource& source, const std::string& target, const ExtractPolicy& policy);

struct RawStats {
  uint64_t size = 0;       ///< the image's size
  uint64_t allocated = 0;  ///< bytes actually written (zero blocks become holes)
  std::string filter;
};

/// Copies a raw ext2/3/4 image (optionally gzip/xz/zstd/bzip2 compressed)
/// from `source` into the new file `target`, leaving all-zero 4 KiB blocks as
/// holes. INVALID_ARGUMENT when the data has no ext superblock;
/// RESOURCE_EXHAUSTED past policy.max_total_bytes.
Result<RawStats> copyRawImage(const ChunkSource& source, const std::string& target, const ExtractPolicy& policy);

enum class ImageKind { kArchive, kRawExt };
std::string_view toString(ImageKind k);

/// Looks at the start of a stream (compressed or not; a prefix of 64 KiB is
/// enough): kRawExt when, decompressed, it has an ext superblock at 1024.
ImageKind detectImageKind(std::string_view prefix);

}  // namespace xenctl::image
