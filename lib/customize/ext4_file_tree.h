// customize::Ext4FileTree: the FileTree port over libext2fs, editing an
// ext2/3/4 file system on a block device or an image file in this process.
// Nothing is mounted and nothing from the guest runs; an image file needs no
// root. The library writes around the journal, so a file system whose
// journal needs recovery is refused, never written.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/file_tree.h"

struct struct_ext2_filsys;  // libext2fs's handle (ext2_filsys), kept out of includers

namespace xenctl::customize {

/// One open ext2/3/4 file system. As the port says: one caller at a time (a
/// libext2fs handle has no locks of its own; the caller serialises, as
/// fuse2fs does with one mutex). Each change goes to the library's caches at
/// once; close() (or the destructor) writes the bitmaps, group descriptors
/// and superblock and syncs the device.
///
/// Beyond the port's codes: DATA_LOSS when the file system is damaged (a bad
/// superblock or checksum, a corrupt directory), naming e2fsck; readFile
/// gives RESOURCE_EXHAUSTED for a file larger than kMaxReadBytes.
class Ext4FileTree final : public core::FileTree {
 public:
  /// Largest file readFile returns (it is read into memory).
  static constexpr uint64_t kMaxReadBytes = uint64_t{256} << 20;
  /// Symlinks followed while resolving one path before it fails as a loop
  /// (Linux's MAXSYMLINKS).
  static constexpr int kMaxSymlinkHops = 40;

  /// Opens `device_or_image` (exclusively when `writable`). NOT_FOUND when
  /// missing; PERMISSION_DENIED when it cannot be opened; FAILED_PRECONDITION
  /// for another file system type (named where its signature is known), a
  /// mounted file system, a journal that needs recovery, unsupported
  /// features, or (writable) one marked with errors; DATA_LOSS for a damaged
  /// superblock.
  static Result<std::unique_ptr<Ext4FileTree>> open(const std::string& device_or_image, bool writable);
  ~Ext4FileTree() override;
  Ext4FileTree(const Ext4FileTree&) = delete;
  Ext4FileTree& operator=(const Ext4FileTree&) = delete;

  Result<std::string> readFile(std::string_view path) override;
  Status writeFile(std::string_view path, std::string_view content, const core::FileAttrs& attrs) override;
  Status appendFile(std::string_view path, std::string_view content, const core::FileAttrs& attrs) override;
  Status mkdirs(std::string_view path, const core::FileAttrs& attrs) override;
  Status symlink(std::string_view path, std::string_view target) override;
  Status remove(std::string_view path, bool recursive) override;
  Status chmod(std::string_view path, uint32_t mode) override;
  Status chown(std::string_view path, uint32_t uid, uint32_t gid) override;
  Result<core::FileStat> stat(std::string_view path) override;
  Result<std::vector<std::string>> list(std::string_view dir) override;
  Status close() override;

 private:
  /// A directory entry named by a path: its parent directory (symlinks on
  /// the way followed) and its own inode, 0 when missing. `name` is empty
  /// when the path names a directory by "/" or a trailing "..".
  struct Entry {
    uint32_t parent = 0;
    std::string name;
    uint32_t ino = 0;
  };

  Ext4FileTree(std::string device, bool writable, struct_ext2_filsys* fs)
      : device_(std::move(device)), writable_(writable), fs_(fs) {}

  Status checkOpen(std::string_view path) const;
  Status checkWritable(std::string_view path) const;
  /// RESOURCE_EXHAUSTED unless `bytes` more after `old_size` fit in the free blocks.
  Status checkSpace(uint64_t old_size, uint64_t bytes, std::string_view path) const;
  std::string where(std::string_view path) const;
  /// INVALID_ARGUMENT for bits beyond the permission bits 07777.
  Status checkMode(uint32_t mode, std::string_view step, std::string_view path) const;
  Status fsError(long err, std::string_view step, std::string_view path) const;

  /// Resolves `comps` from the root inside the tree; the last component is
  /// followed when it is a symlink only if `follow_last`.
  Result<uint32_t> walk(std::string_view path, std::deque<std::string> comps, bool follow_last);
  Result<uint32_t> resolve(std::string_view path, bool follow_last);
  Result<Entry> locate(std::string_view path);
  /// locate() for a change to the entry itself: INVALID_ARGUMENT for "/" or
  /// a path ending in "." or "..".
  Result<Entry> locateChangeable(std::string_view path, std::string_view step);
  /// locateChangeable(), FAILED_PRECONDITION when the path names a directory.
  Result<Entry> locateReplaceable(std::string_view path, std::string_view step);
  Result<std::string> readLink(uint32_t ino, std::string_view path);

  Status mkdirOne(uint32_t parent, const std::string& name, const core::FileAttrs& attrs, std::string_view path);
  Result<uint32_t> createFile(uint32_t parent, std::string_view content, const core::FileAttrs& attrs,
                              std::string_view path);
  /// Puts inode `ino` (allocated, not yet linked) at `e`, dropping what was there.
  Status placeEntry(const Entry& e, uint32_t ino, int file_type, std::string_view path);
  Status linkEntry(uint32_t dir, const std::string& name, uint32_t ino, int file_type, std::string_view path);
  /// Drops one link of `ino`; at zero it frees the inode, its blocks and its xattrs.
  Status dropLink(uint32_t ino, std::string_view path);
  Status freeInode(uint32_t ino, std::string_view path);
  Status removeTree(uint32_t dir, std::string_view path, int depth);
  Result<bool> dirIsEmpty(uint32_t dir, std::string_view path);
  Status touchDir(uint32_t dir, int links_delta, std::string_view path);

  std::string device_;
  bool writable_;
  struct_ext2_filsys* fs_;
};

}  // namespace xenctl::customize
