// HelperFetcher's own parts: the protocol's options, a missing helper, and
// an upload whose source fails. Its transfers are tested beside
// CurlFetcher's in curl_fetcher_test.cc (the same tests on both).
#include "lib/image/helper_fetcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "tests/unit/image/image_test_util.h"

namespace xenctl::image {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

// Every option xenctld sets reaches the helper unchanged, file_roots' three states (anywhere, none, some) included.
TEST(HelperFetcher, OptionsRoundTrip) {
  core::FetchOptions o;
  o.connect_timeout = absl::Milliseconds(1500);
  o.low_speed_bytes = 7;
  o.low_speed_time = absl::Seconds(9);
  o.max_retries = 2;
  o.retry_backoff = absl::Microseconds(3);
  o.max_backoff = absl::Seconds(4);
  o.max_redirects = 1;
  o.max_bytes = 123456789012;
  o.total_timeout = absl::Minutes(5);
  o.settings.max_bytes = "[containers] max size";
  o.ca_file = "/etc/ca with space.pem";
  for (auto roots : {std::optional<std::vector<std::string>>(), std::optional<std::vector<std::string>>({}),
                     std::optional<std::vector<std::string>>({"/srv/a", "/srv/b c"})}) {
    o.file_roots = roots;
    auto back = parseHelperArgs(helperArgs(o));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->connect_timeout, o.connect_timeout);
    EXPECT_EQ(back->low_speed_bytes, o.low_speed_bytes);
    EXPECT_EQ(back->low_speed_time, o.low_speed_time);
    EXPECT_EQ(back->max_retries, o.max_retries);
    EXPECT_EQ(back->retry_backoff, o.retry_backoff);
    EXPECT_EQ(back->max_backoff, o.max_backoff);
    EXPECT_EQ(back->max_redirects, o.max_redirects);
    EXPECT_EQ(back->max_bytes, o.max_bytes);
    EXPECT_EQ(back->total_timeout, o.total_timeout);
    EXPECT_EQ(back->settings.max_bytes, o.settings.max_bytes);
    EXPECT_EQ(back->settings.total_timeout, o.settings.total_timeout);
    EXPECT_EQ(back->settings.low_speed_time, o.settings.low_speed_time);
    EXPECT_EQ(back->ca_file, o.ca_file);
    EXPECT_EQ(back->file_roots, o.file_roots);
  }
  EXPECT_EQ(parseHelperArgs({"--max-bytes", "-1"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parseHelperArgs({"--bogus", "1"}).status().code(), absl::StatusCode::kInvalidArgument);
}

// A helper that is not there is INTERNAL naming it and what to do, not a crash or a hang.
TEST(HelperFetcher, MissingHelperIsNamed) {
  HelperFetcher f("/nonexistent/xenctl-fetch");
  auto r = f.fetch("file:///etc/hostname", [](std::string_view) { return absl::OkStatus(); }, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("/nonexistent/xenctl-fetch"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("reinstall xenctl"));
}

// An upload whose source fails returns the source's error, and the helper never stores the cut-short body as whole.
TEST(HelperFetcher, FailingSourceStopsTheUpload) {
  ::signal(SIGPIPE, SIG_IGN);  // as xenctld does
  TempDir tmp;
  const std::string dest = tmp.sub("out.img");
  HelperFetcher f(XENCTL_FETCH_HELPER_BUILT);
  int calls = 0;
  auto r = f.put(
      "file://" + dest,
      [&](char* buf, size_t max) -> Result<size_t> {
        if (++calls > 3) return absl::DataLossError("volume read failed");
        std::fill(buf, buf + max, 'x');
        return max;
      },
      {});
  EXPECT_EQ(r.status(), absl::DataLossError("volume read failed"));
}

// xenctld finds the helper through a path relative to its own directory (sbin/../libexec/xenctl in the package,
// whatever the prefix), and says where it looked when it is in neither place.
TEST(HelperFetcher, FoundRelativeToTheExecutable) {
  const std::filesystem::path built = std::filesystem::canonical(XENCTL_FETCH_HELPER_BUILT);
  const std::filesystem::path self = std::filesystem::canonical("/proc/self/exe");
  const std::string relative = built.lexically_relative(self.parent_path()).string();
  auto found = findFetchHelper(relative);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, built.string());
  auto missing = findFetchHelper("../nowhere/xenctl-fetch");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nowhere/xenctl-fetch"));
}

// The error codes and messages of the helper come back unchanged across the process boundary.
TEST(HelperFetcher, ErrorsKeepCodeAndMessage) {
  ::signal(SIGPIPE, SIG_IGN);
  TempDir tmp;
  HelperFetcher f(XENCTL_FETCH_HELPER_BUILT);
  core::FetchOptions o;
  o.file_roots = std::vector<std::string>{tmp.path()};
  auto r = f.fetch("file:///etc/hostname", [](std::string_view) { return absl::OkStatus(); }, o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("[security] allowed_paths"));
}

}  // namespace
}  // namespace xenctl::image
