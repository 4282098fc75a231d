#include "lib/provision/image_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/core/limits.h"
#include "lib/image/uri.h"
#include "lib/image/volume_writer.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::provision {
namespace {

constexpr absl::Duration kToolTimeout = absl::Minutes(30);
constexpr uint64_t kMiB = uint64_t{1} << 20;

// Overall percent at the start of each import phase (download overlaps the
// unpacking of the stream; "unpack" is making the base volume of the tree).
constexpr uint32_t kDownloadPct = 2, kVerifyPct = 80, kUnpackPct = 85, kFinalizePct = 97;

struct TreeSize {
  uint64_t bytes = 0;  // allocated
  uint64_t inodes = 0;
};

TreeSize measure(const std::string& dir) {
  TreeSize t;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    t.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    ++t.inodes;
  }
  return t;
}

// Room for the tree in a fresh ext4: its data with a margin, an inode per
// 16 KiB (mkfs.ext4's default ratio) for its entries, and the journal.
uint64_t ext4SizeFor(const TreeSize& t) {
  uint64_t size = t.bytes + t.bytes / 4 + (t.inodes + 1024) * 16384 + 64 * kMiB;
  return (size + kMiB - 1) / kMiB * kMiB;
}

Status runTool(core::ProcessRunner& tools, const std::vector<std::string>& argv, std::string_view step) {
  XENCTL_ASSIGN_OR_RETURN(core::ProcessResult r, tools.run(argv, kToolTimeout));
  if (r.exit_code != 0)
    return absl::InternalError(absl::StrCat(av(step), ": ", argv[0], " exited with ", r.exit_code, ": ", r.output));
  return absl::OkStatus();
}

// Whether an image already in the catalog gives the proof `source` wants for
// the same bytes: any does when a digest suffices (the expected SHA-256 is
// that proof); for a signed source, one signed by a key the source trusts.
bool cachedProofSuffices(const state::ImageRecord& cached, const image::SourceDecision& source) {
  if (source.policy != image::SignaturePolicy::kSigned) return true;
  for (const auto& k : source.trusted_keys)
    if (!cached.signed_by.empty() && image::keyIdString(k.key_id) == cached.signed_by) return true;
  return false;
}

}  // namespace

void removeStagingTree(const std::string& path) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  std::filesystem::remove_all(path, ec);
}

ImageManager::ImageManager(StorageManager& storage, core::Fetcher& fetcher, state::Store& store,
                           OperationRegistry& ops, core::ProcessRunner& tools, const core::Clock& clock,
                           ImageConfig config)
    : storage_(storage),
      fetcher_(fetcher),
      store_(store),
      ops_(ops),
      tools_(tools),
      clock_(clock),
      config_(std::move(config)) {}

Result<std::vector<std::string>> ImageManager::load() {
  XENCTL_ASSIGN_OR_RETURN(auto all, store_.listImages());
  std::vector<std::string> warnings;
  for (const auto& r : all) {
    storage_.protectImageBase(r.pool, r.volume, r.name);
    auto p = storage_.pool(r.pool);
    if (!p.ok()) {
      warnings.push_back(absl::StrCat("image '", r.name, "': its pool '", r.pool,
                                      "' is not configured; put it back in the config, or delete the image "
                                      "(`vm-image delete ", r.name, "`)"));
      continue;
    }
    auto v = (*p)->get(r.volume);
    if (absl::IsNotFound(v.status())) {
      warnings.push_back(absl::StrCat("image '", r.name, "': its base volume ", r.pool, "/", r.volume,
                                      " is missing (removed outside xenctld?); delete the image (`vm-image delete ",
                                      r.name, "`) and import it again"));
      continue;
    }
    if (!v.ok()) {
      warnings.push_back(absl::StrCat("image '", r.name, "': ", v.status().message()));
      continue;
    }
    if (!v->read_only)
      if (Status st = (*p)->setReadOnly(r.volume, true); !st.ok())
        warnings.push_back(absl::StrCat("image '", r.name, "': its base volume stays writable: ", st.message()));
  }
  return warnings;
}

