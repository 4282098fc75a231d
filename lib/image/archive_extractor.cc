#include "lib/image/archive_extractor.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::image {
namespace {

using sys::UniqueFd;

constexpr size_t kBlock = 4096;
// ext2/3/4: the superblock starts at 1024, its magic 0xEF53 (little-endian) at +56.
constexpr size_t kExtMagicOffset = 1024 + 56;
// For messages: the nodes isStandardDeviceNode accepts, by their usual names.
constexpr std::string_view kStandardNodeNames = "/dev/null, zero, full, random, urandom, tty, console, ptmx";


struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

// A failed call while unpacking; a full file system also says what to do.
Status unpackError(int err, std::string_view what) {
  Status st = errnoStatus(err, what);
  if (err != ENOSPC && err != EDQUOT) return st;
  return Status(st.code(), absl::StrCat(st.message(), "; free space in the pool"));
}

int openat2Beneath(int dirfd, const char* path, uint64_t flags, mode_t mode) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd;
  do {
    fd = static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
  } while (fd < 0 && errno == EAGAIN);
  return fd;
}

// Reads libarchive's input from a ChunkSource, and remembers the source's
// error so that it, not libarchive's paraphrase, is what the caller gets.
struct Input {
  const ChunkSource* source = nullptr;
  std::string prefix;  // bytes read ahead (detection), given first
  std::string current;
  Status status;
};

la_ssize_t readCallback(archive* a, void* data, const void** buffer) {
  auto* in = static_cast<Input*>(data);
  if (!in->prefix.empty()) {
    in->current = std::move(in->prefix);
    in->prefix.clear();
  } else {
    Result<std::string> chunk = (*in->source)();
    if (!chunk.ok()) {
      in->status = chunk.status();
      archive_set_error(a, EIO, "reading the image stream failed");
      return -1;
    }
    in->current = std::move(*chunk);
  }
  *buffer = in->current.data();
  return static_cast<la_ssize_t>(in->current.size());
}

void supportFilters(archive* a) {
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_lzma(a);
  archive_read_support_filter_zstd(a);
}

std::string filterName(archive* a) {
  // Filter 0 is the outermost; "none" when there is only the raw stream.
  const char* name = archive_filter_count(a) > 1 ? archive_filter_name(a, 0) : "none";
  return name ? name : "unknown";
}

// What went wrong in libarchive, preferring the source's own error.
Status archiveError(archive* a, const Input& in, std::string_view what) {
  if (!in.status.ok()) return in.status;
  const char* msg = archive_error_string(a);
  return absl::DataLossError(absl::StrCat(av(what), ": ", msg ? msg : "unknown libarchive error",
                                          "; the image is corrupt or not a tar/cpio archive"));
}

