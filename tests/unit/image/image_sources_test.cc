#include "lib/image/image_sources.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace xenctl::image {
namespace {

using ::testing::HasSubstr;

MinisignPublicKey key(uint8_t id) {
  MinisignPublicKey k;
  k.key_id.fill(id);
  return k;
}

ImageSource source(std::string prefix, SignaturePolicy policy, bool allow_unsigned = false) {
  ImageSource s;
  s.prefix = std::move(prefix);
  s.policy = policy;
  s.allow_unsigned_requests = allow_unsigned;
  return s;
}

// Without sources: remote URIs must be signed and a request cannot lower that; file:// may be lowered.
TEST(ImageSources, DefaultsWithoutSources) {
  ImageSources sources({key(1)});
  for (const char* uri : {"https://h/a.tar.gz", "http://h/a.tar.gz", "ftp://h/a.tar.gz"}) {
    auto d = sources.choose(uri, SignaturePolicy::kAuto);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->policy, SignaturePolicy::kSigned) << uri;
    EXPECT_EQ(d->trusted_keys.size(), 1u);
    auto lowered = sources.choose(uri, SignaturePolicy::kNone);
    EXPECT_EQ(lowered.status().code(), absl::StatusCode::kPermissionDenied) << uri;
    EXPECT_THAT(lowered.status().message(), HasSubstr("the default for remote URIs"));
    EXPECT_THAT(lowered.status().message(), HasSubstr(uri));
    EXPECT_THAT(lowered.status().message(), HasSubstr("add an [[images.source]]"));
  }
  EXPECT_EQ(sources.choose("file:///srv/a.tar.gz", SignaturePolicy::kAuto)->policy, SignaturePolicy::kDigest);
  EXPECT_EQ(sources.choose("file:///srv/a.tar.gz", SignaturePolicy::kNone)->policy, SignaturePolicy::kNone);
}

// The longest matching prefix applies, at path boundaries, its scheme and host in any case.
TEST(ImageSources, LongestPrefixAtABoundary) {
  auto sources = ImageSources::create(
      {source("https://mirror.example/", SignaturePolicy::kNone),
       source("https://mirror.example/secure", SignaturePolicy::kSigned),
       source("file:///srv/images/", SignaturePolicy::kSigned)},
      {key(1)});
  ASSERT_TRUE(sources.ok()) << sources.status();
  auto policy = [&](std::string_view uri) { return sources->choose(uri, SignaturePolicy::kAuto)->policy; };
  EXPECT_EQ(policy("https://mirror.example/debian/a.tar.gz"), SignaturePolicy::kNone);
  EXPECT_EQ(policy("HTTPS://Mirror.Example/debian/a.tar.gz"), SignaturePolicy::kNone);
  EXPECT_EQ(policy("https://mirror.example/secure/a.tar.gz"), SignaturePolicy::kSigned);
  EXPECT_EQ(policy("https://mirror.example/secure2/a.tar.gz"), SignaturePolicy::kNone) << "not at a boundary";
  EXPECT_EQ(policy("https://mirror.example.evil/a.tar.gz"), SignaturePolicy::kSigned) << "another host: the default";
  EXPECT_EQ(policy("file:///srv/images/a.tar.gz"), SignaturePolicy::kSigned);
  EXPECT_EQ(policy("file:///srv/other/a.tar.gz"), SignaturePolicy::kDigest);
  EXPECT_EQ(sources->choose("https://mirror.example/a", SignaturePolicy::kAuto)->source,
            "source \"https://mirror.example/\"");
}

