#include "lib/testhv/test_hypervisor.h"

#include <gtest/gtest.h>

namespace xenctl::testhv {
namespace {

using core::DomainState;
using Kind = core::HypervisorEvent::Kind;

core::DomainSpec spec(const std::string& name, uint64_t mem = 512) {
  core::DomainSpec s;
  s.name = name;
  s.uuid = "uuid-" + name;
  s.memory_mib = mem;
  s.maxmem_mib = 2048;
  s.vcpus = 2;
  s.maxvcpus = 4;
  return s;
}

class TestHypervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hv_.setEventSink([this](const core::HypervisorEvent& e) { events_.push_back(e); });
  }
  DomainState state(const std::string& uuid) {
    auto i = hv_.domainInfo(uuid);
    return i.ok() ? i->state : DomainState::kStopped;
  }
  TestHypervisor hv_{TestHypervisor::Options{4, 4096, "t"}};
  std::vector<core::HypervisorEvent> events_;
};

// After forgetManaged (a daemon restart) a crash is only reported, until the
// domain is adopted: then its spec's on_crash applies again. Adopting an
// absent uuid is NOT_FOUND.
TEST_F(TestHypervisorTest, AdoptAfterForget) {
  core::DomainSpec s = spec("a");
  s.on_crash = core::LifecycleAction::kRestart;
  s.on_reboot = core::LifecycleAction::kRestart;
  ASSERT_TRUE(hv_.createDomain(s, false).ok());
  hv_.forgetManaged();
  ASSERT_TRUE(hv_.crashDomain(s.uuid).ok());
  EXPECT_EQ(state(s.uuid), DomainState::kCrashed);
  ASSERT_TRUE(hv_.destroyDomain(s.uuid).ok());

  ASSERT_TRUE(hv_.createDomain(s, false).ok());
  hv_.forgetManaged();
  ASSERT_TRUE(hv_.adopt(s).ok());
  const int64_t domid = hv_.domainInfo(s.uuid)->domid;
  ASSERT_TRUE(hv_.crashDomain(s.uuid).ok());
  EXPECT_EQ(state(s.uuid), DomainState::kRunning);
  EXPECT_NE(hv_.domainInfo(s.uuid)->domid, domid);
  EXPECT_EQ(hv_.adopt(spec("nobody")).code(), absl::StatusCode::kNotFound);
}

