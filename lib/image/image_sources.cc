#include "lib/image/image_sources.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lib/image/uri.h"

namespace xenctl::image {
namespace {

// Proof ordered from least to most.
int strength(SignaturePolicy p) {
  switch (p) {
    case SignaturePolicy::kNone: return 0;
    case SignaturePolicy::kDigest: return 1;
    case SignaturePolicy::kSigned: return 2;
    case SignaturePolicy::kAuto: break;
  }
  return -1;
}

// "scheme://authority" and the rest of the URI.
std::pair<std::string, std::string_view> splitOrigin(std::string_view uri) {
  size_t sep = uri.find("://");
  if (sep == std::string_view::npos) return {"", uri};
  size_t path = uri.find_first_of("/?#", sep + 3);
  if (path == std::string_view::npos) path = uri.size();
  return {absl::AsciiStrToLower(av(uri.substr(0, path))), uri.substr(path)};
}

// OK when the URI's path has no '.', '..' or empty segment and no encoded
// '.', '/' or '\': two spellings of one file could otherwise match different
// sources.
Status checkNormalForm(std::string_view uri, std::string_view what) {
  auto [origin, rest] = splitOrigin(uri);
  std::string_view path = rest.substr(0, rest.find_first_of("?#"));
  std::string lower = absl::AsciiStrToLower(av(path));
  bool bad = absl::StrContains(lower, "%2e") || absl::StrContains(lower, "%2f") || absl::StrContains(lower, "%5c");
  std::vector<absl::string_view> segments = absl::StrSplit(av(path), '/');
  for (size_t i = 1; i < segments.size() && !bad; ++i) {  // segments[0] is before the leading '/'
    const bool last = i + 1 == segments.size();
    bad = segments[i] == "." || segments[i] == ".." || (segments[i].empty() && !last);
  }
  if (!bad) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(av(what), " '", av(uri),
                                                  "' is not in normal form; write its path without '.', '..', '//' "
                                                  "or percent-encoded '.', '/' and '\\'"));
}

// Whether `prefix` (origin lower-cased) matches `uri` at a path boundary.
bool matches(const ImageSource& source, std::string_view uri) {
  auto [p_origin, p_rest] = splitOrigin(source.prefix);
  auto [u_origin, u_rest] = splitOrigin(uri);
  if (p_origin != u_origin || !absl::StartsWith(av(u_rest), av(p_rest))) return false;
  if (u_rest.size() == p_rest.size() || (!p_rest.empty() && p_rest.back() == '/')) return true;
  const char next = u_rest[p_rest.size()];
  return next == '/' || next == '?' || next == '#';
}

std::string describe(const ImageSource& s) { return absl::StrCat("source \"", s.prefix, "\""); }

}  // namespace

ImageSources::ImageSources(std::vector<MinisignPublicKey> default_keys) : default_keys_(std::move(default_keys)) {}

Result<ImageSources> ImageSources::create(std::vector<ImageSource> sources,
                                          std::vector<MinisignPublicKey> default_keys) {
  ImageSources out(std::move(default_keys));
  for (size_t i = 0; i < sources.size(); ++i) {
    const ImageSource& s = sources[i];
    const std::string what = absl::StrCat("image ", describe(s));
    if (Status st = uriScheme(s.prefix).status(); !st.ok())
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", st.message()));
    XENCTL_RETURN_IF_ERROR(checkNormalForm(s.prefix, what + ": the prefix"));
    if (s.policy == SignaturePolicy::kAuto)
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": the policy must be \"signed\", \"digest\" or \"none\""));
    for (size_t j = 0; j < i; ++j)
      if (splitOrigin(sources[j].prefix) == splitOrigin(s.prefix))
        return absl::InvalidArgumentError(absl::StrCat(what, " is declared twice; keep one"));
    const auto& keys = s.trusted_keys ? *s.trusted_keys : out.default_keys_;
    if (s.policy == SignaturePolicy::kSigned && keys.empty())
      return absl::InvalidArgumentError(absl::StrCat(
          what, " wants signed images but has no key to check them with; give its trusted_keys or [images] "
                "trusted_keys, or another policy"));
  }
  out.sources_ = std::move(sources);
  return out;
}

Result<SourceDecision> ImageSources::choose(std::string_view uri, SignaturePolicy requested) const {
  XENCTL_ASSIGN_OR_RETURN(std::string scheme, uriScheme(uri));
  XENCTL_RETURN_IF_ERROR(checkNormalForm(uri, "image URI"));
  const ImageSource* best = nullptr;
  for (const ImageSource& s : sources_)
    if (matches(s, uri) && (!best || s.prefix.size() > best->prefix.size())) best = &s;

  SourceDecision d;
  bool may_lower;
  if (best) {
    d.policy = best->policy;
    d.trusted_keys = best->trusted_keys ? *best->trusted_keys : default_keys_;
    d.source = describe(*best);
    may_lower = best->allow_unsigned_requests;
  } else {
    const bool local = scheme == "file";
    d.policy = local ? SignaturePolicy::kDigest : SignaturePolicy::kSigned;
    d.trusted_keys = default_keys_;
    d.source = local ? "the default for file:// URIs (no [[images.source]] matches)"
                     : "the default for remote URIs (no [[images.source]] matches)";
    may_lower = local;
  }
  if (requested == SignaturePolicy::kAuto || strength(requested) >= strength(d.policy)) {
    if (requested != SignaturePolicy::kAuto) d.policy = requested;
    return d;
  }
  if (may_lower) {
    d.policy = requested;
    return d;
  }
  std::string remedy =
      best ? absl::StrCat("set allow_unsigned_requests = true or a weaker policy in the [[images.source]] with prefix \"",
                          best->prefix, "\" of xenctld's config")
           : absl::StrCat("add an [[images.source]] whose prefix matches it, with policy = \"",
                          av(toString(requested)), "\" or allow_unsigned_requests = true, to xenctld's config");
  return absl::PermissionDeniedError(absl::StrCat(
      "importing ", av(uri), ": ", d.source, " wants ",
      d.policy == SignaturePolicy::kSigned ? "a signature by a trusted key" : "a signature or an expected SHA-256",
      " and does not let a request lower that to '", av(toString(requested)),
      "' (--allow-unsigned); sign the image (minisign -S -m IMAGE), or ", remedy));
}

}  // namespace xenctl::image
