// libFuzzer entry for SHA256SUMS files (findInSha256Sums) and digests
// (parseSha256). The input's first line is the name looked up, the rest the
// file; the whole input is also tried as a digest.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/image/digest.h"

using namespace xenctl::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view name = "debian-12.tar.zst", sums = in;
  if (auto nl = in.find('\n'); nl != std::string_view::npos) {
    name = in.substr(0, nl);
    sums = in.substr(nl + 1);
  }
  auto found = findInSha256Sums(sums, name);
  if (found.ok() && parseSha256(toHex(*found)).value_or(Sha256Digest{}) != *found) std::abort();
  (void)parseSha256(in);
  return 0;
}
