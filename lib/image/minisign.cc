#include "lib/image/minisign.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace xenctl::image {
namespace {

Result<std::vector<uint8_t>> base64(absl::string_view text, std::string_view what) {
  std::vector<uint8_t> out(text.size());
  size_t len = 0;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return absl::InvalidArgumentError(absl::StrCat(av(what), " is not valid base64"));
  out.resize(len);
  return out;
}

std::vector<absl::string_view> lines(std::string_view text) {
  std::vector<absl::string_view> out;
  for (absl::string_view l : absl::StrSplit(av(text), '\n')) {
    l = absl::StripTrailingAsciiWhitespace(l);
    if (!l.empty()) out.push_back(l);
  }
  return out;
}

Result<const MinisignPublicKey*> findKey(const MinisignSignature& sig, std::span<const MinisignPublicKey> trusted) {
  for (const auto& k : trusted)
    if (k.key_id == sig.key_id) return &k;
  std::vector<std::string> ids;
  for (const auto& k : trusted) ids.push_back(keyIdString(k.key_id));
  return absl::DataLossError(absl::StrCat("signed by minisign key ", keyIdString(sig.key_id),
                                          ", which is not a trusted key (trusted: ",
                                          ids.empty() ? "none" : absl::StrJoin(ids, ", "),
                                          "); add its public key to the trusted keys if you trust the signer"));
}

Status verifyWith(const MinisignSignature& sig, const MinisignPublicKey& key, const uint8_t* msg, size_t len) {
  if (crypto_sign_verify_detached(sig.signature.data(), msg, len, key.key.data()) != 0)
    return absl::DataLossError(absl::StrCat("minisign signature by key ", keyIdString(key.key_id),
                                            " does not match the data: the image was altered or is not "
                                            "the one that was signed"));
  std::string global(reinterpret_cast<const char*>(sig.signature.data()), sig.signature.size());
  global += sig.trusted_comment;
  if (crypto_sign_verify_detached(sig.global_signature.data(), reinterpret_cast<const uint8_t*>(global.data()),
                                  global.size(), key.key.data()) != 0)
    return absl::DataLossError(absl::StrCat("the trusted comment of the minisign signature by key ",
                                            keyIdString(key.key_id), " ('", sig.trusted_comment,
                                            "') was altered"));
  return Status();
}

}  // namespace

std::string keyIdString(const MinisignKeyId& id) {
  // minisign prints the id as a little-endian 64-bit number with %PRIX64:
  // upper case, no leading zeros.
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v |= uint64_t{id[i]} << (8 * i);
  return absl::StrFormat("%X", v);
}

Result<MinisignPublicKey> MinisignPublicKey::parse(std::string_view text) {
  XENCTL_RETURN_IF_ERROR(initSodium());
  auto ls = lines(text);
  if (!ls.empty() && absl::StartsWith(ls.front(), "untrusted comment:")) ls.erase(ls.begin());
  if (ls.size() != 1)
    return absl::InvalidArgumentError(
        "a minisign public key is one base64 line, optionally after an 'untrusted comment:' line");
  XENCTL_ASSIGN_OR_RETURN(auto raw, base64(ls[0], "the minisign public key"));
  if (raw.size() != 42 || raw[0] != 'E' || raw[1] != 'd')
    return absl::InvalidArgumentError("not a minisign Ed25519 public key (expected 42 bytes starting 'Ed')");
  MinisignPublicKey k;
  std::memcpy(k.key_id.data(), raw.data() + 2, 8);
  std::memcpy(k.key.data(), raw.data() + 10, 32);
  return k;
}

Result<MinisignSignature> MinisignSignature::parse(std::string_view text) {
  XENCTL_RETURN_IF_ERROR(initSodium());
  auto ls = lines(text);
  if (ls.size() != 4 || !absl::StartsWith(ls[0], "untrusted comment:") ||
      !absl::StartsWith(ls[2], "trusted comment: "))
    return absl::InvalidArgumentError(
        "not a minisign signature: expected 4 lines (untrusted comment, signature, trusted comment, "
        "global signature)");
  XENCTL_ASSIGN_OR_RETURN(auto raw, base64(ls[1], "line 2 of the minisign signature"));
  if (raw.size() != 74 || raw[0] != 'E' || (raw[1] != 'D' && raw[1] != 'd'))
    return absl::InvalidArgumentError(
        "line 2 of the minisign signature is not an Ed25519 signature (expected 74 bytes starting 'ED' or 'Ed')");
  MinisignSignature s;
  s.prehashed = raw[1] == 'D';
  std::memcpy(s.key_id.data(), raw.data() + 2, 8);
  std::memcpy(s.signature.data(), raw.data() + 10, 64);
  absl::string_view comment = ls[2];
  absl::ConsumePrefix(&comment, "trusted comment: ");
  s.trusted_comment = std::string(comment);
  XENCTL_ASSIGN_OR_RETURN(auto global, base64(ls[3], "line 4 of the minisign signature"));
  if (global.size() != 64)
    return absl::InvalidArgumentError("line 4 of the minisign signature is not a 64-byte global signature");
  std::memcpy(s.global_signature.data(), global.data(), 64);
  return s;
}

Status verifyMinisign(const MinisignSignature& sig, std::span<const MinisignPublicKey> trusted, std::string_view data) {
  if (sig.prehashed) {
    Blake2b512 h;
    h.update(data);
    return verifyMinisignPrehashed(sig, trusted, h.finish());
  }
  XENCTL_ASSIGN_OR_RETURN(const MinisignPublicKey* key, findKey(sig, trusted));
  return verifyWith(sig, *key, reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

Status verifyMinisignPrehashed(const MinisignSignature& sig, std::span<const MinisignPublicKey> trusted,
                               const Blake2b512Digest& blake2b) {
  if (!sig.prehashed)
    return absl::FailedPreconditionError(
        "the minisign signature is a legacy one (not prehashed), which cannot be checked on a stream; "
        "sign the image again with minisign 0.8 or later (prehashed by default) or with 'minisign -S -H'");
  XENCTL_ASSIGN_OR_RETURN(const MinisignPublicKey* key, findKey(sig, trusted));
  return verifyWith(sig, *key, blake2b.data(), blake2b.size());
}

}  // namespace xenctl::image