// A domain's console is a real pty: it shows the domain's line, takes input
// in raw mode, and closes when the domain is destroyed.
TEST_F(TestHypervisorTest, ConsoleClosesWithTheDomain) {
  ASSERT_TRUE(hv_.createDomain(spec("a"), false).ok());
  auto path = hv_.consolePath("uuid-a");
  ASSERT_TRUE(path.ok()) << path.status();
  auto console = sys::ConsolePty::open(*path, "domain 'a'");
  ASSERT_TRUE(console.ok()) << console.status();
  std::string seen;
  for (int i = 0; i < 20 && seen.find("\r\n") == std::string::npos; ++i) seen += console->read(absl::Milliseconds(100)).value_or("");
  EXPECT_EQ(seen, "xenctl test hypervisor: console of domain 'a' (domid 1)\r\n");
  EXPECT_TRUE(console->write("ls\r", absl::Seconds(1)).ok());
  ASSERT_TRUE(hv_.destroyDomain("uuid-a").ok());
  EXPECT_EQ(console->read(absl::Seconds(1)).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(hv_.consolePath("uuid-a").status().code(), absl::StatusCode::kNotFound);
}

// The console lists the disks with the host paths the domain was given;
// an unresolved volume target is refused, as libxl's config builder refuses
// it: at create, and at a restart of a domain adopted with one.
TEST_F(TestHypervisorTest, DisksAreHostPaths) {
  core::DomainSpec s = spec("a");
  s.disks = {{"/srv/a.img", "xvda", "w", ""}, {"/dev/vg0/data", "xvdb", "r", ""}};
  ASSERT_TRUE(hv_.createDomain(s, false).ok());
  EXPECT_EQ(hv_.specOf("uuid-a")->disks, s.disks);
  auto console = sys::ConsolePty::open(*hv_.consolePath("uuid-a"), "domain 'a'");
  ASSERT_TRUE(console.ok()) << console.status();
  std::string seen;
  for (int i = 0; i < 20 && seen.find("xvdb") == std::string::npos; ++i)
    seen += console->read(absl::Milliseconds(100)).value_or("");
  for (int i = 0; i < 5 && !seen.ends_with("\r\n"); ++i) seen += console->read(absl::Milliseconds(100)).value_or("");
  EXPECT_EQ(seen,
            "xenctl test hypervisor: console of domain 'a' (domid 1)\r\n"
            "disk xvda: /srv/a.img (w)\r\ndisk xvdb: /dev/vg0/data (r)\r\n");

  core::DomainSpec v = spec("v");
  v.disks = {{"vol:main/v-root", "xvda", "w", ""}};
  auto st = hv_.createDomain(v, false).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("disk xvda names volume vol:main/v-root instead of a host path"), std::string::npos)
      << st;
  core::DomainSpec unresolved = s;
  unresolved.disks[0].target = "vol:main/a";
  unresolved.on_reboot = core::LifecycleAction::kRestart;
  ASSERT_TRUE(hv_.adopt(unresolved).ok());  // as libxl: adopting changes nothing running
  EXPECT_EQ(state("uuid-a"), DomainState::kRunning);
  events_.clear();
  ASSERT_TRUE(hv_.rebootDomain("uuid-a").ok());
  EXPECT_EQ(hv_.domainInfo("uuid-a").status().code(), absl::StatusCode::kNotFound);
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(events_.back().kind, Kind::kDestroyed);
  EXPECT_NE(events_.back().message.find("restart failed: domain 'a': disk xvda names volume vol:main/a"),
            std::string::npos) << events_.back().message;
}

// Create gives increasing domids and running (or paused) domains; names and uuids are unique.
TEST_F(TestHypervisorTest, CreateAssignsDomids) {
  auto a = hv_.createDomain(spec("a"), false);
  auto b = hv_.createDomain(spec("b"), true);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->domid, 1);
  EXPECT_EQ(b->domid, 2);
  EXPECT_EQ(a->state, DomainState::kRunning);
  EXPECT_EQ(b->state, DomainState::kPaused);
  EXPECT_EQ(hv_.createDomain(spec("a"), false).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(hv_.listDomains()->size(), 2u);
  EXPECT_EQ(hv_.hostInfo()->memory_free_mib, 4096u - 1024u);
}

// The host's memory bounds what can run.
TEST_F(TestHypervisorTest, MemoryExhaustion) {
  ASSERT_TRUE(hv_.createDomain(spec("a", 4000), false).ok());
  auto r = hv_.createDomain(spec("b", 512), false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("96 MiB free"), absl::string_view::npos) << r.status();
}

// A domain gone frees its name and its memory; a live change of memory and a
// restart's reset count as the host's free memory says.
TEST_F(TestHypervisorTest, NamesAndMemoryFollowTheDomains) {
  auto a = hv_.createDomain(spec("a", 4000), false);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(hv_.destroyDomain(a->uuid).ok());
  EXPECT_EQ(hv_.hostInfo()->memory_free_mib, 4096u);
  core::DomainSpec b = spec("a", 1024);
  b.maxmem_mib = 2048;
  b.on_reboot = core::LifecycleAction::kRestart;
  auto again = hv_.createDomain(b, false);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(hv_.setMemory(again->uuid, 2048).ok());
  EXPECT_EQ(hv_.hostInfo()->memory_free_mib, 2048u);
  ASSERT_TRUE(hv_.rebootDomain(again->uuid).ok());  // built again with the spec's 1024
  EXPECT_EQ(hv_.hostInfo()->memory_free_mib, 3072u);
  EXPECT_EQ(hv_.createDomain(spec("a"), false).status().code(), absl::StatusCode::kAlreadyExists);
}

