#include "daemon/authz.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "xenctl/v1/domain.pb.h"
#include "xenctl/v1/volume.pb.h"

namespace xenctl::daemon {
namespace {

// Every RPC compiled into xenctld has a rule: a new method without one
// fails here (and is refused to every caller at run time).
TEST(Authz, EveryMethodHasARule) {
  const std::vector<std::string> methods = apiMethods();
  EXPECT_GE(methods.size(), 35u);
  EXPECT_THAT(methods, ::testing::Contains("DomainService.SetDomainAccess"));
  for (const auto& m : methods) EXPECT_NE(ruleFor(m), nullptr) << m << " has no rule in daemon/authz.cc";
  EXPECT_EQ(ruleFor("DomainService.NoSuchMethod"), nullptr);
}

// The table names fields that exist: a renamed field would silently check
// an empty target.
TEST(Authz, TargetsComeFromTheRequest) {
  v1::StartDomainRequest start;
  start.set_name("web1");
  EXPECT_EQ(targetOf("DomainService.StartDomain", start), "web1");
  v1::CreateDomainRequest create;
  create.mutable_spec()->set_name("web2");
  EXPECT_EQ(targetOf("DomainService.CreateDomain", create), "web2");
  v1::SnapshotVolumeRequest snap;
  snap.set_volume("web1-root");
  EXPECT_EQ(targetOf("VolumeService.SnapshotVolume", snap), "(default)/web1-root");
  snap.set_pool("fast");
  EXPECT_EQ(targetOf("VolumeService.SnapshotVolume", snap), "fast/web1-root");
  v1::ForkDomainRequest fork;
  fork.set_source("web1");
  EXPECT_EQ(targetOf("DomainService.ForkDomain", fork), "web1");
}

}  // namespace
}  // namespace xenctl::daemon