// A request may ask for more proof; less only where the source allows unsigned requests.
TEST(ImageSources, RequestsLowerOnlyWhereAllowed) {
  auto sources = ImageSources::create({source("https://strict/", SignaturePolicy::kSigned),
                                       source("https://lab/", SignaturePolicy::kSigned, /*allow_unsigned=*/true),
                                       source("http://open/", SignaturePolicy::kNone)},
                                      {key(1)});
  ASSERT_TRUE(sources.ok()) << sources.status();
  auto refused = sources->choose("https://strict/a.tar.gz", SignaturePolicy::kNone);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.status().message(), HasSubstr("source \"https://strict/\""));
  EXPECT_THAT(refused.status().message(), HasSubstr("https://strict/a.tar.gz"));
  EXPECT_THAT(refused.status().message(), HasSubstr("allow_unsigned_requests = true"));
  EXPECT_EQ(sources->choose("https://strict/a.tar.gz", SignaturePolicy::kDigest).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(sources->choose("https://lab/a.tar.gz", SignaturePolicy::kNone)->policy, SignaturePolicy::kNone);
  EXPECT_EQ(sources->choose("http://open/a.tar.gz", SignaturePolicy::kSigned)->policy, SignaturePolicy::kSigned);
  EXPECT_EQ(sources->choose("http://open/a.tar.gz", SignaturePolicy::kAuto)->policy, SignaturePolicy::kNone);
}

// A source's own keys replace the default keys for it alone.
TEST(ImageSources, SourceKeysReplaceTheDefault) {
  ImageSource vendor = source("https://vendor/", SignaturePolicy::kSigned);
  vendor.trusted_keys = std::vector<MinisignPublicKey>{key(7)};
  auto sources = ImageSources::create({vendor}, {key(1)});
  ASSERT_TRUE(sources.ok()) << sources.status();
  auto d = sources->choose("https://vendor/a.tar.gz", SignaturePolicy::kAuto);
  ASSERT_EQ(d->trusted_keys.size(), 1u);
  EXPECT_EQ(d->trusted_keys[0].key_id, key(7).key_id);
  EXPECT_EQ(sources->choose("https://other/a.tar.gz", SignaturePolicy::kAuto)->trusted_keys[0].key_id, key(1).key_id);
}

// URIs that could spell one file two ways are refused rather than matched.
TEST(ImageSources, UrisNotInNormalFormAreRefused) {
  ImageSources sources({key(1)});
  for (const char* uri : {"https://h/a/../b.tar.gz", "https://h/a/./b.tar.gz", "https://h/a//b.tar.gz",
                          "file:///srv/%2e%2e/b.tar.gz", "https://h/a%2Fb.tar.gz"}) {
    auto d = sources.choose(uri, SignaturePolicy::kAuto);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << uri;
    EXPECT_THAT(d.status().message(), HasSubstr("normal form")) << uri;
  }
  EXPECT_TRUE(sources.choose("https://h/a/b.tar.gz?x=../y", SignaturePolicy::kAuto).ok()) << "the query is not a path";
  EXPECT_EQ(sources.choose("scp://h/a", SignaturePolicy::kAuto).status().code(), absl::StatusCode::kInvalidArgument);
}

// Bad sources are refused, naming the prefix.
TEST(ImageSources, BadSourcesAreNamed) {
  auto err = [](std::vector<ImageSource> s, std::vector<MinisignPublicKey> keys) {
    return ImageSources::create(std::move(s), std::move(keys)).status();
  };
  Status st = err({source("scp://h/", SignaturePolicy::kNone)}, {});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("source \"scp://h/\""));
  st = err({source("https://h/", SignaturePolicy::kAuto)}, {});
  EXPECT_THAT(st.message(), HasSubstr("\"signed\", \"digest\" or \"none\""));
  st = err({source("https://h/", SignaturePolicy::kNone), source("HTTPS://H/", SignaturePolicy::kSigned)}, {key(1)});
  EXPECT_THAT(st.message(), HasSubstr("declared twice"));
  st = err({source("https://h/", SignaturePolicy::kSigned)}, {});
  EXPECT_THAT(st.message(), HasSubstr("no key to check them"));
  st = err({source("https://h/a/../", SignaturePolicy::kNone)}, {});
  EXPECT_THAT(st.message(), HasSubstr("normal form"));
  EXPECT_TRUE(err({source("https://h/", SignaturePolicy::kSigned)}, {key(1)}).ok());
}

}  // namespace
}  // namespace xenctl::image
