#include "lib/core/domain.h"
#include "lib/core/domain_event.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "lib/core/limits.h"
#include "lib/core/volume.h"

namespace xenctl::core {
namespace {

// Every enum value survives toString -> parse.
TEST(DomainEnums, RoundTrip) {
  for (auto t : {DomainType::kPv, DomainType::kPvh, DomainType::kHvm}) EXPECT_EQ(*parseDomainType(toString(t)), t);
  for (int i = 0; i <= static_cast<int>(DomainState::kVanished); ++i) {
    auto s = static_cast<DomainState>(i);
    EXPECT_EQ(*parseDomainState(toString(s)), s);
  }
  for (int i = 0; i <= static_cast<int>(LifecycleAction::kCoredumpRestart); ++i) {
    auto a = static_cast<LifecycleAction>(i);
    EXPECT_EQ(*parseLifecycleAction(toString(a)), a);
  }
  EXPECT_EQ(toString(LifecycleAction::kRenameRestart), "rename-restart");
}

// Every event kind has a name of its own (the log's words).
TEST(DomainEnums, EventKindNames) {
  std::set<std::string_view> seen;
  for (int i = 0; i <= static_cast<int>(DomainEventKind::kEventsLost); ++i) {
    const std::string_view name = toString(static_cast<DomainEventKind>(i));
    EXPECT_NE(name, "unknown") << i;
    EXPECT_TRUE(seen.insert(name).second) << name;
  }
  EXPECT_EQ(toString(DomainEventKind::kResourcesChanged), "resources-changed");
}

// An unknown name is rejected with the allowed values listed.
TEST(DomainEnums, UnknownNameListsChoices) {
  auto r = parseDomainType("kvm");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("pv, pvh, hvm"), absl::string_view::npos);
}

// Names follow [a-z0-9][a-z0-9-_.]{0,62}.
TEST(DomainName, Validation) {
  for (const std::string& ok : std::vector<std::string>{"web1", "a", "0db", "web-1_x.y", std::string(63, 'a')})
    EXPECT_TRUE(validateDomainName(ok).ok()) << ok;
  for (const std::string& bad : std::vector<std::string>{"", "Web1", "-web", ".web", "web 1", "web/1", "Web_1!", std::string(64, 'a')})
    EXPECT_EQ(validateDomainName(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_NE(validateDomainName("web!").message().find("'!'"), absl::string_view::npos);
}

DomainSpec minimal() {
  DomainSpec s;
  s.name = "web1";
  s.uuid = "8a1c7c3e-8a7b-4a55-9d6e-1b2c3d4e5f60";
  s.memory_mib = 512;
  s.vcpus = 2;
  return s;
}

// Defaults: maxmem/maxvcpus follow memory/vcpus, disks get vdevs, vifs get stable Xen MACs.
TEST(NormalizeSpec, FillsDefaults) {
  DomainSpec s = minimal();
  s.disks = {{"/dev/vg0/web1", "", "", ""}, {"/srv/data.img", "", "r", ""}};
  s.vifs = {{"xenbr0", "", ""}, {"xenbr1", "00:16:3E:AA:BB:CC", ""}};
  auto n = normalizeSpec(s);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->maxmem_mib, 512u);
  EXPECT_EQ(n->maxvcpus, 2u);
  EXPECT_EQ(n->disks[0].vdev, "xvda");
  EXPECT_EQ(n->disks[0].mode, "w");
  EXPECT_EQ(n->disks[1].vdev, "xvdb");
  EXPECT_EQ(n->disks[1].mode, "r");
  EXPECT_EQ(n->vifs[0].mac, xenMacFor(s.uuid, 0));
  EXPECT_EQ(n->vifs[1].mac, "00:16:3e:aa:bb:cc");
  EXPECT_EQ(*normalizeSpec(*n), *n);  // idempotent
}

// Out-of-range or contradictory values name the field.
TEST(NormalizeSpec, RejectsBadValues) {
  auto expectBad = [](DomainSpec s, const char* needle) {
    auto r = normalizeSpec(std::move(s));
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << needle;
    EXPECT_NE(r.status().message().find(needle), absl::string_view::npos) << r.status();
  };
  DomainSpec s = minimal();
  s.memory_mib = 16;
  expectBad(s, "memory 16 MiB is out of range");
  s = minimal();
  s.memory_mib = kMaxMemoryMib + 1;
  expectBad(s, "out of range");
  s = minimal();
  s.maxmem_mib = 256;
  expectBad(s, "maxmem 256");
  s = minimal();
  s.vcpus = 0;
  expectBad(s, "vcpus 0");
  s = minimal();
  s.maxvcpus = 1;
  expectBad(s, "maxvcpus 1");
  s = minimal();
  s.kernel = "/boot/vmlinuz";
  s.bootloader = "pygrub";
  expectBad(s, "either a kernel or a bootloader");
  s = minimal();
  s.disks = {{"/a", "xvda", "w", ""}, {"/b", "xvda", "w", ""}};
  expectBad(s, "two disks use vdev xvda");
  s = minimal();
  s.vifs = {{"xenbr0", "01:16:3e:00:00:01", ""}};
  expectBad(s, "multicast");
  s = minimal();
  s.vifs = {{"xenbr0", "00:16:3e:00:00", ""}};
  expectBad(s, "is not a MAC address");
  s = minimal();
  s.disks = {{"vol:main", "xvda", "w", ""}};
  expectBad(s, "disk xvda: 'vol:main' is not vol:POOL/NAME");
}

// Every caller-controlled string and list of a spec has a limit, and the error names the field and the limit.
TEST(NormalizeSpec, LimitsStringsAndLists) {
  auto expectBad = [](DomainSpec s, const std::string& needle) {
    auto r = normalizeSpec(std::move(s));
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << needle;
    EXPECT_NE(r.status().message().find(needle), absl::string_view::npos) << r.status();
  };
  DomainSpec s = minimal();
  s.kernel = "/" + std::string(kMaxPathBytes, 'k');
  expectBad(s, absl::StrCat("domain 'web1': kernel is ", kMaxPathBytes + 1, " bytes, more than the limit of ",
                            kMaxPathBytes));
  s = minimal();
  s.kernel = "/boot/vmlinuz";
  s.cmdline = std::string(kMaxCmdlineBytes + 1, 'c');
  expectBad(s, absl::StrCat("cmdline is ", kMaxCmdlineBytes + 1, " bytes"));
  s = minimal();
  for (size_t i = 0; i <= kMaxDisks; ++i) s.disks.push_back({absl::StrCat("/d", i), "", "w", ""});
  expectBad(s, absl::StrCat("disks: ", kMaxDisks + 1, " given, more than the limit of ", kMaxDisks));
  s = minimal();
  s.vifs.resize(kMaxVifs + 1);
  expectBad(s, absl::StrCat("vifs: ", kMaxVifs + 1, " given"));
  s = minimal();
  s.bootloader = "pygrub";
  s.bootloader_args.resize(kMaxBootloaderArgs + 1);
  expectBad(s, "bootloader_args");
  s = minimal();
  s.disks = {{"/" + std::string(kMaxPathBytes, 'd'), "xvda", "w", ""}};
  expectBad(s, "a disk's target is");
  // At the limits, a spec is accepted.
  s = minimal();
  for (size_t i = 0; i < kMaxDisks; ++i) s.disks.push_back({absl::StrCat("/d", i), absl::StrCat("xvd", i), "w", ""});
  s.vifs.resize(kMaxVifs);
  s.kernel = "/" + std::string(kMaxPathBytes - 1, 'k');
  s.cmdline = std::string(kMaxCmdlineBytes, 'c');
  EXPECT_TRUE(normalizeSpec(s).ok()) << normalizeSpec(s).status();
}

// A limit's error names the field, the size and the limit; a cut text says how much was cut and keeps UTF-8 whole.
TEST(Limits, CheckAndTruncate) {
  EXPECT_TRUE(checkLength("abc", 3, "x").ok());
  EXPECT_EQ(checkLength("abcd", 3, "request_id").message(),
            "request_id is 4 bytes, more than the limit of 3; give a shorter one");
  EXPECT_TRUE(checkCount(3, 3, "disks").ok());
  EXPECT_EQ(checkCount(4, 3, "disks").message(), "disks: 4 given, more than the limit of 3");
  EXPECT_EQ(truncateText("short", 100), "short");
  std::string long_text(10000, 'a');
  std::string cut = truncateText(long_text, 100);
  EXPECT_LE(cut.size(), 100u);
  EXPECT_NE(cut.find("bytes cut)"), std::string::npos) << cut;
  std::string utf8;
  for (int i = 0; i < 100; ++i) utf8 += "\xc3\xa9";  // é
  cut = truncateText(utf8, 50);
  EXPECT_EQ(cut.find(" ... ") % 2, 0u) << "cut inside a UTF-8 sequence: " << cut;
}

// "vol:POOL/NAME" parses to its pool and volume (or snapshot) and back; anything else is refused by name.
TEST(VolumeTarget, ParseAndBack) {
  auto r = parseVolumeTarget("vol:thin/web1-root");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (VolumeRef{"thin", "web1-root"}));
  EXPECT_EQ(r->target(), "vol:thin/web1-root");
  auto snap = parseVolumeTarget("vol:thin/web1-root@before");
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->name, "web1-root@before");
  EXPECT_TRUE(isVolumeTarget("vol:x"));
  EXPECT_FALSE(isVolumeTarget("/dev/vg0/vol:x"));
  for (const char* bad : {"vol:", "vol:thin", "vol:/web1", "vol:thin/", "vol:thin/Web1", "vol:thin/a/b",
                          "vol:thin/a@", "vol:thin/a@b@c", "/dev/vg0/web1"}) {
    auto st = parseVolumeTarget(bad).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find(absl::StrCat("'", bad, "' is not vol:POOL/NAME")), absl::string_view::npos) << st;
  }
}

