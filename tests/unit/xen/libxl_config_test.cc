// The libxl backend's pure parts: DomainSpec -> libxl_domain_config, dominfo
// -> state, shutdown reasons -> events and actions, libxl codes -> Status,
// and libxl's log captured. None of it needs Xen.
#include "lib/xen/libxl_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "lib/xen/libxl_hypervisor.h"
#include "lib/xen/libxl_logger.h"
#include "lib/xen/xl_config.h"

namespace xenctl::xen {
namespace {

using core::DomainState;
using core::DomainType;
using core::LifecycleAction;
using Kind = core::HypervisorEvent::Kind;

constexpr char kUuid[] = "6f1a2b3c-4d5e-4f60-8172-93a4b5c6d7e8";

core::DomainSpec pvSpec() {
  core::DomainSpec s;
  s.name = "web1";
  s.uuid = kUuid;
  s.type = DomainType::kPv;
  s.kernel = "/boot/vmlinux";
  s.ramdisk = "/boot/initrd.img";
  s.cmdline = "console=hvc0 root=/dev/xvda";
  s.memory_mib = 256;
  s.maxmem_mib = 512;
  s.vcpus = 2;
  s.maxvcpus = 4;
  s.disks = {{"/dev/vg0/web1-root", "", "w", ""}, {"/srv/data.img", "", "r", ""}, {"/srv/x.qcow2", "xvdc", "w", ""}};
  s.vifs = {{"xenbr0", "", ""}, {"xenbr1", "00:16:3E:01:02:03", "10.0.0.5"}};
  s.on_poweroff = LifecycleAction::kDestroy;
  s.on_reboot = LifecycleAction::kRestart;
  s.on_crash = LifecycleAction::kPreserve;
  auto n = core::normalizeSpec(s);
  EXPECT_TRUE(n.ok()) << n.status();
  return *n;
}

std::string str(const char* p) { return p ? p : "(null)"; }

// A PV spec fills c_info, memory, vcpus (max and the online bitmap), and the boot triple.
TEST(BuildDomainConfig, PvDomainCoreFields) {
  DomainConfig cfg;
  ASSERT_TRUE(buildDomainConfig(pvSpec(), cfg.get()).ok());
  EXPECT_EQ(cfg->c_info.type, LIBXL_DOMAIN_TYPE_PV);
  EXPECT_EQ(str(cfg->c_info.name), "web1");
  EXPECT_EQ(uuidText(cfg->c_info.uuid), kUuid);
  EXPECT_EQ(cfg->b_info.type, LIBXL_DOMAIN_TYPE_PV);
  EXPECT_EQ(cfg->b_info.target_memkb, 256u * 1024);
  EXPECT_EQ(cfg->b_info.max_memkb, 512u * 1024);
  EXPECT_EQ(cfg->b_info.max_vcpus, 4);
  EXPECT_TRUE(libxl_bitmap_test(&cfg->b_info.avail_vcpus, 0));
  EXPECT_TRUE(libxl_bitmap_test(&cfg->b_info.avail_vcpus, 1));
  EXPECT_FALSE(libxl_bitmap_test(&cfg->b_info.avail_vcpus, 2));
  EXPECT_FALSE(libxl_bitmap_test(&cfg->b_info.avail_vcpus, 3));
  EXPECT_EQ(str(cfg->b_info.kernel), "/boot/vmlinux");
  EXPECT_EQ(str(cfg->b_info.ramdisk), "/boot/initrd.img");
  EXPECT_EQ(str(cfg->b_info.cmdline), "console=hvc0 root=/dev/xvda");
  EXPECT_EQ(cfg->b_info.bootloader, nullptr);
}

// Disks: phy for block devices, raw files left to libxl's backend choice, qcow2 through qdisk; vdev and mode kept.
TEST(BuildDomainConfig, Disks) {
  DomainConfig cfg;
  ASSERT_TRUE(buildDomainConfig(pvSpec(), cfg.get()).ok());
  ASSERT_EQ(cfg->num_disks, 3);
  const libxl_device_disk& root = cfg->disks[0];
  EXPECT_EQ(str(root.pdev_path), "/dev/vg0/web1-root");
  EXPECT_EQ(str(root.vdev), "xvda");
  EXPECT_EQ(root.backend, LIBXL_DISK_BACKEND_PHY);
  EXPECT_EQ(root.format, LIBXL_DISK_FORMAT_RAW);
  EXPECT_EQ(root.readwrite, 1);
  const libxl_device_disk& data = cfg->disks[1];
  EXPECT_EQ(str(data.pdev_path), "/srv/data.img");
  EXPECT_EQ(str(data.vdev), "xvdb");
  EXPECT_EQ(data.backend, LIBXL_DISK_BACKEND_UNKNOWN);
  EXPECT_EQ(data.format, LIBXL_DISK_FORMAT_RAW);
  EXPECT_EQ(data.readwrite, 0);
  const libxl_device_disk& q = cfg->disks[2];
  EXPECT_EQ(str(q.vdev), "xvdc");
  EXPECT_EQ(q.backend, LIBXL_DISK_BACKEND_QDISK);
  EXPECT_EQ(q.format, LIBXL_DISK_FORMAT_QCOW2);
}

// An explicit format wins over the one guessed from the path; an unknown one is refused.
TEST(BuildDomainConfig, ExplicitDiskFormat) {
  core::DomainSpec s = pvSpec();
  s.disks = {{"/srv/lv-as-file", "xvda", "w", "phy"}};
  DomainConfig cfg;
  ASSERT_TRUE(buildDomainConfig(s, cfg.get()).ok());
  EXPECT_EQ(cfg->disks[0].backend, LIBXL_DISK_BACKEND_PHY);
  s.disks = {{"/srv/a.vmdk", "xvda", "w", "vmdk"}};
  DomainConfig bad;
  EXPECT_EQ(buildDomainConfig(s, bad.get()).code(), absl::StatusCode::kInvalidArgument);
}

// Vifs: bridge, MAC bytes (the generated Xen-OUI one and a given one), devids in order, ip.
TEST(BuildDomainConfig, Nics) {
  const core::DomainSpec s = pvSpec();
  DomainConfig cfg;
  ASSERT_TRUE(buildDomainConfig(s, cfg.get()).ok());
  ASSERT_EQ(cfg->num_nics, 2);
  const libxl_device_nic& a = cfg->nics[0];
  EXPECT_EQ(str(a.bridge), "xenbr0");
  EXPECT_EQ(a.devid, 0);
  EXPECT_EQ(a.mac[0], 0x00);
  EXPECT_EQ(a.mac[1], 0x16);
  EXPECT_EQ(a.mac[2], 0x3e);
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", a.mac[0], a.mac[1], a.mac[2], a.mac[3],
                a.mac[4], a.mac[5]);
  EXPECT_EQ(std::string(text), core::xenMacFor(kUuid, 0));
  EXPECT_EQ(a.ip, nullptr);
  const libxl_device_nic& b = cfg->nics[1];
  EXPECT_EQ(str(b.bridge), "xenbr1");
  EXPECT_EQ(b.devid, 1);
  const uint8_t want[6] = {0x00, 0x16, 0x3e, 0x01, 0x02, 0x03};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(b.mac[i], want[i]) << i;
  EXPECT_EQ(str(b.ip), "10.0.0.5");
}

// on_poweroff/on_reboot/on_crash/on_watchdog map one to one.
TEST(BuildDomainConfig, LifecycleActions) {
  DomainConfig cfg;
  core::DomainSpec s = pvSpec();
  s.on_watchdog = LifecycleAction::kCoredumpRestart;
  ASSERT_TRUE(buildDomainConfig(s, cfg.get()).ok());
  EXPECT_EQ(cfg->on_poweroff, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
  EXPECT_EQ(cfg->on_reboot, LIBXL_ACTION_ON_SHUTDOWN_RESTART);
  EXPECT_EQ(cfg->on_crash, LIBXL_ACTION_ON_SHUTDOWN_PRESERVE);
  EXPECT_EQ(cfg->on_watchdog, LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_RESTART);
  EXPECT_EQ(libxlActionOf(LifecycleAction::kRenameRestart), LIBXL_ACTION_ON_SHUTDOWN_RESTART_RENAME);
  EXPECT_EQ(libxlActionOf(LifecycleAction::kCoredumpDestroy), LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_DESTROY);
  EXPECT_EQ(libxlActionOf(LifecycleAction::kCoredumpRestart), LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_RESTART);
}

// A PVH domain with pygrub gets the bootloader and its arguments (NULL-terminated), no kernel.
TEST(BuildDomainConfig, PvhWithPygrub) {
  core::DomainSpec s = pvSpec();
  s.type = DomainType::kPvh;
  s.kernel.clear();
  s.ramdisk.clear();
  s.cmdline.clear();
  s.bootloader = "pygrub";
  s.bootloader_args = {"-q", "--entry=1"};
  DomainConfig cfg;
  ASSERT_TRUE(buildDomainConfig(s, cfg.get()).ok());
  EXPECT_EQ(cfg->c_info.type, LIBXL_DOMAIN_TYPE_PVH);
  EXPECT_EQ(cfg->b_info.type, LIBXL_DOMAIN_TYPE_PVH);
  EXPECT_EQ(str(cfg->b_info.bootloader), "pygrub");
  ASSERT_EQ(libxl_string_list_length(&cfg->b_info.bootloader_args), 2);
  EXPECT_EQ(str(cfg->b_info.bootloader_args[1]), "--entry=1");
  EXPECT_EQ(cfg->b_info.kernel, nullptr);
}

// pvgrub is booted as the kernel: the PV or PVH grub image, no Dom0-side bootloader.
TEST(BuildDomainConfig, PvgrubIsAKernel) {
  core::DomainSpec s = pvSpec();
  s.kernel.clear();
  s.ramdisk.clear();
  s.cmdline.clear();
  s.bootloader = "pvgrub";
  DomainConfig pv;
  ASSERT_TRUE(buildDomainConfig(s, pv.get()).ok());
  EXPECT_EQ(str(pv->b_info.kernel), kPvGrubPv);
  EXPECT_EQ(pv->b_info.bootloader, nullptr);
  s.type = DomainType::kPvh;
  DomainConfig pvh;
  ASSERT_TRUE(buildDomainConfig(s, pvh.get()).ok());
  EXPECT_EQ(str(pvh->b_info.kernel), kPvGrubPvh);
}

// An HVM domain boots from its disk: no kernel needed, a bootloader refused.
TEST(BuildDomainConfig, Hvm) {
  core::DomainSpec s = pvSpec();
  s.type = DomainType::kHvm;
  s.kernel.clear();
  s.ramdisk.clear();
  s.cmdline.clear();
  DomainConfig cfg;
  ASSERT_TRUE(buildDomainConfig(s, cfg.get()).ok());
  EXPECT_EQ(cfg->c_info.type, LIBXL_DOMAIN_TYPE_HVM);
  EXPECT_EQ(cfg->b_info.type, LIBXL_DOMAIN_TYPE_HVM);
  EXPECT_EQ(cfg->b_info.kernel, nullptr);
  s.bootloader = "pygrub";
  DomainConfig bad;
  Status st = buildDomainConfig(s, bad.get());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("hvm"), std::string_view::npos) << st;
}

// What libxl cannot express is refused with the field named: nothing to boot, a bad uuid, a managed volume.
TEST(BuildDomainConfig, Refusals) {
  core::DomainSpec s = pvSpec();
  s.kernel.clear();
  s.ramdisk.clear();
  s.cmdline.clear();
  DomainConfig a;
  Status st = buildDomainConfig(s, a.get());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("needs a kernel or a bootloader"), std::string_view::npos) << st;

