#include "lib/provision/provisioner.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/customize/container_parser.h"

namespace xenctl::provision {
namespace {

// Overall percent at the start of each phase; the clone's copy (sparse
// copies on a dir pool without reflinks) fills the range up to kGrowPct.
constexpr uint32_t kResolvePct = 2, kClonePct = 5, kGrowPct = 60, kCustomizePct = 70, kDefinePct = 85,
                   kStartPct = 90;

std::string quoted(const std::string& name) { return absl::StrCat("domain '", name, "'"); }

Status withContext(const Status& st, const std::string& what) {
  return st.ok() ? st : Status(st.code(), absl::StrCat(what, ": ", st.message()));
}

}  // namespace

Status runSaga(OperationContext& ctx, const std::string& what, const std::vector<SagaStep>& steps) {
  std::vector<std::pair<const SagaStep*, StepRecord>> done;
  Status failed;
  const SagaStep* failed_step = nullptr;
  std::string failed_phase;
  for (size_t i = 0; i < steps.size(); ++i) {
    const SagaStep& step = steps[i];
    if (ctx.cancelled()) {
      failed = absl::CancelledError("cancelled before this step");
      failed_step = &step;
      break;
    }
    ctx.phase(step.name, step.percent, step.message);
    StepRecord record = step.intent;
    if (Status st = ctx.journal(static_cast<int64_t>(i), step.name, record, false); !st.ok()) {
      failed = annotate(st, "the step was not started");
      failed_step = &step;
      break;
    }
    if (Status st = step.run(ctx, record); !st.ok()) {
      failed = st;
      failed_step = &step;
      if (auto phase = record.find("phase"); phase != record.end()) failed_phase = phase->second;
      // Partly done: a step undoes its own partial work, but a crash during
      // the undo below is recovered from this journal entry.
      break;
    }
    done.emplace_back(&step, record);
    if (Status st = ctx.journal(static_cast<int64_t>(i), step.name, record, true); !st.ok()) {
      failed = st;
      failed_step = &step;
      break;
    }
  }
  if (failed.ok()) return failed;

  std::vector<std::string> undone, left;
  if (!done.empty()) ctx.phase("undo", failed_step->percent, "undoing the steps done so far");
  for (auto it = done.rbegin(); it != done.rend(); ++it) {
    if (!it->first->undo) continue;
    if (Status st = it->first->undo(it->second); st.ok())
      undone.push_back(it->first->name);
    else
      left.push_back(absl::StrCat(it->first->name, " (", st.message(), ")"));
  }
  std::string msg =
      absl::StrCat(what, ": ", failed_phase.empty() ? failed_step->name : failed_phase, ": ", failed.message());
  if (!undone.empty()) absl::StrAppend(&msg, "; undone: ", absl::StrJoin(undone, ", "));
  if (!left.empty())
    absl::StrAppend(&msg, "; could not undo: ", absl::StrJoin(left, ", "),
                    ": remove what is left by hand (`vm-volume delete`, `vm-delete`)");
  return Status(failed.code(), msg);
}

SagaStep cloneStep(StorageManager& storage, const std::string& pool, const std::string& source,
                   const std::string& clone, uint32_t percent, uint32_t end_percent, std::string message,
                   std::function<Status()> check) {
  SagaStep step{"clone", percent, std::move(message),
          [&storage, pool, source, clone, percent, end_percent, check](OperationContext& ctx,
                                                                       StepRecord& rec) -> Status {
            if (check) XENCTL_RETURN_IF_ERROR(check());
            auto progress = [&ctx, percent, end_percent](uint64_t done, uint64_t total) {
              ctx.progress(total ? percent + static_cast<uint32_t>((end_percent - percent) * done / total) : end_percent,
                           done, total);
              return !ctx.cancelled();
            };
            XENCTL_RETURN_IF_ERROR(storage.cloneNow(pool, source, clone, 0, progress).status());
            rec["pool"] = pool;
            rec["volume"] = clone;
            return absl::OkStatus();
          },
          [&storage](const StepRecord& rec) -> Status {
            Status st = storage.removeNow(rec.at("pool"), rec.at("volume"));
            if (absl::IsNotFound(st)) return absl::OkStatus();
            return withContext(st, absl::StrCat("volume ", rec.at("pool"), "/", rec.at("volume")));
          }};
  step.intent = {{"pool", pool}, {"volume", clone}, {"source", source}};
  return step;
}

SagaStep defineStep(DomainManager& domains, DomainManager::CreateRequest req, DomainManager::Owner owner, uint32_t percent,
                    uint32_t start_percent) {
  StepRecord intent{{"domain", req.spec.name}, {"uuid", req.spec.uuid}, {"define_only", req.define_only ? "1" : "0"}};
  SagaStep step{"define", percent, "storing the definition",
          [&domains, req, owner, percent, start_percent](OperationContext& ctx, StepRecord& rec) -> Status {
            DomainManager::Phases phases;
            phases.stop = ctx.stopToken();
            phases.phase = [&ctx, &rec, percent, start_percent](const std::string& phase, uint32_t pct,
                                                                const std::string& message) {
              const uint32_t overall = percent + pct * (100 - percent) / 100;
              if (phase == "define") {
                ctx.phase("define", overall, message);
              } else if (phase == "create") {
                ctx.crashPoint("define:stored");
                rec["phase"] = "start";
                ctx.phase("start", std::max(overall, start_percent), message);
              } else {
                ctx.progress(overall, 0, 0, message);
              }
            };
            XENCTL_RETURN_IF_ERROR(domains.createNow(req, owner, phases).status());
            rec["domain"] = req.spec.name;
            return absl::OkStatus();
          },
          [&domains](const StepRecord& rec) { return domains.removeNow(rec.at("domain"), false); }};
  step.intent = std::move(intent);
  return step;
}

struct Provisioner::Plan {
  ProvisionRequest req;  // spec normalized, with its root disk; customizations complete
  int64_t owner_uid = -1;
  std::string owner;  // ownerOf(caller)
  core::Role role = core::Role::kNone;  // the caller's
  state::ImageRecord image;
  std::string pool;  // where the root is cloned: the image's pool
  std::string root;  // the root volume's name
  uint64_t base_size = 0;
  std::optional<customize::ContainerFile> container;  // the request's container text, parsed
};

Provisioner::Provisioner(DomainManager& domains, StorageManager& storage, ImageManager& images,
                         OperationRegistry& ops, Customize customize, ContainerRunner* containers)
    : domains_(domains),
      storage_(storage),
      images_(images),
      ops_(ops),
      customize_(std::move(customize)),
      containers_(containers) {}

std::string Provisioner::rootVolumeName(const std::string& domain) { return absl::StrCat(domain, "-root"); }

Status Provisioner::prepare(Plan& p) {
  ProvisionRequest& r = p.req;
  XENCTL_RETURN_IF_ERROR(core::validateDomainName(r.spec.name));
  const std::string who = quoted(r.spec.name);
  if (r.image.empty()) return absl::InvalidArgumentError(absl::StrCat(who, ": the root names no image"));
  if (r.image.find("://") != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": root image '", r.image, "' is a URI; import it first (`vm-image import NAME ", r.image,
        "`), then create the domain from NAME"));