Result<state::ImageRecord> ImageManager::find(const std::string& name) {
  XENCTL_ASSIGN_OR_RETURN(auto all, store_.listImages());
  for (auto& r : all)
    if (r.name == name) return r;
  return absl::NotFoundError(absl::StrCat("image '", name, "' not found; see vm-image list"));
}

Result<core::OperationRecord> ImageManager::import(const ImportRequest& req, const Caller& caller) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, storage_.pool(req.pool));
  const std::string what = absl::StrCat("importing image '", req.name, "'");
  auto precheck = [&]() -> Status {
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(req.name, "image"));
    XENCTL_RETURN_IF_ERROR(core::checkLength(req.uri, core::kMaxUriBytes, what + ": its URI"));
    XENCTL_RETURN_IF_ERROR(image::uriScheme(req.uri).status());
    XENCTL_RETURN_IF_ERROR(config_.host_paths.checkUri(caller, req.uri, what));
    if (!req.sha256.empty()) XENCTL_RETURN_IF_ERROR(image::parseSha256(req.sha256).status());
    XENCTL_RETURN_IF_ERROR(config_.sources.choose(req.uri, req.policy).status());
    auto existing = find(req.name);
    if (existing.ok()) return absl::AlreadyExistsError(absl::StrCat("image '", req.name, "' already exists"));
    if (!absl::IsNotFound(existing.status())) return existing.status();
    auto v = p->get(req.name);
    if (v.ok())
      return absl::AlreadyExistsError(absl::StrCat("importing image '", req.name, "': volume '", p->poolName(), "/",
                                                   req.name, "' already exists; choose another name"));
    return absl::IsNotFound(v.status()) ? absl::OkStatus() : v.status();
  };
  return ops_.startChecked({"import-image", req.name,
                            caller.request_id, caller.uid, caller.key(), caller.request_digest}, precheck,
                           [this, req, p, caller](OperationContext& ctx) {
                             return importWork(ctx, req, *p, fetchOptions(caller, ctx.stopToken()));
                           });
}

core::FetchOptions ImageManager::fetchOptions(const Caller& caller, std::stop_token stop) const {
  core::FetchOptions fetch;
  fetch.ca_file = config_.ca_file;
  fetch.max_bytes = config_.max_image_bytes;
  fetch.total_timeout = config_.fetch_timeout;
  fetch.low_speed_time = config_.fetch_stall_timeout;
  fetch.file_roots = config_.host_paths.fileRoots(caller);
  fetch.stop = std::move(stop);
  return fetch;
}