  s = pvSpec();
  s.uuid = "not-a-uuid";
  DomainConfig b;
  EXPECT_EQ(buildDomainConfig(s, b.get()).code(), absl::StatusCode::kInvalidArgument);

  s = pvSpec();
  s.disks[1].target = "vol:pool0/web1-data";
  DomainConfig c;
  st = buildDomainConfig(s, c.get());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);  // DomainManager resolves volumes; libxl sees paths
  EXPECT_NE(st.message().find("disk xvdb names volume vol:pool0/web1-data instead of a host path"),
            std::string_view::npos) << st;
  EXPECT_EQ(c->num_disks, 2);  // the partial fill is counted, so dispose frees it (ASan checks)

  s = pvSpec();
  s.vifs[0].mac = "00:16:3e:zz:00:00";
  DomainConfig d;
  EXPECT_EQ(buildDomainConfig(s, d.get()).code(), absl::StatusCode::kInvalidArgument);
}

// A spec read from an xl config, normalized as the daemon stores it.
core::DomainSpec xlSpec(const std::string& text) {
  Result<core::DomainSpec> s = readXlConfig(text, "web.cfg");
  EXPECT_TRUE(s.ok()) << s.status();
  core::DomainSpec spec = s.ok() ? *s : core::DomainSpec{};
  spec.uuid = kUuid;
  auto n = core::normalizeSpec(spec);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? *n : spec;
}

