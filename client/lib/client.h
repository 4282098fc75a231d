// The one gRPC client of xenctld used by vmm and vm-*. It speaks the v1 API
// and hands the commands plain values (client/lib/types.h); protobuf and
// gRPC stay inside the library.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "client/lib/target.h"
#include "client/lib/types.h"
#include "lib/core/status.h"

namespace xenctl::client {

class Client {
 public:
  /// Called with each state of an operation while it is watched.
  using OperationSink = std::function<void(const Operation&)>;

  /// Connects to `target`. A failure to reach the daemon within
  /// `connect_timeout` is UNAVAILABLE marked as a connect error (exit 4); its
  /// message names the address, where it came from, and what to do.
  /// `call_timeout` bounds each unary call (watching has no deadline).
  static Result<std::unique_ptr<Client>> connect(const Target& target, absl::Duration connect_timeout,
                                                 absl::Duration call_timeout);
  ~Client();

  const Target& target() const { return target_; }

  Result<std::vector<Domain>> listDomains(bool include_foreign);
  Result<Domain> getDomain(const std::string& name);
  Result<HostInfo> hostInfo();

  // Mutations: each returns the operation the daemon started.
  Result<Operation> createDomain(const CreateDomainArgs& args);
  Result<Operation> startDomain(const std::string& request_id, const std::string& name, bool paused);
  Result<Operation> shutdownDomain(const std::string& request_id, const std::string& name, uint32_t timeout_seconds,
                                   bool force);
  Result<Operation> rebootDomain(const std::string& request_id, const std::string& name);
  Result<Operation> destroyDomain(const std::string& request_id, const std::string& name);
  Result<Operation> deleteDomain(const std::string& request_id, const std::string& name, bool force,
                                 bool delete_volumes);
  Result<Operation> pauseDomain(const std::string& request_id, const std::string& name);
  Result<Operation> unpauseDomain(const std::string& request_id, const std::string& name);
  /// 0 leaves a value unchanged.
  Result<Operation> setDomainResources(const std::string& request_id, const std::string& name, uint32_t vcpus,
                                       uint64_t memory_mib);

  /// A console session (AttachConsole): what the guest writes goes to
  /// `output` as it arrives. Unless `read_only`, `input` is called over and
  /// over from a second thread: it returns what was typed ("" when nothing
  /// was, within a fraction of a second) or nullopt to leave. Returns why
  /// the daemon ended the console ("" when the client left).
  Result<std::string> attachConsole(const std::string& name, bool read_only,
                                    const std::function<void(std::string_view)>& output,
                                    const std::function<std::optional<std::string>()>& input);

  /// The xl config of a container file without its expressions
  /// (StripContainer); INVALID_ARGUMENT "FILE:LINE:COLUMN: ..." for a bad one.
  Result<std::string> stripContainer(const std::string& text, const std::string& file_name);
  /// Runs the container file's expressions in order (ApplyContainer).
  Result<Operation> applyContainer(const std::string& request_id, const std::string& text,
                                   const std::string& file_name);

  Result<std::vector<Volume>> listVolumes(const std::string& pool);
  Result<std::vector<PoolCapacity>> listPools();
  /// `pool` "" is the daemon's default pool. `ext4_label` set: format ext4.
  Result<Operation> createVolume(const std::string& request_id, const std::string& pool, const std::string& name,
                                 uint64_t size_bytes, const std::optional<std::string>& ext4_label);
  Result<Operation> cloneVolume(const std::string& request_id, const std::string& pool, const std::string& source,
                                const std::string& name, uint64_t size_bytes);
  Result<Operation> snapshotVolume(const std::string& request_id, const std::string& pool, const std::string& volume,
                                   const std::string& snapshot);
  Result<Operation> rollbackVolume(const std::string& request_id, const std::string& pool, const std::string& volume,
                                   const std::string& snapshot);
  Result<Operation> resizeVolume(const std::string& request_id, const std::string& pool, const std::string& name,
                                 uint64_t size_bytes);
  Result<Operation> deleteVolume(const std::string& request_id, const std::string& pool, const std::string& name);

  Result<std::vector<Image>> listImages();
  /// INVALID_ARGUMENT for a policy other than "", signed, digest, none.
  Result<Operation> importImage(const ImportImageArgs& args);
  Result<Operation> deleteImage(const std::string& request_id, const std::string& name);
  /// INVALID_ARGUMENT for a format other than "", cpio.gz, tar.zst.
  Result<Operation> exportImage(const ExportImageArgs& args);

  Result<Operation> getOperation(const std::string& id);
  /// Newest first. `active_only` hides finished ones; `limit` 0 is the server's default.
  Result<std::vector<Operation>> listOperations(const std::string& target, bool active_only, uint32_t limit);
  /// Streams the operation until it has finished and returns its last state.
  /// `sink` (may be empty) sees every state, the last one included.
  Result<Operation> watchOperation(const std::string& id, const OperationSink& sink);

  struct Impl;

 private:
  Client(Target target, std::unique_ptr<Impl> impl);
  Target target_;
  std::unique_ptr<Impl> impl_;
};

/// The operation's result as a Status: OK when it succeeded, its server code
/// and message when it failed, CANCELLED naming it when cancelled.
Status operationStatus(const Operation& op);

}  // namespace xenctl::client
