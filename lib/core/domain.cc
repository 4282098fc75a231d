#include "lib/core/domain.h"
#include "lib/core/domain_event.h"

#include "lib/core/enum_names.h"
#include "lib/core/limits.h"
#include "lib/core/volume.h"

#include <array>
#include <cctype>
#include <cstdio>
#include <random>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace xenctl::core {
namespace {

constexpr NameTable<DomainType, 3> kTypeNames{{
    {DomainType::kPv, "pv"}, {DomainType::kPvh, "pvh"}, {DomainType::kHvm, "hvm"}}};
constexpr NameTable<DomainState, 8> kStateNames{{
    {DomainState::kStopped, "stopped"},
    {DomainState::kRunning, "running"},
    {DomainState::kBlocked, "blocked"},
    {DomainState::kPaused, "paused"},
    {DomainState::kShutdown, "shutdown"},
    {DomainState::kCrashed, "crashed"},
    {DomainState::kDying, "dying"},
    {DomainState::kVanished, "vanished"}}};
constexpr NameTable<LifecycleAction, 6> kActionNames{{
    {LifecycleAction::kDestroy, "destroy"},
    {LifecycleAction::kRestart, "restart"},
    {LifecycleAction::kPreserve, "preserve"},
    {LifecycleAction::kRenameRestart, "rename-restart"},
    {LifecycleAction::kCoredumpDestroy, "coredump-destroy"},
    {LifecycleAction::kCoredumpRestart, "coredump-restart"}}};

constexpr NameTable<DomainEventKind, 12> kEventKindNames{{
    {DomainEventKind::kDefined, "defined"},
    {DomainEventKind::kStarted, "started"},
    {DomainEventKind::kPaused, "paused"},
    {DomainEventKind::kUnpaused, "unpaused"},
    {DomainEventKind::kShutdown, "shutdown"},
    {DomainEventKind::kRebooted, "rebooted"},
    {DomainEventKind::kCrashed, "crashed"},
    {DomainEventKind::kDestroyed, "destroyed"},
    {DomainEventKind::kDeleted, "deleted"},
    {DomainEventKind::kResourcesChanged, "resources-changed"},
    {DomainEventKind::kVanished, "vanished"},
    {DomainEventKind::kEventsLost, "events-lost"}}};

// The fixed limits of lib/core/limits.h on what a spec holds, so that a
// stored domain always fits in a reply.
Status checkSpecLimits(const DomainSpec& spec, const std::string& who) {
  XENCTL_RETURN_IF_ERROR(checkLength(spec.uuid, kMaxFieldBytes, who + "uuid"));
  XENCTL_RETURN_IF_ERROR(checkLength(spec.kernel, kMaxPathBytes, who + "kernel"));
  XENCTL_RETURN_IF_ERROR(checkLength(spec.ramdisk, kMaxPathBytes, who + "ramdisk"));
  XENCTL_RETURN_IF_ERROR(checkLength(spec.bootloader, kMaxPathBytes, who + "bootloader"));
  XENCTL_RETURN_IF_ERROR(checkLength(spec.cmdline, kMaxCmdlineBytes, who + "cmdline"));
  XENCTL_RETURN_IF_ERROR(checkCount(spec.bootloader_args.size(), kMaxBootloaderArgs, who + "bootloader_args"));
  for (const auto& a : spec.bootloader_args)
    XENCTL_RETURN_IF_ERROR(checkLength(a, kMaxFieldBytes, who + "a bootloader argument"));
  XENCTL_RETURN_IF_ERROR(checkCount(spec.disks.size(), kMaxDisks, who + "disks"));
  for (const auto& d : spec.disks) {
    XENCTL_RETURN_IF_ERROR(checkLength(d.target, kMaxPathBytes, who + "a disk's target"));
    XENCTL_RETURN_IF_ERROR(checkLength(d.vdev, kMaxFieldBytes, who + "a disk's vdev"));
    XENCTL_RETURN_IF_ERROR(checkLength(d.mode, kMaxFieldBytes, who + "a disk's mode"));
    XENCTL_RETURN_IF_ERROR(checkLength(d.format, kMaxFieldBytes, who + "a disk's format"));
  }
  XENCTL_RETURN_IF_ERROR(checkCount(spec.vifs.size(), kMaxVifs, who + "vifs"));
  for (const auto& v : spec.vifs) {
    XENCTL_RETURN_IF_ERROR(checkLength(v.bridge, kMaxFieldBytes, who + "a vif's bridge"));
    XENCTL_RETURN_IF_ERROR(checkLength(v.mac, kMaxFieldBytes, who + "a vif's mac"));
    XENCTL_RETURN_IF_ERROR(checkLength(v.ip, kMaxFieldBytes, who + "a vif's ip"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view toString(DomainEventKind k) { return nameOf(kEventKindNames, k); }
std::string_view toString(DomainType t) { return nameOf(kTypeNames, t); }
std::string_view toString(DomainState s) { return nameOf(kStateNames, s); }
std::string_view toString(LifecycleAction a) { return nameOf(kActionNames, a); }
Result<DomainType> parseDomainType(std::string_view s) { return valueOf(kTypeNames, "domain type", s); }
Result<DomainState> parseDomainState(std::string_view s) { return valueOf(kStateNames, "domain state", s); }
Result<LifecycleAction> parseLifecycleAction(std::string_view s) {
  return valueOf(kActionNames, "lifecycle action", s);
}

bool isPresent(DomainState s) { return s != DomainState::kStopped && s != DomainState::kVanished; }

Status validateDomainName(std::string_view name) { return validateObjectName(name, "domain"); }

Status validateObjectName(std::string_view name, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid ", av(what), " name '", av(name), "': ", av(why),
        "; use 1-63 characters from a-z, 0-9, '-', '_' and '.', starting with a letter or digit"));
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 63) return bad("it is longer than 63 characters");
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_alnum(name[0])) return bad("it must start with a lower-case letter or a digit");
  for (char c : name)
    if (!lower_alnum(c) && c != '-' && c != '_' && c != '.')
      return bad(absl::StrFormat("character '%c' is not allowed", c));
  return absl::OkStatus();
}

Result<DomainSpec> normalizeSpec(DomainSpec spec) {
  XENCTL_RETURN_IF_ERROR(validateDomainName(spec.name));
  const std::string who = absl::StrCat("domain '", spec.name, "': ");
  XENCTL_RETURN_IF_ERROR(checkSpecLimits(spec, who));
  if (spec.uuid.empty()) return absl::InvalidArgumentError(who + "spec has no uuid");
  if (spec.memory_mib < kMinMemoryMib || spec.memory_mib > kMaxMemoryMib)
    return absl::InvalidArgumentError(absl::StrCat(who, "memory ", spec.memory_mib, " MiB is out of range; use ",
                                                   kMinMemoryMib, " MiB to ", kMaxMemoryMib >> 20, " TiB"));
  if (spec.maxmem_mib == 0) spec.maxmem_mib = spec.memory_mib;
  if (spec.maxmem_mib < spec.memory_mib || spec.maxmem_mib > kMaxMemoryMib)
    return absl::InvalidArgumentError(absl::StrCat(who, "maxmem ", spec.maxmem_mib,
                                                   " MiB must be at least memory (", spec.memory_mib,
                                                   " MiB) and at most ", kMaxMemoryMib >> 20, " TiB"));
  if (spec.vcpus == 0 || spec.vcpus > kMaxVcpus)
    return absl::InvalidArgumentError(
        absl::StrCat(who, "vcpus ", spec.vcpus, " is out of range; use 1 to ", kMaxVcpus));
  if (spec.maxvcpus == 0) spec.maxvcpus = spec.vcpus;
  if (spec.maxvcpus < spec.vcpus || spec.maxvcpus > kMaxVcpus)
    return absl::InvalidArgumentError(absl::StrCat(who, "maxvcpus ", spec.maxvcpus, " must be at least vcpus (",
                                                   spec.vcpus, ") and at most ", kMaxVcpus));
  const bool from_xl = !spec.xl_config_text.empty();
  if (!from_xl && !spec.kernel.empty() && !spec.bootloader.empty())
    return absl::InvalidArgumentError(who + "give either a kernel or a bootloader, not both");
  if (!from_xl && spec.kernel.empty() && (!spec.ramdisk.empty() || !spec.cmdline.empty()))
    return absl::InvalidArgumentError(who + "a ramdisk or cmdline needs a kernel");
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    DiskSpec& d = spec.disks[i];
    if (d.target.empty() && !from_xl)  // an xl config's empty cdrom drive has none
      return absl::InvalidArgumentError(absl::StrCat(who, "disk ", i, " has no target (a path or vol:POOL/NAME)"));
    if (d.vdev.empty()) {
      d.vdev = "xvd";
      d.vdev.push_back(static_cast<char>('a' + i % 26));
    }
    if (d.mode.empty()) d.mode = "w";
    if (d.mode != "w" && d.mode != "r")
      return absl::InvalidArgumentError(absl::StrCat(who, "disk ", d.vdev, ": mode '", d.mode, "' is not r or w"));
    if (isVolumeTarget(d.target))
      if (auto ref = parseVolumeTarget(d.target); !ref.ok())
        return absl::InvalidArgumentError(absl::StrCat(who, "disk ", d.vdev, ": ", ref.status().message()));
    for (size_t j = 0; j < i; ++j)
      if (spec.disks[j].vdev == d.vdev)
        return absl::InvalidArgumentError(absl::StrCat(who, "two disks use vdev ", d.vdev));
  }
  for (size_t i = 0; i < spec.vifs.size(); ++i) {
    VifSpec& v = spec.vifs[i];
    if (v.mac.empty()) v.mac = xenMacFor(spec.uuid, i);
    unsigned b[6];
    char tail;
    if (std::sscanf(v.mac.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) !=
            6 ||
        v.mac.size() != 17)
      return absl::InvalidArgumentError(absl::StrCat(who, "vif ", i, ": '", v.mac, "' is not a MAC address"));
    if (b[0] & 1)
      return absl::InvalidArgumentError(absl::StrCat(who, "vif ", i, ": MAC ", v.mac, " is a multicast address"));
    v.mac = absl::AsciiStrToLower(v.mac);
  }
  return spec;
}