nlohmann::json jsonOf(const core::DomainSpec& spec) {
  DomainConfig cfg;
  Status st = buildDomainConfig(spec, cfg.get());
  EXPECT_TRUE(st.ok()) << st;
  Result<std::string> text = domainConfigJson(*cfg);
  EXPECT_TRUE(text.ok());
  return nlohmann::json::parse(text.ok() ? *text : "{}");
}

constexpr char kXlText[] = R"(name = "web"
type = "hvm"
memory = 512
vcpus = 2
disk = [ 'vdev=hda,access=rw,discard,target=vol:thin/web-root', '/srv/iso/d.iso,raw,hdc:cdrom,r' ]
vif = [ 'bridge=xenbr0,model=e1000' ]
vnc = 1
serial = "pty"
)";

// A spec from an xl config is built from its text, every key carried, with
// the daemon's uuid and stable MAC; the stored spec (store JSON, proto)
// rebuilds the same config, which is how a definition survives a restart.
TEST(BuildDomainConfig, XlConfigSpecIsBuiltFromItsText) {
  core::DomainSpec spec = xlSpec(kXlText);
  spec.disks[0].target = "/dev/thin/web-root";  // DomainManager resolves vol:POOL/NAME before the build
  const nlohmann::json j = jsonOf(spec);
  EXPECT_EQ(j["c_info"]["uuid"], kUuid);
  EXPECT_EQ(j["b_info"]["type.hvm"]["vnc"]["enable"], "True");
  EXPECT_EQ(j["b_info"]["type.hvm"]["serial"], "pty");
  EXPECT_EQ(j["disks"][0]["pdev_path"], "/dev/thin/web-root");
  EXPECT_EQ(j["disks"][0]["discard_enable"], "True");
  EXPECT_EQ(j["disks"][1]["is_cdrom"], 1);
  EXPECT_EQ(j["nics"][0]["model"], "e1000");
  EXPECT_EQ(j["nics"][0]["mac"], spec.vifs[0].mac);
  EXPECT_EQ(j["b_info"]["target_memkb"], 512 * 1024);
  EXPECT_EQ(jsonOf(spec), j);
}

