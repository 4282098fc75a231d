#include "lib/provision/volume_usage.h"

#include <gtest/gtest.h>

namespace xenctl::provision {
namespace {

core::DomainSpec withDisks(const std::string& name, std::vector<core::DiskSpec> disks) {
  core::DomainSpec s;
  s.name = name;
  s.disks = std::move(disks);
  return s;
}

// Only managed volumes are tracked, and a record replaces the domain's earlier one.
TEST(VolumeUsageTest, RecordsManagedVolumesOnly) {
  VolumeUsage u;
  u.record(withDisks("web1", {{"vol:main/root", "xvda", "w", ""}, {"/srv/data.img", "xvdb", "w", ""}}), 3);
  EXPECT_EQ(u.users(), (std::map<std::string, std::string>{{"vol:main/root", "web1"}}));
  u.record(withDisks("web1", {{"vol:main/other", "xvda", "w", ""}}), 4);
  EXPECT_FALSE(u.userOf("vol:main/root"));
  EXPECT_EQ(u.userOf("vol:main/other"), "web1");
}

// A late report of an earlier run's end does not free a later run's volumes;
// a release without a domid, or of the current run, does.
TEST(VolumeUsageTest, StaleReleaseKeepsTheLaterRun) {
  VolumeUsage u;
  u.record(withDisks("web1", {{"vol:main/root", "xvda", "w", ""}}), -1);  // starting
  u.release("web1", 5);
  EXPECT_EQ(u.userOf("vol:main/root"), "web1");
  u.setDomid("web1", 6);
  u.release("web1", 5);
  EXPECT_EQ(u.userOf("vol:main/root"), "web1");
  u.release("web1", 6);
  EXPECT_FALSE(u.userOf("vol:main/root"));
  u.record(withDisks("web1", {{"vol:main/root", "xvda", "w", ""}}), 7);
  u.release("web1");
  EXPECT_TRUE(u.users().empty());
}

// usesOf names every other domain's disk on the volume, with its mode.
TEST(VolumeUsageTest, UsesOfOthers) {
  VolumeUsage u;
  u.record(withDisks("a", {{"vol:main/shared", "xvda", "r", ""}}), 1);
  u.record(withDisks("b", {{"vol:main/shared", "xvdb", "r", ""}}), 2);
  auto uses = u.usesOf("vol:main/shared", "a");
  ASSERT_EQ(uses.size(), 1u);
  EXPECT_EQ(uses[0].domain, "b");
  EXPECT_EQ(uses[0].disk.mode, "r");
}

}  // namespace
}  // namespace xenctl::provision
