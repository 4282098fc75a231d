// Packing a directory into an image archive (the paper's `create`): cpio
// newc + gzip, as the paper and initrds use, or tar (pax) + zstd. Streamed
// into a sink: nothing is staged on disk.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "lib/core/fetcher.h"
#include "lib/core/status.h"
#include "lib/image/digest.h"

namespace xenctl::image {

enum class ExportFormat { kCpioGz, kTarZst };
std::string_view toString(ExportFormat f);
/// "cpio.gz" or "tar.zst"; INVALID_ARGUMENT otherwise.
Result<ExportFormat> parseExportFormat(std::string_view s);

struct PackStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;  ///< archive bytes given to the sink
};

/// Writes every entry below `dir` (names relative to it, "./etc/hostname"),
/// with modes, owners, times, xattrs and hard links, without following
/// symlinks or crossing into other mounts. NOT_FOUND for a missing `dir`;
/// the sink's error stops it and is returned; CANCELLED when `stop` fires.
Result<PackStats> packDirectory(const std::string& dir, ExportFormat format, const core::ByteSink& sink,
                                std::stop_token stop = {});

/// The format an archive stored at `uri` gets when nothing else says: tar.zst
/// for a name ending in ".tar.zst" or ".tzst", else cpio.gz (the paper's).
ExportFormat exportFormatFor(std::string_view uri);

/// Writes an archive entry by entry into a sink, for a tree that is not a
/// host directory (a file system read offline through the FileTree port).
/// Names are relative ("./etc/hostname"); the caller gives parents first.
class EntryWriter {
 public:
  /// The sink must outlive the writer; its error stops the writer and is
  /// what the failing call returns.
  static Result<std::unique_ptr<EntryWriter>> open(ExportFormat format, const core::ByteSink& sink);
  ~EntryWriter();
  Status directory(std::string_view name, uint32_t mode, uint32_t uid, uint32_t gid);
  Status file(std::string_view name, std::string_view content, uint32_t mode, uint32_t uid, uint32_t gid);
  Status symlink(std::string_view name, std::string_view target, uint32_t uid, uint32_t gid);
  /// Ends the archive (its trailer); the stats of what was written.
  Result<PackStats> close();

 private:
  struct Impl;
  explicit EntryWriter(std::unique_ptr<Impl> impl);
  Status add(std::string_view name, unsigned type, uint32_t mode, uint32_t uid, uint32_t gid,
             std::string_view content, std::string_view link);
  std::unique_ptr<Impl> impl_;
};

struct ExportResult {
  PackStats pack;
  Sha256Digest sha256{};  ///< of the archive as stored (to publish in a SHA256SUMS)
};

/// Packs `dir` and stores the archive at `uri` (file://, ftp://, http(s)://
/// PUT) through `fetcher` in one stream: the packer's thread feeds the
/// upload through a bounded pipe. `options.stop` cancels both. Codes: those
/// of packDirectory and Fetcher::put.
Result<ExportResult> exportDirectory(core::Fetcher& fetcher, const std::string& dir, ExportFormat format,
                                     const std::string& uri, const core::FetchOptions& options);

/// What exportDirectory does around its packer, for any packer: `pack`
/// runs in a thread of its own and writes the archive into the sink it is
/// given, which feeds the upload to `uri` through a bounded pipe.
/// `options.stop` cancels the upload; `pack` watches it itself.
Result<ExportResult> exportArchive(core::Fetcher& fetcher,
                                   const std::function<Result<PackStats>(const core::ByteSink&)>& pack,
                                   const std::string& uri, const core::FetchOptions& options);

}  // namespace xenctl::image