// What the daemon changed since (SetDomainResources, a new name, a disk
// added in front, a vif's ip dropped) wins over the text; the rest stays.
TEST(BuildDomainConfig, XlConfigSpecChangesAreLaidOverTheText) {
  core::DomainSpec spec = xlSpec(kXlText);
  spec.disks[0].target = "/dev/thin/web-root";
  spec.memory_mib = 768;
  spec.maxmem_mib = 1024;
  spec.vcpus = 1;
  spec.maxvcpus = 4;
  spec.name = "web-fork";
  spec.disks.insert(spec.disks.begin(), core::DiskSpec{"/dev/thin/web-fork-root", "xvda", "w", ""});
  spec.on_crash = LifecycleAction::kPreserve;
  spec.on_watchdog = LifecycleAction::kRestart;
  const nlohmann::json j = jsonOf(spec);
  EXPECT_EQ(j["c_info"]["name"], "web-fork");
  EXPECT_EQ(j["on_watchdog"], "restart");
  EXPECT_EQ(j["b_info"]["target_memkb"], 768 * 1024);
  EXPECT_EQ(j["b_info"]["max_memkb"], 1024 * 1024);
  EXPECT_EQ(j["b_info"]["max_vcpus"], 4);
  EXPECT_EQ(j["b_info"]["avail_vcpus"], nlohmann::json::array({0}));
  EXPECT_EQ(j["on_crash"], "preserve");
  ASSERT_EQ(j["disks"].size(), 3u);
  EXPECT_EQ(j["disks"][0]["pdev_path"], "/dev/thin/web-fork-root");
  EXPECT_EQ(j["disks"][1]["discard_enable"], "True");  // hda keeps its options
  EXPECT_EQ(j["b_info"]["type.hvm"]["vnc"]["enable"], "True");
}

