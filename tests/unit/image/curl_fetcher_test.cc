// CurlFetcher on file:// URIs: no network, the same code path as the
// remote schemes for limits, progress, cancellation and errors. Each test
// runs twice: on CurlFetcher in this process, and on HelperFetcher, which
// runs it in xenctl-fetch as xenctld does; both must behave alike. The
// network cases (resume, retries, TLS, FTP) are in tests/integration/test_images.py.
#include "lib/image/curl_fetcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "lib/image/helper_fetcher.h"
#include "tests/unit/image/image_test_util.h"

namespace xenctl::image {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

class CurlFetcherTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "curl") {
      fetcher_ = std::move(CurlFetcher::create().value());
    } else {
      fetcher_ = std::make_unique<HelperFetcher>(XENCTL_FETCH_HELPER_BUILT);
    }
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
  std::unique_ptr<core::Fetcher> fetcher_;
  std::string data_, path_;
  core::FetchOptions options_;
};

// A file:// URI streams the whole file, once, and reports the last progress with the total.
TEST_P(CurlFetcherTest, FileUriStreamsWhole) {
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
TEST_P(CurlFetcherTest, MissingFileIsNotFound) {
  std::string got;
  auto r = fetch("file://" + tmp_.sub("nope"), &got);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(tmp_.sub("nope")));
}

// Past max_bytes: RESOURCE_EXHAUSTED.
TEST_P(CurlFetcherTest, SizeLimit) {
  options_.max_bytes = 1000;
  std::string got;
  auto r = fetch("file://" + path_, &got);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_LE(got.size(), 1000u);
}

// The sink's error stops the transfer and is returned as it is.
TEST_P(CurlFetcherTest, SinkErrorIsReturned) {
  auto r = fetcher_->fetch(
      "file://" + path_, [](std::string_view) { return absl::InvalidArgumentError("hostile entry"); }, options_);
  EXPECT_EQ(r.status(), absl::InvalidArgumentError("hostile entry"));
}

// A stop request cancels: CANCELLED.
TEST_P(CurlFetcherTest, StopCancels) {
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

// A FIFO behind file:// is refused at once, without opening it (which would block the operation forever).
TEST_P(CurlFetcherTest, FifoIsRefusedNotBlocking) {
  const std::string fifo = tmp_.sub("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  auto r = fetch("file://" + fifo, &got);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("it is a FIFO; file:// reads and writes only regular files"));
  auto put = fetcher_->put("file://" + fifo, [](char*, size_t) -> Result<size_t> { return 0; }, options_);
  EXPECT_EQ(put.status().code(), absl::StatusCode::kFailedPrecondition) << put.status();
}

// Devices and directories are not images: refused by kind.
TEST_P(CurlFetcherTest, DevicesAndDirectoriesAreRefused) {
  std::string got;
  auto r = fetch("file:///dev/zero", &got);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("a character device"));
  EXPECT_TRUE(got.empty());
  r = fetch("file://" + tmp_.path(), &got);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("a directory"));
}

// With file_roots, a file:// path must stay beneath one: outside, through '..' or through a symlink is refused.
TEST_P(CurlFetcherTest, FileRootsConfine) {
  const std::string allowed = tmp_.sub("allowed");
  ASSERT_EQ(::mkdir(allowed.c_str(), 0755), 0);
  testing::writeFile(allowed + "/ok.img", "inside");
  ASSERT_EQ(::symlink(path_.c_str(), (allowed + "/out.img").c_str()), 0);
  ASSERT_EQ(::symlink("ok.img", (allowed + "/in.img").c_str()), 0);
  options_.file_roots = std::vector<std::string>{allowed};
  std::string got;
  auto r = fetch("file://" + allowed + "/ok.img", &got);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(got, "inside");
  got.clear();
  r = fetch("file://" + allowed + "/in.img", &got);  // a symlink that stays inside
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(got, "inside");
  r = fetch("file://" + path_, &got);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("[security] allowed_paths"));
  r = fetch("file://" + allowed + "/out.img", &got);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("leads out of " + allowed));
  r = fetch("file://" + allowed + "/../image.bin", &got);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  // Stored beneath the root: a new regular file; a symlink out is not written through.
  auto source = [n = 0](char* buf, size_t max) mutable -> Result<size_t> {
    if (n++ > 0 || max < 3) return 0;
    std::memcpy(buf, "new", 3);
    return 3;
  };
  auto put = fetcher_->put("file://" + allowed + "/new.img", source, options_);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(testing::readAll(allowed + "/new.img"), "new");
  put = fetcher_->put("file://" + allowed + "/out.img", source, options_);
  EXPECT_FALSE(put.ok());
  EXPECT_EQ(testing::readAll(path_), data_);
  // No roots at all: no file:// for this caller.
  options_.file_roots = std::vector<std::string>{};
  EXPECT_EQ(fetch("file://" + allowed + "/ok.img", &got).status().code(), absl::StatusCode::kPermissionDenied);
}

// Past max_bytes a file's announced size is refused before any byte, naming the setting.
TEST_P(CurlFetcherTest, SizeLimitNamesTheSetting) {
  options_.max_bytes = 1000;
  std::string got;
  auto r = fetch("file://" + path_, &got);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("[images] max_download_size"));
  EXPECT_TRUE(got.empty());
}

// Other schemes are INVALID_ARGUMENT before anything is tried.
TEST_P(CurlFetcherTest, UnsupportedScheme) {
  std::string got;
  EXPECT_EQ(fetch("scp://host/x", &got).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fetch("dict://host/x", &got).status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(InProcessAndHelper, CurlFetcherTest, ::testing::Values("curl", "helper"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace xenctl::image
