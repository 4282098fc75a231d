#include "lib/sys/resident_pages.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace xenctl::sys {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kPages = 64;

// How many of the pages at p are mapped in this process (pagemap's present bit).
size_t presentPages(const void* p, size_t pages) {
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  size_t n = 0;
  for (size_t i = 0; i < pages; ++i) {
    uint64_t e = 0;
    const off_t at = static_cast<off_t>((reinterpret_cast<uintptr_t>(p) / kPage + i) * 8);
    if (::pread(fd, &e, sizeof e, at) == sizeof e) n += (e >> 63) & 1;
  }
  ::close(fd);
  return n;
}

// A file of kPages pages, page i filled with the byte 'a' + i % 26.
std::string makeFile(const test_support::TempDir& dir) {
  const std::string path = dir.path() + "/data";
  std::ofstream f(path, std::ios::binary);
  for (size_t i = 0; i < kPages; ++i) f << std::string(kPage, static_cast<char>('a' + i % 26));
  return path;
}

char* mapFile(const std::string& path, int prot) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  void* p = ::mmap(nullptr, kPages * kPage, prot, MAP_PRIVATE, fd, 0);
  ::close(fd);
  return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
}

uint64_t touch(const char* p) {
  uint64_t sum = 0;
  for (size_t i = 0; i < kPages; ++i) sum += static_cast<volatile const char*>(p)[i * kPage];
  return sum;
}

// A read-only private file mapping is dropped from the page tables, and
// reading it again gives the file's bytes.
TEST(ReleaseIdlePages, DropsReadOnlyFileMappingsAndTheyReadBack) {
  test_support::TempDir dir;
  char* p = mapFile(makeFile(dir), PROT_READ);
  ASSERT_NE(p, nullptr);
  const uint64_t sum = touch(p);
  ASSERT_EQ(presentPages(p, kPages), kPages);
  auto r = releaseIdlePages();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(presentPages(p, kPages), 0u);
  EXPECT_GE(r->file_bytes, kPages * kPage);
  EXPECT_EQ(touch(p), sum);
  EXPECT_EQ(p[5 * kPage], 'f');
  ::munmap(p, kPages * kPage);
}

// A read-only mapping holding a private copy of a page (a relocated RELRO
// segment) keeps every page and the copy's bytes; so does a writable one.
TEST(ReleaseIdlePages, LeavesMappingsWithPrivateCopiesAndWritableOnes) {
  test_support::TempDir dir;
  const std::string path = makeFile(dir);
  char* relro = mapFile(path, PROT_READ | PROT_WRITE);
  char* data = mapFile(path, PROT_READ | PROT_WRITE);
  ASSERT_NE(relro, nullptr);
  ASSERT_NE(data, nullptr);
  touch(relro);
  relro[3 * kPage] = 'X';  // copied on write, as the loader's relocations are
  ASSERT_EQ(::mprotect(relro, kPages * kPage, PROT_READ), 0);
  touch(data);
  data[7 * kPage] = 'Y';
  auto r = releaseIdlePages();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(presentPages(relro, kPages), kPages);
  EXPECT_EQ(presentPages(data, kPages), kPages);
  EXPECT_EQ(relro[3 * kPage], 'X');
  EXPECT_EQ(data[7 * kPage], 'Y');
  ::munmap(relro, kPages * kPage);
  ::munmap(data, kPages * kPage);
}

// Start-up is work: the first idle period after it releases, and idle
// periods after that do not, until a period with work has passed.
TEST(IdlePolicy, ReleasesOnceAfterEachStretchOfWork) {
  IdlePolicy idle(absl::Milliseconds(5));
  EXPECT_FALSE(idle.periodEnded(absl::Milliseconds(30)));  // start-up's period
  EXPECT_TRUE(idle.periodEnded(absl::Milliseconds(32)));   // 2 ms: idle
  idle.released(absl::Milliseconds(35));                    // its 3 ms are not work
  EXPECT_FALSE(idle.periodEnded(absl::Milliseconds(37)));   // idle, nothing new to drop
  EXPECT_FALSE(idle.periodEnded(absl::Milliseconds(39)));
  EXPECT_FALSE(idle.periodEnded(absl::Milliseconds(60)));   // work
  EXPECT_FALSE(idle.periodEnded(absl::Milliseconds(90)));   // more work
  EXPECT_TRUE(idle.periodEnded(absl::Milliseconds(94)));    // idle again
}

// On a machine where idle costs more than the fixed bound (the lab's TCG:
// tens of ms per period), the release still comes once the process is
// idle, measured against the least any period used; and a release made
// while the floor was still a busy period's is made again once idle.
TEST(IdlePolicy, IdleIsMeasuredAgainstTheLeastAPeriodUsed) {
  IdlePolicy idle(absl::Milliseconds(5));
  absl::Duration cpu = absl::ZeroDuration();
  auto period = [&](int ms) { return idle.periodEnded(cpu += absl::Milliseconds(ms)); };
  EXPECT_FALSE(period(2000));  // start-up
  EXPECT_TRUE(period(60));     // idle at 60 ms a period: under 3x the floor of 2000 ms
  idle.released(cpu);
  EXPECT_FALSE(period(50));  // idle, nothing new to drop
  EXPECT_FALSE(period(70));  // under 3x the floor of 50 ms
  EXPECT_FALSE(period(900));  // work
  EXPECT_TRUE(period(55));    // idle again
  idle.released(cpu);
  EXPECT_FALSE(period(60));

  IdlePolicy busy_start(absl::Milliseconds(5));
  cpu = absl::ZeroDuration();
  auto busy = [&](int ms) { return busy_start.periodEnded(cpu += absl::Milliseconds(ms)); };
  EXPECT_FALSE(busy(2000));  // start-up
  EXPECT_TRUE(busy(1500));   // still busy, but under 3x the only floor yet: released too early
  busy_start.released(cpu);
  EXPECT_TRUE(busy(60));  // a third of that period's and less: that was work; idle now, released again
  busy_start.released(cpu);
  EXPECT_FALSE(busy(60));
  EXPECT_FALSE(busy(60));
}

// The floor follows what idle costs now: when idle becomes dearer (a
// loaded host slows the lab's TCG), work followed by idle at the new cost
// is released within kFloorPeriods, not never.
TEST(IdlePolicy, TheFloorFollowsADearerIdle) {
  IdlePolicy idle(absl::Milliseconds(5));
  absl::Duration cpu = absl::ZeroDuration();
  auto period = [&](int ms) { return idle.periodEnded(cpu += absl::Milliseconds(ms)); };
  EXPECT_FALSE(period(2000));  // start-up
  EXPECT_TRUE(period(40));     // quiet host: idle at 40 ms
  idle.released(cpu);
  EXPECT_FALSE(period(40));
  EXPECT_FALSE(period(3000));  // work
  int released_after = 0;
  for (int i = 1; i <= static_cast<int>(IdlePolicy::kFloorPeriods) && released_after == 0; ++i)
    if (period(130)) released_after = i;  // idle on a loaded host: 130 ms, over 3x 40
  EXPECT_GT(released_after, 0) << "no release within kFloorPeriods of idle at the new cost";
}

}  // namespace
}  // namespace xenctl::sys
