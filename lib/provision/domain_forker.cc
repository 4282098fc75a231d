#include "lib/provision/domain_forker.h"

#include <memory>

#include "absl/strings/str_cat.h"

namespace xenctl::provision {
namespace {

// Overall percent at the start of each phase; the clones' copies (sparse
// copies on a dir pool without reflinks) share the range up to kCustomizePct.
constexpr uint32_t kClonePct = 5, kCustomizePct = 70, kDefinePct = 85, kStartPct = 90;

std::string quoted(const std::string& name) { return absl::StrCat("domain '", name, "'"); }

}  // namespace

struct DomainForker::Plan {
  ForkRequest req;
  int64_t owner_uid = -1;
  std::string owner;  // ownerOf(caller)
  core::DomainSpec spec;  // NEW's, normalized, its disks naming the clones
  struct Clone {
    core::VolumeRef source, clone;
    std::string vdev;
  };
  std::vector<Clone> clones;  // the root first
  core::Customizations customizations;
};

DomainForker::DomainForker(DomainManager& domains, StorageManager& storage, OperationRegistry& ops,
                           Customize customize)
    : domains_(domains), storage_(storage), ops_(ops), customize_(std::move(customize)) {}

std::string DomainForker::cloneName(const std::string& fork, const core::DiskSpec& disk, bool root) {
  return root ? Provisioner::rootVolumeName(fork) : absl::StrCat(fork, "-", disk.vdev);
}

Status DomainForker::requireStopped(const std::string& name) {
  XENCTL_ASSIGN_OR_RETURN(DomainView src, domains_.get(name));
  if (src.foreign)
    return absl::FailedPreconditionError(
        absl::StrCat(quoted(name), " was not made by xenctld; only domains defined in xenctld can be forked"));
  if (core::isPresent(src.state))
    return absl::FailedPreconditionError(absl::StrCat(
        quoted(name), " is ", av(core::toString(src.state)),
        "; its volumes are being written: stop it first (`vm-shutdown ", name, "`), then fork it"));
  return absl::OkStatus();
}

Status DomainForker::prepare(Plan& p) {
  const ForkRequest& r = p.req;
  XENCTL_RETURN_IF_ERROR(core::validateDomainName(r.source));
  XENCTL_RETURN_IF_ERROR(core::validateDomainName(r.name));
  const std::string who = absl::StrCat("forking ", quoted(r.source), " as '", r.name, "'");
  if (!customize_)
    return absl::UnimplementedError(absl::StrCat(
        who, ": giving a fork a new identity (customize) is not built into this xenctld; clone the volumes "
             "(`vm-volume clone`) and create the domain by hand"));
  if (r.source == r.name) return absl::InvalidArgumentError(absl::StrCat(who, ": give the fork another name"));
  XENCTL_RETURN_IF_ERROR(requireStopped(r.source));
  if (auto taken = domains_.get(r.name); taken.ok() || !absl::IsNotFound(taken.status()))
    return taken.ok() ? absl::AlreadyExistsError(
                            absl::StrCat(who, ": ", quoted(r.name), " already exists; choose another name"))
                      : taken.status();
  XENCTL_ASSIGN_OR_RETURN(DomainView src, domains_.get(r.source));

  core::DomainSpec spec = src.spec;
  spec.name = r.name;
  spec.uuid = core::newUuid();
  for (core::VifSpec& v : spec.vifs) {
    v.mac.clear();  // normalizeSpec derives new ones from the new uuid
    v.ip.clear();
  }
  for (core::DiskSpec& d : spec.disks) {
    const bool writable = d.mode.find('w') != std::string::npos;
    if (!writable) continue;  // shared as it is
    if (!core::isVolumeTarget(d.target))
      return absl::FailedPreconditionError(absl::StrCat(
          who, ": disk ", d.vdev, " is the host path '", d.target,
          "', which xenctld cannot clone; fork domains whose writable disks are volumes (vol:POOL/NAME)"));
    XENCTL_ASSIGN_OR_RETURN(core::VolumeRef source, core::parseVolumeTarget(d.target));
    auto pool = storage_.pool(source.pool);
    if (!pool.ok())
      return absl::FailedPreconditionError(absl::StrCat(who, ": disk ", d.vdev, ": ", pool.status().message()));
    if (auto vol = (*pool)->get(source.name); !vol.ok())
      return absl::FailedPreconditionError(absl::StrCat(who, ": disk ", d.vdev, ": volume ", source.pool, "/",
                                                        source.name, ": ", vol.status().message()));
    core::VolumeRef clone{source.pool, cloneName(r.name, d, p.clones.empty())};
    if (Status st = core::validateVolumeName(clone.name, "clone"); !st.ok())
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": ", st.message(), "; give the fork a shorter name"));
    if (auto taken = (*pool)->get(clone.name); taken.ok())
      return absl::AlreadyExistsError(absl::StrCat(who, ": volume '", clone.pool, "/", clone.name,
                                                   "' already exists; delete it (`vm-volume delete ", clone.name,
                                                   " --pool ", clone.pool, "`) or name the fork otherwise"));
    else if (!absl::IsNotFound(taken.status()))
      return taken.status();
    p.clones.push_back({source, clone, d.vdev});
    d.target = clone.target();
  }
  if (p.clones.empty())
    return absl::FailedPreconditionError(absl::StrCat(
        who, ": it has no writable disk on a managed volume (vol:POOL/NAME) to clone, so nothing to fork"));
  XENCTL_ASSIGN_OR_RETURN(p.spec, core::normalizeSpec(std::move(spec)));

  core::Customizations& c = p.customizations;
  c.hostname = r.hostname;
  c.reset_identity = true;
  c.instance_id = p.spec.uuid;
  c.domain_name = r.name;
  return absl::OkStatus();
}

