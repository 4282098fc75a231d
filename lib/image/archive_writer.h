// Packing a directory into an image archive (the paper's `create`): cpio
// newc + gzip, as the paper and initrds use, or tar (pax) + zstd. Streamed
// into a sink: nothing is staged on disk.
#pragma once

#include <cstdint>
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

}  // namespace xenctl::image
