// RootDiffer: `vm-diff NAME`, what a domain's root volume holds that the
// volume it was cloned from (its golden image's base, or the domain it was
// forked from) does not. Both file systems are opened read-only through the
// FileTree port and walked by customize::diffTrees; nothing is changed and
// no operation is made (it only reads).
#pragma once

#include <string>
#include <vector>

#include "lib/core/file_tree.h"
#include "lib/core/volume.h"
#include "lib/customize/tree_diff.h"
#include "lib/provision/domain_manager.h"
#include "lib/provision/storage_manager.h"

namespace xenctl::provision {

struct RootDiff {
  core::VolumeRef root;  ///< the domain's volume that was compared
  std::string vdev;      ///< its disk
  core::VolumeRef base;  ///< the volume it was cloned from (Volume::origin)
  std::vector<customize::TreeChange> changes;
  std::string patch;  ///< customize::writePatch's, when asked for
};

class RootDiffer {
 public:
  /// `open` opens a volume's host path (real: customize::Ext4FileTree);
  /// empty: every diff is refused (UNIMPLEMENTED).
  RootDiffer(DomainManager& domains, StorageManager& storage, core::FileTreeOpener open);

  /// Compares domain `name`'s disk `vdev` ("" = its first disk on a managed
  /// volume) with the volume it was cloned from. NOT_FOUND for an unknown
  /// domain or vdev; FAILED_PRECONDITION when the domain is present in the
  /// hypervisor (its file system is being written: stop it first), foreign,
  /// or the disk is not a managed volume, its volume is missing, or it was
  /// not cloned from another (no origin); the trees' own errors (a file
  /// system of another type, one whose journal needs recovery), naming the
  /// volume.
  Result<RootDiff> diff(const std::string& name, const std::string& vdev, bool patch);

 private:
  DomainManager& domains_;
  StorageManager& storage_;
  core::FileTreeOpener open_;
};

}  // namespace xenctl::provision
