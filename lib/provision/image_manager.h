// ImageManager: the golden-image use cases. An import fetches, verifies and
// unpacks an image (lib/image) into a staging directory, then makes a base
// volume of it in a pool (mkfs.ext4 -d for an archive's tree, a sparse copy
// for a raw ext image) and records it in the catalog (lib/state). Each
// change is an operation; imports have the phases download, verify, unpack
// and finalize.
//
// A base volume is golden from the moment it is made: registered with
// StorageManager (no `vm-volume delete`, resize or rollback of it) and, once
// written, marked read-only in its pool (VolumeManager::setReadOnly: never
// attached writable) before its catalog row is stored. Only remove() deletes
// it, with its row.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lib/core/fetcher.h"
#include "lib/core/process_runner.h"
#include "lib/image/archive_writer.h"
#include "lib/image/image_importer.h"
#include "lib/image/image_sources.h"
#include "lib/provision/caller.h"
#include "lib/provision/host_paths.h"
#include "lib/provision/operation_registry.h"
#include "lib/provision/storage_manager.h"
#include "lib/state/store.h"

namespace xenctl::provision {

struct ImageConfig {
  /// What each URI must prove and which keys vouch for it ([[images.source]]
  /// and [images] trusted_keys).
  image::ImageSources sources;
  std::string ca_file;   ///< extra CAs for https ("" = the system's)
  /// Staging for unpacked trees; must exist, on a file system with room.
  /// Each import unpacks into a 0700 directory of its own in it.
  std::string work_dir;
  image::ExtractPolicy extract;
  uint64_t max_image_bytes = 0;  ///< 0 = no limit on the download ([images] max_download_size)
  /// A download must end within fetch_timeout (0: no limit) and is cut
  /// (and retried) when it stalls for fetch_stall_timeout.
  absl::Duration fetch_timeout = absl::ZeroDuration();
  absl::Duration fetch_stall_timeout = absl::Seconds(60);
  /// Which file:// URIs and export source directories a caller may name.
  HostPaths host_paths;
};

/// Removes an import's staging directory, the unpacked tree's read-only
/// directories too. Recovery removes an interrupted import's with it.
void removeStagingTree(const std::string& path);

class ImageManager {
 public:
  ImageManager(StorageManager& storage, core::Fetcher& fetcher, state::Store& store, OperationRegistry& ops,
               core::ProcessRunner& tools, const core::Clock& clock, ImageConfig config);

  /// Golden images stay golden: run at start (after recovery), registers
  /// every catalog image's base volume with StorageManager (which then
  /// refuses to delete, resize or roll it back) and marks it read-only in
  /// its pool where it is not yet (catalogs from before the mark). Returns
  /// what an administrator should see: a catalog row whose base volume is
  /// missing (removed outside xenctld), with what to do. Such a row is not
  /// used as the content-addressed cache.
  Result<std::vector<std::string>> load();

  struct ImportRequest {
    std::string name;
    std::string uri;
    std::string sha256;  ///< hex; "" = from SHA256SUMS beside the image, if any
    image::SignaturePolicy policy = image::SignaturePolicy::kAuto;
    std::string pool;  ///< "" = the default pool
  };
  /// Checked at once: the name (volume name rule) is free in the catalog and
  /// as a volume, the pool exists, the URI's scheme and the digest are valid,
  /// and the URI's source lets the request's policy apply (PERMISSION_DENIED
  /// when it asks for less proof than a source that does not allow it; see
  /// ImageSources::choose), and a file:// URI is one the caller may read
  /// (PERMISSION_DENIED otherwise, see HostPaths; the transfer is confined
  /// to the same directories when it opens the file).
  /// The content-addressed cache: when the SHA-256 is known before the
  /// download (the request's, or SHA256SUMS beside the image) and an image
  /// with that SHA-256 is already in the pool, its volume is cloned and the
  /// image is not fetched. For a source that wants signatures, only an image
  /// that was signed by one of the source's keys is reused.
  Result<core::OperationRecord> import(const ImportRequest& req, const Caller& caller);

  struct ImageView {
    state::ImageRecord record;
    uint32_t clones = 0;  ///< volumes cloned from its base volume
  };
  Result<std::vector<ImageView>> list();

  /// The catalog entry of an image: what a root is cloned from.
  /// NOT_FOUND when the catalog has no such image.
  Result<state::ImageRecord> get(const std::string& name) { return find(name); }

  /// Deletes the image and its base volume (the one way to delete a base
  /// volume). FAILED_PRECONDITION while volumes cloned from it exist (they
  /// are named).
  Result<core::OperationRecord> remove(const std::string& name, const Caller& caller);

  struct ExportRequest {
    /// An absolute Dom0 directory, or "vol:POOL/NAME": a volume holding an
    /// ext2/3/4 file system, read offline (debugfs rdump: files,
    /// directories, symlinks, modes, owners, times; hard links become copies,
    /// device nodes are left out). Export a volume no running domain writes.
    std::string source;
    std::string uri;  ///< file://, ftp:// or http(s):// (PUT)
    image::ExportFormat format = image::ExportFormat::kCpioGz;
  };
  /// The paper's `create`: packs the source and stores it at the URI, as an
  /// operation (phases prepare, pack). Checked at once: the URI's scheme, the
  /// source's form and existence, and that the caller may name a source
  /// directory and a file:// destination (HostPaths).
  Result<core::OperationRecord> exportImage(const ExportRequest& req, const Caller& caller);

 private:
  Result<state::ImageRecord> find(const std::string& name);
  /// What every transfer of `caller` is given: the CAs, the limits, where file:// may lead.
  core::FetchOptions fetchOptions(const Caller& caller, std::stop_token stop) const;
  Status importWork(OperationContext& ctx, const ImportRequest& req, core::VolumeManager& pool,
                    const core::FetchOptions& fetch);
  /// importWork's shortcut: when an image in `pool` has the SHA-256 `sha` (and
  /// proof enough for `source`), clones its volume as rec's and records rec
  /// (true). False when there is none.
  Result<bool> importFromCache(OperationContext& ctx, const image::Sha256Digest& sha,
                               const image::SourceDecision& source, core::VolumeManager& pool, state::ImageRecord& rec);
  /// importWork's last step, then the catalog record; the volume is removed
  /// again on failure. The base volume from what importImage left in `staged` (a raw file
  /// system, or a tree that mkfs.ext4 -d makes one of in `scratch`, a file
  /// there), written onto a new volume of `pool` in large writes of its
  /// data only (image::writeImageOnto).
  Status makeBaseVolume(OperationContext& ctx, const std::string& staged, const std::string& scratch,
                        const image::ImportResult& imported, core::VolumeManager& pool, state::ImageRecord& rec);
  Status exportWork(OperationContext& ctx, const ExportRequest& req, core::FetchOptions fetch);
  /// The host path of "vol:POOL/NAME".
  Result<std::string> volumePath(const std::string& source);

  StorageManager& storage_;
  core::Fetcher& fetcher_;
  state::Store& store_;
  OperationRegistry& ops_;
  core::ProcessRunner& tools_;
  const core::Clock& clock_;
  const ImageConfig config_;
};

}  // namespace xenctl::provision