  auto image = images_.get(r.image);
  if (absl::IsNotFound(image.status()))
    return absl::FailedPreconditionError(absl::StrCat(who, ": root image '", r.image,
                                                      "' is not in the catalog; import it (`vm-image import ",
                                                      r.image, " URI`) or see `vm-image list`"));
  XENCTL_RETURN_IF_ERROR(image.status());
  p.image = *std::move(image);
  p.pool = p.image.pool;
  if (!r.pool.empty() && r.pool != p.pool)
    return absl::FailedPreconditionError(absl::StrCat(
        who, ": root image '", r.image, "' is in pool '", p.pool, "', not '", r.pool,
        "'; a root is cloned in its image's pool: drop the pool, or import the image into '", r.pool,
        "' too (`vm-image import NAME URI --pool ", r.pool, "`)"));
  auto pool = storage_.pool(p.pool);
  if (!pool.ok())
    return absl::FailedPreconditionError(
        absl::StrCat(who, ": root image '", r.image, "': ", pool.status().message()));
  auto base = (*pool)->get(p.image.volume);
  if (absl::IsNotFound(base.status()))
    return absl::FailedPreconditionError(absl::StrCat(who, ": root image '", r.image, "': its base volume '", p.pool,
                                                      "/", p.image.volume,
                                                      "' is missing; delete the image and import it again"));
  XENCTL_RETURN_IF_ERROR(base.status());
  p.base_size = base->size_bytes;

