// Which proof an image needs, by where it comes from. The administrator
// declares sources ([[images.source]] in xenctld's config): a URI prefix, a
// policy, optionally the only keys that vouch for it. The longest matching
// prefix applies; without a match the built-in defaults do: remote URIs
// (http, https, ftp) must be signed by a key of [images] trusted_keys, and a
// request cannot lower that; file:// needs a signature or a digest, and a
// request may lower it. A request may always ask for more proof than its
// source's policy, and for less only where the source allows it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/image/image_importer.h"
#include "lib/image/minisign.h"

namespace xenctl::image {

struct ImageSource {
  /// A URI prefix, e.g. "https://images.example/debian/". It matches a URI
  /// that starts with it at a path boundary (the prefix ends with '/', or the
  /// URI goes on with '/', '?' or '#', or ends), so "https://h/deb" does not
  /// match "https://h/debian/x". Scheme and host compare case-insensitively.
  std::string prefix;
  /// kSigned, kDigest or kNone (never kAuto).
  SignaturePolicy policy = SignaturePolicy::kSigned;
  /// The only keys that vouch for this source's images (as apt's signed-by);
  /// nullopt: the default keys ([images] trusted_keys).
  std::optional<std::vector<MinisignPublicKey>> trusted_keys;
  /// A request may ask for less proof than `policy` (vm-image import
  /// --allow-unsigned). Off: such a request is refused.
  bool allow_unsigned_requests = false;
};

/// What an import from one URI must prove, and what vouches for it.
struct SourceDecision {
  SignaturePolicy policy = SignaturePolicy::kSigned;  ///< never kAuto
  std::vector<MinisignPublicKey> trusted_keys;
  /// Names the source for messages: `source "https://h/debian/"`, or `the
  /// default for remote URIs (no [[images.source]] matches)`.
  std::string source;
};

class ImageSources {
 public:
  /// The built-in defaults only, vouched for by `default_keys`.
  explicit ImageSources(std::vector<MinisignPublicKey> default_keys = {});

  /// INVALID_ARGUMENT naming the source's prefix: a prefix that is not a URI
  /// xenctl fetches or not in normal form, one declared twice, the policy
  /// kAuto, or a signed source without any key to check its signatures.
  static Result<ImageSources> create(std::vector<ImageSource> sources, std::vector<MinisignPublicKey> default_keys);

  /// The policy and keys for importing `uri` when the request asks for
  /// `requested` (kAuto: the source's). A request asking for less proof than
  /// its source wants is PERMISSION_DENIED unless the source allows unsigned
  /// requests; the message names the source, the URI and what to change.
  /// INVALID_ARGUMENT for a URI xenctl does not fetch, or whose path is not in
  /// normal form ('.', '..', '//', or '.', '/' or '\' percent-encoded), as
  /// such a URI could name a file under one prefix while matching another.
  Result<SourceDecision> choose(std::string_view uri, SignaturePolicy requested) const;

 private:
  std::vector<ImageSource> sources_;
  std::vector<MinisignPublicKey> default_keys_;
};

}  // namespace xenctl::image
