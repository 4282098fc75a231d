#include "lib/customize/tree_archive.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fakes/fake_file_tree.h"
#include "tests/support/temp_dir.h"
#include "tests/support/unpack.h"

namespace xenctl::customize {
namespace {

// A tree's directories, files (content and mode) and symlinks come back out of its archive; other entries are left out.
TEST(PackTree, RoundTripsThroughTheExtractor) {
  test_support::TempDir tmp;
  fakes::FakeFileTree tree;
  tree.addDir("/etc", 0750);
  tree.addFile("/etc/hostname", "web1\n", 0640);
  tree.addDir("/etc/ssh");
  tree.addFile("/etc/ssh/sshd_config", "Port 22\n", 0600);
  tree.addDir("/var/empty");
  tree.addSymlink("/etc/localtime", "/usr/share/zoneinfo/UTC");
  tree.addOther("/dev-null");
  for (image::ExportFormat f : {image::ExportFormat::kCpioGz, image::ExportFormat::kTarZst}) {
    SCOPED_TRACE(std::string(image::toString(f)));
    std::string archive;
    auto packed = packTree(tree, f, [&](std::string_view c) {
      archive.append(c);
      return absl::OkStatus();
    });
    ASSERT_TRUE(packed.ok()) << packed.status();
    EXPECT_EQ(packed->entries, 8u);  // . etc hostname localtime ssh sshd_config var empty
    const std::string out = tmp.sub(std::string(image::toString(f)));
    ASSERT_TRUE(test_support::unpackArchive(archive, out).ok());
    EXPECT_EQ(test_support::readAll(out + "/etc/hostname"), "web1\n");
    EXPECT_EQ(test_support::readAll(out + "/etc/ssh/sshd_config"), "Port 22\n");
    struct stat st;
    ASSERT_EQ(::stat((out + "/etc/ssh/sshd_config").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    ASSERT_EQ(::stat((out + "/etc").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0750u);
    ASSERT_EQ(::stat((out + "/var/empty").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    char link[64] = {0};
    ASSERT_GT(::readlink((out + "/etc/localtime").c_str(), link, sizeof link), 0);
    EXPECT_STREQ(link, "/usr/share/zoneinfo/UTC");
    EXPECT_NE(::lstat((out + "/dev-null").c_str(), &st), 0);
  }
}

// The sink's error and a cancel stop the packing.
TEST(PackTree, SinkErrorAndCancel) {
  fakes::FakeFileTree tree;
  tree.addFile("/a", std::string(4 << 20, 'a'));
  auto failed = packTree(tree, image::ExportFormat::kTarZst, [](std::string_view) {
    return absl::UnavailableError("disk gone");
  });
  EXPECT_EQ(failed.status(), absl::UnavailableError("disk gone"));
  std::stop_source stop;
  stop.request_stop();
  auto cancelled = packTree(tree, image::ExportFormat::kCpioGz, [](std::string_view) { return absl::OkStatus(); },
                            stop.get_token());
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace xenctl::customize
