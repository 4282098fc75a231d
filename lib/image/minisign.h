// minisign signatures (https://jedisct1.github.io/minisign/), checked with
// libsodium's Ed25519. Both forms the stock tool writes are read: "ED", the
// default since minisign 0.8, signs the BLAKE2b-512 of the file (so a
// stream can be verified); "Ed", the legacy form (-l), signs the file itself.
// The trusted comment is covered by the global signature (signature bytes ||
// comment) and is checked too.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/image/digest.h"

namespace xenctl::image {

using MinisignKeyId = std::array<uint8_t, 8>;

/// The key id as minisign prints it: upper-case hex, no leading zeros.
std::string keyIdString(const MinisignKeyId& id);

struct MinisignPublicKey {
  MinisignKeyId key_id{};
  std::array<uint8_t, 32> key{};

  /// A .pub file as `minisign -G` writes it (an untrusted comment line, then
  /// the base64 line), or the base64 line alone (as `minisign -P` takes it).
  /// INVALID_ARGUMENT otherwise.
  static Result<MinisignPublicKey> parse(std::string_view text);
};

struct MinisignSignature {
  bool prehashed = true;  ///< "ED": over BLAKE2b-512 of the data; "Ed": over the data
  MinisignKeyId key_id{};
  std::array<uint8_t, 64> signature{};
  std::string trusted_comment;
  std::array<uint8_t, 64> global_signature{};

  /// A .minisig file: untrusted comment, signature, trusted comment, global
  /// signature. INVALID_ARGUMENT (naming the line) otherwise.
  static Result<MinisignSignature> parse(std::string_view text);
};

/// Checks `sig` over `data` held in memory, with the trusted key of the same
/// key id. DATA_LOSS when no trusted key has the signature's id, or when the
/// signature or the trusted comment's signature does not verify; the
/// message names the key ids.
Status verifyMinisign(const MinisignSignature& sig, std::span<const MinisignPublicKey> trusted, std::string_view data);

/// The same for a stream whose BLAKE2b-512 was computed on the way. A legacy
/// ("Ed") signature cannot be checked this way: FAILED_PRECONDITION, saying
/// to sign with a current minisign (prehashed by default).
Status verifyMinisignPrehashed(const MinisignSignature& sig, std::span<const MinisignPublicKey> trusted,
                               const Blake2b512Digest& blake2b);

}  // namespace xenctl::image