// on_watchdog from the text is typed in the spec and built as xl builds it;
// the stored spec (store JSON) rebuilds the same action after a restart.
TEST(BuildDomainConfig, XlConfigOnWatchdogIsTypedAndRebuilt) {
  core::DomainSpec spec = xlSpec("name = 'w'\nkernel = '/k'\non_watchdog = 'coredump-restart'\n");
  EXPECT_EQ(spec.on_watchdog, LifecycleAction::kCoredumpRestart);
  EXPECT_EQ(spec.on_crash, LifecycleAction::kDestroy);
  EXPECT_EQ(jsonOf(spec)["on_watchdog"], "coredump_restart");
  EXPECT_EQ(xlSpec("name = 'w'\nkernel = '/k'\n").on_watchdog, LifecycleAction::kDestroy);  // xl's default
}

// A managed volume that was not resolved is named, as for a typed spec.
TEST(BuildDomainConfig, XlConfigSpecWithUnresolvedVolumeIsRefused) {
  core::DomainSpec spec = xlSpec(kXlText);
  DomainConfig cfg;
  Status st = buildDomainConfig(spec, cfg.get());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("vol:thin/web-root"), std::string::npos) << st;
}

// libxl's own JSON of the config (what `xl create -n` would print) carries the same fields.
// libxl_domain_config_to_json is called without a ctx, which libxl 4.17 tolerates for serialization.
TEST(BuildDomainConfig, LibxlJson) {
  DomainConfig cfg;
  ASSERT_TRUE(buildDomainConfig(pvSpec(), cfg.get()).ok());
  char* text = libxl_domain_config_to_json(nullptr, cfg.get());
  ASSERT_NE(text, nullptr);
  const nlohmann::json j = nlohmann::json::parse(text);
  std::free(text);
  EXPECT_EQ(j["c_info"]["type"], "pv");
  EXPECT_EQ(j["c_info"]["name"], "web1");
  EXPECT_EQ(j["c_info"]["uuid"], kUuid);
  EXPECT_EQ(j["b_info"]["max_memkb"], 512 * 1024);
  EXPECT_EQ(j["b_info"]["target_memkb"], 256 * 1024);
  EXPECT_EQ(j["b_info"]["max_vcpus"], 4);
  EXPECT_EQ(j["b_info"]["kernel"], "/boot/vmlinux");
  EXPECT_EQ(j["disks"][0]["pdev_path"], "/dev/vg0/web1-root");
  EXPECT_EQ(j["disks"][0]["backend"], "phy");
  EXPECT_EQ(j["disks"][2]["format"], "qcow2");
  EXPECT_EQ(j["nics"][1]["mac"], "00:16:3e:01:02:03");
  EXPECT_EQ(j["nics"][1]["bridge"], "xenbr1");
  EXPECT_EQ(j["on_reboot"], "restart");
  EXPECT_EQ(j["on_crash"], "preserve");
}

