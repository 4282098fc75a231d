#include "lib/storage/file_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::storage {
namespace {

using sys::UniqueFd;

std::string dirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status syncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return errnoStatus(errno, absl::StrCat("open ", dir));
  if (::fsync(fd.get()) != 0) return errnoStatus(errno, absl::StrCat("fsync ", dir));
  return absl::OkStatus();
}

bool allZero(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

// Copies the data regions of `in` to `out` (already sized), leaving holes
// and all-zero blocks unwritten.
Status sparseCopy(int in, int out, uint64_t size, const std::string& src, const std::string& dst,
                  const core::CopyProgress& progress) {
  constexpr size_t kChunk = size_t{1} << 20;
  constexpr size_t kBlock = 4096;
  std::unique_ptr<char[]> buf(new char[kChunk]);
  uint64_t done = 0;
  off_t off = 0;
  while (static_cast<uint64_t>(off) < size) {
    off_t data = ::lseek(in, off, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      return errnoStatus(errno, absl::StrCat("lseek SEEK_DATA ", src));
    }
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) return errnoStatus(errno, absl::StrCat("lseek SEEK_HOLE ", src));
    for (off_t pos = data; pos < hole;) {
      size_t want = static_cast<size_t>(std::min<off_t>(hole - pos, static_cast<off_t>(kChunk)));
      ssize_t got = ::pread(in, buf.get(), want, pos);
      if (got < 0) {
        if (errno == EINTR) continue;
        return errnoStatus(errno, absl::StrCat("read ", src));
      }
      if (got == 0) break;  // the source shrank under us
      for (size_t b = 0; b < static_cast<size_t>(got); b += kBlock) {
        size_t n = std::min(kBlock, static_cast<size_t>(got) - b);
        if (allZero(buf.get() + b, n)) continue;
        for (size_t w = 0; w < n;) {
          ssize_t put = ::pwrite(out, buf.get() + b + w, n - w, pos + static_cast<off_t>(b + w));
          if (put < 0) {
            if (errno == EINTR) continue;
            return errnoStatus(errno, absl::StrCat("write ", dst));
          }
          w += static_cast<size_t>(put);
        }
      }
      pos += got;
      done += static_cast<uint64_t>(got);
      if (progress && !progress(done, size))
        return absl::CancelledError(absl::StrCat("copy of ", src, " stopped after ", done, " bytes"));
    }
    off = hole;
  }
  return absl::OkStatus();
}

Result<CopyMethod> cloneInto(int in, int out, const std::string& src, const std::string& dst,
                             const core::CopyProgress& progress) {
  struct stat st;
  if (::fstat(in, &st) != 0) return errnoStatus(errno, absl::StrCat("stat ", src));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (::ioctl(out, FICLONE, in) == 0) {
    if (progress) (void)progress(size, size);
    return CopyMethod::kReflink;
  }
  const int err = errno;
  // Not a reflink file system (or not across these two): copy the data.
  if (err != EOPNOTSUPP && err != ENOTTY && err != EXDEV && err != EINVAL && err != ENOSYS)
    return errnoStatus(err, absl::StrCat("ioctl FICLONE ", dst));
  if (::ftruncate(out, static_cast<off_t>(size)) != 0) return errnoStatus(errno, absl::StrCat("truncate ", dst));
  XENCTL_RETURN_IF_ERROR(sparseCopy(in, out, size, src, dst, progress));
  return CopyMethod::kSparseCopy;
}

}  // namespace

std::string_view toString(CopyMethod m) { return m == CopyMethod::kReflink ? "reflink" : "sparse-copy"; }

Result<CopyMethod> cloneFile(const std::string& src, const std::string& dst, const core::CopyProgress& progress) {
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return errnoStatus(errno, absl::StrCat("open ", src));
  UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out) return errnoStatus(errno, absl::StrCat("create ", dst));
  Result<CopyMethod> method = cloneInto(in.get(), out.get(), src, dst, progress);
  if (method.ok() && ::fsync(out.get()) != 0) method = errnoStatus(errno, absl::StrCat("fsync ", dst));
  if (!method.ok()) ::unlink(dst.c_str());
  return method;
}

Status createSparseFile(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return errnoStatus(errno, absl::StrCat("create ", path));
  Status st;
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    st = errnoStatus(errno, absl::StrCat("truncate ", path));
  else if (::fsync(fd.get()) != 0)
    st = errnoStatus(errno, absl::StrCat("fsync ", path));
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

Status growFile(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errnoStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return errnoStatus(errno, absl::StrCat("stat ", path));
  if (static_cast<uint64_t>(st.st_size) >= size) return absl::OkStatus();
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return errnoStatus(errno, absl::StrCat("truncate ", path));
  if (::fsync(fd.get()) != 0) return errnoStatus(errno, absl::StrCat("fsync ", path));
  return absl::OkStatus();
}

Result<FileInfo> fileInfo(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errnoStatus(errno, absl::StrCat("stat ", path));
  return FileInfo{static_cast<uint64_t>(st.st_size), static_cast<uint64_t>(st.st_blocks) * 512,
                  absl::TimeFromTimespec(st.st_mtim)};
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Status writeFileAtomic(const std::string& path, const std::string& content) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = absl::StrCat(path, ".tmp-", ::getpid(), "-", counter++);
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return errnoStatus(errno, absl::StrCat("create ", tmp));
    Status st;
    for (size_t off = 0; off < content.size() && st.ok();) {
      ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
      if (n < 0 && errno != EINTR) st = errnoStatus(errno, absl::StrCat("write ", tmp));
      if (n > 0) off += static_cast<size_t>(n);
    }
    if (st.ok() && ::fsync(fd.get()) != 0) st = errnoStatus(errno, absl::StrCat("fsync ", tmp));
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = errnoStatus(errno, absl::StrCat("rename ", tmp));
    ::unlink(tmp.c_str());
    return st;
  }
  return syncDir(dirOf(path));
}

