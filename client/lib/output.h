// How the commands print: JSON objects for --json (stable keys, see vmm(1)),
// tables and "key: value" blocks for people.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/lib/types.h"

namespace xenctl::client {

/// Keys: name, uuid, state, state_reason, domid (null when not present),
/// type, vcpus, maxvcpus, vcpus_online, memory_mib, maxmem_mib,
/// memory_current_mib, cpu_time_seconds, kernel, ramdisk, cmdline,
/// bootloader, bootloader_args, disks, vifs, on_poweroff, on_reboot,
/// on_crash, foreign, created_at, owner_uid. vcpus and memory_mib are the
/// configured values; *_online / *_current are what the hypervisor reports.
nlohmann::json toJson(const Domain& d);
nlohmann::json toJson(const std::vector<Domain>& ds);
nlohmann::json toJson(const Operation& op);
nlohmann::json toJson(const std::vector<Operation>& ops);
nlohmann::json toJson(const HostInfo& h);
/// Keys: pool, name, size_bytes, used_bytes, origin, read_only, snapshots,
/// used_by, path, created_at.
nlohmann::json toJson(const Volume& v);
nlohmann::json toJson(const std::vector<Volume>& vs);
/// Keys: name, uri, sha256, signed_by, format, base_volume, size_bytes, clones, imported_at.
nlohmann::json toJson(const Image& i);
nlohmann::json toJson(const std::vector<Image>& is);
/// Keys: name, driver, size_bytes, used_bytes, metadata_percent.
nlohmann::json toJson(const PoolCapacity& p);
nlohmann::json toJson(const std::vector<PoolCapacity>& ps);

/// `vm-list`: Name, ID, Mem, VCPUs, State, Time(s), UUID.
std::string domainTable(const std::vector<Domain>& ds);
/// `vm-info`: one "key: value" line per field, disks and vifs in xl syntax.
std::string domainDetails(const Domain& d);
/// `vmm ops`: ID, Kind, Target, State, Phase, %, Started, Result.
std::string operationTable(const std::vector<Operation>& ops);
/// One line about an operation's progress: "op-… create-domain web1: running, define 40% — message".
std::string operationLine(const Operation& op);
/// `vmm host`.
std::string hostDetails(const HostInfo& h);

/// `vm-volume list`: Pool, Name, Size, Used, Origin, RO, Snapshots.
std::string volumeTable(const std::vector<Volume>& vs);
/// `vm-image list`: Name, Volume, Size, Clones, Signed by, SHA-256 (first 12), URI.
std::string imageTable(const std::vector<Image>& is);
/// `vm-volume pools`: Pool, Driver, Size, Used, Free%.
std::string poolTable(const std::vector<PoolCapacity>& ps);
/// 1536 -> "1.5K", 16 MiB -> "16M", 10 GiB -> "10G" (binary units, as ls -sh).
std::string humanBytes(uint64_t bytes);

/// RFC 3339 in UTC, seconds precision.
std::string formatTime(absl::Time t);

}  // namespace xenctl::client
