#include "lib/provision/root_differ.h"

#include <memory>

#include "absl/strings/str_cat.h"

namespace xenctl::provision {
namespace {

Status prefixed(const Status& st, std::string_view what) {
  return Status(st.code(), absl::StrCat(av(what), ": ", st.message()));
}

}  // namespace

RootDiffer::RootDiffer(DomainManager& domains, StorageManager& storage, core::FileTreeOpener open)
    : domains_(domains), storage_(storage), open_(std::move(open)) {}

Result<RootDiff> RootDiffer::diff(const std::string& name, const std::string& vdev, bool patch) {
  const std::string who = absl::StrCat("diffing domain '", name, "'");
  if (!open_)
    return absl::UnimplementedError(
        absl::StrCat(who, ": reading file systems offline is not built into this xenctld"));
  XENCTL_ASSIGN_OR_RETURN(DomainView view, domains_.get(name));
  if (view.foreign)
    return absl::FailedPreconditionError(
        absl::StrCat(who, ": it was not made by xenctld, so its volumes are not known"));
  if (core::isPresent(view.state))
    return absl::FailedPreconditionError(absl::StrCat(
        who, ": it is ", av(core::toString(view.state)), " and its file system is being written; stop it first (`vm-shutdown ",
        name, "`), then diff it"));

  RootDiff out;
  const core::DiskSpec* disk = nullptr;
  for (const core::DiskSpec& d : view.spec.disks) {
    if (vdev.empty() ? core::isVolumeTarget(d.target) : d.vdev == vdev) {
      disk = &d;
      break;
    }
  }
  if (!disk)
    return vdev.empty() ? absl::FailedPreconditionError(absl::StrCat(
                              who, ": none of its disks is a managed volume (vol:POOL/NAME), so it has no golden image"))
                        : absl::NotFoundError(absl::StrCat(who, ": it has no disk ", vdev));
  if (!core::isVolumeTarget(disk->target))
    return absl::FailedPreconditionError(absl::StrCat(who, ": disk ", disk->vdev, " is the host path '", disk->target,
                                                      "', not a managed volume, so it has no golden image"));
  out.vdev = disk->vdev;
  XENCTL_ASSIGN_OR_RETURN(out.root, core::parseVolumeTarget(disk->target));
  const std::string root_name = absl::StrCat("volume ", out.root.pool, "/", out.root.name);
  auto pool = storage_.pool(out.root.pool);
  if (!pool.ok()) return absl::FailedPreconditionError(absl::StrCat(who, ": ", pool.status().message()));
  auto root = (*pool)->get(out.root.name);
  if (!root.ok())
    return absl::FailedPreconditionError(absl::StrCat(who, ": disk ", out.vdev, ": ", root.status().message()));
  if (root->origin.empty())
    return absl::FailedPreconditionError(absl::StrCat(who, ": its ", root_name,
                                                      " was not cloned from another volume (it has no origin), so "
                                                      "there is no golden image to compare it with"));
  out.base = {out.root.pool, root->origin};
  const std::string base_name = absl::StrCat("volume ", out.base.pool, "/", out.base.name);
  auto base = (*pool)->get(out.base.name);
  if (!base.ok())
    return absl::FailedPreconditionError(
        absl::StrCat(who, ": the origin of its ", root_name, ": ", base.status().message()));

  auto base_tree = open_(base->path, /*writable=*/false);
  if (!base_tree.ok()) return prefixed(base_tree.status(), absl::StrCat(who, ": opening the base, ", base_name));
  auto root_tree = open_(root->path, /*writable=*/false);
  if (!root_tree.ok()) return prefixed(root_tree.status(), absl::StrCat(who, ": opening its ", root_name));
  // Read-only: closing writes nothing, and its error changes nothing already read.
  auto result = customize::diffTrees(**base_tree, **root_tree);
  if (result.ok()) {
    out.changes = *std::move(result);
    if (patch) {
      auto text = customize::writePatch(**base_tree, **root_tree, out.changes);
      if (text.ok()) out.patch = *std::move(text);
      else result = text.status();
    }
  }
  (void)(*base_tree)->close();
  (void)(*root_tree)->close();
  if (!result.ok())
    return prefixed(result.status(), absl::StrCat(who, " (", base_name, " against ", root_name, ")"));
  return out;
}

}  // namespace xenctl::provision
