#include "lib/provision/storage_manager.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace xenctl::provision {
namespace {

std::string targetOf(const core::VolumeManager& p, const std::string& name) {
  return absl::StrCat(p.poolName(), "/", name);
}

// Reports a copy's progress into the operation (5..95%) and stops it when the
// operation is cancelled.
core::CopyProgress copyProgress(OperationContext& ctx) {
  return [&ctx](uint64_t done, uint64_t total) {
    const uint32_t pct = total ? static_cast<uint32_t>(5 + 90 * done / total) : 95;
    ctx.progress(pct, done, total);
    return !ctx.cancelled();
  };
}

Status exists(core::VolumeManager& p, const std::string& name) { return p.get(name).status(); }

Status freeName(core::VolumeManager& p, const std::string& name) {
  auto v = p.get(name);
  if (v.ok()) return absl::AlreadyExistsError(absl::StrCat("volume '", targetOf(p, name), "' already exists"));
  return absl::IsNotFound(v.status()) ? absl::OkStatus() : v.status();
}

}  // namespace

StorageManager::StorageManager(std::vector<std::unique_ptr<core::VolumeManager>> pools, OperationRegistry& ops,
                               VolumeUsage& usage)
    : pools_(std::move(pools)), ops_(ops), usage_(usage) {}

Result<core::VolumeManager*> StorageManager::pool(const std::string& name) {
  if (pools_.empty())
    return absl::FailedPreconditionError("no storage pool is configured; declare one with [[pool]] in the config");
  if (name.empty()) return pools_.front().get();
  std::vector<std::string> names;
  for (auto& p : pools_) {
    if (p->poolName() == name) return p.get();
    names.push_back(p->poolName());
  }
  return absl::NotFoundError(
      absl::StrCat("pool '", name, "' not found; configured pools: ", absl::StrJoin(names, ", ")));
}

void StorageManager::protectImageBase(const std::string& pool, const std::string& volume, const std::string& image) {
  std::lock_guard lock(images_mu_);
  image_bases_[absl::StrCat(pool, "/", volume)] = image;
}

void StorageManager::unprotectImageBase(const std::string& pool, const std::string& volume) {
  std::lock_guard lock(images_mu_);
  image_bases_.erase(absl::StrCat(pool, "/", volume));
}

std::optional<std::string> StorageManager::imageOf(const std::string& pool, const std::string& volume) const {
  std::lock_guard lock(images_mu_);
  auto it = image_bases_.find(absl::StrCat(pool, "/", volume));
  if (it == image_bases_.end()) return std::nullopt;
  return it->second;
}

Status StorageManager::requireNotImageBase(const std::string& pool, const std::string& volume,
                                           std::string_view step) const {
  auto image = imageOf(pool, volume);
  if (!image) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(av(step), ": it is the base volume of image '", *image,
                   "', which changes only through the image calls; `vm-image delete ", *image,
                   "` deletes the image and its volume (once no volume is cloned from it)"));
}

Status StorageManager::requireUnused(const std::string& pool_name, const std::string& volume, std::string_view step) {
  if (auto user = usage_.userOf(core::VolumeRef{pool_name, volume}.target()))
    return absl::FailedPreconditionError(
        absl::StrCat(av(step), ": running domain '", *user, "' uses it; shut the domain down first"));
  auto p = pool(pool_name);
  auto v = p.ok() ? (*p)->get(volume) : p.status();
  if (!v.ok() || v->host_device_domids.empty()) return absl::OkStatus();  // a missing volume is the caller's to report
  return absl::FailedPreconditionError(absl::StrCat(
      av(step), ": Xen domain ", absl::StrJoin(v->host_device_domids, ", "), " uses it through ", v->host_device,
      " (a domain xenctld does not manage, e.g. a Ganeti instance); shut it down first"));
}

Result<core::OperationRecord> StorageManager::create(const CreateRequest& req, const Caller& caller) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(req.pool));
  auto precheck = [&]() -> Status {
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(req.name));
    XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(req.size_bytes));
    return freeName(*p, req.name);
  };
  return ops_.startChecked({"create-volume", targetOf(*p, req.name),
                            caller.request_id, caller.uid, caller.key(), caller.request_digest}, precheck,
      [p, req](OperationContext& ctx) -> Status {
    ctx.phase("create", 5, req.ext4_label ? "creating the volume and its ext4 file system" : "creating the volume");
    return p->create(req.name, req.size_bytes, req.ext4_label).status();
  });
}