Status ImageManager::importWork(OperationContext& ctx, const ImportRequest& req, core::VolumeManager& pool,
                                const core::FetchOptions& fetch) {
  state::ImageRecord rec;
  rec.name = req.name;
  rec.uri = req.uri;
  rec.pool = pool.poolName();
  rec.volume = req.name;

  XENCTL_ASSIGN_OR_RETURN(image::SourceDecision source, config_.sources.choose(req.uri, req.policy));

  // The content-addressed cache: bytes whose SHA-256 is known before the
  // download are not fetched again.
  ctx.phase("download", kDownloadPct, req.uri);
  std::optional<image::Sha256Digest> expected;
  std::string expected_from = "request";
  if (!req.sha256.empty()) {
    XENCTL_ASSIGN_OR_RETURN(expected, image::parseSha256(req.sha256));
  } else {
    XENCTL_ASSIGN_OR_RETURN(expected, image::sha256FromSums(fetcher_, req.uri, fetch));
    expected_from = "SHA256SUMS";
  }
  if (expected) {
    XENCTL_ASSIGN_OR_RETURN(bool cloned, importFromCache(ctx, *expected, source, pool, rec));
    if (cloned) return absl::OkStatus();
  }

  image::ImportRequest ir;
  ir.uri = req.uri;
  ir.sha256 = expected;
  ir.sha256_source = expected_from;
  ir.use_sha256sums = false;  // looked up above
  ir.signature = source.policy;
  ir.trusted_keys = source.trusted_keys;
  ir.source = source.source;
  ir.extract = config_.extract;
  ir.extract.stop = ctx.stopToken();
  ir.fetch = fetch;
  ir.fetch.progress = [&ctx](const core::FetchProgress& p) {
    uint32_t pct = p.total ? kDownloadPct + static_cast<uint32_t>((kVerifyPct - kDownloadPct) * p.bytes / p.total)
                           : kDownloadPct;
    ctx.progress(std::min(pct, kVerifyPct), p.bytes, p.total);
  };
  ir.on_phase = [&ctx](std::string_view phase) { ctx.phase(std::string(phase), kVerifyPct); };
  // The tree goes into a directory of this operation that only xenctld's
  // user can enter (importImage checks it): an OS image keeps its set-id
  // files and device nodes until mkfs.ext4 has copied them into the volume,
  // and no other user may reach them meanwhile. Nothing from the tree is
  // ever run on the host.
  const std::string private_dir = absl::StrCat(config_.work_dir, "/", ctx.id());
  const std::string staged = private_dir + "/tree";
  // Journaled steps (recovery.h): stage, base-volume, catalog.
  XENCTL_RETURN_IF_ERROR(ctx.journal(0, "stage", {{"dir", private_dir}}, false));
  if (::mkdir(private_dir.c_str(), 0700) != 0 || ::chmod(private_dir.c_str(), 0700) != 0)
    return absl::InternalError(absl::StrCat("importing image '", req.name, "': creating the private staging directory ",
                                            private_dir, ": ", std::strerror(errno), "; check ", config_.work_dir));
  struct Cleanup {
    std::string path;
    ~Cleanup() { removeStagingTree(path); }
  } cleanup{private_dir};
  auto imported = image::importImage(fetcher_, ir, staged);
  if (!imported.ok()) return imported.status();
  XENCTL_RETURN_IF_ERROR(ctx.journal(0, "stage", {{"dir", private_dir}}, true));
  rec.sha256 = image::toHex(imported->sha256);
  rec.signed_by = imported->key_id;
  rec.kind = std::string(image::toString(imported->kind));
  return makeBaseVolume(ctx, staged, private_dir + "/fs.img", *imported, pool, rec);
}

Result<bool> ImageManager::importFromCache(OperationContext& ctx, const image::Sha256Digest& sha,
                                           const image::SourceDecision& source, core::VolumeManager& pool,
                                           state::ImageRecord& rec) {
  XENCTL_ASSIGN_OR_RETURN(auto all, store_.listImages());
  for (const auto& other : all) {
    if (other.sha256 != image::toHex(sha) || other.pool != pool.poolName()) continue;
    if (!cachedProofSuffices(other, source)) continue;
    // A row whose volume went outside xenctld (load() reports it) is no cache.
    if (absl::IsNotFound(pool.get(other.volume).status())) continue;
    ctx.phase("unpack", kUnpackPct, absl::StrCat("same SHA-256 as image '", other.name, "': cloning its volume"));
    const std::map<std::string, std::string> volume{{"pool", pool.poolName()}, {"volume", rec.volume}};
    XENCTL_RETURN_IF_ERROR(ctx.journal(1, "base-volume", volume, false));
    XENCTL_ASSIGN_OR_RETURN(core::Volume v, pool.clone(other.volume, rec.volume, 0, [&ctx](uint64_t, uint64_t) {
      return !ctx.cancelled();
    }));
    storage_.protectImageBase(pool.poolName(), rec.volume, rec.name);
    ctx.phase("finalize", kFinalizePct);
    rec.sha256 = other.sha256;
    rec.signed_by = other.signed_by;
    rec.kind = other.kind;
    rec.size_bytes = v.size_bytes;
    rec.imported_at = clock_.now();
    Status st = pool.setReadOnly(rec.volume, true);
    if (st.ok()) st = ctx.journal(1, "base-volume", volume, true);
    if (st.ok()) st = ctx.journal(2, "catalog", {{"image", rec.name}}, false);
    if (st.ok()) st = store_.insertImage(rec);
    if (!st.ok()) {
      storage_.unprotectImageBase(pool.poolName(), rec.volume);
      (void)pool.remove(rec.volume);
    }
    XENCTL_RETURN_IF_ERROR(st);
    XENCTL_RETURN_IF_ERROR(ctx.journal(2, "catalog", {{"image", rec.name}}, true));
    return true;
  }
  return false;
}