Result<std::string> readSmallFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errnoStatus(errno, absl::StrCat("open ", path));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoStatus(errno, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1 << 20)) return absl::FailedPreconditionError(absl::StrCat(path, " is larger than 1 MiB"));
  }
  return out;
}

Status renameReplace(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return errnoStatus(errno, absl::StrCat("rename to ", to, " ", from));
  return syncDir(dirOf(to));
}

Status renameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0)
    return errnoStatus(errno, absl::StrCat("rename to ", to, " ", from));
  return syncDir(dirOf(to));
}

Status removeFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return errnoStatus(errno, absl::StrCat("unlink ", path));
  return absl::OkStatus();
}

Status makeDirs(const std::string& path) {
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) return errnoStatus(errno, absl::StrCat("mkdir ", partial));
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errnoStatus(errno, absl::StrCat("stat ", path));
  if (!S_ISDIR(st.st_mode)) return absl::FailedPreconditionError(absl::StrCat(path, " is not a directory"));
  return absl::OkStatus();
}

Result<std::vector<std::string>> listDir(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) return errnoStatus(errno, absl::StrCat("opendir ", dir));
  std::vector<std::string> out;
  errno = 0;
  while (dirent* e = ::readdir(d.get())) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") out.emplace_back(n);
    errno = 0;
  }
  if (errno != 0) return errnoStatus(errno, absl::StrCat("readdir ", dir));
  return out;
}

Result<FsSpace> fsSpace(const std::string& dir) {
  struct statvfs vfs;
  if (::statvfs(dir.c_str(), &vfs) != 0) return errnoStatus(errno, absl::StrCat("statvfs ", dir));
  const uint64_t unit = vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize;
  FsSpace s;
  s.size = uint64_t{vfs.f_blocks} * unit;
  s.free = uint64_t{vfs.f_bfree} * unit;
  s.used = s.size - s.free;
  return s;
}

Status awaitBlockDevice(const std::string& path, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(2);
  for (;;) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) return absl::OkStatus();
    if (absl::Now() >= deadline)
      return absl::DeadlineExceededError(
          absl::StrCat(path, " is not a block device ", absl::FormatDuration(timeout),
                       " after its activation; udev makes it: is systemd-udevd running (`udevadm control --ping`)?"));
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(20));
  }
}

Result<bool> hasExtSuperblock(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errnoStatus(errno, absl::StrCat("open ", path));
  unsigned char magic[2] = {0, 0};
  ssize_t got = ::pread(fd.get(), magic, sizeof(magic), 1024 + 56);
  if (got < 0) return errnoStatus(errno, absl::StrCat("read ", path));
  return got == 2 && magic[0] == 0x53 && magic[1] == 0xEF;
}

Result<bool> supportsReflink(const std::string& dir) {
  static std::atomic<uint64_t> counter{0};
  const std::string a = absl::StrCat(dir, "/.reflink-probe-", ::getpid(), "-", counter++);
  const std::string b = a + "-clone";
  XENCTL_RETURN_IF_ERROR(createSparseFile(a, 4096));
  UniqueFd in(::open(a.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd out(::open(b.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  const bool ok = in && out && ::ioctl(out.get(), FICLONE, in.get()) == 0;
  ::unlink(a.c_str());
  ::unlink(b.c_str());
  return ok;
}

Result<std::vector<Extent>> fileExtents(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errnoStatus(errno, absl::StrCat("open ", path));
  constexpr uint32_t kBatch = 256;
  std::vector<char> buf(sizeof(fiemap) + kBatch * sizeof(fiemap_extent));
  std::vector<Extent> out;
  uint64_t start = 0;
  for (;;) {
    std::memset(buf.data(), 0, buf.size());
    auto* fm = reinterpret_cast<fiemap*>(buf.data());
    fm->fm_start = start;
    fm->fm_length = FIEMAP_MAX_OFFSET - start;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = kBatch;
    if (::ioctl(fd.get(), FS_IOC_FIEMAP, fm) != 0) return errnoStatus(errno, absl::StrCat("ioctl FIEMAP ", path));
    if (fm->fm_mapped_extents == 0) break;
    bool last = false;
    for (uint32_t i = 0; i < fm->fm_mapped_extents; ++i) {
      const fiemap_extent& e = fm->fm_extents[i];
      out.push_back({e.fe_logical, e.fe_physical, e.fe_length, e.fe_flags});
      start = e.fe_logical + e.fe_length;
      if (e.fe_flags & FIEMAP_EXTENT_LAST) last = true;
    }
    if (last) break;
  }
  return out;
}

}  // namespace xenctl::storage