Result<core::OperationRecord> StorageManager::clone(const std::string& pool_name, const std::string& source,
                                                    const std::string& name, uint64_t size_bytes,
                                                    const Caller& caller) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
  auto precheck = [&]() -> Status {
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(name));
    if (size_bytes) XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
    XENCTL_ASSIGN_OR_RETURN(core::Volume base, p->get(source));
    if (size_bytes && size_bytes < base.size_bytes)
      return absl::InvalidArgumentError(absl::StrCat("cloning '", targetOf(*p, source), "': size ", size_bytes,
                                                     " bytes is below the source's ", base.size_bytes, " bytes"));
    return freeName(*p, name);
  };
  return ops_.startChecked({"clone-volume", targetOf(*p, name),
                            caller.request_id, caller.uid, caller.key(), caller.request_digest}, precheck,
               [this, pool_name = p->poolName(), source, name, size_bytes](OperationContext& ctx) -> Status {
                 ctx.phase("clone", 5, absl::StrCat("cloning ", source));
                 return cloneNow(pool_name, source, name, size_bytes, copyProgress(ctx)).status();
               });
}

Result<core::Volume> StorageManager::cloneNow(const std::string& pool_name, const std::string& source,
                                              const std::string& name, uint64_t size_bytes,
                                              const core::CopyProgress& progress) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
  return p->clone(source, name, size_bytes, progress);
}

Result<core::OperationRecord> StorageManager::snapshot(const std::string& pool_name, const std::string& volume,
                                                       const std::string& snapshot, const Caller& caller) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
  auto precheck = [&]() -> Status {
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(volume));
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(snapshot, "snapshot"));
    XENCTL_RETURN_IF_ERROR(exists(*p, volume));
    return freeName(*p, core::snapshotName(volume, snapshot));
  };
  return ops_.startChecked({"snapshot-volume", targetOf(*p, volume),
                            caller.request_id, caller.uid, caller.key(), caller.request_digest}, precheck,
               [p, volume, snapshot](OperationContext& ctx) -> Status {
                 ctx.phase("snapshot", 5, absl::StrCat("taking snapshot ", snapshot));
                 return p->snapshot(volume, snapshot, copyProgress(ctx)).status();
               });
}

Result<core::OperationRecord> StorageManager::rollback(const std::string& pool_name, const std::string& volume,
                                                       const std::string& snapshot, const Caller& caller) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
  const std::string step = absl::StrCat("rolling back '", targetOf(*p, volume), "'");
  auto precheck = [&]() -> Status {
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(volume));
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(snapshot, "snapshot"));
    XENCTL_RETURN_IF_ERROR(exists(*p, volume));
    XENCTL_RETURN_IF_ERROR(exists(*p, core::snapshotName(volume, snapshot)));
    XENCTL_RETURN_IF_ERROR(requireNotImageBase(p->poolName(), volume, step));
    return requireUnused(p->poolName(), volume, step);
  };
  return ops_.startChecked({"rollback-volume", targetOf(*p, volume),
                            caller.request_id, caller.uid, caller.key(), caller.request_digest}, precheck,
               [this, p, volume, snapshot, step](OperationContext& ctx) -> Status {
                 // Checked again: a domain may have started since the call.
                 XENCTL_RETURN_IF_ERROR(requireNotImageBase(p->poolName(), volume, step));
                 XENCTL_RETURN_IF_ERROR(requireUnused(p->poolName(), volume, step));
                 ctx.phase("rollback", 5, absl::StrCat("restoring snapshot ", snapshot));
                 return p->rollback(volume, snapshot, copyProgress(ctx)).status();
               });
}

Result<core::OperationRecord> StorageManager::resize(const std::string& pool_name, const std::string& name,
                                                     uint64_t size_bytes, const Caller& caller) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
  const std::string step = absl::StrCat("resizing '", targetOf(*p, name), "'");
  auto precheck = [&]() -> Status {
    XENCTL_RETURN_IF_ERROR(core::validateVolumeSize(size_bytes));
    XENCTL_ASSIGN_OR_RETURN(core::Volume v, p->get(name));
    XENCTL_RETURN_IF_ERROR(requireNotImageBase(p->poolName(), name, step));
    // Its file system is grown offline, which a running guest must not see.
    XENCTL_RETURN_IF_ERROR(requireUnused(p->poolName(), name, step));
    if (v.read_only)
      return absl::FailedPreconditionError(absl::StrCat("resizing '", targetOf(*p, name), "': it is read-only"));
    if (size_bytes < v.size_bytes)
      return absl::InvalidArgumentError(absl::StrCat("resizing '", targetOf(*p, name), "': ", size_bytes,
                                                     " bytes is below its size of ", v.size_bytes,
                                                     " bytes; volumes only grow"));
    return absl::OkStatus();
  };
  return ops_.startChecked({"resize-volume", targetOf(*p, name),
                            caller.request_id, caller.uid, caller.key(), caller.request_digest}, precheck,
               [this, pool_name = p->poolName(), name, size_bytes](OperationContext& ctx) -> Status {
                 ctx.phase("resize", 5, absl::StrCat("growing to ", size_bytes, " bytes"));
                 return resizeNow(pool_name, name, size_bytes).status();
               });
}

