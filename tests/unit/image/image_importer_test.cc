#include "lib/image/image_importer.h"
#include "lib/image/uri.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include "tests/fakes/fake_fetcher.h"
#include "tests/unit/image/image_test_util.h"

namespace xenctl::image {
namespace {

using ::testing::HasSubstr;
using testing::buildArchive;
using testing::file;
using testing::listTree;
using testing::readAll;
using testing::TempDir;
using fakes::FakeFetcher;

// A minisign key pair made here; the format of what it writes is the one
// minisign_test checks against signatures of the real tool.
struct Signer {
  Signer() {
    (void)initSodium();
    crypto_sign_keypair(pk, sk);
    randombytes_buf(id.data(), id.size());
  }
  MinisignPublicKey publicKey() const {
    MinisignPublicKey k;
    k.key_id = id;
    std::copy(pk, pk + 32, k.key.begin());
    return k;
  }
  std::string sign(std::string_view data, std::string comment = "timestamp:1700000000 file:image") const {
    Blake2b512 h;
    h.update(data);
    auto digest = h.finish();
    unsigned char sig[64];
    crypto_sign_detached(sig, nullptr, digest.data(), digest.size(), sk);
    std::string raw = "ED" + std::string(id.begin(), id.end()) + std::string(reinterpret_cast<char*>(sig), 64);
    std::string global_msg = std::string(reinterpret_cast<char*>(sig), 64) + comment;
    unsigned char global[64];
    crypto_sign_detached(global, nullptr, reinterpret_cast<const unsigned char*>(global_msg.data()),
                         global_msg.size(), sk);
    return "untrusted comment: signature from minisign secret key\n" + b64(raw) + "\ntrusted comment: " + comment +
           "\n" + b64(std::string(reinterpret_cast<char*>(global), 64)) + "\n";
  }
  static std::string b64(const std::string& s) {
    std::string out(sodium_base64_encoded_len(s.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    out.resize(out.size() - 1);
    return out;
  }
  unsigned char pk[32], sk[64];
  MinisignKeyId id;
};

class ImportTest : public ::testing::Test {
 protected:
  const std::string kUri = "https://images.example/debian/debian-12.tar.gz";
  void SetUp() override {
    archive_ = buildArchive({file("etc/hostname", "golden\n"), file("usr/bin/x", std::string(100000, 'x'), 0755)},
                            ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP);
    fetcher_.serve(kUri, archive_);
    dest_ = tmp_.sub("debian-12");
  }
  ImportRequest request() {
    ImportRequest r;
    r.uri = kUri;
    r.trusted_keys = {signer_.publicKey()};
    return r;
  }
  // Nothing at dest and no staging directory left beside it.
  void expectNothingKept() {
    EXPECT_EQ(listTree(tmp_.path()), std::vector<std::string>{}) << "a failed import left files behind";
  }

  TempDir tmp_;
  FakeFetcher fetcher_;
  Signer signer_;
  std::string archive_, dest_;
};

// A signed remote archive is fetched, verified and unpacked; the digest is the archive's.
TEST_F(ImportTest, SignedArchiveImports) {
  fetcher_.serve(kUri + ".minisig", signer_.sign(archive_));
  auto r = importImage(fetcher_, request(), dest_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(readAll(dest_ + "/etc/hostname"), "golden\n");
  EXPECT_TRUE(r->signed_);
  EXPECT_EQ(r->key_id, keyIdString(signer_.id));
  EXPECT_EQ(r->trusted_comment, "timestamp:1700000000 file:image");
  EXPECT_EQ(r->sha256, sha256(archive_));
  EXPECT_EQ(r->bytes, archive_.size());
  EXPECT_EQ(r->kind, ImageKind::kArchive);
  EXPECT_EQ(r->extract.filter, "gzip");
  EXPECT_EQ(listTree(tmp_.path()).front(), "debian-12") << "no staging directory is left";
}

// Remote and unsigned: refused before the image is downloaded, unless allowed.
TEST_F(ImportTest, RemoteUnsignedIsRefusedByDefault) {
  auto r = importImage(fetcher_, request(), dest_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no signature at " + kUri + ".minisig"));
  EXPECT_THAT(fetcher_.requested(), ::testing::Not(::testing::Contains(kUri)));
  expectNothingKept();
  ImportRequest allow = request();
  allow.signature = SignaturePolicy::kNone;
  EXPECT_TRUE(importImage(fetcher_, allow, dest_).ok());
}

// A file:// image needs a signature or an expected digest by default; a signature that is there is checked.
TEST_F(ImportTest, LocalImageNeedsDigestOrSignature) {
  ImportRequest r = request();
  r.uri = "file:///srv/img.tar.gz";
  fetcher_.serve(r.uri, archive_);
  auto none = importImage(fetcher_, r, dest_);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition) << none.status();
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("neither a signature"));
  expectNothingKept();
  r.sha256 = sha256(archive_);
  ASSERT_TRUE(importImage(fetcher_, r, dest_).ok());
  fetcher_.serve(r.uri + ".minisig", signer_.sign("something else"));
  auto bad = importImage(fetcher_, r, tmp_.sub("second"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
}

// A wrong signature (over other bytes) is DATA_LOSS and nothing is kept.
TEST_F(ImportTest, WrongSignatureKeepsNothing) {
  fetcher_.serve(kUri + ".minisig", signer_.sign(archive_ + "x"));
  auto r = importImage(fetcher_, request(), dest_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("does not match the data"));
  expectNothingKept();
}

// A signature by an untrusted key stops the import before the download, naming both key ids.
TEST_F(ImportTest, UntrustedSignerIsRefusedEarly) {
  Signer other;
  fetcher_.serve(kUri + ".minisig", other.sign(archive_));
  auto r = importImage(fetcher_, request(), dest_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(keyIdString(other.id)));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(keyIdString(signer_.id)));
  EXPECT_THAT(fetcher_.requested(), ::testing::Not(::testing::Contains(kUri)));
  expectNothingKept();
}

// A wrong expected digest is DATA_LOSS with both values, and nothing is kept.
TEST_F(ImportTest, WrongDigestKeepsNothing) {
  ImportRequest r = request();
  r.signature = SignaturePolicy::kNone;
  r.sha256 = sha256("not the archive");
  auto st = importImage(fetcher_, r, dest_);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.status().message()), HasSubstr("expected " + toHex(sha256("not the archive"))));
  EXPECT_THAT(std::string(st.status().message()), HasSubstr("got " + toHex(sha256(archive_))));
  expectNothingKept();
}

// The expected digest comes from SHA256SUMS beside the image when the request has none.
TEST_F(ImportTest, DigestFromSha256Sums) {
  ImportRequest r = request();
  r.signature = SignaturePolicy::kNone;
  fetcher_.serve(siblingUri(kUri, "SHA256SUMS"), toHex(sha256("other")) + "  debian-12.tar.gz\n");
  auto bad = importImage(fetcher_, r, dest_);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("(SHA256SUMS)"));
  expectNothingKept();
  fetcher_.serve(siblingUri(kUri, "SHA256SUMS"), toHex(sha256(archive_)) + "  debian-12.tar.gz\n");
  auto good = importImage(fetcher_, r, dest_);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_TRUE(good->digest_checked);
  EXPECT_EQ(good->digest_source, "SHA256SUMS");
}

// A download that fails halfway reports the download's error and keeps nothing.
TEST_F(ImportTest, FailedDownloadKeepsNothing) {
  ImportRequest r = request();
  r.signature = SignaturePolicy::kNone;
  fetcher_.failAfter(kUri, 100, absl::UnavailableError("fetching: connection reset (after 5 attempts)"));
  auto st = importImage(fetcher_, r, dest_);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kUnavailable) << st.status();
  expectNothingKept();
}

// A hostile archive stops the download too, and keeps nothing.
TEST_F(ImportTest, HostileArchiveKeepsNothing) {
  ImportRequest r = request();
  r.signature = SignaturePolicy::kNone;
  fetcher_.serve(kUri, buildArchive({file("a", std::string(1 << 20, 'a')), file("../escape", "x")},
                                    ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE));
  auto st = importImage(fetcher_, r, dest_);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument) << st.status();
  EXPECT_THAT(std::string(st.status().message()), HasSubstr("unpacking " + kUri + ": archive entry '../escape'"));
  expectNothingKept();
}

