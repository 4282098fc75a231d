#include "lib/image/volume_writer.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::image {
namespace {

constexpr size_t kRun = size_t{4} << 20;     // the largest write, and the read buffer
constexpr size_t kBlock = size_t{64} << 10;  // zero blocks skipped (a thin pool's default chunk)
constexpr size_t kAlign = 4096;              // what O_DIRECT needs of offsets, lengths and the buffer

bool allZero(const char* p, size_t n) {
  // Compare the block with itself shifted by one byte: zero iff the first
  // byte is zero and every byte equals the next.
  return n == 0 || (p[0] == 0 && std::equal(p + 1, p + n, p));
}

Status writeAll(int fd, const char* p, size_t n, off_t at, const std::string& target) {
  while (n > 0) {
    ssize_t put = ::pwrite(fd, p, n, at);
    if (put < 0) {
      if (errno == EINTR) continue;
      return errnoStatus(errno, absl::StrCat("writing ", target, " at byte ", at));
    }
    p += put;
    n -= static_cast<size_t>(put);
    at += put;
  }
  return absl::OkStatus();
}

Result<uint64_t> targetSize(int fd, const std::string& target) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return errnoStatus(errno, absl::StrCat("stat ", target));
  if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  if (!S_ISBLK(st.st_mode))
    return absl::InvalidArgumentError(absl::StrCat(target, " is neither a block device nor a regular file"));
  uint64_t size = 0;
  if (::ioctl(fd, BLKGETSIZE64, &size) != 0) return errnoStatus(errno, absl::StrCat("BLKGETSIZE64 ", target));
  return size;
}

}  // namespace

Result<WriteStats> writeImageOnto(const std::string& image, const std::string& target, std::stop_token stop) {
  sys::UniqueFd in(::open(image.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return errnoStatus(errno, absl::StrCat("open ", image));
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return errnoStatus(errno, absl::StrCat("stat ", image));
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(image, " is not a regular file"));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  sys::UniqueFd out(::open(target.c_str(), O_WRONLY | O_CLOEXEC));
  if (!out) return errnoStatus(errno, absl::StrCat("open ", target));
  XENCTL_ASSIGN_OR_RETURN(uint64_t room, targetSize(out.get(), target));
  // A block device is written around the page cache (O_DIRECT): half the
  // time of buffered writes in the lab's Dom0. The runs are 4 KiB-aligned
  // (the image's file system block); should one not be, the device is
  // written through the cache from there on.
  struct stat ost;
  bool direct = ::fstat(out.get(), &ost) == 0 && S_ISBLK(ost.st_mode);
  if (direct) {
    sys::UniqueFd d(::open(target.c_str(), O_WRONLY | O_CLOEXEC | O_DIRECT));
    if (d)
      out = std::move(d);
    else
      direct = false;
  }
  if (room < size)
    return absl::InvalidArgumentError(absl::StrCat("writing ", image, " (", size, " bytes) onto ", target, ": it has ",
                                                   room, " bytes; make the volume at least as large"));

  std::unique_ptr<char, decltype(&std::free)> buf(static_cast<char*>(std::aligned_alloc(kAlign, kRun)), &std::free);
  if (!buf) return absl::ResourceExhaustedError(absl::StrCat("writing ", image, ": no memory for a ", kRun, "-byte buffer"));
  WriteStats stats;
  auto flush = [&](off_t at, size_t from, size_t to) -> Status {
    const off_t where = at + static_cast<off_t>(from);
    if (direct && ((where | static_cast<off_t>(to - from)) & static_cast<off_t>(kAlign - 1)) != 0) {
      sys::UniqueFd b(::open(target.c_str(), O_WRONLY | O_CLOEXEC));
      if (!b) return errnoStatus(errno, absl::StrCat("open ", target));
      out = std::move(b);
      direct = false;
    }
    XENCTL_RETURN_IF_ERROR(writeAll(out.get(), buf.get() + from, to - from, where, target));
    stats.written += to - from;
    return absl::OkStatus();
  };
  off_t off = 0;  // everything before it is done
  while (static_cast<uint64_t>(off) < size) {
    off_t data = ::lseek(in.get(), off, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      return errnoStatus(errno, absl::StrCat("lseek SEEK_DATA ", image));
    }
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) return errnoStatus(errno, absl::StrCat("lseek SEEK_HOLE ", image));
    // From the 64 KiB boundary before the data (a hole reads as zeros), so
    // that the blocks tested and skipped are the pool's chunks.
    off_t pos = std::max(off, data / static_cast<off_t>(kBlock) * static_cast<off_t>(kBlock));
    while (pos < hole) {
      if (stop.stop_requested())
        return absl::CancelledError(absl::StrCat("writing ", image, " onto ", target, ": stopped after ",
                                                 stats.written, " bytes"));
      size_t want = static_cast<size_t>(std::min<off_t>(hole - pos, static_cast<off_t>(kRun)));
      ssize_t got = ::pread(in.get(), buf.get(), want, pos);
      if (got < 0) {
        if (errno == EINTR) continue;
        return errnoStatus(errno, absl::StrCat("reading ", image));
      }
      if (got == 0) break;  // the image shrank under us
      // Each run of blocks holding data is one write.
      const size_t n = static_cast<size_t>(got);
      constexpr size_t kNone = ~size_t{0};
      size_t run = kNone;
      for (size_t b = 0; b < n; b += kBlock) {
        if (!allZero(buf.get() + b, std::min(kBlock, n - b))) {
          if (run == kNone) run = b;
        } else if (run != kNone) {
          XENCTL_RETURN_IF_ERROR(flush(pos, run, b));
          run = kNone;
        }
      }
      if (run != kNone) XENCTL_RETURN_IF_ERROR(flush(pos, run, n));
      pos += got;
    }
    off = std::max(pos, hole);
  }
  stats.skipped = size - stats.written;
  if (::fdatasync(out.get()) != 0) return errnoStatus(errno, absl::StrCat("fdatasync ", target));
  return stats;
}

}  // namespace xenctl::image
