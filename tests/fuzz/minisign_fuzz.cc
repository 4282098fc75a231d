// libFuzzer entry for minisign public keys and signatures. The input is
// parsed as a key and as a .minisig; a signature that parses is verified
// against a fixed key over a fixed text (it must fail cleanly: the fuzzer
// cannot forge Ed25519).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/image/minisign.h"

using namespace xenctl::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto key = MinisignPublicKey::parse(text);
  if (key.ok()) (void)keyIdString(key->key_id);
  auto sig = MinisignSignature::parse(text);
  if (!sig.ok()) return 0;
  MinisignPublicKey trusted;
  trusted.key_id = sig->key_id;  // the same id, so that the signature itself is checked
  MinisignPublicKey keys[] = {trusted};
  if (verifyMinisign(*sig, keys, "image bytes").ok()) std::abort();
  Blake2b512Digest digest{};
  if (verifyMinisignPrehashed(*sig, keys, digest).ok()) std::abort();
  return 0;
}
