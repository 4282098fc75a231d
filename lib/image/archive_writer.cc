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

Result<PackStats> packDirectory(const std::string& dir, ExportFormat format, const core::ByteSink& sink,
                                std::stop_token stop) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return absl::NotFoundError(absl::StrCat("packing ", dir, ": not a directory"));
  std::unique_ptr<archive, Deleters> w(archive_write_new());
  if (format == ExportFormat::kCpioGz) {
    archive_write_set_format_cpio_newc(w.get());
    archive_write_add_filter_gzip(w.get());
  } else {
    archive_write_set_format_pax_restricted(w.get());
    archive_write_add_filter_zstd(w.get());
  }
  archive_write_set_bytes_in_last_block(w.get(), 1);
  WriteCtx ctx;
  ctx.sink = &sink;
  auto failed = [&](archive* a, std::string_view what) -> Status {
    if (!ctx.status.ok()) return ctx.status;
    const char* msg = archive_error_string(a);
    return absl::InternalError(absl::StrCat("packing ", dir, ": ", av(what), ": ", msg ? msg : "libarchive error"));
  };
  if (archive_write_open(w.get(), &ctx, nullptr, writeCallback, nullptr) != ARCHIVE_OK)
    return failed(w.get(), "opening the archive");

  std::unique_ptr<archive, Deleters> disk(archive_read_disk_new());
  archive_read_disk_set_standard_lookup(disk.get());
  archive_read_disk_set_symlink_physical(disk.get());
  archive_read_disk_set_behavior(disk.get(), ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS | ARCHIVE_READDISK_NO_ACL |
                                                 ARCHIVE_READDISK_NO_FFLAGS);
  if (archive_read_disk_open(disk.get(), dir.c_str()) != ARCHIVE_OK) return failed(disk.get(), "reading the directory");
  std::unique_ptr<archive_entry_linkresolver, Deleters> links(archive_entry_linkresolver_new());
  archive_entry_linkresolver_set_strategy(links.get(), archive_format(w.get()));

  PackStats stats;
  std::vector<char> buf(size_t{1} << 20);
  // Writes one entry (as the link resolver hands it back) and its data.
  auto writeEntry = [&](archive_entry* e) -> Status {
    XENCTL_RETURN_IF_ERROR(stop.stop_requested() ? absl::CancelledError(absl::StrCat("packing ", dir, ": cancelled"))
                                                  : Status());
    if (archive_write_header(w.get(), e) < ARCHIVE_WARN) return failed(w.get(), archive_entry_pathname(e));
    ++stats.entries;
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_size(e) <= 0) return Status();
    const char* src = archive_entry_sourcepath(e);
    int fd = ::open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errnoStatus(errno, absl::StrCat("packing ", dir, ": opening ", src));
    Status out;
    for (la_int64_t left = archive_entry_size(e); left > 0 && out.ok();) {
      ssize_t n = ::read(fd, buf.data(), std::min<size_t>(buf.size(), static_cast<size_t>(left)));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // The file shrank while being packed: the archive would be corrupt.
        out = absl::AbortedError(absl::StrCat("packing ", dir, ": ", src, " changed while being read; retry"));
        break;
      }
      if (archive_write_data(w.get(), buf.data(), static_cast<size_t>(n)) < 0) out = failed(w.get(), src);
      left -= n;
    }
    ::close(fd);
    return out;
  };

  for (;;) {
    std::unique_ptr<archive_entry, Deleters> entry(archive_entry_new());
    int r = archive_read_next_header2(disk.get(), entry.get());
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return failed(disk.get(), "reading the directory");
    archive_read_disk_descend(disk.get());
    // Names relative to `dir`: "." for itself, "./etc/hostname" below it.
    std::string name = archive_entry_pathname(entry.get());
    std::string_view rel = name;
    if (rel.substr(0, dir.size()) == dir) rel.remove_prefix(dir.size());
    while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
    archive_entry_copy_pathname(entry.get(), rel.empty() ? "." : absl::StrCat("./", av(rel)).c_str());

    archive_entry* e = entry.release();
    archive_entry* spare = nullptr;
    archive_entry_linkify(links.get(), &e, &spare);
    for (archive_entry* out : {e, spare}) {
      if (!out) continue;
      Status s = writeEntry(out);
      archive_entry_free(out);
      if (!s.ok()) {
        if (out == e && spare) archive_entry_free(spare);
        return s;
      }
    }
  }
  // cpio newc keeps the last link of a set until the end: write what is left.
  for (;;) {
    archive_entry* e = nullptr;
    archive_entry* spare = nullptr;
    archive_entry_linkify(links.get(), &e, &spare);
    if (!e) break;
    Status s = writeEntry(e);
    archive_entry_free(e);
    if (!s.ok()) return s;
  }
  if (archive_write_close(w.get()) != ARCHIVE_OK) return failed(w.get(), "finishing the archive");
  stats.bytes = ctx.bytes;
  return stats;
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