Status ImageManager::makeBaseVolume(OperationContext& ctx, const std::string& staged, const std::string& scratch,
                                    const image::ImportResult& imported, core::VolumeManager& pool,
                                    state::ImageRecord& rec) {
  const std::string what = absl::StrCat("importing image '", rec.name, "'");
  ctx.phase("unpack", kUnpackPct, "making the base volume");
  // The file system is made in a sparse file of the private directory, then
  // written onto the volume: mkfs.ext4 -d straight onto a thin LV makes
  // ~100 000 scattered small writes, each allocating in the pool (20
  // minutes for a Debian root in the lab; seconds in a file).
  std::string fs_image = staged;
  uint64_t size;
  if (imported.kind == image::ImageKind::kRawExt) {
    size = std::max<uint64_t>((imported.raw.size + 511) / 512 * 512, core::kMinVolumeBytes);
  } else {
    size = ext4SizeFor(measure(staged));
    fs_image = scratch;
    sys::UniqueFd fd(::open(scratch.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
      return absl::InternalError(absl::StrCat(what, ": creating the file system image ", scratch, ": ",
                                              std::strerror(errno), "; check the space under ", config_.work_dir));
    fd.reset();
    // -T default: 4 KiB blocks and an inode per 16 KiB, as ext4SizeFor
    // counts (a file under 512 MiB would get the "small" type's 1 KiB
    // blocks: more, smaller writes, and a slower file system to grow).
    XENCTL_RETURN_IF_ERROR(runTool(tools_,
                                   {"mkfs.ext4", "-q", "-F", "-T", "default", "-L", rec.name.substr(0, 16), "-d",
                                    staged, scratch},
                                   absl::StrCat(what, ": making ext4 from the unpacked tree in ", scratch)));
    removeStagingTree(staged);  // not needed any more: less space held while the volume is written
  }
  if (ctx.cancelled()) return absl::CancelledError(absl::StrCat(what, ": cancelled"));
  const std::map<std::string, std::string> journaled{{"pool", pool.poolName()}, {"volume", rec.volume}};
  XENCTL_RETURN_IF_ERROR(ctx.journal(1, "base-volume", journaled, false));
  XENCTL_ASSIGN_OR_RETURN(core::Volume vol, pool.create(rec.volume, size, std::nullopt));
  // Golden from here: no other call deletes or resizes it while it is written.
  storage_.protectImageBase(pool.poolName(), rec.volume, rec.name);
  ctx.crashPoint("base-volume:created");
  auto undo = [&](Status st) {
    storage_.unprotectImageBase(pool.poolName(), rec.volume);
    (void)pool.remove(rec.volume);
    return st;
  };
  if (ctx.cancelled()) return undo(absl::CancelledError(absl::StrCat(what, ": cancelled")));
  // create's volume reads zeros everywhere, so the image's holes need no writes.
  ctx.progress(kUnpackPct + 2, 0, size, absl::StrCat("writing the file system onto ", vol.path));
  auto written = image::writeImageOnto(fs_image, vol.path, ctx.stopToken());
  if (!written.ok()) {
    std::string msg = absl::StrCat(what, ": ", written.status().message());
    // A pool that fills while the base is written (a sparse file, a thin LV).
    if (absl::IsResourceExhausted(written.status()))
      absl::StrAppend(&msg, "; pool '", pool.poolName(), "' is out of space: the volume was removed again; free ",
                      "space in it, or import into another pool (--pool)");
    return undo(absl::Status(written.status().code(), msg));
  }
  if (Status st = pool.setReadOnly(rec.volume, true); !st.ok()) return undo(annotate(st, what));
  if (Status st = ctx.journal(1, "base-volume", journaled, true); !st.ok()) return undo(st);

  ctx.phase("finalize", kFinalizePct);
  rec.size_bytes = size;
  rec.imported_at = clock_.now();
  Status st = ctx.journal(2, "catalog", {{"image", rec.name}}, false);
  if (st.ok()) st = store_.insertImage(rec);
  if (!st.ok()) return undo(st);
  return ctx.journal(2, "catalog", {{"image", rec.name}}, true);
}

Result<std::vector<ImageManager::ImageView>> ImageManager::list() {
  XENCTL_ASSIGN_OR_RETURN(auto records, store_.listImages());
  std::map<std::string, std::map<std::string, uint32_t>> clones;  // pool -> origin -> count
  std::vector<ImageView> out;
  for (auto& r : records) {
    if (!clones.count(r.pool)) {
      auto& counts = clones[r.pool];
      auto vols = storage_.list(r.pool);
      if (vols.ok())
        for (const auto& v : *vols)
          if (!v.origin.empty()) ++counts[v.origin];
    }
    ImageView view{std::move(r), 0};
    view.clones = clones[view.record.pool][view.record.volume];
    out.push_back(std::move(view));
  }
  return out;
}

Result<core::OperationRecord> ImageManager::remove(const std::string& name, const Caller& caller) {
  // What was made from its base volume: clones and snapshots ("VOL@SNAP").
  auto clonesOf = [this](const state::ImageRecord& r) -> Result<std::vector<std::string>> {
    XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, storage_.pool(r.pool));
    auto deps = p->dependents(r.volume);
    if (absl::IsNotFound(deps.status())) return std::vector<std::string>{};  // gone already
    XENCTL_RETURN_IF_ERROR(deps.status());
    std::vector<std::string> names = std::move(deps->clones);
    for (const auto& s : deps->snapshots) names.push_back(core::snapshotName(r.volume, s));
    std::sort(names.begin(), names.end());
    return names;
  };
  auto precheck = [&]() -> Status {
    XENCTL_ASSIGN_OR_RETURN(state::ImageRecord r, find(name));
    XENCTL_ASSIGN_OR_RETURN(auto clones, clonesOf(r));
    if (!clones.empty())
      return absl::FailedPreconditionError(absl::StrCat("deleting image '", name, "': volumes ",
                                                        absl::StrJoin(clones, ", "), " in pool '", r.pool,
                                                        "' are cloned from it; delete them first"));
    return absl::OkStatus();
  };
  return ops_.startChecked({"delete-image", name,
                            caller.request_id, caller.uid, caller.key(), caller.request_digest}, precheck,
                           [this, name, clonesOf](OperationContext& ctx) -> Status {
                             ctx.phase("delete", 5);
                             XENCTL_ASSIGN_OR_RETURN(state::ImageRecord r, find(name));
                             XENCTL_ASSIGN_OR_RETURN(auto clones, clonesOf(r));
                             if (!clones.empty())
                               return absl::FailedPreconditionError(absl::StrCat(
                                   "deleting image '", name, "': volumes ", absl::StrJoin(clones, ", "),
                                   " are cloned from it; delete them first"));
                             XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, storage_.pool(r.pool));
                             // Journaled (recovery.h): once begun, a restart finishes it, so
                             // no row outlives its volume.
                             const std::map<std::string, std::string> intent{
                                 {"image", name}, {"pool", r.pool}, {"volume", r.volume}};
                             XENCTL_RETURN_IF_ERROR(ctx.journal(0, "delete", intent, false));
                             // The image calls are the one way to delete a base volume:
                             // the pool's own remove, past StorageManager's refusal.
                             Status st = p->remove(r.volume);
                             if (!st.ok() && !absl::IsNotFound(st)) return st;
                             ctx.crashPoint("delete:volume");
                             XENCTL_RETURN_IF_ERROR(store_.deleteImage(name));
                             storage_.unprotectImageBase(r.pool, r.volume);
                             return ctx.journal(0, "delete", intent, true);
                           });
}

