#include "lib/customize/ext4_file_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <utility>

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace xenctl::customize {
namespace {

using core::FileAttrs;
using core::FileStat;
using core::FileType;

constexpr int kMaxTreeDepth = 4096;

uint32_t nowSeconds() { return static_cast<uint32_t>(::time(nullptr)); }

bool isFull(errcode_t err) {
  return err == EXT2_ET_BLOCK_ALLOC_FAIL || err == EXT2_ET_INODE_ALLOC_FAIL || err == EXT2_ET_DIR_NO_SPACE ||
         err == EXT2_ET_EA_NO_SPACE || err == EXT2_ET_INLINE_DATA_NO_SPACE || err == EXT2_ET_TOOSMALL ||
         err == EXT2_ET_FILE_TOO_BIG || err == EXT2_ET_TOO_MANY_INODES || err == ENOSPC || err == EFBIG;
}

bool isDamage(errcode_t err) {
  switch (err) {
    case EXT2_ET_DIR_CORRUPTED: case EXT2_ET_CORRUPT_SUPERBLOCK: case EXT2_ET_SB_CSUM_INVALID:
    case EXT2_ET_INODE_CSUM_INVALID: case EXT2_ET_INODE_BITMAP_CSUM_INVALID:
    case EXT2_ET_BLOCK_BITMAP_CSUM_INVALID: case EXT2_ET_EXTENT_CSUM_INVALID: case EXT2_ET_DIR_CSUM_INVALID:
    case EXT2_ET_EXT_ATTR_CSUM_INVALID: case EXT2_ET_BAD_DESC_SIZE: case EXT2_ET_GDESC_BAD_BLOCK_MAP:
    case EXT2_ET_GDESC_BAD_INODE_MAP: case EXT2_ET_GDESC_BAD_INODE_TABLE: case EXT2_ET_EXTENT_HEADER_BAD:
    case EXT2_ET_EXTENT_INDEX_BAD: case EXT2_ET_EXTENT_LEAF_BAD: case EXT2_ET_FILESYSTEM_CORRUPTED:
    case EXT2_ET_INODE_CORRUPTED: case EXT2_ET_INODE_IS_GARBAGE: case EXT2_ET_BAD_BLOCK_NUM:
    case EXT2_ET_BAD_INODE_NUM: case EXT2_ET_SHORT_READ: case EXT2_ET_EXTENT_CYCLE: case EXT2_ET_BAD_CRC:
    case EXT2_ET_UNEXPECTED_BLOCK_SIZE: case EXT2_ET_MISSING_INODE_TABLE: case EXT2_ET_NO_GDESC:
      return true;
    default:
      return false;
  }
}

absl::StatusCode codeFor(errcode_t err) {
  if (isFull(err)) return absl::StatusCode::kResourceExhausted;
  if (isDamage(err)) return absl::StatusCode::kDataLoss;
  switch (err) {
    case ENOENT: case EXT2_ET_FILE_NOT_FOUND:
      return absl::StatusCode::kNotFound;
    case EACCES: case EPERM: case EROFS:
      return absl::StatusCode::kPermissionDenied;
    case EXT2_ET_NO_DIRECTORY: case ENOTDIR: case EXT2_ET_SYMLINK_LOOP: case EXT2_ET_RO_FILSYS:
    case EXT2_ET_FILE_RO: case EXT2_ET_UNSUPP_FEATURE: case EXT2_ET_RO_UNSUPP_FEATURE: case EXT2_ET_BAD_MAGIC:
    case EXT2_ET_REV_TOO_HIGH: case EBUSY: case EXT2_ET_MMP_FAILED: case EXT2_ET_MMP_FSCK_ON:
    case EXT2_ET_MMP_MAGIC_INVALID: case EXT2_ET_MMP_BAD_BLOCK: case EXT2_ET_MMP_UNKNOWN_SEQ:
    case EXT2_ET_MMP_CSUM_INVALID: case EXT2_ET_FILE_EXISTS: case EXT2_ET_DIR_EXISTS:
      return absl::StatusCode::kFailedPrecondition;
    case EXT2_ET_INVALID_ARGUMENT: case EINVAL: case ENAMETOOLONG:
      return absl::StatusCode::kInvalidArgument;
    case EIO: case EXT2_ET_SHORT_WRITE: case EXT2_ET_LLSEEK_FAILED:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

/// The library's message for `err` (errno values included).
std::string messageFor(errcode_t err) {
  static std::once_flag once;
  std::call_once(once, [] { initialize_ext2_error_table(); });
  const char* m = error_message(err);
  return m ? m : absl::StrCat("libext2fs error ", err);
}

/// Splits an absolute path into its components, without "" and ".".
Result<std::deque<std::string>> splitPath(std::string_view path) {
  if (path.empty() || path.front() != '/')
    return absl::InvalidArgumentError(
        absl::StrCat("path '", av(path), "' is not absolute: paths inside the image start with '/'"));
  if (path.find('\0') != std::string_view::npos)
    return absl::InvalidArgumentError(absl::StrCat("path '", av(path), "' holds a NUL byte"));
  std::deque<std::string> out;
  for (absl::string_view c : absl::StrSplit(av(path), '/', absl::SkipEmpty())) {
    if (c == ".") continue;
    if (c.size() > EXT2_NAME_LEN)
      return absl::InvalidArgumentError(absl::StrCat("path '", av(path), "': the component '", c.substr(0, 32),
                                                     "...' is longer than ", EXT2_NAME_LEN, " bytes"));
    out.emplace_back(c);
  }
  return out;
}

/// Splits a symlink's target (relative or absolute) into its components.
std::deque<std::string> splitTarget(std::string_view target) {
  std::deque<std::string> out;
  for (absl::string_view c : absl::StrSplit(av(target), '/', absl::SkipEmpty()))
    if (c != ".") out.emplace_back(c);
  return out;
}

void setOwner(struct ext2_inode& inode, uint32_t uid, uint32_t gid) {
  inode.i_uid = static_cast<__u16>(uid & 0xffff);
  ext2fs_set_i_uid_high(inode, static_cast<__u16>(uid >> 16));
  inode.i_gid = static_cast<__u16>(gid & 0xffff);
  ext2fs_set_i_gid_high(inode, static_cast<__u16>(gid >> 16));
}

int ftypeOf(uint16_t mode) {
  if (LINUX_S_ISREG(mode)) return EXT2_FT_REG_FILE;
  if (LINUX_S_ISDIR(mode)) return EXT2_FT_DIR;
  if (LINUX_S_ISLNK(mode)) return EXT2_FT_SYMLINK;
  if (LINUX_S_ISCHR(mode)) return EXT2_FT_CHRDEV;
  if (LINUX_S_ISBLK(mode)) return EXT2_FT_BLKDEV;
  if (LINUX_S_ISFIFO(mode)) return EXT2_FT_FIFO;
  if (LINUX_S_ISSOCK(mode)) return EXT2_FT_SOCK;
  return EXT2_FT_UNKNOWN;
}

/// Names the file system or partition table whose signature `path` starts
/// with, for the "not an ext2/3/4 file system" error; empty when none is known.
std::string sniffType(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string buf(0x10100, '\0');
  ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
  ::close(fd);
  if (n <= 0) return "nothing (it is empty)";
  buf.resize(static_cast<size_t>(n));
  auto at = [&](size_t off, std::string_view magic) {
    return buf.size() >= off + magic.size() && std::string_view(buf).substr(off, magic.size()) == magic;
  };
  if (at(0, "XFSB")) return "an xfs file system";
  if (at(0x10040, "_BHRfS_M")) return "a btrfs file system";
  if (at(0, "LUKS\xba\xbe")) return "a LUKS encrypted volume";
  if (at(512, "LABELONE")) return "an LVM2 physical volume";
  if (at(4086, "SWAPSPACE2") || at(4086, "SWAP-SPACE")) return "swap space";
  if (at(3, "NTFS    ")) return "an NTFS file system";
  if (at(0x8001, "CD001")) return "an iso9660 file system";
  if (at(0x36, "FAT") || at(0x52, "FAT32")) return "a FAT (vfat) file system";
  if (at(512, "EFI PART")) return "a GPT partition table (name a partition, not the whole disk)";
  if (at(510, "\x55\xaa")) return "an MBR partition table or boot sector (name a partition, not the whole disk)";
  if (std::all_of(buf.begin(), buf.end(), [](char c) { return c == 0; })) return "only zeros (no file system)";
  return "";
}

/// One ext2fs_dir_iterate2 pass collecting (name, inode) pairs without "." and "..".
struct DirEntries {
  std::vector<std::pair<std::string, ext2_ino_t>> entries;
  bool stop_at_first = false;
};

int collectEntry(ext2_ino_t, int, struct ext2_dir_entry* dirent, int, int, char*, void* priv) {
  auto* out = static_cast<DirEntries*>(priv);
  int len = ext2fs_dirent_name_len(dirent);
  std::string_view name(dirent->name, static_cast<size_t>(len));
  if (dirent->inode == 0 || name == "." || name == "..") return 0;
  out->entries.emplace_back(std::string(name), dirent->inode);
  return out->stop_at_first ? DIRENT_ABORT : 0;
}

struct ReleaseState {
  bool bigalloc = false;
  blk64_t last_cluster = ~blk64_t{0};
};

int releaseBlock(ext2_filsys fs, blk64_t* blocknr, e2_blkcnt_t, blk64_t, int, void* priv) {
  auto* st = static_cast<ReleaseState*>(priv);
  if (st->bigalloc) {
    blk64_t cluster = EXT2FS_B2C(fs, *blocknr);
    if (cluster == st->last_cluster) return 0;
    st->last_cluster = cluster;
  }
  ext2fs_block_alloc_stats2(fs, *blocknr, -1);
  return 0;
}

/// Blocks that `bytes` more at offset `old_size` take, with room for the
/// extent tree or indirect blocks that map them (generously: two map
/// entries per data block's worth of pointers).
uint64_t blocksNeeded(ext2_filsys fs, uint64_t old_size, uint64_t bytes) {
  uint64_t bs = fs->blocksize;
  uint64_t data = (old_size + bytes + bs - 1) / bs - (old_size + bs - 1) / bs;
  return data + data / (bs / 8) + 4;
}

}  // namespace

// ---------------------------------------------------------------- opening

Result<std::unique_ptr<Ext4FileTree>> Ext4FileTree::open(const std::string& device, bool writable) {
  if (device.empty()) return absl::InvalidArgumentError("no device or image file named to open");
  struct ::stat st;
  if (::stat(device.c_str(), &st) != 0) {
    int e = errno;
    if (e == ENOENT) return absl::NotFoundError(absl::StrCat("'", device, "' does not exist"));
    return absl::Status(codeFor(e), absl::StrCat("opening '", device, "': ", messageFor(e)));
  }
  int flags = EXT2_FLAG_64BITS;
  if (writable) flags |= EXT2_FLAG_RW | EXT2_FLAG_EXCLUSIVE;
  ext2_filsys fs = nullptr;
  errcode_t err = ext2fs_open2(device.c_str(), nullptr, flags, 0, 0, unix_io_manager, &fs);
  if (err == EXT2_ET_BAD_MAGIC) {
    std::string found = sniffType(device);
    return absl::FailedPreconditionError(absl::StrCat(
        "'", device, "' is not an ext2/3/4 file system (",
        found.empty() ? "no ext2/3/4 superblock magic at byte 1080 and no other known signature"
                      : absl::StrCat("it holds ", found),
        "); if it is a damaged ext4, `e2fsck -b 32768 ", device, "` may repair it from a backup superblock"));
  }
  if (err != 0) {
    absl::StatusCode code = codeFor(err);
    std::string what = absl::StrCat("opening the ext2/3/4 file system on '", device, "': ", messageFor(err));
    if (code == absl::StatusCode::kDataLoss)
      absl::StrAppend(&what, "; the file system is damaged: check it with `e2fsck -f ", device, "`");
    else if (err == EBUSY)
      absl::StrAppend(&what, "; it is in use (mounted, or opened by another program): unmount it first");
    else if (err == EXT2_ET_UNSUPP_FEATURE || err == EXT2_ET_RO_UNSUPP_FEATURE)
      absl::StrAppend(&what, "; this libext2fs (e2fsprogs 1.47) cannot ", writable ? "write" : "read", " it");
    return absl::Status(code == absl::StatusCode::kUnknown ? absl::StatusCode::kFailedPrecondition : code, what);
  }
  // Checked before the journal: a mounted ext4 always "needs recovery".
  int mount_flags = 0;
  if (ext2fs_check_if_mounted(device.c_str(), &mount_flags) == 0 && (mount_flags & EXT2_MF_MOUNTED)) {
    ext2fs_free(fs);  // refused: nothing is written
    return absl::FailedPreconditionError(
        absl::StrCat("'", device, "' is mounted; unmount it (or stop the domain using it) before editing it offline"));
  }
  if (ext2fs_has_feature_journal_needs_recovery(fs->super)) {
    ext2fs_free(fs);  // refused: nothing is written
    return absl::FailedPreconditionError(absl::StrCat(
        "the ext4 journal on '", device,
        "' needs recovery (the file system was not unmounted cleanly); it is not edited offline: replay it with `e2fsck -fy ",
        device, "` (or mount and unmount it) and retry"));
  }
  if (writable) {
    if ((fs->super->s_state & EXT2_ERROR_FS) || !(fs->super->s_state & EXT2_VALID_FS)) {
      ext2fs_free(fs);  // refused: nothing is written
      return absl::FailedPreconditionError(absl::StrCat(
          "the file system on '", device,
          "' is marked as having errors or as not cleanly unmounted; check it with `e2fsck -fy ", device,
          "` and retry"));
    }
    err = ext2fs_read_bitmaps(fs);
    if (err != 0) {
      ext2fs_free(fs);  // refused: nothing is written
      return absl::Status(codeFor(err) == absl::StatusCode::kUnknown ? absl::StatusCode::kDataLoss : codeFor(err),
                          absl::StrCat("reading the allocation bitmaps of '", device, "': ", messageFor(err),
                                       "; check it with `e2fsck -f ", device, "`"));
    }
  }
  return std::unique_ptr<Ext4FileTree>(new Ext4FileTree(device, writable, fs));
}

Ext4FileTree::~Ext4FileTree() {
  // Closing flushes: a tree dropped without close() still leaves bitmaps and
  // counts that match what was written.
  if (fs_ != nullptr) (void)close();
}

Status Ext4FileTree::close() {
  if (fs_ == nullptr) return absl::FailedPreconditionError(absl::StrCat("'", device_, "' is already closed"));
  ext2_filsys fs = fs_;
  fs_ = nullptr;
  // One fsync at the end instead of libext2fs's three (around the primary
  // superblock): edits that bypass the journal leave work for e2fsck after
  // a crash half-way whatever the order, and what provisioned them discards
  // the volume then. The last one is what matters: blkback reads the device
  // beneath the page cache.
  errcode_t err = ext2fs_close2(fs, writable_ ? EXT2_FLAG_FLUSH_NO_SYNC : 0);
  if (err != 0) {
    ext2fs_free(fs);
    return absl::Status(codeFor(err) == absl::StatusCode::kUnknown ? absl::StatusCode::kUnavailable : codeFor(err),
                        absl::StrCat("writing the changes to '", device_, "' and closing it: ", messageFor(err)));
  }
  if (!writable_) return absl::OkStatus();
  int fd = ::open(device_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    return absl::UnavailableError(absl::StrCat("syncing the changes to '", device_, "': ", messageFor(e)));
  }
  ::close(fd);
  return absl::OkStatus();
}

// ---------------------------------------------------------------- helpers

std::string Ext4FileTree::where(std::string_view path) const {
  return absl::StrCat("'", av(path), "' in '", device_, "'");
}

Status Ext4FileTree::fsError(long err, std::string_view step, std::string_view path) const {
  auto code = codeFor(err);
  std::string msg = absl::StrCat(av(step), " ", where(path), ": ", messageFor(err));
  if (code == absl::StatusCode::kResourceExhausted) absl::StrAppend(&msg, " (the file system is full)");
  if (code == absl::StatusCode::kDataLoss)
    absl::StrAppend(&msg, "; the file system is damaged: check it with `e2fsck -f ", device_, "`");
  return absl::Status(code, msg);
}

Status Ext4FileTree::checkOpen(std::string_view path) const {
  if (fs_ == nullptr)
    return absl::FailedPreconditionError(
        absl::StrCat("accessing ", where(path), ": the file system was already closed"));
  return absl::OkStatus();
}

Status Ext4FileTree::checkWritable(std::string_view path) const {
  XENCTL_RETURN_IF_ERROR(checkOpen(path));
  if (!writable_)
    return absl::FailedPreconditionError(
        absl::StrCat("changing ", where(path), ": the file system was opened read-only"));
  return absl::OkStatus();
}

Status Ext4FileTree::checkMode(uint32_t mode, std::string_view step, std::string_view path) const {
  if (mode & ~07777u)
    return absl::InvalidArgumentError(absl::StrCat(av(step), " ", where(path), ": mode ", absl::Hex(mode),
                                                   " has bits beyond the permission bits 07777"));
  return absl::OkStatus();
}

Result<std::string> Ext4FileTree::readLink(uint32_t ino, std::string_view path) {
  struct ext2_inode inode;
  errcode_t err = ext2fs_read_inode(fs_, ino, &inode);
  if (err) return fsError(err, "reading the symlink", path);
  uint64_t size = EXT2_I_SIZE(&inode);
  if (size == 0 || size >= fs_->blocksize)
    return absl::DataLossError(absl::StrCat("the symlink ", where(path), " has a bad length ", size,
                                            "; check the file system with `e2fsck -f ", device_, "`"));
  if (ext2fs_is_fast_symlink(&inode))
    return std::string(reinterpret_cast<const char*>(inode.i_block),
                       strnlen(reinterpret_cast<const char*>(inode.i_block), size));
  ext2_file_t file = nullptr;
  err = ext2fs_file_open(fs_, ino, 0, &file);
  if (err) return fsError(err, "reading the symlink", path);
  std::string target(size, '\0');
  unsigned int got = 0;
  err = ext2fs_file_read(file, target.data(), static_cast<unsigned>(size), &got);
  ext2fs_file_close(file);
  if (err) return fsError(err, "reading the symlink", path);
  target.resize(strnlen(target.data(), got));
  return target;
}

Result<uint32_t> Ext4FileTree::walk(std::string_view path, std::deque<std::string> todo, bool follow_last) {
  ext2_ino_t cur = EXT2_ROOT_INO;
  int hops = 0;
  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    bool last = todo.empty();
    if (name == ".." && cur == EXT2_ROOT_INO) continue;  // never above the tree's root
    ext2_ino_t next = 0;
    errcode_t err = ext2fs_lookup(fs_, cur, name.data(), static_cast<int>(name.size()), nullptr, &next);
    if (err == EXT2_ET_FILE_NOT_FOUND)
      return absl::NotFoundError(absl::StrCat(where(path), " does not exist (no '", name, "' on the way)"));
    if (err == EXT2_ET_NO_DIRECTORY)
      return absl::FailedPreconditionError(
          absl::StrCat("resolving ", where(path), ": what holds '", name, "' is not a directory"));
    if (err) return fsError(err, "resolving", path);
    if (name == "..") {
      cur = next;
      continue;
    }
    if (last && !follow_last) return next;
    struct ext2_inode inode;
    err = ext2fs_read_inode(fs_, next, &inode);
    if (err) return fsError(err, "resolving", path);
    if (!LINUX_S_ISLNK(inode.i_mode)) {
      cur = next;
      continue;
    }
    if (++hops > kMaxSymlinkHops)
      return absl::FailedPreconditionError(absl::StrCat(
          "resolving ", where(path), ": more than ", kMaxSymlinkHops,
          " symlinks on the way (a symlink loop, as ELOOP); fix the links inside the image"));
    XENCTL_ASSIGN_OR_RETURN(std::string target, readLink(next, path));
    // A guest image may hold a symlink whose target is empty (or starts with
    // NUL); Linux resolves it to ENOENT, and so does this.
    if (target.empty())
      return absl::NotFoundError(absl::StrCat(where(path), " does not exist (the symlink '", name,
                                              "' on the way has an empty target)"));
    // The target resolves inside the tree: an absolute one from its root.
    if (target.front() == '/') cur = EXT2_ROOT_INO;
    std::deque<std::string> parts = splitTarget(target);
    todo.insert(todo.begin(), parts.begin(), parts.end());
  }
  return cur;
}

Result<uint32_t> Ext4FileTree::resolve(std::string_view path, bool follow_last) {
  XENCTL_RETURN_IF_ERROR(checkOpen(path));
  XENCTL_ASSIGN_OR_RETURN(auto comps, splitPath(path));
  return walk(path, std::move(comps), follow_last);
}

Result<Ext4FileTree::Entry> Ext4FileTree::locate(std::string_view path) {
  XENCTL_ASSIGN_OR_RETURN(auto comps, splitPath(path));
  if (comps.empty() || comps.back() == "..") {
    XENCTL_ASSIGN_OR_RETURN(uint32_t ino, walk(path, std::move(comps), true));
    return Entry{ino, "", ino};
  }
  std::string name = std::move(comps.back());
  comps.pop_back();
  XENCTL_ASSIGN_OR_RETURN(uint32_t parent, walk(path, std::move(comps), true));
  ext2_ino_t ino = 0;
  errcode_t err = ext2fs_lookup(fs_, parent, name.data(), static_cast<int>(name.size()), nullptr, &ino);
  if (err == EXT2_ET_NO_DIRECTORY)
    return absl::FailedPreconditionError(
        absl::StrCat("resolving ", where(path), ": its parent is not a directory"));
  if (err == EXT2_ET_FILE_NOT_FOUND) ino = 0;
  else if (err) return fsError(err, "resolving", path);
  return Entry{parent, std::move(name), ino};
}

Result<Ext4FileTree::Entry> Ext4FileTree::locateChangeable(std::string_view path, std::string_view step) {
  // The last component as written: "/", "." and ".." name a directory by
  // another name, never an entry of its own to change.
  std::string_view last = path;
  while (last.size() > 1 && last.back() == '/') last.remove_suffix(1);
  last = last.substr(last.rfind('/') + 1);
  if (last.empty() || last == "." || last == "..")
    return absl::InvalidArgumentError(
        absl::StrCat(av(step), " ", where(path), ": the path names no entry of its own (it is '/' or ends in '.' or '..')"));
  return locate(path);
}

Result<Ext4FileTree::Entry> Ext4FileTree::locateReplaceable(std::string_view path, std::string_view step) {
  XENCTL_ASSIGN_OR_RETURN(Entry e, locateChangeable(path, step));
  bool is_dir = false;
  if (e.ino != 0) {
    struct ext2_inode old;
    errcode_t err = ext2fs_read_inode(fs_, e.ino, &old);
    if (err) return fsError(err, "replacing", path);
    is_dir = LINUX_S_ISDIR(old.i_mode);
  }
  if (is_dir) return absl::FailedPreconditionError(absl::StrCat(av(step), " ", where(path), ": it is a directory"));
  return e;
}

Status Ext4FileTree::touchDir(uint32_t dir, int links_delta, std::string_view path) {
  struct ext2_inode inode;
  errcode_t err = ext2fs_read_inode(fs_, dir, &inode);
  if (err) return fsError(err, "updating the directory of", path);
  inode.i_mtime = inode.i_ctime = nowSeconds();
  // With dir_nlink a count of 1 means "too many to count"; it stays so.
  if (links_delta < 0 && inode.i_links_count > 2) inode.i_links_count--;
  if (links_delta > 0 && inode.i_links_count > 1 && inode.i_links_count < EXT2_LINK_MAX) inode.i_links_count++;
  err = ext2fs_write_inode(fs_, dir, &inode);
  if (err) return fsError(err, "updating the directory of", path);
  return absl::OkStatus();
}

Status Ext4FileTree::linkEntry(uint32_t dir, const std::string& name, uint32_t ino, int file_type,
                               std::string_view path) {
  for (int attempt = 0;; ++attempt) {
    errcode_t err = ext2fs_link(fs_, dir, name.c_str(), ino, file_type);
    if (err == 0) return absl::OkStatus();
    if (err != EXT2_ET_DIR_NO_SPACE || attempt >= 3) return fsError(err, "linking", path);
    err = ext2fs_expand_dir(fs_, dir);
    if (err) return fsError(err, "growing the directory of", path);
  }
}

Status Ext4FileTree::freeInode(uint32_t ino, std::string_view path) {
  struct ext2_inode_large inode;
  std::memset(&inode, 0, sizeof(inode));
  errcode_t err = ext2fs_read_inode_full(fs_, ino, reinterpret_cast<struct ext2_inode*>(&inode), sizeof(inode));
  if (err) return fsError(err, "freeing", path);
  bool is_dir = LINUX_S_ISDIR(inode.i_mode);
  err = ext2fs_free_ext_attr(fs_, ino, &inode);
  if (err) return fsError(err, "freeing the extended attributes of", path);
  // Blocks are released as debugfs's kill_file does, not with ext2fs_punch:
  // e2fsprogs 1.47.0's punch fails ("Illegal block number") on an extent
  // that ends at the file system's last block, half-way through.
  if (ext2fs_inode_has_valid_blocks2(fs_, reinterpret_cast<struct ext2_inode*>(&inode))) {
    ReleaseState release;
    release.bigalloc = EXT2FS_CLUSTER_RATIO(fs_) > 1;
    err = ext2fs_block_iterate3(fs_, ino, BLOCK_FLAG_READ_ONLY, nullptr, releaseBlock, &release);
    if (err) return fsError(err, "freeing the blocks of", path);
  }
  inode.i_links_count = 0;
  inode.i_dtime = nowSeconds();
  inode.i_ctime = inode.i_dtime;
  err = ext2fs_write_inode_full(fs_, ino, reinterpret_cast<struct ext2_inode*>(&inode), sizeof(inode));
  if (err) return fsError(err, "freeing", path);
  ext2fs_inode_alloc_stats2(fs_, ino, -1, is_dir ? 1 : 0);
  return absl::OkStatus();
}

Status Ext4FileTree::dropLink(uint32_t ino, std::string_view path) {
  struct ext2_inode inode;
  errcode_t err = ext2fs_read_inode(fs_, ino, &inode);
  if (err) return fsError(err, "unlinking", path);
  if (!LINUX_S_ISDIR(inode.i_mode) && inode.i_links_count > 1) {
    inode.i_links_count--;
    inode.i_ctime = nowSeconds();
    err = ext2fs_write_inode(fs_, ino, &inode);
    if (err) return fsError(err, "unlinking", path);
    return absl::OkStatus();
  }
  return freeInode(ino, path);
}

Status Ext4FileTree::placeEntry(const Entry& e, uint32_t ino, int file_type, std::string_view path) {
  if (e.ino != 0) {
    errcode_t err = ext2fs_unlink(fs_, e.parent, e.name.c_str(), e.ino, 0);
    if (err) {
      (void)freeInode(ino, path);
      return fsError(err, "replacing", path);
    }
  }
  Status linked = linkEntry(e.parent, e.name, ino, file_type, path);
  if (!linked.ok()) {
    (void)freeInode(ino, path);
    if (e.ino != 0) {  // put the old entry back: the slot it left is free
      struct ext2_inode old;
      if (ext2fs_read_inode(fs_, e.ino, &old) == 0)
        (void)linkEntry(e.parent, e.name, e.ino, ftypeOf(old.i_mode), path);
    }
    return linked;
  }
  if (e.ino != 0) XENCTL_RETURN_IF_ERROR(dropLink(e.ino, path));
  return touchDir(e.parent, 0, path);
}

Status Ext4FileTree::checkSpace(uint64_t old_size, uint64_t bytes, std::string_view path) const {
  // Checked up front: libext2fs has no undo for a write that runs out of
  // blocks half-way (and 1.47.0's punch can fail freeing its tail).
  uint64_t need = blocksNeeded(fs_, old_size, bytes);
  uint64_t free_blocks = ext2fs_free_blocks_count(fs_->super);
  if (need > free_blocks)
    return absl::ResourceExhaustedError(absl::StrCat("writing ", where(path), ": the file system is full (",
                                                     bytes, " bytes need about ", need, " blocks of ",
                                                     fs_->blocksize, " bytes, ", free_blocks, " are free)"));
  return absl::OkStatus();
}

Result<uint32_t> Ext4FileTree::createFile(uint32_t parent, std::string_view content, const FileAttrs& attrs,
                                          std::string_view path) {
  XENCTL_RETURN_IF_ERROR(checkSpace(0, content.size(), path));
  ext2_ino_t ino = 0;
  errcode_t err = ext2fs_new_inode(fs_, parent, LINUX_S_IFREG | attrs.mode, nullptr, &ino);
  if (err) return fsError(err, "allocating an inode for", path);
  ext2fs_inode_alloc_stats2(fs_, ino, +1, 0);
  struct ext2_inode inode;
  std::memset(&inode, 0, sizeof(inode));
  inode.i_mode = static_cast<__u16>(LINUX_S_IFREG | attrs.mode);
  setOwner(inode, attrs.uid, attrs.gid);
  inode.i_links_count = 1;
  inode.i_atime = inode.i_mtime = inode.i_ctime = nowSeconds();
  auto fail = [&](errcode_t e, std::string_view step) -> Status {
    (void)freeInode(ino, path);
    return fsError(e, step, path);
  };
  if (ext2fs_has_feature_extents(fs_->super)) {
    // Opening an extent handle on a fresh inode writes the empty extent header.
    ext2_extent_handle_t handle = nullptr;
    err = ext2fs_extent_open2(fs_, ino, &inode, &handle);
    if (err) return fail(err, "creating");
    ext2fs_extent_free(handle);
  }
  // write_new_inode also sets crtime and the extra fields of a large inode.
  err = ext2fs_write_new_inode(fs_, ino, &inode);
  if (err) return fail(err, "creating");
  if (content.empty()) return ino;
  ext2_file_t file = nullptr;
  err = ext2fs_file_open(fs_, ino, EXT2_FILE_WRITE, &file);
  if (err) return fail(err, "writing");
  size_t done = 0;
  while (done < content.size()) {
    unsigned int chunk = static_cast<unsigned>(std::min<size_t>(content.size() - done, size_t{1} << 24));
    unsigned int written = 0;
    err = ext2fs_file_write(file, content.data() + done, chunk, &written);
    if (err) break;
    if (written == 0) {
      err = EXT2_ET_SHORT_WRITE;
      break;
    }
    done += written;
  }
  errcode_t close_err = ext2fs_file_close(file);
  if (err == 0) err = close_err;
  if (err) return fail(err, "writing");
  return ino;
}

// ---------------------------------------------------------------- the port

Result<std::string> Ext4FileTree::readFile(std::string_view path) {
  XENCTL_ASSIGN_OR_RETURN(uint32_t ino, resolve(path, true));
  struct ext2_inode inode;
  errcode_t err = ext2fs_read_inode(fs_, ino, &inode);
  if (err) return fsError(err, "reading", path);
  if (LINUX_S_ISDIR(inode.i_mode))
    return absl::FailedPreconditionError(absl::StrCat("reading ", where(path), ": it is a directory"));
  if (!LINUX_S_ISREG(inode.i_mode))
    return absl::FailedPreconditionError(absl::StrCat("reading ", where(path), ": it is not a regular file"));
  uint64_t size = EXT2_I_SIZE(&inode);
  if (size > kMaxReadBytes)
    return absl::ResourceExhaustedError(absl::StrCat("reading ", where(path), ": it holds ", size,
                                                     " bytes, more than the ", kMaxReadBytes,
                                                     " read into memory at most"));
  std::string out(size, '\0');
  if (size == 0) return out;
  ext2_file_t file = nullptr;
  err = ext2fs_file_open(fs_, ino, 0, &file);
  if (err) return fsError(err, "reading", path);
  size_t done = 0;
  while (done < size) {
    unsigned int got = 0;
    unsigned int chunk = static_cast<unsigned>(std::min<uint64_t>(size - done, uint64_t{1} << 24));
    err = ext2fs_file_read(file, out.data() + done, chunk, &got);
    if (err || got == 0) break;
    done += got;
  }
  ext2fs_file_close(file);
  if (err) return fsError(err, "reading", path);
  out.resize(done);
  return out;
}

Status Ext4FileTree::writeFile(std::string_view path, std::string_view content, const FileAttrs& attrs) {
  XENCTL_RETURN_IF_ERROR(checkWritable(path));
  XENCTL_RETURN_IF_ERROR(checkMode(attrs.mode, "writing", path));
  XENCTL_ASSIGN_OR_RETURN(Entry e, locateReplaceable(path, "writing"));
  // The new content goes into a new inode first, so a full file system
  // leaves the old file as it was.
  XENCTL_ASSIGN_OR_RETURN(uint32_t ino, createFile(e.parent, content, attrs, path));
  return placeEntry(e, ino, EXT2_FT_REG_FILE, path);
}

Status Ext4FileTree::appendFile(std::string_view path, std::string_view content, const FileAttrs& attrs) {
  XENCTL_RETURN_IF_ERROR(checkWritable(path));
  XENCTL_ASSIGN_OR_RETURN(Entry e, locateChangeable(path, "appending to"));
  if (e.ino == 0) return writeFile(path, content, attrs);
  uint32_t ino = e.ino;
  struct ext2_inode inode;
  errcode_t err = ext2fs_read_inode(fs_, ino, &inode);
  if (err) return fsError(err, "appending to", path);
  // A symlink is not followed: one planted in the guest could aim the
  // append at any file of it (/etc/shadow).
  if (!LINUX_S_ISREG(inode.i_mode))
    return absl::FailedPreconditionError(absl::StrCat(
        "appending to ", where(path), ": it is ",
        LINUX_S_ISDIR(inode.i_mode)   ? "a directory"
        : LINUX_S_ISLNK(inode.i_mode) ? "a symlink (appends do not follow links)"
                                      : "not a regular file"));
  if (content.empty()) return absl::OkStatus();
  ext2_file_t file = nullptr;
  err = ext2fs_file_open(fs_, ino, EXT2_FILE_WRITE, &file);
  if (err) return fsError(err, "appending to", path);
  __u64 old_size = 0;
  ext2fs_file_get_lsize(file, &old_size);
  if (Status room = checkSpace(old_size, content.size(), path); !room.ok()) {
    ext2fs_file_close(file);
    return room;
  }
  err = ext2fs_file_llseek(file, old_size, EXT2_SEEK_SET, nullptr);
  size_t done = 0;
  while (err == 0 && done < content.size()) {
    unsigned int chunk = static_cast<unsigned>(std::min<size_t>(content.size() - done, size_t{1} << 24));
    unsigned int written = 0;
    err = ext2fs_file_write(file, content.data() + done, chunk, &written);
    if (err == 0 && written == 0) err = EXT2_ET_SHORT_WRITE;
    done += written;
  }
  if (err == 0) err = ext2fs_file_flush(file);
  if (err) {
    // Back to the old length: the file is whole or unchanged, never half-appended.
    ext2fs_file_set_size2(file, old_size);
    ext2fs_file_close(file);
    return fsError(err, "appending to", path);
  }
  err = ext2fs_file_close(file);
  if (err) return fsError(err, "appending to", path);
  err = ext2fs_read_inode(fs_, ino, &inode);
  if (err) return fsError(err, "appending to", path);
  inode.i_mtime = inode.i_ctime = nowSeconds();
  err = ext2fs_write_inode(fs_, ino, &inode);
  if (err) return fsError(err, "appending to", path);
  return absl::OkStatus();
}

Status Ext4FileTree::mkdirOne(uint32_t parent, const std::string& name, const FileAttrs& attrs,
                              std::string_view path) {
  ext2_ino_t ino = 0;
  errcode_t err = ext2fs_new_inode(fs_, parent, LINUX_S_IFDIR | attrs.mode, nullptr, &ino);
  if (err) return fsError(err, "allocating an inode for the directory", path);
  // Made unlinked (name NULL), then linked by linkEntry, which grows a full
  // parent: ext2fs_mkdir's own link would leave a written, unaccounted inode
  // behind when the parent has no room.
  err = ext2fs_mkdir(fs_, parent, ino, nullptr);
  if (err) return fsError(err, "creating the directory", path);
  Status linked = linkEntry(parent, name, ino, EXT2_FT_DIR, path);
  if (!linked.ok()) {
    (void)freeInode(ino, path);
    (void)touchDir(parent, -1, path);
    return linked;
  }
  struct ext2_inode inode;
  err = ext2fs_read_inode(fs_, ino, &inode);
  if (err) return fsError(err, "creating the directory", path);
  inode.i_mode = static_cast<__u16>(LINUX_S_IFDIR | attrs.mode);
  setOwner(inode, attrs.uid, attrs.gid);
  inode.i_atime = inode.i_mtime = inode.i_ctime = nowSeconds();
  err = ext2fs_write_inode(fs_, ino, &inode);
  if (err) return fsError(err, "creating the directory", path);
  return touchDir(parent, 0, path);
}

Status Ext4FileTree::mkdirs(std::string_view path, const FileAttrs& attrs) {
  XENCTL_RETURN_IF_ERROR(checkWritable(path));
  XENCTL_RETURN_IF_ERROR(checkMode(attrs.mode, "creating", path));
  XENCTL_ASSIGN_OR_RETURN(auto comps, splitPath(path));
  std::string prefix;
  for (const std::string& c : comps) {
    absl::StrAppend(&prefix, "/", c);
    XENCTL_ASSIGN_OR_RETURN(Entry e, locate(prefix));
    if (e.name.empty()) continue;
    if (e.ino == 0) {
      XENCTL_RETURN_IF_ERROR(mkdirOne(e.parent, e.name, attrs, prefix));
      continue;
    }
    Result<uint32_t> dir = walk(prefix, splitPath(prefix).value(), true);
    struct ext2_inode inode;
    if (dir.ok() && ext2fs_read_inode(fs_, *dir, &inode) == 0 && LINUX_S_ISDIR(inode.i_mode)) continue;
    return absl::FailedPreconditionError(
        absl::StrCat("creating the directory ", where(path), ": '", prefix, "' exists and is not a directory",
                     dir.ok() ? "" : absl::StrCat(" (", dir.status().message(), ")")));
  }
  return absl::OkStatus();
}

Status Ext4FileTree::symlink(std::string_view path, std::string_view target) {
  XENCTL_RETURN_IF_ERROR(checkWritable(path));
  if (target.empty() || target.find('\0') != std::string_view::npos || target.size() >= fs_->blocksize)
    return absl::InvalidArgumentError(absl::StrCat("creating the symlink ", where(path), ": its target must be 1 to ",
                                                   fs_->blocksize - 1, " bytes without NUL"));
  XENCTL_ASSIGN_OR_RETURN(Entry e, locateReplaceable(path, "creating the symlink"));
  ext2_ino_t ino = 0;
  errcode_t err = ext2fs_new_inode(fs_, e.parent, LINUX_S_IFLNK | 0777, nullptr, &ino);
  if (err) return fsError(err, "allocating an inode for the symlink", path);
  std::string target_copy(target);
  // Unlinked (name NULL): ext2fs_symlink writes the inode (fast or slow) and
  // accounts it; placeEntry links it where the old entry was.
  err = ext2fs_symlink(fs_, e.parent, ino, nullptr, target_copy.data());
  if (err) return fsError(err, "creating the symlink", path);
  return placeEntry(e, ino, EXT2_FT_SYMLINK, path);
}

Result<bool> Ext4FileTree::dirIsEmpty(uint32_t dir, std::string_view path) {
  DirEntries found;
  found.stop_at_first = true;
  errcode_t err = ext2fs_dir_iterate2(fs_, dir, 0, nullptr, collectEntry, &found);
  if (err) return fsError(err, "reading the directory", path);
  return found.entries.empty();
}

Status Ext4FileTree::removeTree(uint32_t dir, std::string_view path, int depth) {
  if (depth > kMaxTreeDepth)
    return absl::FailedPreconditionError(absl::StrCat("removing ", where(path), ": directories nest deeper than ",
                                                      kMaxTreeDepth, " (a directory loop?); check the file system "
                                                      "with `e2fsck -f ", device_, "`"));
  DirEntries found;
  errcode_t err = ext2fs_dir_iterate2(fs_, dir, 0, nullptr, collectEntry, &found);
  if (err) return fsError(err, "reading the directory", path);
  // The entries vanish with the directory's blocks; only the inodes they
  // name need their links dropped.
  for (const auto& [name, ino] : found.entries) {
    std::string child = absl::StrCat(av(path), path.back() == '/' ? "" : "/", name);
    struct ext2_inode inode;
    err = ext2fs_read_inode(fs_, ino, &inode);
    if (err) return fsError(err, "removing", child);
    if (LINUX_S_ISDIR(inode.i_mode)) {
      XENCTL_RETURN_IF_ERROR(removeTree(ino, child, depth + 1));
      XENCTL_RETURN_IF_ERROR(freeInode(ino, child));
    } else {
      XENCTL_RETURN_IF_ERROR(dropLink(ino, child));
    }
  }
  return absl::OkStatus();
}

Status Ext4FileTree::remove(std::string_view path, bool recursive) {
  XENCTL_RETURN_IF_ERROR(checkWritable(path));
  XENCTL_ASSIGN_OR_RETURN(Entry e, locateChangeable(path, "removing"));
  if (e.ino == 0) return absl::NotFoundError(absl::StrCat("removing ", where(path), ": it does not exist"));
  struct ext2_inode inode;
  errcode_t err = ext2fs_read_inode(fs_, e.ino, &inode);
  if (err) return fsError(err, "removing", path);
  if (!LINUX_S_ISDIR(inode.i_mode)) {
    err = ext2fs_unlink(fs_, e.parent, e.name.c_str(), e.ino, 0);
    if (err) return fsError(err, "removing", path);
    XENCTL_RETURN_IF_ERROR(dropLink(e.ino, path));
    return touchDir(e.parent, 0, path);
  }
  XENCTL_ASSIGN_OR_RETURN(bool empty, dirIsEmpty(e.ino, path));
  if (!empty && !recursive)
    return absl::FailedPreconditionError(
        absl::StrCat("removing ", where(path), ": the directory is not empty (remove it recursively)"));
  // Unlinked first, then emptied: past the emptiness check only a damaged
  // file system or an I/O error can fail, and e2fsck then finds the rest.
  err = ext2fs_unlink(fs_, e.parent, e.name.c_str(), e.ino, 0);
  if (err) return fsError(err, "removing", path);
  XENCTL_RETURN_IF_ERROR(touchDir(e.parent, -1, path));
  if (!empty) XENCTL_RETURN_IF_ERROR(removeTree(e.ino, path, 0));
  return freeInode(e.ino, path);
}

Status Ext4FileTree::chmod(std::string_view path, uint32_t mode) {
  XENCTL_RETURN_IF_ERROR(checkWritable(path));
  XENCTL_RETURN_IF_ERROR(checkMode(mode, "chmod", path));
  XENCTL_ASSIGN_OR_RETURN(uint32_t ino, resolve(path, true));
  struct ext2_inode inode;
  errcode_t err = ext2fs_read_inode(fs_, ino, &inode);
  if (err) return fsError(err, "chmod", path);
  inode.i_mode = static_cast<__u16>((inode.i_mode & LINUX_S_IFMT) | mode);
  inode.i_ctime = nowSeconds();
  err = ext2fs_write_inode(fs_, ino, &inode);
  if (err) return fsError(err, "chmod", path);
  return absl::OkStatus();
}

Status Ext4FileTree::chown(std::string_view path, uint32_t uid, uint32_t gid) {
  XENCTL_RETURN_IF_ERROR(checkWritable(path));
  XENCTL_ASSIGN_OR_RETURN(uint32_t ino, resolve(path, true));
  struct ext2_inode inode;
  errcode_t err = ext2fs_read_inode(fs_, ino, &inode);
  if (err) return fsError(err, "chown", path);
  setOwner(inode, uid, gid);
  inode.i_ctime = nowSeconds();
  err = ext2fs_write_inode(fs_, ino, &inode);
  if (err) return fsError(err, "chown", path);
  return absl::OkStatus();
}

Result<FileStat> Ext4FileTree::stat(std::string_view path) {
  XENCTL_ASSIGN_OR_RETURN(uint32_t ino, resolve(path, false));
  struct ext2_inode inode;
  errcode_t err = ext2fs_read_inode(fs_, ino, &inode);
  if (err) return fsError(err, "stat", path);
  FileStat st;
  if (LINUX_S_ISREG(inode.i_mode)) st.type = FileType::kRegular;
  else if (LINUX_S_ISDIR(inode.i_mode)) st.type = FileType::kDirectory;
  else if (LINUX_S_ISLNK(inode.i_mode)) st.type = FileType::kSymlink;
  else st.type = FileType::kOther;
  st.mode = inode.i_mode & 07777u;
  st.uid = inode_uid(inode);
  st.gid = inode_gid(inode);
  st.size = EXT2_I_SIZE(&inode);
  if (st.type == FileType::kSymlink) {
    XENCTL_ASSIGN_OR_RETURN(st.link_target, readLink(ino, path));
  }
  return st;
}

Result<std::vector<std::string>> Ext4FileTree::list(std::string_view dir) {
  XENCTL_ASSIGN_OR_RETURN(uint32_t ino, resolve(dir, true));
  DirEntries found;
  errcode_t err = ext2fs_dir_iterate2(fs_, ino, 0, nullptr, collectEntry, &found);
  if (err == EXT2_ET_NO_DIRECTORY)
    return absl::FailedPreconditionError(absl::StrCat("listing ", where(dir), ": it is not a directory"));
  if (err) return fsError(err, "listing", dir);
  std::vector<std::string> names;
  names.reserve(found.entries.size());
  for (auto& [name, unused] : found.entries) names.push_back(std::move(name));
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace xenctl::customize