  p.root = rootVolumeName(r.spec.name);
  if (Status st = core::validateVolumeName(p.root, "root volume"); !st.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": ", st.message(), "; a domain with a root image needs a name of at most 58 characters"));
  if (r.root_size_bytes) {
    XENCTL_RETURN_IF_ERROR(withContext(core::validateVolumeSize(r.root_size_bytes), who + ": root size"));
    if (r.root_size_bytes < p.base_size)
      return absl::InvalidArgumentError(absl::StrCat(who, ": root size ", r.root_size_bytes,
                                                     " bytes is below the size of image '", r.image, "' (",
                                                     p.base_size, " bytes); give at least that"));
  }
  auto taken = (*pool)->get(p.root);
  if (taken.ok())
    return absl::AlreadyExistsError(absl::StrCat(who, ": its root volume '", p.pool, "/", p.root,
                                                 "' already exists; delete it (`vm-volume delete ", p.root,
                                                 " --pool ", p.pool, "`) or name the domain otherwise"));
  if (!absl::IsNotFound(taken.status())) return taken.status();

  // The root is the first disk; the uuid and the MACs exist from here on,
  // so the guest's network files and NoCloud instance-id can name them.
  core::DiskSpec root_disk{core::VolumeRef{p.pool, p.root}.target(),
                           r.root_vdev.empty() ? std::string("xvda") : r.root_vdev, "w", ""};
  r.spec.disks.insert(r.spec.disks.begin(), std::move(root_disk));
  if (r.spec.uuid.empty()) r.spec.uuid = core::newUuid();
  XENCTL_ASSIGN_OR_RETURN(r.spec, core::normalizeSpec(std::move(r.spec)));
  if (auto existing = domains_.get(r.spec.name); existing.ok() || !absl::IsNotFound(existing.status()))
    return existing.ok() ? absl::AlreadyExistsError(absl::StrCat(who, " already exists")) : existing.status();

  core::Customizations& c = r.customizations;
  c.networks.clear();
  std::vector<size_t> interface_of(r.spec.vifs.size(), SIZE_MAX);
  for (size_t i = 0; i < r.spec.vifs.size(); ++i) {
    const core::VifSpec& v = r.spec.vifs[i];
    if (v.ip.empty()) continue;
    if (v.ip.find('/') == std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat(who, ": vif ", i, ": ip '", v.ip,
                                                     "' needs a prefix length (e.g. ", v.ip,
                                                     "/24) to configure the guest's network"));
    interface_of[i] = c.networks.size();
    core::NetworkInterface iface;
    iface.mac = v.mac;
    iface.address = v.ip;
    iface.vif_index = static_cast<int>(i);
    c.networks.push_back(std::move(iface));
  }
  for (const auto& n : r.networks) {
    if (n.vif >= r.spec.vifs.size() || interface_of[n.vif] == SIZE_MAX)
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": a gateway or DNS servers are given for vif ", n.vif,
          ", which has no ip; give the vif an address (--ip, or ip= in --vif)"));
    core::NetworkInterface& iface = c.networks[interface_of[n.vif]];
    iface.gateway = n.gateway;
    iface.dns = n.dns;
  }
  c.instance_id = r.spec.uuid;
  c.domain_name = r.spec.name;
  if (!c.empty() && !customize_)
    return absl::UnimplementedError(
        absl::StrCat(who, ": customizing a root volume is not built into this xenctld yet; create it without "
                          "customizations and with the identity kept (--keep-identity)"));
  if (r.container) {
    const std::string& file_name = r.container->file_name.empty() ? "container_text" : r.container->file_name;
    XENCTL_ASSIGN_OR_RETURN(p.container, customize::parseContainer(r.container->text, file_name));
    XENCTL_RETURN_IF_ERROR(customize::checkForNewRoot(*p.container, file_name, core::VolumeRef{p.pool, p.root}));
    // Host paths are an admin's (access_policy.h): a source or a patch read
    // from Dom0's files would carry them into the caller's guest.
    if (p.role != core::Role::kAdmin)
      for (const customize::Statement& st : p.container->statements) {
        std::optional<customize::Location> read;
        if (auto* c = std::get_if<customize::CopyStmt>(&st.body)) read = c->source;
        if (auto* pt = std::get_if<customize::PatchStmt>(&st.body)) read = pt->patch;
        if (read && (read->kind == customize::Location::Kind::kPath || read->text.rfind("file:", 0) == 0))
          return absl::PermissionDeniedError(absl::StrCat(
              file_name, ":", st.pos.line, ":", st.pos.column, ": [", st.keyword, "] reads the Dom0 file '",
              read->text, "'; only an admin may name host files: give an http(s) or ftp URI"));
      }
    if (!containers_)
      return absl::UnimplementedError(absl::StrCat(
          who, ": running a container text in CreateDomain is not built into this xenctld; run the file with "
               "`vm-container` after creating the domain with --define-only"));
  }
  return absl::OkStatus();
}