Result<std::string> ImageManager::volumePath(const std::string& source) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeRef ref, core::parseVolumeTarget(source));
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, storage_.pool(ref.pool));
  XENCTL_ASSIGN_OR_RETURN(core::Volume v, p->get(ref.name));
  return v.path;
}

Result<core::OperationRecord> ImageManager::exportImage(const ExportRequest& req, const Caller& caller) {
  auto precheck = [&]() -> Status {
    const std::string what = absl::StrCat("exporting ", req.source);
    XENCTL_RETURN_IF_ERROR(core::checkLength(req.uri, core::kMaxUriBytes, what + ": the URI"));
    XENCTL_RETURN_IF_ERROR(core::checkLength(req.source, core::kMaxPathBytes, "an export's source"));
    XENCTL_RETURN_IF_ERROR(image::uriScheme(req.uri).status());
    XENCTL_RETURN_IF_ERROR(config_.host_paths.checkUri(caller, req.uri, what));
    if (core::isVolumeTarget(req.source)) return volumePath(req.source).status();
    if (req.source.empty() || req.source.front() != '/')
      return absl::InvalidArgumentError(absl::StrCat("export source '", req.source,
                                                     "' is neither an absolute directory nor vol:POOL/NAME"));
    XENCTL_RETURN_IF_ERROR(config_.host_paths.checkPath(caller, req.source, "export source"));
    struct stat st;
    if (::stat(req.source.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return absl::NotFoundError(absl::StrCat("export source ", req.source, " is not a directory"));
    return absl::OkStatus();
  };
  return ops_.startChecked({"export-image", req.source,
                            caller.request_id, caller.uid, caller.key(), caller.request_digest}, precheck,
                           [this, req, caller](OperationContext& ctx) {
                             return exportWork(ctx, req, fetchOptions(caller, ctx.stopToken()));
                           });
}

Status ImageManager::exportWork(OperationContext& ctx, const ExportRequest& req, core::FetchOptions fo) {
  std::string dir = req.source;
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      if (!path.empty()) removeStagingTree(path);
    }
  } cleanup;
  if (core::isVolumeTarget(req.source)) {
    ctx.phase("prepare", 2, absl::StrCat("reading the file system of ", req.source));
    XENCTL_ASSIGN_OR_RETURN(std::string path, volumePath(req.source));
    dir = cleanup.path = absl::StrCat(config_.work_dir, "/", ctx.id());
    if (::mkdir(dir.c_str(), 0700) != 0)
      return errnoStatus(errno, absl::StrCat("creating ", dir));
    XENCTL_RETURN_IF_ERROR(runTool(tools_, {"debugfs", "-R", absl::StrCat("rdump / ", dir), path},
                                   absl::StrCat("exporting ", req.source, ": reading its file system")));
  }
  ctx.phase("pack", 10, absl::StrCat("storing ", req.uri));
  fo.progress = [&ctx](const core::FetchProgress& p) { ctx.progress(50, p.bytes, 0); };
  auto r = image::exportDirectory(fetcher_, dir, req.format, req.uri, fo);
  if (!r.ok()) return r.status();
  ctx.progress(100, r->pack.bytes, r->pack.bytes,
               absl::StrCat(r->pack.entries, " entries, sha256 ", image::toHex(r->sha256)));
  return absl::OkStatus();
}

}  // namespace xenctl::provision
