#include "proto/convert/convert.h"

#include <gtest/gtest.h>

namespace xenctl::protoconv {
namespace {

// A spec with every field set survives core -> proto -> core.
TEST(ProtoConvert, SpecRoundTrip) {
  core::DomainSpec s;
  s.name = "web1";
  s.uuid = "u";
  s.type = core::DomainType::kHvm;
  s.kernel = "/k";
  s.ramdisk = "/r";
  s.cmdline = "c";
  s.bootloader_args = {"-q"};
  s.memory_mib = 512;
  s.maxmem_mib = 1024;
  s.vcpus = 1;
  s.maxvcpus = 2;
  s.disks = {{"/dev/vg0/web1", "xvda", "r", "phy"}};
  s.vifs = {{"xenbr0", "00:16:3e:00:00:01", "10.0.0.1"}};
  s.on_poweroff = core::LifecycleAction::kPreserve;
  s.on_reboot = core::LifecycleAction::kRenameRestart;
  s.on_crash = core::LifecycleAction::kCoredumpRestart;
  s.on_watchdog = core::LifecycleAction::kRestart;
  s.xl_config_file = "/etc/xen/web1.cfg";
  s.xl_config_text = "name = 'web1'\n";
  v1::DomainSpec p;
  toProto(s, &p);
  auto back = fromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, s);
}

// UNSPECIFIED takes core's defaults; an unknown value is INVALID_ARGUMENT naming the field.
TEST(ProtoConvert, EnumsDefaultsAndUnknown) {
  v1::DomainSpec p;
  auto s = fromProto(p);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->type, core::DomainType::kPvh);
  EXPECT_EQ(s->on_reboot, core::LifecycleAction::kRestart);
  EXPECT_EQ(s->on_watchdog, core::LifecycleAction::kDestroy);
  p.set_on_crash(static_cast<v1::LifecycleAction>(42));
  auto bad = fromProto(p);
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("on_crash"), absl::string_view::npos);
  for (int i = 0; i <= static_cast<int>(core::DomainState::kVanished); ++i) {
    auto st = static_cast<core::DomainState>(i);
    EXPECT_EQ(fromProto(toProto(st)), st);
  }
  EXPECT_FALSE(fromProto(v1::DOMAIN_STATE_UNSPECIFIED).has_value());
  EXPECT_EQ(fromProto(toProto(core::OperationState::kCancelled)), core::OperationState::kCancelled);
}

// Timestamps keep microseconds; the zero timestamp means unset.
TEST(ProtoConvert, Timestamps) {
  const absl::Time t = absl::FromUnixMicros(1'800'000'000'123'456);
  google::protobuf::Timestamp ts;
  toProto(t, &ts);
  EXPECT_EQ(fromProto(ts), t);
  EXPECT_FALSE(fromProto(google::protobuf::Timestamp()).has_value());
}

}  // namespace
}  // namespace xenctl::protoconv
