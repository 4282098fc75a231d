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

// Sets `w`'s format and filter and opens it onto `ctx`'s sink.
int openWriter(archive* w, ExportFormat format, WriteCtx* ctx) {
  if (format == ExportFormat::kCpioGz) {
    archive_write_set_format_cpio_newc(w);
    archive_write_add_filter_gzip(w);
  } else {
    archive_write_set_format_pax_restricted(w);
    archive_write_add_filter_zstd(w);
  }
  archive_write_set_bytes_in_last_block(w, 1);
  return archive_write_open(w, ctx, nullptr, writeCallback, nullptr);
}

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
    if (openWriter(w_.get(), format, &ctx_) != ARCHIVE_OK) return failed(w_.get(), "opening the archive");
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

ExportFormat exportFormatFor(std::string_view uri) {
  return uri.ends_with(".tar.zst") || uri.ends_with(".tzst") ? ExportFormat::kTarZst : ExportFormat::kCpioGz;
}

struct EntryWriter::Impl {
  WriteCtx ctx;
  std::unique_ptr<archive, Deleters> w{archive_write_new()};
  PackStats stats;
  bool closed = false;
  Status failed(std::string_view what) const {
    if (!ctx.status.ok()) return ctx.status;
    const char* msg = archive_error_string(w.get());
    return absl::InternalError(absl::StrCat("writing the archive: ", av(what), ": ", msg ? msg : "libarchive error"));
  }
};

EntryWriter::EntryWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EntryWriter::~EntryWriter() = default;

Result<std::unique_ptr<EntryWriter>> EntryWriter::open(ExportFormat format, const core::ByteSink& sink) {
  auto impl = std::make_unique<Impl>();
  impl->ctx.sink = &sink;
  if (openWriter(impl->w.get(), format, &impl->ctx) != ARCHIVE_OK) return impl->failed("opening it");
  return std::unique_ptr<EntryWriter>(new EntryWriter(std::move(impl)));
}

Status EntryWriter::add(std::string_view name, unsigned type, uint32_t mode, uint32_t uid, uint32_t gid,
                        std::string_view content, std::string_view link) {
  std::unique_ptr<archive_entry, Deleters> e(archive_entry_new());
  archive_entry_copy_pathname(e.get(), std::string(name).c_str());
  archive_entry_set_filetype(e.get(), type);
  archive_entry_set_perm(e.get(), mode & 07777);
  archive_entry_set_uid(e.get(), uid);
  archive_entry_set_gid(e.get(), gid);
  archive_entry_set_nlink(e.get(), type == AE_IFDIR ? 2 : 1);
  // cpio newc needs an inode number per entry, or readers take them as hard links.
  archive_entry_set_ino(e.get(), static_cast<la_int64_t>(impl_->stats.entries + 1));
  if (type == AE_IFLNK) archive_entry_copy_symlink(e.get(), std::string(link).c_str());
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(type == AE_IFREG ? content.size() : 0));
  if (archive_write_header(impl_->w.get(), e.get()) < ARCHIVE_WARN) return impl_->failed(name);
  ++impl_->stats.entries;
  if (!content.empty() && archive_write_data(impl_->w.get(), content.data(), content.size()) < 0)
    return impl_->failed(name);
  return Status();
}

Status EntryWriter::directory(std::string_view name, uint32_t mode, uint32_t uid, uint32_t gid) {
  return add(name, AE_IFDIR, mode, uid, gid, {}, {});
}
Status EntryWriter::file(std::string_view name, std::string_view content, uint32_t mode, uint32_t uid, uint32_t gid) {
  return add(name, AE_IFREG, mode, uid, gid, content, {});
}
Status EntryWriter::symlink(std::string_view name, std::string_view target, uint32_t uid, uint32_t gid) {
  return add(name, AE_IFLNK, 0777, uid, gid, {}, target);
}

Result<PackStats> EntryWriter::close() {
  if (archive_write_close(impl_->w.get()) != ARCHIVE_OK) return impl_->failed("finishing it");
  impl_->stats.bytes = impl_->ctx.bytes;
  return impl_->stats;
}

Result<ExportResult> exportDirectory(core::Fetcher& fetcher, const std::string& dir, ExportFormat format,
                                     const std::string& uri, const core::FetchOptions& options) {
  return exportArchive(
      fetcher, [&](const core::ByteSink& sink) { return packDirectory(dir, format, sink, options.stop); }, uri,
      options);
}

Result<ExportResult> exportArchive(core::Fetcher& fetcher,
                                   const std::function<Result<PackStats>(const core::ByteSink&)>& pack,
                                   const std::string& uri, const core::FetchOptions& options) {
  XENCTL_RETURN_IF_ERROR(uriScheme(uri).status());
  BytePipe pipe(size_t{8} << 20);
  Sha256 sha;
  Result<PackStats> packed = absl::UnknownError("not run");
  std::thread packer([&] {
    packed = pack([&](std::string_view chunk) {
      sha.update(chunk);
      return pipe.write(chunk);
    });
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
