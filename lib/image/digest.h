// Streaming digests: SHA-256 (OpenSSL's EVP, which uses the CPU's SHA
// instructions: it must keep up with the download) for content addressing
// and the expected digest; BLAKE2b-512 (libsodium) for minisign's prehashed
// signatures.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sodium.h>

#include "lib/core/status.h"

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace xenctl::image {

using Sha256Digest = std::array<uint8_t, 32>;
using Blake2b512Digest = std::array<uint8_t, 64>;

/// Initialises libsodium once per process; FAILED_PRECONDITION when it cannot.
Status initSodium();

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  /// Ends the hash; the object must not be updated afterwards.
  Sha256Digest finish();

 private:
  evp_md_ctx_st* ctx_;
};

class Blake2b512 {
 public:
  Blake2b512() { crypto_generichash_init(&state_, nullptr, 0, 64); }
  void update(std::string_view data) {
    crypto_generichash_update(&state_, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  }
  Blake2b512Digest finish();

 private:
  crypto_generichash_state state_;
};

Sha256Digest sha256(std::string_view data);

/// Lower-case hex.
std::string toHex(const uint8_t* data, size_t size);
template <size_t N>
std::string toHex(const std::array<uint8_t, N>& d) {
  return toHex(d.data(), N);
}

/// 64 hex digits, optionally prefixed "sha256:"; INVALID_ARGUMENT otherwise.
Result<Sha256Digest> parseSha256(std::string_view text);

/// The digest a SHA256SUMS file (the output of sha256sum, text or binary
/// mode, or the BSD "SHA256 (name) = hex" form) gives for `name`. NOT_FOUND
/// when the file has no line for it; INVALID_ARGUMENT for a malformed line.
Result<Sha256Digest> findInSha256Sums(std::string_view sums, std::string_view name);

}  // namespace xenctl::image