// MACs are in the Xen OUI, unicast, stable per (uuid, index), different across both.
TEST(XenMac, StableAndInOui) {
  const std::string a = xenMacFor("u1", 0);
  EXPECT_EQ(a, xenMacFor("u1", 0));
  EXPECT_NE(a, xenMacFor("u1", 1));
  EXPECT_NE(a, xenMacFor("u2", 0));
  EXPECT_TRUE(std::regex_match(a, std::regex("00:16:3e:[0-7][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}"))) << a;
}

// UUIDs are canonical version-4 text and do not repeat.
TEST(Uuid, Version4) {
  const std::string u = newUuid();
  EXPECT_TRUE(std::regex_match(u, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << u;
  EXPECT_NE(u, newUuid());
}

// Sizes: MiB by default, K/M/G/T units, whole MiB only.
TEST(ParseSize, UnitsAndErrors) {
  EXPECT_EQ(*parseSizeMib("512"), 512u);
  EXPECT_EQ(*parseSizeMib("512M"), 512u);
  EXPECT_EQ(*parseSizeMib("2G"), 2048u);
  EXPECT_EQ(*parseSizeMib("2g"), 2048u);
  EXPECT_EQ(*parseSizeMib("1T"), 1048576u);
  EXPECT_EQ(*parseSizeMib("1048576K"), 1024u);
  for (const char* bad : {"", "M", "-1", "+5", "1.5G", "10X", "1000K", "99999999999999999999T"})
    EXPECT_EQ(parseSizeMib(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
}

}  // namespace
}  // namespace xenctl::core