libxl_dominfo dominfo() {
  libxl_dominfo d;
  libxl_dominfo_init(&d);
  return d;
}

// Dominfo flags map to the state xl list shows: dying, then shutdown/crashed, paused, blocked, running.
TEST(DomainStateOf, Flags) {
  libxl_dominfo d = dominfo();
  EXPECT_EQ(domainStateOf(d), DomainState::kRunning);  // runnable, waiting for a CPU
  d.running = true;
  EXPECT_EQ(domainStateOf(d), DomainState::kRunning);
  d.running = false;
  d.blocked = true;
  EXPECT_EQ(domainStateOf(d), DomainState::kBlocked);
  d.paused = true;
  EXPECT_EQ(domainStateOf(d), DomainState::kPaused);
  d.shutdown = true;
  d.shutdown_reason = LIBXL_SHUTDOWN_REASON_POWEROFF;
  EXPECT_EQ(domainStateOf(d), DomainState::kShutdown);
  d.shutdown_reason = LIBXL_SHUTDOWN_REASON_REBOOT;
  EXPECT_EQ(domainStateOf(d), DomainState::kShutdown);
  d.shutdown_reason = LIBXL_SHUTDOWN_REASON_CRASH;
  EXPECT_EQ(domainStateOf(d), DomainState::kCrashed);
  d.shutdown_reason = LIBXL_SHUTDOWN_REASON_WATCHDOG;
  EXPECT_EQ(domainStateOf(d), DomainState::kCrashed);
  d.dying = true;
  EXPECT_EQ(domainStateOf(d), DomainState::kDying);
  libxl_dominfo_dispose(&d);
}

// DomainInfo takes uuid, domid, online vcpus, current memory in MiB, cpu time in seconds and the type.
TEST(DomainInfoOf, Fields) {
  libxl_dominfo d = dominfo();
  ASSERT_EQ(libxl_uuid_from_string(&d.uuid, kUuid), 0);
  d.domid = 7;
  d.blocked = true;
  d.vcpu_online = 3;
  d.current_memkb = 262144 + 512;
  d.cpu_time = 2'500'000'000ULL;
  d.domain_type = LIBXL_DOMAIN_TYPE_PV;
  const core::DomainInfo i = domainInfoOf(d, "web1");
  EXPECT_EQ(i.name, "web1");
  EXPECT_EQ(i.uuid, kUuid);
  EXPECT_EQ(i.domid, 7);
  EXPECT_EQ(i.state, DomainState::kBlocked);
  EXPECT_EQ(i.vcpus_online, 3u);
  EXPECT_EQ(i.memory_mib, 256u);
  EXPECT_DOUBLE_EQ(i.cpu_time_seconds, 2.5);
  EXPECT_EQ(i.type, core::DomainType::kPv);
  libxl_dominfo_dispose(&d);
}

// Shutdown reasons choose the reported event and the spec's action, as the test hypervisor does.
TEST(ShutdownMeaningOf, Reasons) {
  core::DomainSpec s = pvSpec();
  s.on_poweroff = LifecycleAction::kPreserve;
  s.on_reboot = LifecycleAction::kRestart;
  s.on_crash = LifecycleAction::kCoredumpDestroy;
  s.on_watchdog = LifecycleAction::kRestart;

  ShutdownMeaning off = shutdownMeaningOf(LIBXL_SHUTDOWN_REASON_POWEROFF, s);
  EXPECT_TRUE(off.report_first);
  EXPECT_EQ(off.kind, Kind::kShutdown);
  EXPECT_EQ(off.state, DomainState::kShutdown);
  EXPECT_EQ(off.action, LifecycleAction::kPreserve);

  ShutdownMeaning reboot = shutdownMeaningOf(LIBXL_SHUTDOWN_REASON_REBOOT, s);
  EXPECT_FALSE(reboot.report_first);
  EXPECT_EQ(reboot.action, LifecycleAction::kRestart);

  // A watchdog firing is reported as a crash; on_watchdog's action follows it.
  for (int r : {LIBXL_SHUTDOWN_REASON_CRASH, LIBXL_SHUTDOWN_REASON_WATCHDOG}) {
    ShutdownMeaning crash = shutdownMeaningOf(r, s);
    EXPECT_TRUE(crash.report_first);
    EXPECT_EQ(crash.kind, Kind::kCrashed);
    EXPECT_EQ(crash.state, DomainState::kCrashed);
    EXPECT_EQ(crash.action, r == LIBXL_SHUTDOWN_REASON_WATCHDOG ? LifecycleAction::kRestart
                                                                : LifecycleAction::kCoredumpDestroy);
  }
  EXPECT_FALSE(shutdownMeaningOf(LIBXL_SHUTDOWN_REASON_SUSPEND, s).action.has_value());
  EXPECT_EQ(shutdownMeaningOf(LIBXL_SHUTDOWN_REASON_UNKNOWN, s).action, LifecycleAction::kPreserve);
}

