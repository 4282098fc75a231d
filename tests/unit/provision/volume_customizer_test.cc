#include "lib/provision/volume_customizer.h"

#include <gtest/gtest.h>

#include "tests/unit/provision/managers_fixture.h"

namespace xenctl::provision {
namespace {

class VolumeCustomizerTest : public ManagersFixture {
 protected:
  void SetUp() override {
    ManagersFixture::SetUp();
    ASSERT_TRUE(pools_[0]->create("disk0", 1 << 20, std::nullopt).ok());
    customizer_ = std::make_unique<VolumeCustomizer>(
        *storage_, ops_,
        [this](const std::string& device, const core::Customizations& c) {
          calls_.push_back({device, c});
          return absl::OkStatus();
        });
  }
  VolumeCustomizer::Request hostname(const std::string& volume, const std::string& name) {
    VolumeCustomizer::Request r;
    r.name = volume;
    r.customizations.hostname = name;
    return r;
  }

  struct Call {
    std::string device;
    core::Customizations c;
  };
  std::vector<Call> calls_;
  std::unique_ptr<VolumeCustomizer> customizer_;
};

// The customizations reach the volume's path in one operation, with an
// instance-id made up and the volume named for messages.
TEST_F(VolumeCustomizerTest, AppliesToTheVolumeInOneOperation) {
  core::OperationRecord op = done(customizer_->customize(hostname("disk0", "web1"), adminCaller("r1")));
  EXPECT_EQ(op.state, core::OperationState::kSucceeded) << op.message;
  EXPECT_EQ(op.kind, "customize-volume");
  EXPECT_EQ(op.target, "main/disk0");
  ASSERT_EQ(calls_.size(), 1u);
  EXPECT_EQ(calls_[0].device, (*pools_[0]->get("disk0")).path);
  EXPECT_EQ(calls_[0].c.hostname, "web1");
  EXPECT_TRUE(calls_[0].c.reset_identity);
  EXPECT_EQ(calls_[0].c.domain_name, "main/disk0");
  EXPECT_EQ(calls_[0].c.instance_id.size(), 36u);
}

// A volume a running domain uses is refused at once, naming the domain.
TEST_F(VolumeCustomizerTest, RefusesAVolumeARunningDomainUses) {
  core::DomainSpec spec;
  spec.name = "web1";
  spec.disks.push_back({"vol:main/disk0", "xvda", "w", ""});
  usage_.record(spec, 7);
  auto r = customizer_->customize(hostname("disk0", "other"), adminCaller());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find("running domain 'web1' uses it"), std::string::npos) << r.status();
  usage_.release("web1");
  EXPECT_EQ(done(customizer_->customize(hostname("disk0", "other"), adminCaller())).state,
            core::OperationState::kSucceeded);
}

// Requests that change nothing, name no volume or give an interface
// without a MAC are refused before any operation; nothing is applied.
TEST_F(VolumeCustomizerTest, RefusesBadRequestsAtOnce) {
  VolumeCustomizer::Request nothing;
  nothing.name = "disk0";
  nothing.customizations.reset_identity = false;
  EXPECT_EQ(customizer_->customize(nothing, adminCaller()).status().code(), absl::StatusCode::kInvalidArgument);
  VolumeCustomizer::Request no_mac = hostname("disk0", "web1");
  core::NetworkInterface iface;
  iface.address = "10.0.0.5/24";
  no_mac.customizations.networks.push_back(iface);
  auto refused = customizer_->customize(no_mac, adminCaller());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(customizer_->customize(hostname("nosuch", "web1"), adminCaller()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(calls_.empty());
  EXPECT_TRUE(ops_.list("", false, 10).empty());
}

}  // namespace
}  // namespace xenctl::provision