std::vector<SagaStep> DomainForker::steps(const std::shared_ptr<Plan>& plan) {
  std::vector<SagaStep> out;
  const size_t n = plan->clones.size();
  for (size_t i = 0; i < n; ++i) {
    const Plan::Clone& c = plan->clones[i];
    // Checked again before each clone: SRC may have been started since the call.
    out.push_back(cloneStep(storage_, c.source.pool, c.source.name, c.clone.name,
                            kClonePct + static_cast<uint32_t>((kCustomizePct - kClonePct) * i / n),
                            kClonePct + static_cast<uint32_t>((kCustomizePct - kClonePct) * (i + 1) / n),
                            absl::StrCat("cloning ", c.source.pool, "/", c.source.name, " (", c.vdev, ") as ",
                                         c.clone.name),
                            [this, plan] { return requireStopped(plan->req.source); }));
  }

  out.push_back({"customize", kCustomizePct,
                 plan->req.hostname ? absl::StrCat("a new identity and the hostname ", *plan->req.hostname)
                                    : std::string("a new identity"),
                 [this, plan](OperationContext&, StepRecord&) -> Status {
                   const core::VolumeRef& root = plan->clones.front().clone;
                   XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * pool, storage_.pool(root.pool));
                   XENCTL_ASSIGN_OR_RETURN(core::Volume vol, pool->get(root.name));
                   return customize_(vol.path, plan->customizations);
                 },
                 {}});  // the clone's undo deletes the customized volume

  out.push_back(defineStep(domains_, {plan->spec, plan->req.define_only, plan->req.paused},
                           {plan->owner_uid, plan->owner},
                           kDefinePct, kStartPct));
  return out;
}

Result<core::OperationRecord> DomainForker::fork(ForkRequest req, const Caller& caller) {
  auto plan = std::make_shared<Plan>();
  plan->req = std::move(req);
  plan->owner_uid = caller.uid;
  plan->owner = ownerOf(caller);
  const std::string name = plan->req.name;
  return ops_.startChecked(
      {"fork-domain", name, caller.request_id, caller.uid, caller.key(), caller.request_digest}, [&] {
        XENCTL_RETURN_IF_ERROR(prepare(*plan));
        // The fork keeps the source's read-only disks, kernel and bootloader: this caller names them now.
        return domains_.checkHostPaths(plan->spec, caller);
      },
      [this, plan, name](OperationContext& ctx) {
        return runSaga(ctx, absl::StrCat("forking ", quoted(plan->req.source), " as '", name, "'"), steps(plan));
      });
}

}  // namespace xenctl::provision