Result<core::Volume> StorageManager::resizeNow(const std::string& pool_name, const std::string& name,
                                               uint64_t size_bytes) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
  // Checked again: a domain may have started since the call. Its file system
  // is grown offline, which a running guest must not see.
  const std::string step = absl::StrCat("resizing '", targetOf(*p, name), "'");
  XENCTL_RETURN_IF_ERROR(requireNotImageBase(p->poolName(), name, step));
  XENCTL_RETURN_IF_ERROR(requireUnused(p->poolName(), name, step));
  return p->resize(name, size_bytes);
}

Result<core::OperationRecord> StorageManager::remove(const std::string& pool_name, const std::string& name,
                                                     const Caller& caller) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
  const std::string step = absl::StrCat("deleting '", targetOf(*p, name), "'");
  auto precheck = [&]() -> Status {
    XENCTL_RETURN_IF_ERROR(exists(*p, name));
    XENCTL_RETURN_IF_ERROR(requireNotImageBase(p->poolName(), name, step));
    return requireUnused(p->poolName(), name, step);
  };
  return ops_.startChecked({"delete-volume", targetOf(*p, name),
                            caller.request_id, caller.uid, caller.key(), caller.request_digest}, precheck,
               [this, pool_name = p->poolName(), name](OperationContext& ctx) -> Status {
                 ctx.phase("delete", 5);
                 return removeNow(pool_name, name);
               });
}

Status StorageManager::removeNow(const std::string& pool_name, const std::string& name) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
  // Checked again: a domain may have started since the call. Held as being
  // deleted until it is gone: a domain is not started on it nor defined with
  // it meanwhile (VolumeUsage::holdForDelete).
  const std::string step = absl::StrCat("deleting '", targetOf(*p, name), "'");
  XENCTL_RETURN_IF_ERROR(requireNotImageBase(p->poolName(), name, step));
  XENCTL_ASSIGN_OR_RETURN(VolumeUsage::DeleteHold hold,
                          usage_.holdForDelete(core::VolumeRef{p->poolName(), name}.target(), step));
  return p->remove(name);
}

Result<core::Volume> StorageManager::attach(const std::string& pool_name, const std::string& name) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(name.substr(0, name.find('@'))));
  XENCTL_ASSIGN_OR_RETURN(std::string device, p->attachToHost(name));
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, p->get(name));
  v.host_device = std::move(device);
  if (auto user = usage_.userOf(core::VolumeRef{p->poolName(), name}.target())) v.used_by = *user;
  return v;
}

Status StorageManager::detach(const std::string& pool_name, const std::string& name) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
  XENCTL_RETURN_IF_ERROR(core::validateVolumeName(name.substr(0, name.find('@'))));
  return p->detachFromHost(name);
}

Result<std::vector<core::Volume>> StorageManager::list(const std::string& pool_name) {
  std::vector<core::Volume> out;
  if (!pool_name.empty()) {
    XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, pool(pool_name));
    XENCTL_ASSIGN_OR_RETURN(out, p->list());
  } else {
    for (auto& p : pools_) {
      XENCTL_ASSIGN_OR_RETURN(auto vols, p->list());
      for (auto& v : vols) out.push_back(std::move(v));
    }
  }
  const auto users = usage_.users();
  for (auto& v : out)
    if (auto u = users.find(core::VolumeRef{v.pool, v.name}.target()); u != users.end()) v.used_by = u->second;
  return out;
}

Result<std::vector<core::PoolInfo>> StorageManager::pools() {
  std::vector<core::PoolInfo> out;
  for (auto& p : pools_) {
    XENCTL_ASSIGN_OR_RETURN(core::PoolInfo info, p->poolInfo());
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace xenctl::provision
