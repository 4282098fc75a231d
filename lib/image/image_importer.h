// importImage: one pass from a URI to an unpacked, verified image —
// download → hash (SHA-256, BLAKE2b for minisign) → unpack, the three
// overlapping (the fetcher's thread feeds the unpacker through a bounded
// BytePipe), then verify, then move into place. No copy of the archive is
// ever stored.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/fetcher.h"
#include "lib/core/status.h"
#include "lib/image/archive_extractor.h"
#include "lib/image/digest.h"
#include "lib/image/minisign.h"

namespace xenctl::image {

/// How much proof an import needs (the API's SignaturePolicy).
enum class SignaturePolicy {
  kAuto,    ///< kSigned for remote URIs (http, https, ftp), kDigest for file://
  kSigned,  ///< URI.minisig must exist and verify with a trusted key
  kDigest,  ///< a signature when URI.minisig exists, else an expected SHA-256 (request or SHA256SUMS)
  kNone,    ///< no proof needed; URI.minisig is not looked for (an expected SHA-256 is still checked)
};
std::string_view toString(SignaturePolicy p);
Result<SignaturePolicy> parseSignaturePolicy(std::string_view s);

enum class ImageFormat { kAuto, kArchive, kRawExt };

struct ImportRequest {
  std::string uri;
  /// The expected SHA-256 of the bytes at `uri`. When absent, a SHA256SUMS
  /// file beside the image is used if there is one with a line for it.
  std::optional<Sha256Digest> sha256;
  /// Where `sha256` was found, for messages and ImportResult::digest_source.
  std::string sha256_source = "request";
  bool use_sha256sums = true;
  SignaturePolicy signature = SignaturePolicy::kAuto;
  std::vector<MinisignPublicKey> trusted_keys;
  /// Where `signature` and `trusted_keys` come from, for messages
  /// (SourceDecision::source); "" when the caller chose them itself.
  std::string source;
  ImageFormat format = ImageFormat::kAuto;
  ExtractPolicy extract;
  /// Told "verify" once the stream is unpacked and the digests are checked.
  std::function<void(std::string_view phase)> on_phase;
  /// Timeouts, retries, limits, progress and cancellation of the download.
  /// `fetch.stop` also cancels the unpacking.
  core::FetchOptions fetch;
};

struct ImportResult {
  ImageKind kind = ImageKind::kArchive;
  Sha256Digest sha256{};
  uint64_t bytes = 0;           ///< bytes downloaded (the archive's size)
  bool digest_checked = false;  ///< an expected SHA-256 was compared
  std::string digest_source;    ///< "request", "SHA256SUMS" or ""
  bool signed_ = false;         ///< a minisign signature verified
  std::string key_id;           ///< its key, as minisign prints it
  std::string trusted_comment;
  int attempts = 1;
  int resumes = 0;
  ExtractStats extract;  ///< for archives
  RawStats raw;          ///< for raw images
};

/// The SHA-256 that the SHA256SUMS file beside `uri` gives for the image
/// (`sha256sum` output, matched by the URI's last path component); nullopt
/// when there is no such file or no line for the image. Errors: the
/// Fetcher's, and INVALID_ARGUMENT for an unreadable file (naming it).
Result<std::optional<Sha256Digest>> sha256FromSums(core::Fetcher& fetcher, const std::string& uri,
                                                   const core::FetchOptions& options);

/// Fetches, verifies and unpacks `request.uri` to `dest`, which must not
/// exist: a directory for an archive, a sparse file for a raw ext image.
/// Work happens in a sibling "DEST.partial-XXXXXX" that is removed on any
/// failure, so either `dest` appears complete and verified or nothing is
/// kept. When `request.extract` keeps set-id files or device nodes, the
/// directory holding `dest` must be private (owned by this process's user,
/// no access for group or others), or FAILED_PRECONDITION before anything
/// is fetched. Codes: those of the Fetcher and extractArchive, plus
/// DATA_LOSS when the SHA-256 or the signature does not match (both values
/// named), FAILED_PRECONDITION when the policy wants a signature and there
/// is none, ALREADY_EXISTS when `dest` exists.
Result<ImportResult> importImage(core::Fetcher& fetcher, const ImportRequest& request, const std::string& dest);

}  // namespace xenctl::image
