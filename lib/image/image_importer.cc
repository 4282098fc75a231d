#include "lib/image/image_importer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/image/byte_pipe.h"
#include "lib/image/uri.h"

namespace xenctl::image {
namespace {

constexpr size_t kPipeCapacity = size_t{8} << 20;
constexpr size_t kDetectBytes = size_t{64} << 10;
constexpr uint64_t kMaxSignatureBytes = 4096;
constexpr uint64_t kMaxSumsBytes = uint64_t{1} << 20;

// A small file beside the image, whole. NOT_FOUND passes through.
Result<std::string> fetchSmall(core::Fetcher& fetcher, const std::string& uri, uint64_t limit,
                               const core::FetchOptions& base) {
  core::FetchOptions o = base;
  o.progress = nullptr;
  o.max_bytes = limit;
  std::string out;
  XENCTL_RETURN_IF_ERROR(fetcher
                             .fetch(
                                 uri,
                                 [&](std::string_view chunk) {
                                   out.append(chunk);
                                   return Status();
                                 },
                                 o)
                             .status());
  return out;
}

// Removes the staging directory when the import does not succeed.
class Staging {
 public:
  static Result<Staging> create(const std::string& dest) {
    std::string templ = dest + ".partial-XXXXXX";
    if (!::mkdtemp(templ.data()))
      return errnoStatus(errno, absl::StrCat("creating the staging directory ", templ));
    return Staging(templ);
  }
  Staging(Staging&& o) noexcept : path_(std::exchange(o.path_, "")) {}
  Staging(const Staging&) = delete;
  ~Staging() {
    if (path_.empty()) return;
    std::error_code ec;  // remove_all does not follow symlinks
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit Staging(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// An image whose set-id files and device nodes are kept must land where no
// other user can reach them: an unprivileged user who could walk into the
// tree could run a set-user-id root program from it, or open a device node,
// in the time between the unpacking and the removal of the tree. The
// staging directory is private (mkdtemp: 0700), and so must be the
// directory the tree is then moved into.
Status checkPrivateParent(const std::string& dest, const std::string& uri) {
  const auto slash = dest.rfind('/');
  const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : dest.substr(0, slash);
  struct stat st;
  if (::stat(parent.c_str(), &st) != 0)
    return absl::NotFoundError(absl::StrCat("importing ", uri, ": ", parent, ": ", std::strerror(errno)));
  if (st.st_uid == ::geteuid() && (st.st_mode & 077) == 0) return Status();
  return absl::FailedPreconditionError(absl::StrCat(
      "importing ", uri, ": the image may keep set-id files and device nodes, and ", parent,
      " (where it is unpacked) can be reached by other users (mode ", absl::StrFormat("%04o", st.st_mode & 07777),
      ", owner uid ", st.st_uid, "); unpack it in a directory of mode 0700 owned by uid ", ::geteuid()));
}

}  // namespace

std::string_view toString(SignaturePolicy p) {
  switch (p) {
    case SignaturePolicy::kAuto: return "auto";
    case SignaturePolicy::kSigned: return "signed";
    case SignaturePolicy::kDigest: return "digest";
    case SignaturePolicy::kNone: return "none";
  }
  return "?";
}

Result<SignaturePolicy> parseSignaturePolicy(std::string_view s) {
  for (auto p : {SignaturePolicy::kAuto, SignaturePolicy::kSigned, SignaturePolicy::kDigest, SignaturePolicy::kNone})
    if (toString(p) == s) return p;
  return absl::InvalidArgumentError(
      absl::StrCat("'", av(s), "' is not a signature policy; give auto, signed, digest or none"));
}

Result<std::optional<Sha256Digest>> sha256FromSums(core::Fetcher& fetcher, const std::string& uri,
                                                   const core::FetchOptions& options) {
  std::string sums_uri = siblingUri(uri, "SHA256SUMS");
  auto sums = fetchSmall(fetcher, sums_uri, kMaxSumsBytes, options);
  if (!sums.ok()) {
    if (sums.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
    return sums.status();
  }
  auto d = findInSha256Sums(*sums, uriBasename(uri));
  if (d.ok()) return *d;
  if (d.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
  return annotate(d.status(), absl::StrCat("importing ", uri, ": ", sums_uri));
}

namespace {

// The signature at URI.minisig when the policy wants one: readable,
// prehashed, and by a trusted key (checked again with the data at the end;
// this only fails fast, before the image is downloaded).
Result<std::optional<MinisignSignature>> fetchSignature(core::Fetcher& fetcher, const ImportRequest& request,
                                                        SignaturePolicy policy) {
  if (policy == SignaturePolicy::kNone) return std::nullopt;
  const std::string& uri = request.uri;
  std::optional<MinisignSignature> sig;
  std::string sig_uri = uri + ".minisig";
  auto text = fetchSmall(fetcher, sig_uri, kMaxSignatureBytes, request.fetch);
  if (text.ok()) {
    auto parsed = MinisignSignature::parse(*text);
    if (!parsed.ok())
      return absl::DataLossError(absl::StrCat("importing ", uri, ": the signature ", sig_uri,
                                              " is unreadable: ", parsed.status().message()));
    sig = *parsed;
    if (!sig->prehashed)
      return absl::FailedPreconditionError(absl::StrCat(
          "importing ", uri, ": ", sig_uri,
          " is a legacy minisign signature, which cannot be checked while streaming; sign the image again "
          "with minisign 0.8 or later (prehashed by default)"));
  } else if (text.status().code() != absl::StatusCode::kNotFound) {
    return text.status();
  } else if (policy == SignaturePolicy::kSigned) {
    return absl::FailedPreconditionError(
        request.source.empty()
            ? absl::StrCat("importing ", uri, ": no signature at ", sig_uri,
                           "; remote images must be signed (minisign -S -m IMAGE) by a trusted key, or imported "
                           "with unsigned images allowed")
            : absl::StrCat("importing ", uri, ": no signature at ", sig_uri, "; ", request.source,
                           " wants images signed by one of its trusted keys: sign it (minisign -S -m IMAGE) and "
                           "put the .minisig beside it, or change that source's policy in xenctld's config"));
  }
  if (sig) {
    bool trusted = false;
    for (const auto& k : request.trusted_keys) trusted = trusted || k.key_id == sig->key_id;
    if (!trusted) {
      Status st = verifyMinisignPrehashed(*sig, request.trusted_keys, Blake2b512Digest{});
      return Status(st.code(), absl::StrCat("importing ", uri, ": ", st.message(),
                                            request.source.empty() ? "" : " (the keys of ", request.source,
                                            request.source.empty() ? "" : ")"));
    }
  }
  return sig;
}

// Unpacks the stream in `pipe` into `staged`: a raw ext image copied, an
// archive unpacked, as the request or the first bytes say; then reads the
// rest, which still counts for the digest and the signature.
// *source_failed: the download's error (not the unpacker's) ended it.
Status unpackStream(BytePipe& pipe, const ImportRequest& request, const std::string& staged, ImportResult& result,
                    bool* source_failed) {
  // Read ahead enough to tell a raw ext image from an archive, then give
  // those bytes to the unpacker first.
  std::string prefix;
  bool at_end = false;
  while (prefix.size() < kDetectBytes) {
    auto chunk = pipe.read();
    if (!chunk.ok()) {
      *source_failed = true;
      return chunk.status();
    }
    if (chunk->empty()) {
      at_end = true;
      break;
    }
    prefix += *chunk;
  }
  ImageKind kind = request.format == ImageFormat::kRawExt    ? ImageKind::kRawExt
                   : request.format == ImageFormat::kArchive ? ImageKind::kArchive
                                                             : detectImageKind(prefix);
  result.kind = kind;
  bool prefix_given = false;
  ChunkSource source = [&]() -> Result<std::string> {
    if (!prefix_given) {
      prefix_given = true;
      if (!prefix.empty()) return std::move(prefix);
    }
    if (at_end) return std::string();
    auto chunk = pipe.read();
    if (!chunk.ok()) *source_failed = true;
    if (chunk.ok() && chunk->empty()) at_end = true;
    return chunk;
  };
  ExtractPolicy xpolicy = request.extract;
  if (!xpolicy.stop.stop_possible()) xpolicy.stop = request.fetch.stop;
  Status unpacked;
  if (kind == ImageKind::kRawExt) {
    auto raw = copyRawImage(source, staged, xpolicy);
    if (raw.ok()) result.raw = *raw;
    unpacked = raw.status();
  } else {
    if (::mkdir(staged.c_str(), 0700) != 0)
      unpacked = errnoStatus(errno, absl::StrCat("creating ", staged));
    else {
      auto x = extractArchive(source, staged, xpolicy);
      if (x.ok()) result.extract = *x;
      unpacked = x.status();
    }
  }
  // The archive may end before the stream does (tar pads its end).
  while (unpacked.ok() && !at_end) {
    auto chunk = source();
    if (!chunk.ok()) unpacked = chunk.status();
  }
  return unpacked;
}

// The digest and the signature of what was downloaded (result.sha256 set),
// before anything becomes visible at the destination.
Status verifyImage(const ImportRequest& request, const std::optional<Sha256Digest>& expected,
                   const std::optional<MinisignSignature>& sig, Blake2b512& blake, ImportResult& result) {
  const std::string& uri = request.uri;
  if (expected) {
    if (*expected != result.sha256)
      return absl::DataLossError(absl::StrCat("importing ", uri, ": SHA-256 mismatch: expected ", toHex(*expected),
                                              " (", result.digest_source, "), got ", toHex(result.sha256),
                                              "; the image was altered or is not the one meant; nothing was kept"));
    result.digest_checked = true;
  }
  if (sig) {
    Status st = verifyMinisignPrehashed(*sig, request.trusted_keys, blake.finish());
    if (!st.ok())
      return Status(st.code(), absl::StrCat("importing ", uri, ": ", st.message(), "; nothing was kept"));
    result.signed_ = true;
    result.key_id = keyIdString(sig->key_id);
    result.trusted_comment = sig->trusted_comment;
  }
  return absl::OkStatus();
}

}  // namespace

Result<ImportResult> importImage(core::Fetcher& fetcher, const ImportRequest& request, const std::string& dest) {
  XENCTL_RETURN_IF_ERROR(initSodium());
  XENCTL_ASSIGN_OR_RETURN(std::string scheme, uriScheme(request.uri));
  const std::string& uri = request.uri;
  if (exists(dest))
    return absl::AlreadyExistsError(absl::StrCat("importing ", uri, ": ", dest, " already exists; delete it first"));
  const ExtractPolicy& extract = request.extract;
  if (extract.allow_setid || extract.allow_devices || extract.allow_standard_devices)
    XENCTL_RETURN_IF_ERROR(checkPrivateParent(dest, uri));
  SignaturePolicy policy = request.signature;
  if (policy == SignaturePolicy::kAuto)
    policy = scheme == "file" ? SignaturePolicy::kDigest : SignaturePolicy::kSigned;

  ImportResult result;
  // The signature and the digest come first: a bad or untrusted signature
  // stops the import before the image is downloaded.
  XENCTL_ASSIGN_OR_RETURN(std::optional<MinisignSignature> sig, fetchSignature(fetcher, request, policy));
  std::optional<Sha256Digest> expected = request.sha256;
  if (expected) result.digest_source = request.sha256_source;
  if (!expected && request.use_sha256sums) {
    XENCTL_ASSIGN_OR_RETURN(expected, sha256FromSums(fetcher, uri, request.fetch));
    if (expected) result.digest_source = "SHA256SUMS";
  }

  if (policy == SignaturePolicy::kDigest && !sig && !expected)
    return absl::FailedPreconditionError(absl::StrCat(
        "importing ", uri, ": neither a signature (", uri, ".minisig) nor an expected SHA-256 (given, or in ",
        siblingUri(uri, "SHA256SUMS"), "); give the image's SHA-256, or ",
        request.source.empty() ? "import it with unsigned images allowed"
                               : absl::StrCat("relax the policy of ", request.source, " in xenctld's config")));

  XENCTL_ASSIGN_OR_RETURN(Staging staging, Staging::create(dest));
  const std::string staged = staging.path() + "/image";

  // The download thread hashes and feeds the pipe; this thread unpacks.
  BytePipe pipe(kPipeCapacity);
  Sha256 sha;
  Blake2b512 blake;
  Result<core::FetchResult> fetched = absl::UnknownError("not run");
  std::thread downloader([&] {
    fetched = fetcher.fetch(
        uri,
        [&](std::string_view chunk) {
          sha.update(chunk);
          if (sig) blake.update(chunk);  // only a signature needs it
          return pipe.write(chunk);
        },
        request.fetch);
    pipe.closeWrite(fetched.ok() ? Status() : fetched.status());
  });
  bool source_failed = false;
  Status unpacked = unpackStream(pipe, request, staged, result, &source_failed);
  if (!unpacked.ok()) pipe.closeRead(unpacked);
  downloader.join();
  // The download's error is the one to report when it cut the stream short;
  // otherwise the unpacker's (which also stopped the download).
  if (!unpacked.ok() && !source_failed)
    return annotate(unpacked, absl::StrCat("unpacking ", uri));
  if (!fetched.ok()) return fetched.status();
  if (!unpacked.ok()) return unpacked;
  result.bytes = fetched->bytes;
  result.attempts = fetched->attempts;
  result.resumes = fetched->resumes;

  if (request.on_phase) request.on_phase("verify");
  result.sha256 = sha.finish();
  XENCTL_RETURN_IF_ERROR(verifyImage(request, expected, sig, blake, result));
  if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) != 0)
    return errnoStatus(errno, absl::StrCat("importing ", uri, ": moving the image to ", dest));
  return result;
}

}  // namespace xenctl::image