std::vector<SagaStep> Provisioner::steps(const std::shared_ptr<Plan>& plan) {
  const ProvisionRequest& r = plan->req;
  std::vector<SagaStep> out;

  out.push_back({"resolve", kResolvePct, absl::StrCat("image '", r.image, "'"),
                 [this, plan](OperationContext& ctx, StepRecord&) -> Status {
                   // Checked again: the image may have been deleted since the call.
                   XENCTL_ASSIGN_OR_RETURN(state::ImageRecord image, images_.get(plan->image.name));
                   XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * pool, storage_.pool(image.pool));
                   XENCTL_RETURN_IF_ERROR(pool->get(image.volume).status());
                   ctx.progress(kResolvePct, 0, 0,
                                absl::StrCat("image '", image.name, "' is cached in pool '", image.pool,
                                             "' (sha256 ", image.sha256.substr(0, 12), "); not fetched"));
                   return absl::OkStatus();
                 },
                 {}});

  out.push_back(cloneStep(storage_, plan->pool, plan->image.volume, plan->root, kClonePct, kGrowPct,
                          absl::StrCat("cloning ", plan->pool, "/", plan->root, " from image '", r.image, "'")));

  if (r.root_size_bytes > plan->base_size)
    out.push_back({"grow", kGrowPct, absl::StrCat("growing ", plan->root, " and its file system to ", r.root_size_bytes,
                                                  " bytes"),
                   [this, plan](OperationContext&, StepRecord&) -> Status {
                     return storage_.resizeNow(plan->pool, plan->root, plan->req.root_size_bytes).status();
                   },
                   {}});  // the clone's undo deletes the grown volume

  if (!r.customizations.empty() || plan->container) {
    std::string message = r.customizations.empty()          ? std::string()
                          : r.customizations.reset_identity ? "applying the customizations and a new identity"
                                                            : "applying the customizations";
    if (plan->container)
      absl::StrAppend(&message, message.empty() ? "running" : ", then", " the container text's ",
                      plan->container->statements.size(), " statement(s)");
    out.push_back({"customize", kCustomizePct, std::move(message),
                   [this, plan](OperationContext& ctx, StepRecord&) -> Status {
                     XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * pool, storage_.pool(plan->pool));
                     XENCTL_ASSIGN_OR_RETURN(core::Volume root, pool->get(plan->root));
                     if (!plan->req.customizations.empty())
                       XENCTL_RETURN_IF_ERROR(customize_(root.path, plan->req.customizations));
                     if (!plan->container) return absl::OkStatus();
                     ContainerRunner::RunOptions options;
                     options.instance_id = plan->req.spec.uuid;
                     options.root_path = root.path;
                     options.stop = ctx.stopToken();
                     options.progress = [&ctx](size_t index, size_t total, const customize::Statement& s) {
                       ctx.progress(kCustomizePct + static_cast<uint32_t>((kDefinePct - kCustomizePct) * index /
                                                                          (total ? total : 1)),
                                    index, total, absl::StrCat("line ", s.pos.line, ": [", s.keyword, "]"));
                     };
                     const auto& c = plan->req.container;
                     return containers_->runNow(*plan->container, c->file_name.empty() ? "container_text" : c->file_name,
                                                options);
                   },
                   {}});  // the clone's undo deletes the customized volume
  }

  out.push_back(defineStep(domains_, {plan->req.spec, plan->req.define_only, plan->req.paused},
                           {plan->owner_uid, plan->owner},
                           kDefinePct, kStartPct));
  return out;
}

Result<core::OperationRecord> Provisioner::create(ProvisionRequest req, const Caller& caller) {
  auto plan = std::make_shared<Plan>();
  plan->req = std::move(req);
  plan->owner_uid = caller.uid;
  plan->owner = ownerOf(caller);
  plan->role = caller.role;
  const std::string name = plan->req.spec.name;
  return ops_.startChecked({"create-domain", name,
                            caller.request_id, caller.uid, caller.key(), caller.request_digest}, [&] {
                             // The spec's other disks, kernel and bootloader are the caller's to name.
                             XENCTL_RETURN_IF_ERROR(domains_.checkHostPaths(plan->req.spec, caller));
                             return prepare(*plan);
                           },
                           [this, plan, name](OperationContext& ctx) {
                             return runSaga(ctx, absl::StrCat("provisioning ", quoted(name)), steps(plan));
                           });
}

}  // namespace xenctl::provision
