#include "lib/image/volume_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "tests/unit/image/image_test_util.h"

namespace xenctl::image {
namespace {

using testing::readAll;
using testing::TempDir;

constexpr size_t kMiB = size_t{1} << 20;

// Writes `bytes` at `at` of `path` (created sparse if missing).
void putAt(const std::string& path, off_t at, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), at), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

void sizeTo(const std::string& path, off_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, size), 0);
  ::close(fd);
}

// A sparse image lands on a zero-filled target byte for byte, data at its offsets, and only its data is written.
TEST(WriteImageOnto, CopiesTheDataAtItsOffsets) {
  TempDir t;
  const std::string img = t.sub("fs.img"), vol = t.sub("vol");
  sizeTo(img, 12 * kMiB);
  putAt(img, 0, std::string(4096, 's'));                         // a superblock-like head
  putAt(img, 3 * kMiB + 100, "in the middle of a block");        // unaligned data
  putAt(img, 5 * kMiB, std::string(6 * kMiB, 'd'));              // longer than one write
  putAt(img, 11 * kMiB + 512 * 1024, std::string(64 * 1024, 0)); // written zeros: skipped too
  sizeTo(vol, 12 * kMiB);
  auto st = writeImageOnto(img, vol);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(readAll(vol), readAll(img));
  // The data, at most to the 64 KiB blocks around it; not the holes, not the written zeros.
  EXPECT_GE(st->written, 6 * kMiB + 4096 + 24);
  EXPECT_LE(st->written, 6 * kMiB + 2 * 64 * 1024);
  EXPECT_EQ(st->written + st->skipped, 12 * kMiB);
}

// Holes and all-zero blocks are not written: the target's own bytes stay there (why it must read zeros).
TEST(WriteImageOnto, LeavesHolesUnwritten) {
  TempDir t;
  const std::string img = t.sub("fs.img"), vol = t.sub("vol");
  sizeTo(img, 2 * kMiB);
  putAt(img, kMiB, std::string(64 * 1024, 'x'));
  putAt(vol, 0, std::string(2 * kMiB, '#'));
  ASSERT_TRUE(writeImageOnto(img, vol).ok());
  std::string got = readAll(vol);
  EXPECT_EQ(got.substr(0, kMiB), std::string(kMiB, '#'));
  EXPECT_EQ(got.substr(kMiB, 64 * 1024), std::string(64 * 1024, 'x'));
  EXPECT_EQ(got.substr(kMiB + 64 * 1024), std::string(kMiB - 64 * 1024, '#'));
}

// A target smaller than the image is refused, naming both sizes; nothing is written.
TEST(WriteImageOnto, RefusesASmallerTarget) {
  TempDir t;
  const std::string img = t.sub("fs.img"), vol = t.sub("vol");
  sizeTo(img, 2 * kMiB);
  putAt(img, 0, "data");
  sizeTo(vol, kMiB);
  auto st = writeImageOnto(img, vol);
  ASSERT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.status().message().find("(2097152 bytes)"), std::string::npos) << st.status();
  EXPECT_NE(st.status().message().find("it has 1048576 bytes"), std::string::npos) << st.status();
  EXPECT_EQ(readAll(vol), std::string(kMiB, '\0'));
}

// A stop request ends the copy with CANCELLED.
TEST(WriteImageOnto, StopsWhenAsked) {
  TempDir t;
  const std::string img = t.sub("fs.img"), vol = t.sub("vol");
  putAt(img, 0, std::string(kMiB, 'd'));
  sizeTo(vol, kMiB);
  std::stop_source stop;
  stop.request_stop();
  auto st = writeImageOnto(img, vol, stop.get_token());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kCancelled) << st.status();
}

// A missing target is an error naming it.
TEST(WriteImageOnto, MissingTargetNamed) {
  TempDir t;
  const std::string img = t.sub("fs.img");
  putAt(img, 0, "x");
  auto st = writeImageOnto(img, t.sub("nope"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find(t.sub("nope")), std::string::npos) << st.status();
}

}  // namespace
}  // namespace xenctl::image