// An existing destination is ALREADY_EXISTS, and left alone.
TEST_F(ImportTest, ExistingDestination) {
  ASSERT_EQ(::mkdir(dest_.c_str(), 0755), 0);
  ImportRequest r = request();
  r.signature = SignaturePolicy::kNone;
  EXPECT_EQ(importImage(fetcher_, r, dest_).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(listTree(tmp_.path()), std::vector<std::string>{"debian-12"});
}

// A raw ext image is detected and lands as a file.
TEST_F(ImportTest, RawImage) {
  std::string img(4 << 20, '\0');
  img[1024 + 56] = 0x53;
  img[1024 + 57] = static_cast<char>(0xEF);
  ImportRequest r = request();
  r.uri = "file:///srv/root.img";
  r.signature = SignaturePolicy::kNone;
  fetcher_.serve(r.uri, img);
  auto st = importImage(fetcher_, r, dest_);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->kind, ImageKind::kRawExt);
  EXPECT_EQ(readAll(dest_), img);
}

// The signature policy names round-trip.
// An import that keeps set-id files or device nodes is refused before any fetch unless its destination's directory is private.
TEST_F(ImportTest, KeepingSetidNeedsAPrivateDirectory) {
  ImportRequest r = request();
  r.signature = SignaturePolicy::kNone;
  r.extract.allow_setid = true;
  const std::string open_dir = tmp_.sub("shared");
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0755), 0);
  auto refused = importImage(fetcher_, r, open_dir + "/debian-12");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(open_dir + " (where it is unpacked) can be reached by other users (mode 0755"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("mode 0700"));
  EXPECT_EQ(fetcher_.requested(), std::vector<std::string>{}) << "fetched before the check";
  EXPECT_EQ(listTree(open_dir), std::vector<std::string>{});

  r.extract.allow_setid = false;
  r.extract.allow_standard_devices = true;
  EXPECT_EQ(importImage(fetcher_, r, open_dir + "/debian-12").status().code(), absl::StatusCode::kFailedPrecondition)
      << "the standard device nodes need the same";

  const std::string private_dir = tmp_.sub("private");
  ASSERT_EQ(::mkdir(private_dir.c_str(), 0700), 0);
  auto ok = importImage(fetcher_, r, private_dir + "/debian-12");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(readAll(private_dir + "/debian-12/etc/hostname"), "golden\n");
}

TEST(SignaturePolicyNames, RoundTrip) {
  for (auto p : {SignaturePolicy::kAuto, SignaturePolicy::kSigned, SignaturePolicy::kDigest, SignaturePolicy::kNone})
    EXPECT_EQ(parseSignaturePolicy(toString(p)).value(), p);
  EXPECT_EQ(parseSignaturePolicy("yes").status().code(), absl::StatusCode::kInvalidArgument);
}

// URI helpers used to find SHA256SUMS and the name in it.
TEST(UriHelpers, SiblingAndBasename) {
  EXPECT_EQ(siblingUri("https://h/a/img.tar.zst?x=1", "SHA256SUMS"), "https://h/a/SHA256SUMS");
  EXPECT_EQ(uriBasename("ftp://h/a/img.cpio.gz"), "img.cpio.gz");
  EXPECT_TRUE(uriScheme("FTP://h/x").ok());
  EXPECT_EQ(uriScheme("scp://h/x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(uriScheme("/tmp/x").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace xenctl::image
