// CurlFetcher on file:// URIs: no network, the same code path as the
// remote schemes for limits, progress, cancellation and errors. The
// network cases (resume, retries, TLS, FTP) are in tests/integration/test_images.py.
#include "lib/image/curl_fetcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/image/image_test_util.h"

namespace xenctl::image {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

class CurlFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fetcher_ = std::move(CurlFetcher::create().value());
    data_ = std::string(3000000, '\0');  // several of curl's 512 KiB chunks
    for (size_t i = 0; i < data_.size(); ++i) data_[i] = static_cast<char>(i * 31 % 251);
    path_ = tmp_.sub("image.bin");
    testing::writeFile(path_, data_);
    options_.retry_backoff = absl::Milliseconds(1);
  }
  Result<core::FetchResult> fetch(const std::string& uri, std::string* out) {
    return fetcher_->fetch(
        uri,
        [out](std::string_view chunk) {
          out->append(chunk);
          return Status();
        },
        options_);
  }

  TempDir tmp_;
  std::unique_ptr<CurlFetcher> fetcher_;
  std::string data_, path_;
  core::FetchOptions options_;
};

// A file:// URI streams the whole file, once, and reports the last progress with the total.
TEST_F(CurlFetcherTest, FileUriStreamsWhole) {
  core::FetchProgress last;
  options_.progress = [&](const core::FetchProgress& p) { last = p; };
  std::string got;
  auto r = fetch("file://" + path_, &got);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(got, data_);
  EXPECT_EQ(r->bytes, data_.size());
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(last.bytes, data_.size());
  EXPECT_EQ(last.total, data_.size());
}

// A missing file is NOT_FOUND naming the URI, without retries.
TEST_F(CurlFetcherTest, MissingFileIsNotFound) {
  std::string got;
  auto r = fetch("file://" + tmp_.sub("nope"), &got);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(tmp_.sub("nope")));
}

// Past max_bytes: RESOURCE_EXHAUSTED.
TEST_F(CurlFetcherTest, SizeLimit) {
  options_.max_bytes = 1000;
  std::string got;
  auto r = fetch("file://" + path_, &got);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_LE(got.size(), 1000u);
}

// The sink's error stops the transfer and is returned as it is.
TEST_F(CurlFetcherTest, SinkErrorIsReturned) {
  auto r = fetcher_->fetch(
      "file://" + path_, [](std::string_view) { return absl::InvalidArgumentError("hostile entry"); }, options_);
  EXPECT_EQ(r.status(), absl::InvalidArgumentError("hostile entry"));
}

// A stop request cancels: CANCELLED.
TEST_F(CurlFetcherTest, StopCancels) {
  std::stop_source stop;
  options_.stop = stop.get_token();
  std::string got;
  auto r = fetcher_->fetch(
      "file://" + path_,
      [&](std::string_view chunk) {
        got.append(chunk);
        stop.request_stop();
        return Status();
      },
      options_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_LT(got.size(), data_.size());
}

// Other schemes are INVALID_ARGUMENT before anything is tried.
TEST_F(CurlFetcherTest, UnsupportedScheme) {
  std::string got;
  EXPECT_EQ(fetch("scp://host/x", &got).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fetch("dict://host/x", &got).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace xenctl::image
