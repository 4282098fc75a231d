// Plain values the commands work with. The client library converts the
// protobuf messages into these, so no command sees a protobuf type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lib/core/domain.h"
#include "lib/core/operation.h"

namespace xenctl::client {

/// A domain as the daemon reports it: its spec and its observed state.
struct Domain {
  core::DomainSpec spec;
  /// Empty when the daemon sent DOMAIN_STATE_UNSPECIFIED (a daemon bug).
  std::optional<core::DomainState> state;
  std::string state_reason;
  int64_t domid = -1;
  /// What the hypervisor reports now (0 while the domain is not present).
  uint32_t vcpus_online = 0;
  uint64_t memory_current_mib = 0;
  double cpu_time_seconds = 0;
  bool foreign = false;
  std::optional<absl::Time> created_at;
  int64_t owner_uid = -1;
};

using core::OperationState;

/// A long-running task in the daemon.
struct Operation {
  std::string id;
  std::string kind;
  std::string target;
  std::string request_id;
  OperationState state = OperationState::kPending;
  std::string phase;
  uint32_t percent = 0;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  std::string message;
  std::optional<absl::Time> created_at, updated_at, finished_at;
  /// gRPC status code of the result (0 = OK) and the server's message.
  int32_t status_code = 0;
  std::string status_message;
  int64_t caller_uid = -1;

  bool finished() const { return core::isFinished(state); }
};

/// A volume or a snapshot ("VOLUME@SNAP") in a pool.
struct Volume {
  std::string pool;
  std::string name;
  uint64_t size_bytes = 0;
  uint64_t used_bytes = 0;
  std::string origin;
  bool read_only = false;
  std::vector<std::string> snapshots;
  std::string used_by;
  std::string path;
  std::optional<absl::Time> created_at;
};

/// A golden image in the daemon's catalog.
struct Image {
  std::string name;
  std::string uri;
  std::string sha256;
  std::string signed_by;    ///< minisign key id, "" when unsigned
  std::string format;       ///< "archive" or "raw-ext4"
  std::string base_volume;  ///< "POOL/NAME"
  uint64_t size_bytes = 0;
  uint32_t clones = 0;
  std::optional<absl::Time> imported_at;
};

/// What `vm-image import` asks for.
struct ImportImageArgs {
  std::string request_id;
  std::string name;
  std::string uri;
  std::string sha256;  ///< "" = from SHA256SUMS beside the image
  /// "" (the daemon's default: signed for remote URIs), "signed", "digest", "none".
  std::string policy;
  std::string pool;
};

/// What `vm-image export` asks for.
struct ExportImageArgs {
  std::string request_id;
  std::string source;  ///< an absolute Dom0 directory or vol:POOL/NAME
  std::string uri;
  std::string format;  ///< "cpio.gz" (default) or "tar.zst"
};

struct PoolCapacity {
  std::string name;
  std::string driver;
  uint64_t size_bytes = 0;
  uint64_t used_bytes = 0;
  double metadata_percent = 0;
};

struct HostInfo {
  std::string hypervisor;
  std::string hypervisor_version;
  std::string hostname;
  uint32_t cpus = 0;
  uint64_t memory_total_mib = 0;
  uint64_t memory_free_mib = 0;
  uint32_t domains_defined = 0;
  uint32_t domains_running = 0;
  std::vector<PoolCapacity> pools;
  std::string daemon_version;
  uint32_t operations_active = 0;
  uint32_t operations_limit = 0;
};

/// An xl config file as the client read it; the daemon parses it.
struct XlConfigFile {
  std::string file_name;
  std::string text;
};

/// What `vm-create` asks for. Unset optionals let the daemon apply its
/// documented defaults (pvh; destroy / restart / destroy).
struct CreateDomainArgs {
  std::string request_id;
  /// What the flags said; core's defaults (PVH; destroy, restart, destroy)
  /// are the daemon's defaults. Not sent when xl_config is set.
  core::DomainSpec spec;
  /// Create from this xl config instead of `spec`.
  std::optional<XlConfigFile> xl_config;
  bool define_only = false;
  bool paused = false;
};

}  // namespace xenctl::client