// Pause/unpause only from the right states.
TEST_F(TestHypervisorTest, PauseUnpause) {
  auto a = *hv_.createDomain(spec("a"), false);
  EXPECT_EQ(hv_.unpauseDomain(a.uuid).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(hv_.pauseDomain(a.uuid).ok());
  EXPECT_EQ(state(a.uuid), DomainState::kPaused);
  EXPECT_EQ(hv_.pauseDomain(a.uuid).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(hv_.shutdownDomain(a.uuid).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(hv_.unpauseDomain(a.uuid).ok());
  EXPECT_EQ(state(a.uuid), DomainState::kRunning);
  EXPECT_EQ(events_.back().kind, Kind::kUnpaused);
}

// Shutdown follows on_poweroff: destroy removes, preserve keeps it shut down, restart gives a new domid.
TEST_F(TestHypervisorTest, ShutdownFollowsOnPoweroff) {
  auto s1 = spec("d");
  auto s2 = spec("p");
  s2.on_poweroff = core::LifecycleAction::kPreserve;
  auto s3 = spec("r");
  s3.on_poweroff = core::LifecycleAction::kRestart;
  auto d = *hv_.createDomain(s1, false);
  auto p = *hv_.createDomain(s2, false);
  auto r = *hv_.createDomain(s3, false);
  ASSERT_TRUE(hv_.shutdownDomain(d.uuid).ok());
  ASSERT_TRUE(hv_.shutdownDomain(p.uuid).ok());
  ASSERT_TRUE(hv_.shutdownDomain(r.uuid).ok());
  EXPECT_EQ(hv_.domainInfo(d.uuid).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(state(p.uuid), DomainState::kShutdown);
  EXPECT_EQ(state(r.uuid), DomainState::kRunning);
  EXPECT_GT(hv_.domainInfo(r.uuid)->domid, r.domid);
  EXPECT_EQ(events_.back().kind, Kind::kRebooted);
}

// Reboot gives a new domid; crash follows on_crash; destroy works from any state.
TEST_F(TestHypervisorTest, RebootCrashDestroy) {
  auto s = spec("a");
  s.on_crash = core::LifecycleAction::kPreserve;
  auto a = *hv_.createDomain(s, false);
  ASSERT_TRUE(hv_.rebootDomain(a.uuid).ok());
  EXPECT_EQ(hv_.domainInfo(a.uuid)->domid, a.domid + 1);
  ASSERT_TRUE(hv_.crashDomain(a.uuid).ok());
  EXPECT_EQ(state(a.uuid), DomainState::kCrashed);
  EXPECT_EQ(hv_.rebootDomain(a.uuid).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(hv_.destroyDomain(a.uuid).ok());
  EXPECT_EQ(hv_.domainInfo(a.uuid).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(events_.back().kind, Kind::kDestroyed);
  EXPECT_EQ(hv_.destroyDomain(a.uuid).code(), absl::StatusCode::kNotFound);
}

// Live vcpu and memory changes stay within the maxima.
TEST_F(TestHypervisorTest, LiveResources) {
  auto a = *hv_.createDomain(spec("a"), false);
  ASSERT_TRUE(hv_.setVcpus(a.uuid, 4).ok());
  EXPECT_EQ(hv_.setVcpus(a.uuid, 5).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hv_.setVcpus(a.uuid, 0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(hv_.setMemory(a.uuid, 2048).ok());
  EXPECT_EQ(hv_.setMemory(a.uuid, 2049).code(), absl::StatusCode::kInvalidArgument);
  auto i = *hv_.domainInfo(a.uuid);
  EXPECT_EQ(i.vcpus_online, 4u);
  EXPECT_EQ(i.memory_mib, 2048u);
  EXPECT_EQ(events_.back().kind, Kind::kResourcesChanged);
}

}  // namespace
}  // namespace xenctl::testhv