// The archive name split into components, "." and empty ones dropped.
// INVALID_ARGUMENT for an absolute name or one with "..".
Result<std::vector<std::string>> safeComponents(std::string_view name, std::string_view what) {
  if (!name.empty() && name.front() == '/')
    return absl::InvalidArgumentError(absl::StrCat(av(what), " '", av(name),
                                                   "' is an absolute name; refusing to write outside the target"));
  std::vector<std::string> parts;
  for (absl::string_view p : absl::StrSplit(av(name), '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..")
      return absl::InvalidArgumentError(
          absl::StrCat(av(what), " '", av(name), "' contains '..'; refusing to write outside the target"));
    parts.emplace_back(p);
  }
  return parts;
}

bool allZero(const char* p, size_t n) {
  static const char kZeros[kBlock] = {};
  while (n > 0) {
    size_t k = std::min(n, kBlock);
    if (std::memcmp(p, kZeros, k) != 0) return false;
    p += k;
    n -= k;
  }
  return true;
}

// Writes a file from pieces at increasing offsets, in runs of whole 4 KiB
// blocks however the pieces are cut; blocks of zeros are not written, so
// they stay holes (the caller sets the size at the end).
class SparseWriter {
 public:
  SparseWriter(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}

  Status write(uint64_t offset, const char* data, size_t size) {
    if (!pending_.empty() && offset != pending_at_ + pending_.size()) XENCTL_RETURN_IF_ERROR(flush());
    if (pending_.empty()) pending_at_ = offset;
    uint64_t at = pending_at_ + pending_.size();
    if (at % kBlock != 0) {  // complete the partial block first
      size_t n = std::min<uint64_t>(size, kBlock - at % kBlock);
      pending_.append(data, n);
      data += n;
      size -= n;
      at += n;
      if (at % kBlock == 0) XENCTL_RETURN_IF_ERROR(flush());
      if (size == 0) return Status();
    }
    // Block-aligned from here: write the runs of non-zero blocks in place.
    const size_t whole = size / kBlock * kBlock;
    for (size_t i = 0; i < whole;) {
      while (i < whole && allZero(data + i, kBlock)) i += kBlock;
      const size_t run = i;
      while (i < whole && !allZero(data + i, kBlock)) i += kBlock;
      if (i > run) XENCTL_RETURN_IF_ERROR(pwriteAll(at + run, data + run, i - run));
    }
    pending_at_ = at + whole;
    pending_.assign(data + whole, size - whole);
    return Status();
  }

  Status flush() {
    if (!pending_.empty() && !allZero(pending_.data(), pending_.size()))
      XENCTL_RETURN_IF_ERROR(pwriteAll(pending_at_, pending_.data(), pending_.size()));
    pending_at_ += pending_.size();
    pending_.clear();
    return Status();
  }

  uint64_t written() const { return written_; }

 private:
  Status pwriteAll(uint64_t offset, const char* data, size_t size) {
    size_t done = 0;
    while (done < size) {
      ssize_t w = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(offset + done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return unpackError(errno, absl::StrCat("writing ", what_));
      }
      done += static_cast<size_t>(w);
    }
    written_ += size;
    return Status();
  }

  int fd_;
  std::string what_;
  uint64_t pending_at_ = 0;
  std::string pending_;
  uint64_t written_ = 0;
};

class Extractor {
 public:
  Extractor(archive* a, Input* in, const std::string& target, const ExtractPolicy& policy)
      : a_(a), in_(in), target_(target), policy_(policy) {
    keep_owners_ = policy.owners == ExtractPolicy::Owners::kKeep ||
                   (policy.owners == ExtractPolicy::Owners::kAuto && ::geteuid() == 0);
  }

  Result<ExtractStats> run() {
    root_ = UniqueFd(::open(target_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root_) return unpackError(errno, absl::StrCat("opening the target directory ", target_));
    archive_entry* entry = nullptr;
    for (;;) {
      if (policy_.stop.stop_requested()) return cancelled();
      int r = archive_read_next_header(a_, &entry);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return archiveError(a_, *in_, "reading the next archive entry");
      if (stats_.entries == 0) {
        const char* f = archive_format_name(a_);
        stats_.format = f ? f : "unknown";
        stats_.filter = filterName(a_);
      }
      if (++stats_.entries > policy_.max_entries)
        return absl::ResourceExhaustedError(absl::StrCat("the archive has more than ", policy_.max_entries,
                                                         " entries, the limit; refusing it"));
      XENCTL_RETURN_IF_ERROR(extractEntry(entry));
    }
    if (stats_.entries == 0)
      return absl::InvalidArgumentError("the archive has no entries; is it a tar or cpio archive?");
    XENCTL_RETURN_IF_ERROR(fixupDirectories());
    return stats_;
  }

 private:
  struct DirFixup {
    std::string path;  // relative to the target, "" for the target itself
    mode_t mode;
    timespec times[2];
  };

  Status cancelled() const { return absl::CancelledError("unpacking the image: cancelled"); }

  // Opens (creating as 0755 where missing) the directory made of `parts`,
  // never through a symlink nor outside the target.
  Result<UniqueFd> openDir(const std::vector<std::string>& parts, size_t count, std::string_view name) {
    UniqueFd cur(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
    for (size_t i = 0; i < count; ++i) {
      const std::string& p = parts[i];
      int fd = openat2Beneath(cur.get(), p.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
      if (fd < 0 && errno == ENOENT) {
        if (::mkdirat(cur.get(), p.c_str(), 0755) != 0 && errno != EEXIST)
          return unpackError(errno, absl::StrCat("creating the directory of '", av(name), "'"));
        fd = openat2Beneath(cur.get(), p.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
      }
      if (fd < 0) {
        int err = errno;
        std::string at = absl::StrJoin(parts.begin(), parts.begin() + static_cast<long>(i) + 1, "/");
        if (err == ELOOP || err == EXDEV || err == ENOTDIR)
          return absl::InvalidArgumentError(absl::StrCat(
              "archive entry '", av(name), "' goes through '", at,
              "', which is a symlink or not a directory; refusing (an entry must not be written through a link)"));
        return unpackError(err, absl::StrCat("opening '", at, "' for archive entry '", av(name), "'"));
      }
      cur = UniqueFd(fd);
    }
    return cur;
  }

  // Removes what is at parent/leaf, unless it is a directory and `keep_dir`.
  Status clearLeaf(int parent, const std::string& leaf, bool keep_dir, bool* kept_dir, std::string_view name) {
    struct stat st;
    *kept_dir = false;
    if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return Status();
      return unpackError(errno, absl::StrCat("looking at '", av(name), "'"));
    }
    if (S_ISDIR(st.st_mode)) {
      if (keep_dir) {
        *kept_dir = true;
        return Status();
      }
      if (::unlinkat(parent, leaf.c_str(), AT_REMOVEDIR) != 0)
        return absl::InvalidArgumentError(absl::StrCat("archive entry '", av(name),
                                                       "' would replace a non-empty directory; refusing"));
      return Status();
    }
    if (::unlinkat(parent, leaf.c_str(), 0) != 0)
      return unpackError(errno, absl::StrCat("replacing '", av(name), "'"));
    return Status();
  }

  Status applyXattrs(int fd, archive_entry* entry, std::string_view name) {
    const char* xname;
    const void* value;
    size_t size;
    archive_entry_xattr_reset(entry);
    while (archive_entry_xattr_next(entry, &xname, &value, &size) == ARCHIVE_OK) {
      if (::fsetxattr(fd, xname, value, size, 0) != 0) {
        if (errno == EPERM || errno == ENOTSUP || errno == EACCES) {
          ++stats_.xattrs_skipped;
          continue;
        }
        return unpackError(errno, absl::StrCat("setting xattr ", xname, " on '", av(name), "'"));
      }
    }
    return Status();
  }

  static void entryTimes(archive_entry* entry, timespec times[2]) {
    times[1].tv_sec = archive_entry_mtime(entry);
    times[1].tv_nsec = archive_entry_mtime_nsec(entry);
    if (archive_entry_atime_is_set(entry)) {
      times[0].tv_sec = archive_entry_atime(entry);
      times[0].tv_nsec = archive_entry_atime_nsec(entry);
    } else {
      times[0] = times[1];
    }
    if (!archive_entry_mtime_is_set(entry)) times[0].tv_nsec = times[1].tv_nsec = UTIME_OMIT;
  }

  Status chownFd(int fd, archive_entry* entry, std::string_view name) {
    if (!keep_owners_) return Status();
    if (::fchown(fd, static_cast<uid_t>(archive_entry_uid(entry)), static_cast<gid_t>(archive_entry_gid(entry))) != 0)
      return unpackError(errno, absl::StrCat("setting the owner of '", av(name), "'"));
    return Status();
  }

  Status writeData(int fd, std::string_view name) {
    const void* buf;
    size_t size;
    la_int64_t offset;
    SparseWriter out(fd, absl::StrCat("'", av(name), "'"));
    for (;;) {
      if (policy_.stop.stop_requested()) return cancelled();
      int r = archive_read_data_block(a_, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return archiveError(a_, *in_, absl::StrCat("reading the data of '", av(name), "'"));
      if (offset < 0 || static_cast<uint64_t>(offset) + size > policy_.max_total_bytes)
        return absl::ResourceExhaustedError(absl::StrCat("archive entry '", av(name), "' is larger than the limit"));
      XENCTL_RETURN_IF_ERROR(out.write(static_cast<uint64_t>(offset), static_cast<const char*>(buf), size));
    }
    XENCTL_RETURN_IF_ERROR(out.flush());
    stats_.bytes += out.written();
    return Status();
  }

  Status writeRegular(int parent, const std::string& leaf, archive_entry* entry, std::string_view name,
                      bool existing) {
    UniqueFd fd(openat2Beneath(parent, leaf.c_str(), O_WRONLY | O_NOFOLLOW | (existing ? O_TRUNC : O_CREAT | O_EXCL),
                         0600));
    if (!fd) return unpackError(errno, absl::StrCat("creating '", av(name), "'"));
    XENCTL_RETURN_IF_ERROR(writeData(fd.get(), name));
    if (archive_entry_size_is_set(entry) && ::ftruncate(fd.get(), archive_entry_size(entry)) != 0)
      return unpackError(errno, absl::StrCat("sizing '", av(name), "'"));
    XENCTL_RETURN_IF_ERROR(chownFd(fd.get(), entry, name));
    if (::fchmod(fd.get(), archive_entry_perm(entry) & 07777) != 0)
      return unpackError(errno, absl::StrCat("setting the mode of '", av(name), "'"));
    XENCTL_RETURN_IF_ERROR(applyXattrs(fd.get(), entry, name));
    timespec times[2];
    entryTimes(entry, times);
    if (::futimens(fd.get(), times) != 0)
      return unpackError(errno, absl::StrCat("setting the times of '", av(name), "'"));
    return Status();
  }

  Status extractEntry(archive_entry* entry) {
    const char* raw = archive_entry_pathname(entry);
    if (!raw) return absl::InvalidArgumentError("an archive entry has no name (or one that cannot be read)");
    std::string name = raw;
    XENCTL_ASSIGN_OR_RETURN(auto parts, safeComponents(name, "archive entry"));
    XENCTL_RETURN_IF_ERROR(checkPolicy(entry, name));
    const mode_t type = archive_entry_filetype(entry);
    if (parts.empty()) {
      // "." or "./": the target directory itself.
      if (type != AE_IFDIR)
        return absl::InvalidArgumentError(absl::StrCat("archive entry '", name, "' names the target itself but is not a directory"));
      DirFixup fix{"", archive_entry_perm(entry) & 07777, {}};
      entryTimes(entry, fix.times);
      dirs_.push_back(fix);
      return Status();
    }
    const std::string leaf = parts.back();
    XENCTL_ASSIGN_OR_RETURN(UniqueFd parent, openDir(parts, parts.size() - 1, name));
    if (archive_entry_hardlink(entry)) return makeHardLink(parent.get(), leaf, entry, name);

    bool kept_dir = false;
    XENCTL_RETURN_IF_ERROR(clearLeaf(parent.get(), leaf, type == AE_IFDIR, &kept_dir, name));
    switch (type) {
      case AE_IFDIR:
        return makeDirectory(parent.get(), leaf, kept_dir, entry, parts, name);
      case AE_IFREG:
        return writeRegular(parent.get(), leaf, entry, name, /*existing=*/false);
      case AE_IFLNK:
        return makeSymlink(parent.get(), leaf, entry, name);
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        return makeNode(parent.get(), leaf, entry, name);
      case AE_IFSOCK:
        return Status();  // a socket is not content; tar skips it too
      default:
        return absl::InvalidArgumentError(absl::StrCat("archive entry '", name, "' has an unknown file type ", type));
    }
  }

  // The size limit (on what the headers declare) and the image policy on
  // device nodes and set-id files, before anything is written.
  Status checkPolicy(archive_entry* entry, const std::string& name) {
    const mode_t type = archive_entry_filetype(entry);
    const mode_t perm = archive_entry_perm(entry);
    const char* hardlink = archive_entry_hardlink(entry);
    if (archive_entry_size_is_set(entry)) {
      uint64_t size = static_cast<uint64_t>(std::max<la_int64_t>(0, archive_entry_size(entry)));
      if (size > policy_.max_total_bytes - std::min(declared_, policy_.max_total_bytes))
        return absl::ResourceExhaustedError(absl::StrCat(
            "archive entry '", name, "' takes the unpacked size past the limit of ", policy_.max_total_bytes,
            " bytes; refusing the archive"));
      declared_ += size;
    }
    if (!hardlink && (type == AE_IFCHR || type == AE_IFBLK)) XENCTL_RETURN_IF_ERROR(checkDevice(entry, name));
    if ((type == AE_IFREG || hardlink) && (perm & (S_ISUID | S_ISGID)) && !policy_.allow_setid)
      return absl::PermissionDeniedError(absl::StrCat(
          "archive entry '", name, "' is set-", (perm & S_ISUID) ? "user" : "group", "-id (mode ",
          absl::StrFormat("%04o", perm), "); refusing: set [images] allow_setid = true in xenctld.toml to accept ",
          "set-id files (OS images have them: su, passwd, mount)"));
    return Status();
  }

  Status makeHardLink(int parent, const std::string& leaf, archive_entry* entry, const std::string& name) {
    const char* hardlink = archive_entry_hardlink(entry);
    XENCTL_ASSIGN_OR_RETURN(auto tparts, safeComponents(hardlink, absl::StrCat("the hard link target of '", name, "',")));
    if (tparts.empty())
      return absl::InvalidArgumentError(absl::StrCat("archive entry '", name, "' is a hard link to the target itself"));
    XENCTL_ASSIGN_OR_RETURN(UniqueFd tparent, openDir(tparts, tparts.size() - 1, name));
    bool kept_dir;
    XENCTL_RETURN_IF_ERROR(clearLeaf(parent, leaf, false, &kept_dir, name));
    if (::linkat(tparent.get(), tparts.back().c_str(), parent, leaf.c_str(), 0) != 0) {
      int err = errno;
      if (err == ENOENT)
        return absl::InvalidArgumentError(absl::StrCat("archive entry '", name, "' is a hard link to '", hardlink,
                                                       "', which the archive did not create before it"));
      return unpackError(err, absl::StrCat("hard-linking '", name, "' to '", hardlink, "'"));
    }
    // cpio newc stores the data with the last link of a set.
    if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > 0)
      return writeRegular(parent, leaf, entry, name, /*existing=*/true);
    return Status();
  }

  Status makeDirectory(int parent, const std::string& leaf, bool kept_dir, archive_entry* entry,
                       const std::vector<std::string>& parts, const std::string& name) {
    if (!kept_dir && ::mkdirat(parent, leaf.c_str(), 0700) != 0)
      return unpackError(errno, absl::StrCat("creating the directory '", name, "'"));
    UniqueFd dir(openat2Beneath(parent, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0));
    if (!dir) return unpackError(errno, absl::StrCat("opening the directory '", name, "'"));
    XENCTL_RETURN_IF_ERROR(chownFd(dir.get(), entry, name));
    XENCTL_RETURN_IF_ERROR(applyXattrs(dir.get(), entry, name));
    // Mode and times last: a read-only directory must still take its entries.
    DirFixup fix{absl::StrJoin(parts, "/"), archive_entry_perm(entry) & 07777, {}};
    entryTimes(entry, fix.times);
    dirs_.push_back(fix);
    return Status();
  }

  Status makeSymlink(int parent, const std::string& leaf, archive_entry* entry, const std::string& name) {
    const char* to = archive_entry_symlink(entry);
    if (!to) return absl::InvalidArgumentError(absl::StrCat("archive entry '", name, "' is a symlink without a target"));
    if (::symlinkat(to, parent, leaf.c_str()) != 0)
      return unpackError(errno, absl::StrCat("creating the symlink '", name, "'"));
    if (keep_owners_ && ::fchownat(parent, leaf.c_str(), static_cast<uid_t>(archive_entry_uid(entry)),
                                   static_cast<gid_t>(archive_entry_gid(entry)), AT_SYMLINK_NOFOLLOW) != 0)
      return unpackError(errno, absl::StrCat("setting the owner of '", name, "'"));
    timespec times[2];
    entryTimes(entry, times);
    if (::utimensat(parent, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
      return unpackError(errno, absl::StrCat("setting the times of '", name, "'"));
    return Status();
  }

  // A fifo or a device node (checkPolicy let it through).
  Status makeNode(int parent, const std::string& leaf, archive_entry* entry, const std::string& name) {
    const mode_t type = archive_entry_filetype(entry);
    dev_t dev = type == AE_IFIFO ? 0 : archive_entry_rdev(entry);
    if (::mknodat(parent, leaf.c_str(), type | (archive_entry_perm(entry) & 0777), dev) != 0)
      return unpackError(errno, absl::StrCat("creating the ", type == AE_IFIFO ? "fifo" : "device node", " '", name,
                                             "'", type == AE_IFIFO ? "" : " (device nodes need root)"));
    UniqueFd node(openat2Beneath(parent, leaf.c_str(), O_PATH | O_NOFOLLOW, 0));
    if (keep_owners_ && ::fchownat(parent, leaf.c_str(), static_cast<uid_t>(archive_entry_uid(entry)),
                                   static_cast<gid_t>(archive_entry_gid(entry)), AT_SYMLINK_NOFOLLOW) != 0)
      return unpackError(errno, absl::StrCat("setting the owner of '", name, "'"));
    timespec times[2];
    entryTimes(entry, times);
    ::utimensat(parent, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW);
    return Status();
  }

  // A device node passes when the policy takes any, or takes the standard
  // ones and it is one; the refusal names the setting that would accept it.
  Status checkDevice(archive_entry* entry, std::string_view name) const {
    const bool character = archive_entry_filetype(entry) == AE_IFCHR;
    const dev_t rdev = archive_entry_rdev(entry);
    const unsigned maj = major(rdev), min = minor(rdev);
    const bool standard = isStandardDeviceNode(character, maj, min);
    if (policy_.allow_devices || (policy_.allow_standard_devices && standard)) return Status();
    const std::string node = absl::StrCat("archive entry '", av(name), "' is a ", character ? "character" : "block",
                                          " device node (", maj, ":", min, ")");
    if (policy_.allow_standard_devices)
      return absl::PermissionDeniedError(absl::StrCat(
          node, ", not one of the standard nodes (", av(kStandardNodeNames),
          "); refusing: set [images] allow_devices = true in xenctld.toml to accept any device node"));
    return absl::PermissionDeniedError(absl::StrCat(
        node, "; refusing: set [images] allow_devices = true in xenctld.toml to accept device nodes (or \"standard\" ",
        "for the standard ones only: ", av(kStandardNodeNames), ")"));
  }

  Status fixupDirectories() {
    for (const DirFixup& d : dirs_) {
      UniqueFd dir(d.path.empty() ? ::open(target_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                            : openat2Beneath(root_.get(), d.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0));
      // A later entry may have replaced the directory; then there is nothing to fix.
      if (!dir) continue;
      if (::fchmod(dir.get(), d.mode) != 0)
        return unpackError(errno, absl::StrCat("setting the mode of '", d.path, "'"));
      if (::futimens(dir.get(), d.times) != 0)
        return unpackError(errno, absl::StrCat("setting the times of '", d.path, "'"));
    }
    return Status();
  }

  archive* a_;
  Input* in_;
  const std::string& target_;
  const ExtractPolicy& policy_;
  bool keep_owners_ = false;
  UniqueFd root_;
  ExtractStats stats_;
  uint64_t declared_ = 0;
  std::vector<DirFixup> dirs_;
};

}  // namespace

bool isStandardDeviceNode(bool character, unsigned maj, unsigned min) {
  if (!character) return false;
  if (maj == 1) return min == 3 || min == 5 || min == 7 || min == 8 || min == 9;
  return maj == 5 && min <= 2;
}

std::string_view toString(ImageKind k) { return k == ImageKind::kRawExt ? "raw-ext" : "archive"; }

ImageKind detectImageKind(std::string_view prefix) {
  ArchivePtr a(archive_read_new());
  supportFilters(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_memory(a.get(), prefix.data(), prefix.size()) != ARCHIVE_OK) return ImageKind::kArchive;
  archive_entry* entry;
  if (archive_read_next_header(a.get(), &entry) != ARCHIVE_OK) return ImageKind::kArchive;
  char head[kExtMagicOffset + 2];
  size_t got = 0;
  while (got < sizeof head) {
    la_ssize_t n = archive_read_data(a.get(), head + got, sizeof head - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == sizeof head && static_cast<uint8_t>(head[kExtMagicOffset]) == 0x53 &&
      static_cast<uint8_t>(head[kExtMagicOffset + 1]) == 0xEF)
    return ImageKind::kRawExt;
  return ImageKind::kArchive;
}

Result<ExtractStats> extractArchive(const ChunkSource& source, const std::string& target, const ExtractPolicy& policy) {
  ArchivePtr a(archive_read_new());
  supportFilters(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  archive_read_support_format_cpio(a.get());
  Input in;
  in.source = &source;
  if (archive_read_open(a.get(), &in, nullptr, readCallback, nullptr) != ARCHIVE_OK)
    return archiveError(a.get(), in, "opening the archive");
  Extractor x(a.get(), &in, target, policy);
  return x.run();
}

Result<RawStats> copyRawImage(const ChunkSource& source, const std::string& target, const ExtractPolicy& policy) {
  ArchivePtr a(archive_read_new());
  supportFilters(a.get());
  archive_read_support_format_raw(a.get());
  Input in;
  in.source = &source;
  if (archive_read_open(a.get(), &in, nullptr, readCallback, nullptr) != ARCHIVE_OK)
    return archiveError(a.get(), in, "opening the raw image");
  archive_entry* entry;
  if (archive_read_next_header(a.get(), &entry) != ARCHIVE_OK) return archiveError(a.get(), in, "reading the raw image");
  UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return unpackError(errno, absl::StrCat("creating ", target));
  RawStats stats;
  stats.filter = filterName(a.get());
  std::string head;  // the first bytes, to check for the superblock
  uint64_t offset = 0;
  SparseWriter out(fd.get(), target);
  for (;;) {
    if (policy.stop.stop_requested()) return absl::CancelledError("copying the raw image: cancelled");
    const void* buf;
    size_t size;
    la_int64_t off;
    int r = archive_read_data_block(a.get(), &buf, &size, &off);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return archiveError(a.get(), in, "reading the raw image");
    const char* p = static_cast<const char*>(buf);
    if (head.size() < kExtMagicOffset + 2) head.append(p, std::min(size, kExtMagicOffset + 2 - head.size()));
    if (offset + size > policy.max_total_bytes)
      return absl::ResourceExhaustedError(
          absl::StrCat("the raw image is larger than the limit of ", policy.max_total_bytes, " bytes; refusing it"));
    XENCTL_RETURN_IF_ERROR(out.write(offset, p, size));
    offset += size;
  }
  XENCTL_RETURN_IF_ERROR(out.flush());
  stats.allocated = out.written();
  if (head.size() < kExtMagicOffset + 2 || static_cast<uint8_t>(head[kExtMagicOffset]) != 0x53 ||
      static_cast<uint8_t>(head[kExtMagicOffset + 1]) != 0xEF)
    return absl::InvalidArgumentError(
        "the raw image has no ext2/3/4 superblock; give an ext4 file-system image or a tar/cpio archive");
  if (::ftruncate(fd.get(), static_cast<off_t>(offset)) != 0 || ::fsync(fd.get()) != 0)
    return unpackError(errno, absl::StrCat("finishing ", target));
  stats.size = offset;
  return stats;
}

}  // namespace xenctl::image
