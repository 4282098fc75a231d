// HostPaths: which host paths a caller may name (issue 13, part 4).
#include "lib/provision/host_paths.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/temp_dir.h"
#include "tests/unit/provision/test_util.h"

namespace xenctl::provision {
namespace {

using ::testing::HasSubstr;

class HostPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    allowed_ = tmp_.sub("images");
    ASSERT_EQ(::mkdir(allowed_.c_str(), 0755), 0);
    ASSERT_EQ(::symlink("/etc", (allowed_ + "/etc").c_str()), 0);
    ASSERT_EQ(::mkdir((allowed_ + "/sub").c_str(), 0755), 0);
    ASSERT_EQ(::symlink("sub", (allowed_ + "/inside").c_str()), 0);
    operator_.role = core::Role::kOperator;
    paths_ = HostPaths({{allowed_ + "/"}, {"pygrub"}, nullptr});
  }
  core::DomainSpec spec() {
    core::DomainSpec s;
    s.name = "web1";
    return s;
  }

  test_support::TempDir tmp_;
  std::string allowed_;
  Caller operator_{"", 1000};
  HostPaths paths_;
};

// An admin may name any host path, bootloader and file:// URI.
TEST_F(HostPathsTest, AdminsMayNameAnything) {
  Caller admin = adminCaller();
  EXPECT_TRUE(paths_.checkPath(admin, "/root/secret", "kernel").ok());
  core::DomainSpec s = spec();
  s.disks = {{"/dev/sda", "xvda", "w", ""}};
  s.bootloader = "/bin/sh";
  EXPECT_TRUE(paths_.checkSpec(admin, s).ok());
  EXPECT_TRUE(paths_.checkUri(admin, "file:///etc/shadow", "import").ok());
  EXPECT_EQ(paths_.fileRoots(admin), std::nullopt);
}

// Others: only under allowed_paths; outside, relative, '..' and a symlink out are PERMISSION_DENIED naming the setting.
TEST_F(HostPathsTest, OthersOnlyUnderAllowedPaths) {
  EXPECT_TRUE(paths_.checkPath(operator_, allowed_ + "/vmlinuz", "kernel").ok());
  EXPECT_TRUE(paths_.checkPath(operator_, allowed_ + "/inside/initrd", "ramdisk").ok());
  for (const std::string& bad : {std::string("/root/secret"), allowed_ + "/../secret", std::string("vmlinuz"),
                                 allowed_ + "/etc/shadow", allowed_ + "x/vmlinuz"}) {
    Status st = paths_.checkPath(operator_, bad, "domain 'web1': kernel");
    EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << bad;
    EXPECT_THAT(std::string(st.message()), HasSubstr("domain 'web1': kernel: host path " + bad)) << st;
    EXPECT_THAT(std::string(st.message()), HasSubstr("[security] allowed_paths (" + allowed_ + ")")) << st;
  }
  EXPECT_THAT(std::string(paths_.checkPath(operator_, allowed_ + "/etc/shadow", "k").message()),
              HasSubstr("leads out of " + allowed_ + " through a symlink"));
  EXPECT_EQ(paths_.fileRoots(operator_), std::vector<std::string>{allowed_});
  // With nothing configured nothing is allowed.
  EXPECT_EQ(HostPaths().checkPath(operator_, allowed_ + "/vmlinuz", "k").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(HostPaths().fileRoots(operator_), std::vector<std::string>{});
}

// A spec's raw disks, kernel, ramdisk and bootloader are checked; vol: disks go to the volume check.
TEST_F(HostPathsTest, SpecPathsAndBootloader) {
  core::DomainSpec s = spec();
  s.disks = {{"vol:main/web1-root", "xvda", "w", ""}, {"/dev/sda", "xvdb", "w", ""}};
  Status st = paths_.checkSpec(operator_, s);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(st.message()), HasSubstr("domain 'web1': disk xvdb: host path /dev/sda"));
  s.disks.pop_back();
  EXPECT_TRUE(paths_.checkSpec(operator_, s).ok());
  s.kernel = "/root/secret";
  EXPECT_THAT(std::string(paths_.checkSpec(operator_, s).message()), HasSubstr("kernel: host path /root/secret"));
  s.kernel.clear();
  s.bootloader = "/bin/sh";
  st = paths_.checkSpec(operator_, s);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(st.message()), HasSubstr("bootloader '/bin/sh' is not one of [security] bootloaders (pygrub)"));
  s.bootloader = "pygrub";
  EXPECT_TRUE(paths_.checkSpec(operator_, s).ok());

  std::vector<std::pair<std::string, bool>> asked;
  HostPaths with_hook({{}, {}, [&](const Caller&, const core::VolumeRef& ref, bool writable) {
                         asked.emplace_back(ref.target(), writable);
                         return absl::PermissionDeniedError("not yours");
                       }});
  s = spec();
  s.disks = {{"vol:main/base", "xvda", "r", ""}};
  EXPECT_EQ(with_hook.checkSpec(operator_, s), absl::PermissionDeniedError("not yours"));
  EXPECT_EQ(asked, (std::vector<std::pair<std::string, bool>>{{"vol:main/base", false}}));
}

// file:// URIs are checked by their decoded path; other schemes are not host paths.
TEST_F(HostPathsTest, FileUris) {
  EXPECT_TRUE(paths_.checkUri(operator_, "file://" + allowed_ + "/a%20b.img", "import").ok());
  EXPECT_TRUE(paths_.checkUri(operator_, "file://localhost" + allowed_ + "/a.img", "import").ok());
  EXPECT_EQ(paths_.checkUri(operator_, "file:///etc/shadow", "import").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(paths_.checkUri(operator_, "file://" + allowed_ + "/%2e%2e/x", "import").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(paths_.checkUri(operator_, "FILE:///etc/shadow", "import").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(paths_.checkUri(operator_, "file://otherhost/etc/shadow", "import").ok());
  EXPECT_TRUE(paths_.checkUri(operator_, "https://images.example/debian.tar.zst", "import").ok());
}

}  // namespace
}  // namespace xenctl::provision
