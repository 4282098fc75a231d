// The FileTree port: the files of a guest's file system, edited offline
// (nothing is mounted in Dom0, nothing from the guest runs on the host).
// Real: customize::Ext4FileTree (libext2fs, ext2/3/4 on a block device or an
// image file). Test: FakeFileTree (in memory).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"

namespace xenctl::core {

enum class FileType { kRegular, kDirectory, kSymlink, kOther };

/// What stat() reports of one entry (the entry itself: a symlink is not followed).
struct FileStat {
  FileType type = FileType::kRegular;
  uint32_t mode = 0;  ///< permission bits only, 07777
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  std::string link_target;  ///< kSymlink only
};

/// Mode and owner of a file or directory that a call creates.
struct FileAttrs {
  uint32_t mode = 0644;  ///< permission bits only, 07777
  uint32_t uid = 0;
  uint32_t gid = 0;
};

/// One open file system. Paths are absolute inside it ("/etc/hostname").
/// They resolve inside the tree only: ".." at the root stays at the root,
/// and a symlink met on the way (relative or absolute, "/etc -> /" or
/// "x -> ../../..") is followed as if the tree's root were "/", never into
/// the host. The last component of a path is never followed: writeFile,
/// symlink and remove on a symlink act on the link itself.
///
/// Not thread-safe: one caller at a time. Changes may be buffered until
/// close(); a tree destroyed without close() may leave the last changes
/// unwritten but never a file system that fails e2fsck.
///
/// Codes: INVALID_ARGUMENT for a relative or empty path, or one that names
/// no entry of its own ("/", or ending in "." or "..") given to writeFile,
/// appendFile, symlink or remove; NOT_FOUND when a parent directory (or,
/// for read/stat/chmod/chown, the path) is missing;
/// FAILED_PRECONDITION when a component that must be a directory is not,
/// or when the tree was opened read-only; RESOURCE_EXHAUSTED when the file
/// system is full (no blocks or no inodes), naming the path. Messages name
/// the path as the guest sees it.
class FileTree {
 public:
  virtual ~FileTree() = default;

  /// The whole content of a regular file (after following symlinks on the
  /// way and at the end, inside the tree). FAILED_PRECONDITION for a directory.
  virtual Result<std::string> readFile(std::string_view path) = 0;
  /// Creates or replaces the file at `path` with `content` and `attrs`.
  /// An existing symlink at `path` is replaced by the file, not followed.
  /// FAILED_PRECONDITION when `path` is a directory; RESOURCE_EXHAUSTED
  /// leaves an existing file as it was.
  virtual Status writeFile(std::string_view path, std::string_view content, const FileAttrs& attrs) = 0;
  /// Appends to a regular file, which keeps its mode and owner; creates it
  /// with `attrs` when missing. A symlink at `path` is not followed
  /// (FAILED_PRECONDITION): a link planted in the guest could aim the append
  /// at any of its files. The file is appended whole or not at all
  /// (RESOURCE_EXHAUSTED leaves it as it was).
  virtual Status appendFile(std::string_view path, std::string_view content, const FileAttrs& attrs) = 0;
  /// mkdir -p: creates the missing directories of `path` with `attrs`;
  /// existing ones are left as they are. FAILED_PRECONDITION when a
  /// component exists and is not a directory (or a symlink to one).
  virtual Status mkdirs(std::string_view path, const FileAttrs& attrs) = 0;
  /// Creates a symlink at `path` pointing at `target` (stored as given),
  /// replacing an existing file or symlink there. FAILED_PRECONDITION when
  /// `path` is a directory.
  virtual Status symlink(std::string_view path, std::string_view target) = 0;
  /// Removes the file, symlink or empty directory at `path`; with
  /// `recursive`, a directory and everything below it. NOT_FOUND when
  /// missing; FAILED_PRECONDITION for a non-empty directory without `recursive`.
  virtual Status remove(std::string_view path, bool recursive) = 0;
  /// Sets the permission bits (07777) of the entry (symlinks followed).
  virtual Status chmod(std::string_view path, uint32_t mode) = 0;
  /// Sets the owner of the entry (symlinks followed).
  virtual Status chown(std::string_view path, uint32_t uid, uint32_t gid) = 0;
  /// The entry itself (lstat). NOT_FOUND when missing.
  virtual Result<FileStat> stat(std::string_view path) = 0;
  /// The names in a directory, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> list(std::string_view dir) = 0;
  /// Writes every change to the file system and closes it; later calls
  /// fail. The file system then passes `e2fsck -fn`.
  virtual Status close() = 0;
};

/// Opens the file system on a block device or image file. `writable`
/// false: every change fails FAILED_PRECONDITION. FAILED_PRECONDITION for
/// a file system of another type (naming it) or one whose journal needs
/// recovery; NOT_FOUND for a missing path.
using FileTreeOpener =
    std::function<Result<std::unique_ptr<FileTree>>(const std::string& device_path, bool writable)>;

}  // namespace xenctl::core
