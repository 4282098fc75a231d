#include "lib/image/digest.h"

#include <openssl/evp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace xenctl::image {

Status initSodium() {
  static const int rc = sodium_init();
  if (rc < 0) return absl::FailedPreconditionError("initialising libsodium failed (sodium_init)");
  return Status();
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  // Fails only without memory, which the next calls would then report as a
  // wrong digest, never as a right one.
  if (ctx_) EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::update(std::string_view data) {
  if (ctx_) EVP_DigestUpdate(ctx_, data.data(), data.size());
}

Sha256Digest Sha256::finish() {
  Sha256Digest d{};
  unsigned int n = 0;
  if (ctx_) EVP_DigestFinal_ex(ctx_, d.data(), &n);
  return d;
}

Blake2b512Digest Blake2b512::finish() {
  Blake2b512Digest d;
  crypto_generichash_final(&state_, d.data(), d.size());
  return d;
}

Sha256Digest sha256(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

std::string toHex(const uint8_t* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

Result<Sha256Digest> parseSha256(std::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(av(text));
  absl::ConsumePrefix(&t, "sha256:");
  Sha256Digest d;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = absl::ascii_tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  bool ok = t.size() == 64;
  for (size_t i = 0; ok && i < 32; ++i) {
    int hi = nibble(t[2 * i]), lo = nibble(t[2 * i + 1]);
    if (hi < 0 || lo < 0) ok = false;
    else d[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  if (!ok)
    return absl::InvalidArgumentError(
        absl::StrCat("'", t, "' is not a SHA-256 digest; give 64 hex digits (as sha256sum prints)"));
  return d;
}

Result<Sha256Digest> findInSha256Sums(std::string_view sums, std::string_view name) {
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(av(sums), '\n')) {
    ++line_no;
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    absl::string_view hex, file;
    if (absl::ConsumePrefix(&line, "SHA256 (")) {
      size_t close = line.rfind(") = ");
      if (close == absl::string_view::npos)
        return absl::InvalidArgumentError(absl::StrCat("SHA256SUMS line ", line_no, " is malformed"));
      file = line.substr(0, close);
      hex = line.substr(close + 4);
    } else {
      size_t sp = line.find(' ');
      if (sp == absl::string_view::npos || sp + 2 > line.size())
        return absl::InvalidArgumentError(absl::StrCat("SHA256SUMS line ", line_no, " is malformed"));
      hex = line.substr(0, sp);
      file = line.substr(sp + 2);  // "  name" (text) or " *name" (binary)
      absl::ConsumePrefix(&file, "./");
    }
    if (file != av(name)) continue;
    auto d = parseSha256(std::string_view(hex.data(), hex.size()));
    if (!d.ok())
      return absl::InvalidArgumentError(absl::StrCat("SHA256SUMS line ", line_no, ": ", d.status().message()));
    return d;
  }
  return absl::NotFoundError(absl::StrCat("SHA256SUMS has no line for '", av(name), "'"));
}

}  // namespace xenctl::image
