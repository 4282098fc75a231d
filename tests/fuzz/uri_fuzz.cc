// libFuzzer entry for image URIs and the image source policy. The input is
// a URI, or "PREFIX\nURI": PREFIX is declared as a source, URI is chosen
// against it. A source whose prefix matches must be the one chosen, and a
// URI that is not in normal form is never matched.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/image/image_sources.h"
#include "lib/image/uri.h"

using namespace xenctl::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view prefix, uri = in;
  if (auto nl = in.find('\n'); nl != std::string_view::npos) {
    prefix = in.substr(0, nl);
    uri = in.substr(nl + 1);
  }
  (void)uriScheme(uri);
  (void)uriBasename(uri);
  (void)siblingUri(uri, "SHA256SUMS");

  MinisignPublicKey key;
  key.key_id[0] = 1;
  std::vector<ImageSource> sources;
  if (!prefix.empty()) {
    ImageSource s;
    s.prefix = std::string(prefix);
    s.policy = SignaturePolicy::kNone;
    sources.push_back(std::move(s));
  }
  auto made = ImageSources::create(std::move(sources), {key});
  if (!made.ok()) {
    if (made.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    made = ImageSources::create({}, {key});
    if (!made.ok()) std::abort();
  }
  for (auto requested : {SignaturePolicy::kAuto, SignaturePolicy::kSigned, SignaturePolicy::kNone}) {
    auto d = made->choose(uri, requested);
    if (d.ok() && d->policy == SignaturePolicy::kAuto) std::abort();
  }
  return 0;
}
