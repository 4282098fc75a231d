#include "lib/image/archive_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/image/byte_pipe.h"
#include "lib/image/uri.h"

namespace xenctl::image {
namespace {

struct WriteCtx {
  const core::ByteSink* sink = nullptr;
  Status status;
  uint64_t bytes = 0;
};

la_ssize_t writeCallback(archive* a, void* data, const void* buf, size_t n) {
  auto* w = static_cast<WriteCtx*>(data);
  Status st = (*w->sink)(std::string_view(static_cast<const char*>(buf), n));
  if (!st.ok()) {
    w->status = std::move(st);
    archive_set_error(a, EIO, "the archive's destination failed");
    return -1;
  }
  w->bytes += n;
  return static_cast<la_ssize_t>(n);
}

struct Deleters {
  void operator()(archive* a) const { archive_free(a); }
  void operator()(archive_entry* e) const { archive_entry_free(e); }
  void operator()(archive_entry_linkresolver* r) const { archive_entry_linkresolver_free(r); }
};

}  // namespace

std::string_view toString(ExportFormat f) { return f == ExportFormat::kCpioGz ? "cpio.gz" : "tar.zst"; }

Result<ExportFormat> parseExportFormat(std::string_view s) {
  if (s == "cpio.gz") return ExportFormat::kCpioGz;
  if (s == "tar.zst") return ExportFormat::kTarZst;
  return absl::InvalidArgumentError(absl::StrCat("'", av(s), "' is not an export format; give cpio.gz or tar.zst"));
}

namespace {

// packDirectory's state and steps: the archive being written, the tree
// being read, and the link resolver between them.
class Packer {
 public:
  Packer(const std::string& dir, const core::ByteSink& sink, std::stop_token stop)
      : dir_(dir), stop_(std::move(stop)), buf_(size_t{1} << 20) {
    ctx_.sink = &sink;
  }

  Status open(ExportFormat format) {
    if (format == ExportFormat::kCpioGz) {
      archive_write_set_format_cpio_newc(w_.get());
      archive_write_add_filter_gzip(w_.get());
    } else {
      archive_write_set_format_pax_restricted(w_.get());
      archive_write_add_filter_zstd(w_.get());
    }
    archive_write_set_bytes_in_last_block(w_.get(), 1);
    if (archive_write_open(w_.get(), &ctx_, nullptr, writeCallback, nullptr) != ARCHIVE_OK)
      return failed(w_.get(), "opening the archive");
    archive_read_disk_set_standard_lookup(disk_.get());
    archive_read_disk_set_symlink_physical(disk_.get());
    archive_read_disk_set_behavior(disk_.get(), ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS | ARCHIVE_READDISK_NO_ACL |
                                                    ARCHIVE_READDISK_NO_FFLAGS);
    if (archive_read_disk_open(disk_.get(), dir_.c_str()) != ARCHIVE_OK)
      return failed(disk_.get(), "reading the directory");
    archive_entry_linkresolver_set_strategy(links_.get(), archive_format(w_.get()));
    return Status();
  }

  Result<PackStats> run() {
    for (;;) {
      std::unique_ptr<archive_entry, Deleters> entry(archive_entry_new());
      int r = archive_read_next_header2(disk_.get(), entry.get());
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return failed(disk_.get(), "reading the directory");
      archive_read_disk_descend(disk_.get());
      setRelativeName(entry.get());
      XENCTL_RETURN_IF_ERROR(writeLinkified(entry.release()));
    }
    // cpio newc keeps the last link of a set until the end: write what is left.
    for (;;) {
      archive_entry* e = nullptr;
      archive_entry* spare = nullptr;
      archive_entry_linkify(links_.get(), &e, &spare);
      if (!e) break;
      Status s = writeEntry(e);
      archive_entry_free(e);
      if (!s.ok()) return s;
    }
    if (archive_write_close(w_.get()) != ARCHIVE_OK) return failed(w_.get(), "finishing the archive");
    stats_.bytes = ctx_.bytes;
    return stats_;
  }

 private:
  Status failed(archive* a, std::string_view what) const {
    if (!ctx_.status.ok()) return ctx_.status;
    const char* msg = archive_error_string(a);
    return absl::InternalError(absl::StrCat("packing ", dir_, ": ", av(what), ": ", msg ? msg : "libarchive error"));
  }

  // Names relative to the directory: "." for itself, "./etc/hostname" below it.
  void setRelativeName(archive_entry* entry) const {
    std::string name = archive_entry_pathname(entry);
    std::string_view rel = name;
    if (rel.substr(0, dir_.size()) == dir_) rel.remove_prefix(dir_.size());
    while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
    archive_entry_copy_pathname(entry, rel.empty() ? "." : absl::StrCat("./", av(rel)).c_str());
  }

