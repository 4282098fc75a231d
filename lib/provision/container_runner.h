// ContainerRunner: the use case behind ContainerService.ApplyContainer. It
// parses a container file at once (an error is INVALID_ARGUMENT naming
// FILE:LINE:COLUMN, and nothing runs), then runs its statements
// (lib/customize's runContainer) as an operation, over the ports it is given
// and the managed volumes StorageManager resolves. Above the managers, as a
// Provisioner is: no manager calls it.
//
// What it adds to the executor:
//  - vol:POOL/NAME resolves to the volume's host path, refused
//    (FAILED_PRECONDITION) while a running or starting domain uses the
//    volume: it is edited offline. The check is made when the run resolves
//    the target, so a domain started during the run is not seen (the same
//    window as StorageManager's resize).
//  - [image] to vol:POOL/NAME makes the volume in its pool (ext4, labelled),
//    removed again when the run fails.
//  - every URI a run fetches (a [copy]'s source, a [patch]'s diff, a
//    [populate]'s archive; not one a [create] of the run made) must pass
//    the image sources' policy (lib/image/image_sources.h, [[images.source]]
//    and [images] trusted_keys), as an image import from that URI would:
//    "signed" needs a minisign signature at URI.minisig by a trusted key of
//    the source; "none" takes the bytes as they are; "digest" takes a
//    file:// URI as it is (a file already on this host: the built-in
//    default) and wants the signature for a remote one, since a container
//    file gives no digest. So by default a remote source or patch must be
//    signed: a patch of /etc/shadow from the network is a way into every
//    server it makes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "lib/core/customization.h"
#include "lib/core/fetcher.h"
#include "lib/core/file_tree.h"
#include "lib/customize/container_parser.h"
#include "lib/image/image_sources.h"
#include "lib/provision/caller.h"
#include "lib/provision/host_paths.h"
#include "lib/provision/operation_registry.h"
#include "lib/provision/storage_manager.h"
#include "lib/provision/volume_usage.h"

namespace xenctl::provision {

class ContainerRunner {
 public:
  struct Ports {
    /// Opens an image file or a block device (customize::Ext4FileTree::open).
    core::FileTreeOpener open_tree;
    /// Fetches sources and patches, and stores the diff option's outputs.
    core::Fetcher* fetcher = nullptr;
    /// Makes typed customizations (customize::Customizer::apply).
    std::function<Status(core::FileTree&, const core::Customizations&)> customize;
    /// Formats a new image file ext4 with a label ([image] to a path;
    /// mkfs.ext4). Empty: such an [image] is UNIMPLEMENTED.
    std::function<Status(const std::string& path, const std::string& label)> make_fs;
  };
  struct Config {
    /// Which proof a fetched URI needs (ImageConfig::sources).
    image::ImageSources sources;
    std::string ca_file;                          ///< extra CAs for https ("" = the system's)
    uint64_t max_fetch_bytes = uint64_t{64} << 20;  ///< per fetched source, patch or archive
    /// A private directory (ImageConfig::work_dir) where [populate] unpacks
    /// its archive; "" = [populate] is UNIMPLEMENTED.
    std::string work_dir;
    /// What a [populate] archive may hold (ImageConfig::extract).
    image::ExtractPolicy extract;
    /// Each fetch must end within this (0: no limit); cut when it stalls this long.
    absl::Duration fetch_timeout = absl::ZeroDuration();
    absl::Duration fetch_stall_timeout = absl::Seconds(60);
    /// Which host paths and file:// URIs a caller's container file may name.
    HostPaths host_paths;
  };

  /// All references must outlive the runner.
  ContainerRunner(StorageManager& storage, const VolumeUsage& usage, OperationRegistry& ops, Ports ports,
                  Config config);

  struct ApplyRequest {
    std::string text;
    std::string file_name;  ///< names the file in errors; "" = "container"
    bool dry_run = false;   ///< fetch, open read-only and check everything; write nothing
  };
  /// Parses `req.text` at once: INVALID_ARGUMENT "FILE:LINE:COLUMN: ..." and
  /// no operation for a file with an error, or one that names "root" (a
  /// CreateDomain's alone). Otherwise starts the operation
  /// "apply-container" (target: the file's name; phase "run", progress per
  /// statement written) and returns it; a retry with the same request_id
  /// gets the same operation. Every host path, file:// URI and volume the
  /// file names must be the caller's to use (HostPaths; PERMISSION_DENIED
  /// naming FILE:LINE), and its file:// transfers stay where the caller's may.
  /// The operation fails with the executor's codes
  /// (container_executor.h) and FAILED_PRECONDITION for a volume in use.
  Result<core::OperationRecord> apply(const ApplyRequest& req, const Caller& caller);

  struct RunOptions {
    bool dry_run = false;
    std::string instance_id;  ///< the NoCloud instance-id for [user-data] (a domain's uuid)
    /// The host path "root" names: a CreateDomain's new root volume ("" = none).
    std::string root_path;
    std::stop_token stop;     ///< stops a fetch (CANCELLED)
    /// Where file:// transfers may lead (core::FetchOptions::file_roots).
    std::optional<std::vector<std::string>> file_roots;
    /// Told before each statement of the write pass: its index and the total.
    std::function<void(size_t index, size_t total, const customize::Statement&)> progress;
  };
  /// The run itself, in the calling thread and starting no operation: for a
  /// step of a larger operation (a provisioning saga).
  Status runNow(const customize::ContainerFile& file, std::string_view file_name, const RunOptions& options);

  /// The host path of vol:POOL/NAME for an offline edit: NOT_FOUND for an
  /// unknown pool or volume, FAILED_PRECONDITION while a domain uses it.
  Result<std::string> volumePath(const core::VolumeRef& ref);

  /// Every host path, file:// URI and volume `file` names, checked for
  /// `caller` (HostPaths). Also for a step of a larger operation.
  Status checkHostPaths(const customize::ContainerFile& file, std::string_view file_name,
                        const Caller& caller) const;

 private:
  StorageManager& storage_;
  const VolumeUsage& usage_;
  OperationRegistry& ops_;
  Ports ports_;
  Config config_;
};

}  // namespace xenctl::provision