// libxl codes become chosen Status codes, and the message carries the step, libxl's error name and its log.
TEST(StatusFromLibxl, CodesAndMessage) {
  EXPECT_EQ(statusFromLibxl(ERROR_DOMAIN_NOTFOUND, "x", "").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(statusFromLibxl(ERROR_INVAL, "x", "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(statusFromLibxl(ERROR_NOMEM, "x", "").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(statusFromLibxl(ERROR_NOPARAVIRT, "x", "").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(statusFromLibxl(ERROR_GUEST_TIMEDOUT, "x", "").code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(statusFromLibxl(ERROR_LOCK_FAIL, "x", "").code(), absl::StatusCode::kUnavailable);
  const Status st = statusFromLibxl(ERROR_FAIL, "creating domain 'web1'", "failed to find kernel /boot/nope");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(st.message(), "creating domain 'web1': libxl error fail (-3): failed to find kernel /boot/nope");
}

// Warnings and errors libxl logs on a thread go to the innermost Capture there, not to the sink (they reach
// the caller in its Status); the sink gets the rest at its level.
TEST(LibxlLogger, CapturesPerThreadAndForwards) {
  std::vector<std::string> forwarded;
  LibxlLogger logger([&](LibxlLogLevel, std::string_view line) { forwarded.emplace_back(line); },
                     LibxlLogLevel::kWarn);
  xtl_log(logger.get(), XTL_ERROR, -1, "libxl", "outside any capture");
  LibxlLogger::Capture outer;
  {
    LibxlLogger::Capture inner;
    xtl_log(logger.get(), XTL_ERROR, 2, "libxl", "cannot open %s", "/boot/nope");
    xtl_log(logger.get(), XTL_DEBUG, -1, "libxl", "noise");
    xtl_log(logger.get(), XTL_WARN, -1, "libxl", "then this");
    EXPECT_EQ(inner.text(), "cannot open /boot/nope: No such file or directory; then this");
  }
  EXPECT_TRUE(outer.lines().empty());
  xtl_log(logger.get(), XTL_WARN, -1, nullptr, "captured by outer");
  EXPECT_EQ(outer.text(), "captured by outer");
  // The debug line is below the sink's level; captured lines are not forwarded.
  EXPECT_EQ(forwarded, std::vector<std::string>{"libxl: outside any capture"});
}

// Without Xen, opening libxl fails with UNAVAILABLE, libxl's reason and the hint; on a Dom0 it opens.
TEST(LibxlHypervisor, CreateWithoutXenIsUnavailable) {
  auto hv = LibxlHypervisor::create();
  if (hv.ok()) GTEST_SKIP() << "this machine runs Xen; the lab covers LibxlHypervisor there";
  EXPECT_EQ(hv.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(hv.status().message().find("cannot open libxl: "), std::string_view::npos) << hv.status();
  EXPECT_NE(hv.status().message().find("is this a Xen Dom0 with xencommons running?"), std::string_view::npos);
  EXPECT_GT(hv.status().message().size(), std::string_view("cannot open libxl: ; is this a Xen Dom0 with "
                                                           "xencommons running?").size());
}

}  // namespace
}  // namespace xenctl::xen
