// Domain vocabulary: what a domain should be (DomainSpec) and what the
// hypervisor says it is (DomainInfo). Field names follow xl.cfg(5).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"

namespace xenctl::core {

enum class DomainType { kPv, kPvh, kHvm };
enum class DomainState { kStopped, kRunning, kBlocked, kPaused, kShutdown, kCrashed, kDying, kVanished };
/// xl's on_poweroff / on_reboot / on_watchdog / on_crash values.
enum class LifecycleAction { kDestroy, kRestart, kPreserve, kRenameRestart, kCoredumpDestroy, kCoredumpRestart };

/// Names as xl writes them: "pv", "running", "rename-restart".
std::string_view toString(DomainType t);
std::string_view toString(DomainState s);
std::string_view toString(LifecycleAction a);
Result<DomainType> parseDomainType(std::string_view s);
Result<DomainState> parseDomainState(std::string_view s);
Result<LifecycleAction> parseLifecycleAction(std::string_view s);

/// True while the domain exists in the hypervisor.
bool isPresent(DomainState s);

struct DiskSpec {
  std::string target;  ///< host path, or "vol:POOL/NAME"
  std::string vdev;    ///< "xvda"
  std::string mode = "w";
  std::string format;  ///< "phy", "raw", "qcow2"; empty: chosen from target
  bool operator==(const DiskSpec&) const = default;
};

struct VifSpec {
  std::string bridge;
  std::string mac;  ///< 00:16:3e:xx:xx:xx, generated when empty
  std::string ip;
  bool operator==(const VifSpec&) const = default;
};

/// Sets the field of `vif` named by `key` as xl's vif syntax names it
/// (bridge, mac, ip); false, leaving `vif` unchanged, for any other key.
bool setVifField(VifSpec& vif, std::string_view key, std::string_view value);

struct DomainSpec {
  std::string name;
  std::string uuid;
  DomainType type = DomainType::kPvh;
  std::string kernel, ramdisk, cmdline;
  std::string bootloader;
  std::vector<std::string> bootloader_args;
  uint64_t memory_mib = 0;
  uint64_t maxmem_mib = 0;  ///< 0: same as memory_mib
  uint32_t vcpus = 0;
  uint32_t maxvcpus = 0;    ///< 0: same as vcpus
  std::vector<DiskSpec> disks;
  std::vector<VifSpec> vifs;
  LifecycleAction on_poweroff = LifecycleAction::kDestroy;
  LifecycleAction on_reboot = LifecycleAction::kRestart;
  LifecycleAction on_crash = LifecycleAction::kDestroy;
  /// What follows when the guest's watchdog fires (xl's on_watchdog;
  /// destroy by default, as in xl).
  LifecycleAction on_watchdog = LifecycleAction::kDestroy;
  /// Defined from an xl config: the file's name (for messages) and its
  /// text, kept so that every start builds the domain from the same text
  /// through the same reader, key for key as xl would (the typed fields
  /// above are read from it too; where they were changed since, as by
  /// SetDomainResources, they win). Both empty for a spec given as one.
  std::string xl_config_file;
  std::string xl_config_text;
  bool operator==(const DomainSpec&) const = default;
};

/// What the hypervisor reports about a domain that is present in it.
struct DomainInfo {
  std::string name;
  std::string uuid;
  int64_t domid = -1;
  DomainState state = DomainState::kStopped;
  uint32_t vcpus_online = 0;
  uint64_t memory_mib = 0;
  double cpu_time_seconds = 0;
  DomainType type = DomainType::kPvh;  ///< as the hypervisor built it (for foreign domains)
};

inline constexpr uint64_t kMinMemoryMib = 32;
inline constexpr uint64_t kMaxMemoryMib = uint64_t{16} << 20;  // 16 TiB, Xen's x86 limit
inline constexpr uint32_t kMaxVcpus = 128;

/// INVALID_ARGUMENT unless `name` matches [a-z0-9][a-z0-9-_.]{0,62}.
Status validateDomainName(std::string_view name);
/// The same rule for other named objects (volumes, snapshots); `what` names
/// the kind in the message.
Status validateObjectName(std::string_view name, std::string_view what);

/// Checks a spec and fills its defaults: maxmem/maxvcpus from memory/vcpus,
/// disk vdevs (xvda, xvdb ...) and modes, and MACs in the Xen OUI derived
/// from the uuid, so they are stable per domain. The spec must have a uuid.
/// A spec from an xl config keeps xl's rules where they are wider (a kernel
/// beside a bootloader, a cmdline for a bootloader, an empty cdrom drive).
/// INVALID_ARGUMENT names the field and the allowed range.
Result<DomainSpec> normalizeSpec(DomainSpec spec);

/// A random (version 4) UUID in its canonical text form.
std::string newUuid();

/// The MAC of vif `index` of the domain with this uuid: 00:16:3e + 3 bytes
/// of a hash of both, so a domain keeps its MACs for its whole life.
std::string xenMacFor(std::string_view uuid, size_t index);

/// Parses a memory size for xl-style flags: "512" (MiB), "512M", "2G",
/// "1T", "1048576K". INVALID_ARGUMENT for anything else or a non-MiB multiple.
Result<uint64_t> parseSizeMib(std::string_view text);

}  // namespace xenctl::core