  // Hands `e` (taken over) to the link resolver and writes what it gives back.
  Status writeLinkified(archive_entry* e) {
    archive_entry* spare = nullptr;
    archive_entry_linkify(links_.get(), &e, &spare);
    for (archive_entry* out : {e, spare}) {
      if (!out) continue;
      Status s = writeEntry(out);
      archive_entry_free(out);
      if (!s.ok()) {
        if (out == e && spare) archive_entry_free(spare);
        return s;
      }
    }
    return Status();
  }

  // Writes one entry (as the link resolver hands it back) and its data.
  Status writeEntry(archive_entry* e) {
    if (stop_.stop_requested()) return absl::CancelledError(absl::StrCat("packing ", dir_, ": cancelled"));
    if (archive_write_header(w_.get(), e) < ARCHIVE_WARN) return failed(w_.get(), archive_entry_pathname(e));
    ++stats_.entries;
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_size(e) <= 0) return Status();
    return writeData(archive_entry_sourcepath(e), archive_entry_size(e));
  }

  Status writeData(const char* src, la_int64_t size) {
    int fd = ::open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errnoStatus(errno, absl::StrCat("packing ", dir_, ": opening ", src));
    Status out;
    for (la_int64_t left = size; left > 0 && out.ok();) {
      ssize_t n = ::read(fd, buf_.data(), std::min<size_t>(buf_.size(), static_cast<size_t>(left)));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // The file shrank while being packed: the archive would be corrupt.
        out = absl::AbortedError(absl::StrCat("packing ", dir_, ": ", src, " changed while being read; retry"));
        break;
      }
      if (archive_write_data(w_.get(), buf_.data(), static_cast<size_t>(n)) < 0) out = failed(w_.get(), src);
      left -= n;
    }
    ::close(fd);
    return out;
  }

  const std::string& dir_;
  std::stop_token stop_;
  WriteCtx ctx_;
  std::unique_ptr<archive, Deleters> w_{archive_write_new()};
  std::unique_ptr<archive, Deleters> disk_{archive_read_disk_new()};
  std::unique_ptr<archive_entry_linkresolver, Deleters> links_{archive_entry_linkresolver_new()};
  PackStats stats_;
  std::vector<char> buf_;
};

}  // namespace

Result<PackStats> packDirectory(const std::string& dir, ExportFormat format, const core::ByteSink& sink,
                                std::stop_token stop) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return absl::NotFoundError(absl::StrCat("packing ", dir, ": not a directory"));
  Packer packer(dir, sink, std::move(stop));
  XENCTL_RETURN_IF_ERROR(packer.open(format));
  return packer.run();
}

Result<ExportResult> exportDirectory(core::Fetcher& fetcher, const std::string& dir, ExportFormat format,
                                     const std::string& uri, const core::FetchOptions& options) {
  XENCTL_RETURN_IF_ERROR(uriScheme(uri).status());
  BytePipe pipe(size_t{8} << 20);
  Sha256 sha;
  Result<PackStats> packed = absl::UnknownError("not run");
  std::thread packer([&] {
    packed = packDirectory(
        dir, format,
        [&](std::string_view chunk) {
          sha.update(chunk);
          return pipe.write(chunk);
        },
        options.stop);
    pipe.closeWrite(packed.ok() ? Status() : packed.status());
  });
  std::string pending;
  size_t used = 0;
  bool source_failed = false;
  core::ByteSource source = [&](char* buf, size_t max) -> Result<size_t> {
    if (used == pending.size()) {
      auto chunk = pipe.read();
      if (!chunk.ok()) {
        source_failed = true;
        return chunk.status();
      }
      pending = std::move(*chunk);
      used = 0;
      if (pending.empty()) return size_t{0};
    }
    size_t n = std::min(max, pending.size() - used);
    std::memcpy(buf, pending.data() + used, n);
    used += n;
    return n;
  };
  auto stored = fetcher.put(uri, source, options);
  if (!stored.ok()) pipe.closeRead(stored.status());
  packer.join();
  // The packer's error, when it cut the stream, explains the upload's.
  if (!packed.ok() && (source_failed || stored.ok())) return packed.status();
  if (!stored.ok()) return stored.status();
  ExportResult r;
  r.pack = *packed;
  r.sha256 = sha.finish();
  return r;
}

}  // namespace xenctl::image
