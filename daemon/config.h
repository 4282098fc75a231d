// xenctld's configuration: a TOML file (--config) whose values command-line
// flags override. Unknown keys are errors, so a typo never goes unnoticed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/identity.h"
#include "lib/core/status.h"

namespace xenctl::daemon {

/// One [[pool]] table: a storage pool and its backend.
struct PoolConfig {
  std::string name;
  std::string driver = "dir";  ///< "dir", "lvm-thin" or "lvm-snapshot"
  std::string path;            ///< dir: an absolute directory
  std::string vg;              ///< lvm-*: the volume group
  std::string thinpool;        ///< lvm-thin: the thin pool LV in `vg`
  /// lvm-thin guard rails: thin volumes' total size at most this many times
  /// the pool's data size; nothing new past these percents of data / metadata.
  double max_overcommit = 10.0;
  double data_watermark = 80.0;
  double metadata_watermark = 80.0;
  /// lvm-snapshot: each clone's / snapshot's COW store, in MiB (0: use
  /// snapshot_percent of the origin's size); reported and rollback refused past
  /// snapshot_watermark percent of it.
  uint64_t snapshot_size_mib = 0;
  double snapshot_percent = 20.0;
  double snapshot_watermark = 80.0;
};

/// One [[images.source]] table: what images from URIs under `prefix` must
/// prove (see image::ImageSources).
struct ImageSourceConfig {
  std::string prefix;
  std::string policy = "signed";  ///< "signed", "digest" or "none"
  /// Its own minisign public key files, replacing [images] trusted_keys for it.
  std::optional<std::vector<std::string>> trusted_keys;
  /// A request's --allow-unsigned (or any weaker policy) is honoured.
  bool allow_unsigned_requests = false;
  std::string where;  ///< "FILE:LINE" of the table, for messages
};

/// [images] allow_devices: which device nodes an image archive may carry.
enum class DeviceNodes { kNone, kStandard, kAll };

/// The [images] table: what vouches for an image, and what it may contain.
struct ImagesConfig {
  /// minisign public key files (as `minisign -G` writes them).
  std::vector<std::string> trusted_keys;
  std::vector<ImageSourceConfig> sources;
  /// A PEM bundle of CAs for https image servers ("" = the system's).
  std::string ca_file;
  /// Keep set-id files (OS images have them: su, passwd, mount). Safe: an
  /// archive is unpacked where only xenctld's user can reach it, then copied
  /// into a volume; nothing in it runs on the host.
  bool allow_setid = true;
  /// Which device nodes an archive may carry (kept inside the volume):
  /// `false`, `"standard"` (debootstrap's /dev: null, zero, full, random,
  /// urandom, tty, console, ptmx) or `true` (any).
  DeviceNodes allow_devices = DeviceNodes::kStandard;
  /// The most bytes one download may bring (checked against the announced
  /// size, then as the bytes arrive); 0 = no limit.
  uint64_t max_download_bytes = uint64_t{16} << 30;
  /// A download (all its attempts) must end within this many seconds (0 = no
  /// limit), and is cut (then retried) when it stalls this many seconds.
  uint32_t fetch_timeout_seconds = 6 * 3600;
  uint32_t fetch_stall_timeout_seconds = 60;
};

/// The [security] table: where non-admins may name host paths.
struct SecurityConfig {
  /// Absolute directories under which non-admin callers may name host paths
  /// (disk targets, kernels, ramdisks, file:// URIs, export sources).
  std::vector<std::string> allowed_paths;
  /// Bootloaders non-admin callers may name (libxl runs them as root).
  std::vector<std::string> bootloaders = {"pygrub"};
};

/// [daemon.tls]: mutual TLS for the tcp: listeners. All three files are
/// PEM; they are read at start and again on SIGHUP.
struct TlsConfig {
  std::string cert;       ///< the daemon's certificate chain, leaf first
  std::string key;        ///< its private key
  std::string client_ca;  ///< the CAs that vouch for client certificates
  bool configured() const { return !cert.empty() || !key.empty() || !client_ca.empty(); }
};

struct Config {
  /// "unix:PATH" or "tcp:HOST:PORT", one or more.
  std::vector<std::string> listen = {"unix:/run/xenctld/xenctld.sock"};
  /// The tcp: addresses of `listen` the operator wrote with `insecure = true`
  /// ({ address = "tcp:...", insecure = true }): served without TLS.
  std::vector<std::string> insecure_listen;
  TlsConfig tls;
  std::string state_dir = "/var/lib/xenctld";
  /// "test" (in-memory) or "libxl".
  std::string hypervisor = "libxl";
  uint32_t max_operations = 16;
  /// Operations one caller (a uid, a certificate) may have running at once.
  uint32_t max_operations_per_caller = 12;
  /// Operations waiting (PENDING) for one of the max_operations workers;
  /// past it a mutating call is refused RESOURCE_EXHAUSTED.
  uint32_t max_queued_operations = 256;
  /// WatchEvents, WatchOperation and AttachConsole streams one caller may
  /// have open at once. A stream holds no thread, only its buffers (up to
  /// its queue of events and gRPC's flow-control window, ~100 KiB for a
  /// client that reads nothing): the bound keeps one caller's share of
  /// memory, and the callers that need many (an orchestrator watching each
  /// domain) raise it.
  uint32_t max_streams_per_caller = 64;
  /// The largest request accepted, in bytes (gRPC's receive limit).
  uint64_t max_request_bytes = uint64_t{4} << 20;
  /// trace, debug, info, warn, error.
  std::string log_level = "info";
  /// The test hypervisor's host size.
  uint32_t test_cpus = 8;
  uint64_t test_memory_mib = 65536;
  /// Storage pools, the first being the default. None declared: one dir
  /// pool "default" at STATE_DIR/volumes (see effectivePools).
  std::vector<PoolConfig> pools;
  ImagesConfig images;
  /// The [access] table: who has which role (root is always admin; anyone
  /// else not bound here has none). Entries "user:NAME", "uid:N",
  /// "group:NAME", "gid:N" (the caller's primary or supplementary group) or
  /// "cert:SUBJECT" (a client certificate's subject or a SAN, exactly), under
  /// the keys admin, operator and viewer; names resolved when read.
  std::vector<core::RoleBinding> access;
  SecurityConfig security;
};

/// The pools to open: the declared ones, or the default dir pool.
std::vector<PoolConfig> effectivePools(const Config& c);

/// Reads `path` over the defaults. INVALID_ARGUMENT names the file, line
/// and key for a syntax error, an unknown key or a value of the wrong type.
Result<Config> loadConfig(const std::string& path, Config base = {});

/// Checks values that flags and the file can both set, and that every tcp:
/// listener has [daemon.tls] or was written with insecure = true.
Status validateConfig(const Config& c);

}  // namespace xenctl::daemon
