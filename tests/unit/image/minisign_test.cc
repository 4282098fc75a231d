#include "lib/image/minisign.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/image/digest.h"
#include "tests/support/minisign_vectors.h"

namespace xenctl::image {
namespace {

using ::testing::HasSubstr;

// kMessage, kPublicKey and kPrehashedSig: tests/support/minisign_vectors.h.
// kLegacySig: written by the same minisign 0.11 with `minisign -S -l` (legacy).
constexpr std::string_view kMessage = ::xenctl::testing::kMinisignMessage;
constexpr std::string_view kPublicKey = ::xenctl::testing::kMinisignPublicKey;
constexpr std::string_view kPrehashedSig = ::xenctl::testing::kMinisignPrehashedSig;
constexpr std::string_view kLegacySig =
    "untrusted comment: signature from minisign secret key\n"
    "RWQbgRk1+h/bU5k9MFSqXn22R3sz3ljzTOvYJVDtVkwE/WzcFWqafjf9pu8uBFFbH04E6f0gMI2oFaqd9hZHX4G/wFD5PVa6qAw=\n"
    "trusted comment: legacy one\n"
    "JYXF9CuePZmTlp1v7LA+NVnj8/sjCtd8EmbEKnguCPzk/Z7551MWxdNTAGk6DtySPR/UrPxev9czvf9UafANBQ==\n";

MinisignPublicKey key() { return MinisignPublicKey::parse(kPublicKey).value(); }

// The key file parses, with the id minisign prints.
TEST(Minisign, ParsesPublicKey) {
  auto k = MinisignPublicKey::parse(kPublicKey);
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(keyIdString(k->key_id), "53DB1FFA3519811B");
  MinisignKeyId small{0xBD, 0x0B, 0x3E, 0x8E, 0xDD, 0xA5, 0x1E, 0x0D};
  EXPECT_EQ(keyIdString(small), "D1EA5DD8E3E0BBD") << "as minisign prints it, without leading zeros";
  auto bare = MinisignPublicKey::parse("RWQbgRk1+h/bU3mtkquF5h/GkgsQh2lW2xQXMJ74ldXzZT6gsgLhLBNz");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->key, k->key);
  EXPECT_EQ(MinisignPublicKey::parse("RWQbgRk1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MinisignPublicKey::parse("not base64 !!").status().code(), absl::StatusCode::kInvalidArgument);
}

// The default (prehashed, "ED") signature verifies, over the data and over its BLAKE2b.
TEST(Minisign, PrehashedSignatureVerifies) {
  auto sig = MinisignSignature::parse(kPrehashedSig);
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_TRUE(sig->prehashed);
  EXPECT_EQ(sig->trusted_comment, "timestamp:1 file:msg.txt");
  std::vector<MinisignPublicKey> keys{key()};
  EXPECT_TRUE(verifyMinisign(*sig, keys, kMessage).ok());
  Blake2b512 h;
  h.update(kMessage.substr(0, 5));
  h.update(kMessage.substr(5));
  EXPECT_TRUE(verifyMinisignPrehashed(*sig, keys, h.finish()).ok());
}

// The legacy ("Ed") signature verifies over data in memory, and is refused for a stream.
TEST(Minisign, LegacySignature) {
  auto sig = MinisignSignature::parse(kLegacySig);
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_FALSE(sig->prehashed);
  std::vector<MinisignPublicKey> keys{key()};
  EXPECT_TRUE(verifyMinisign(*sig, keys, kMessage).ok());
  EXPECT_EQ(verifyMinisign(*sig, keys, "hello golden imagE\n").code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(verifyMinisignPrehashed(*sig, keys, Blake2b512Digest{}).code(), absl::StatusCode::kFailedPrecondition);
}

// Altered data is DATA_LOSS naming the key.
TEST(Minisign, AlteredDataIsDataLoss) {
  auto sig = MinisignSignature::parse(kPrehashedSig).value();
  std::vector<MinisignPublicKey> keys{key()};
  Status st = verifyMinisign(sig, keys, "hello golden image!\n");
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("53DB1FFA3519811B does not match the data"));
}

// An altered trusted comment fails the global signature.
TEST(Minisign, AlteredTrustedCommentIsDataLoss) {
  std::string text(kPrehashedSig);
  text.replace(text.find("timestamp:1"), 11, "timestamp:2");
  auto sig = MinisignSignature::parse(text).value();
  std::vector<MinisignPublicKey> keys{key()};
  Status st = verifyMinisign(sig, keys, kMessage);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("trusted comment"));
}

// A signature by a key that is not trusted names both key ids.
TEST(Minisign, UntrustedKeyIsRefused) {
  auto sig = MinisignSignature::parse(kPrehashedSig).value();
  MinisignPublicKey other = key();
  other.key_id[0] ^= 1;
  other.key[0] ^= 1;
  std::vector<MinisignPublicKey> keys{other};
  Status st = verifyMinisign(sig, keys, kMessage);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("key 53DB1FFA3519811B, which is not a trusted key (trusted: 53DB1FFA3519811A)"));
  EXPECT_THAT(std::string(verifyMinisign(sig, {}, kMessage).message()), HasSubstr("trusted: none"));
}

// The same id with another key (a forged id) does not verify.
TEST(Minisign, ForgedKeyIdDoesNotVerify) {
  auto sig = MinisignSignature::parse(kPrehashedSig).value();
  MinisignPublicKey forged = key();
  forged.key[5] ^= 0x40;
  std::vector<MinisignPublicKey> keys{forged};
  EXPECT_EQ(verifyMinisign(sig, keys, kMessage).code(), absl::StatusCode::kDataLoss);
}

// Malformed signature files are INVALID_ARGUMENT.
TEST(Minisign, MalformedSignatures) {
  EXPECT_EQ(MinisignSignature::parse("").status().code(), absl::StatusCode::kInvalidArgument);
  std::string text(kPrehashedSig);
  EXPECT_EQ(MinisignSignature::parse(text.substr(0, text.rfind("trusted comment"))).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string bad_alg = text;
  bad_alg.replace(bad_alg.find("RUQ"), 3, "RUX");  // "EE" instead of "ED"
  EXPECT_EQ(MinisignSignature::parse(bad_alg).status().code(), absl::StatusCode::kInvalidArgument);
}

// SHA-256 streams to the known digest; hex parses both ways.
TEST(Digest, Sha256) {
  EXPECT_EQ(toHex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("hello golden ");
  h.update("image\n");
  EXPECT_EQ(toHex(h.finish()), "2d485fe5bc2be6504479db69dd870953c96d07a848c2ce6db98b5f7e4914a6ba");
  auto d = parseSha256("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, sha256("abc"));
  EXPECT_EQ(parseSha256("ba7816").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parseSha256(std::string(64, 'g')).status().code(), absl::StatusCode::kInvalidArgument);
}

// SHA256SUMS in sha256sum's text and binary forms and the BSD form.
TEST(Digest, Sha256Sums) {
  std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
  std::string sums = a + "  debian.tar.zst\n" + b + " *alpine.cpio.gz\n# comment\nSHA256 (raw.img) = " + c + "\n";
  EXPECT_EQ(toHex(findInSha256Sums(sums, "debian.tar.zst").value()), a);
  EXPECT_EQ(toHex(findInSha256Sums(sums, "alpine.cpio.gz").value()), b);
  EXPECT_EQ(toHex(findInSha256Sums(sums, "raw.img").value()), c);
  EXPECT_EQ(findInSha256Sums(sums, "other").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(findInSha256Sums("xyz  other\nnonsense-line\n", "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(findInSha256Sums("zz  x\n", "x").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace xenctl::image