std::string newUuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
                         lo & 0xffffffffffffULL);
}

bool setVifField(VifSpec& vif, std::string_view key, std::string_view value) {
  if (key == "bridge") vif.bridge = std::string(value);
  else if (key == "mac") vif.mac = std::string(value);
  else if (key == "ip") vif.ip = std::string(value);
  else return false;
  return true;
}

std::string xenMacFor(std::string_view uuid, size_t index) {
  // absl::Hash is not stable across processes; FNV-1a is.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](unsigned char c) { h = (h ^ c) * 1099511628211ULL; };
  for (char c : uuid) mix(static_cast<unsigned char>(c));
  for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(index >> (8 * i)));
  return absl::StrFormat("00:16:3e:%02x:%02x:%02x", (h >> 16) & 0x7f, (h >> 8) & 0xff, h & 0xff);
}

Result<uint64_t> parseSizeMib(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid size '", av(text), "': ", av(why), "; use MiB or a unit: 512M, 2G, 1T, 524288K"));
  };
  std::string_view digits = text;
  uint64_t shift_kib = 10;  // no unit: MiB
  bool kib = false;
  if (!digits.empty() && std::isalpha(static_cast<unsigned char>(digits.back()))) {
    switch (std::toupper(static_cast<unsigned char>(digits.back()))) {
      case 'K': kib = true; break;
      case 'M': shift_kib = 10; break;
      case 'G': shift_kib = 20; break;
      case 'T': shift_kib = 30; break;
      default: return bad("unknown unit");
    }
    digits.remove_suffix(1);
  }
  uint64_t n = 0;
  if (digits.empty() || !absl::SimpleAtoi(av(digits), &n) || digits.front() == '+' || digits.front() == '-')
    return bad("not a whole number");
  if (kib) {
    if (n % 1024 != 0) return bad("not a whole number of MiB");
    return n / 1024;
  }
  const uint64_t mul = uint64_t{1} << (shift_kib - 10);
  if (n > UINT64_MAX / mul) return bad("too large");
  return n * mul;
}

}  // namespace xenctl::core
