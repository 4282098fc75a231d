// Provisioner: one-call provisioning (DESIGN.md "Provisioning"). CreateDomain
// with a root image and customizations runs as ONE operation made of ordered
// steps, a small saga: resolve the image → clone the root → grow it →
// customize → define → start. Each step has a name (the operation's phase)
// and an undo. What the undo needs is known before the step runs (its
// intent) and is written to the operation's journal in the store before
// the step changes anything, and again when it is done; after a crash,
// Recovery (recovery.h) reads the journal at the next start and finishes
// or undoes the saga. When a step fails, or the operation is cancelled
// between steps, the completed steps are undone in reverse: no clone and
// no definition are left behind.
//
// The managers do not call one another: the Provisioner calls ImageManager
// (the catalog), StorageManager (cloneNow, resizeNow, removeNow) and
// DomainManager (createNow, removeNow), each inside this one operation.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/customization.h"
#include "lib/core/domain.h"
#include "lib/provision/caller.h"
#include "lib/provision/container_runner.h"
#include "lib/provision/domain_manager.h"
#include "lib/provision/image_manager.h"
#include "lib/provision/operation_registry.h"
#include "lib/provision/storage_manager.h"

namespace xenctl::provision {

/// What a step's undo needs, written by the step while it runs (e.g.
/// "pool" -> "default", "volume" -> "web1-root"): plain strings, so that a
/// journal can store it as it is. A step of several phases keeps the one it
/// is in under "phase": a failure is named by it.
using StepRecord = std::map<std::string, std::string>;

/// One step of a saga.
struct SagaStep {
  std::string name;      ///< the operation's phase while it runs
  uint32_t percent = 0;  ///< the operation's overall progress at its start
  std::string message;
  std::function<Status(OperationContext&, StepRecord&)> run;
  /// Undoes a completed run from its record alone; empty when there is
  /// nothing to undo (a later step's undo, or an earlier one's, covers it).
  std::function<Status(const StepRecord&)> undo;
  /// The record as the step begins: what undoing a partial run needs. It
  /// is journaled before `run` starts; Recovery undoes by step name from it
  /// ("clone": pool, volume, source; "define": domain, uuid, define_only).
  StepRecord intent = {};
};

/// Runs `steps` in order inside one operation, each as a phase, journaling
/// each (OperationContext::journal) before it runs and when it is done; a
/// step whose journal entry cannot be written does not run. When a step
/// fails, or the operation is cancelled before a step, the completed steps'
/// undos run in reverse order and the failure is returned with its code,
/// prefixed with `what` and the step's name; an undo that fails too is named
/// in the message (what is left behind, and what to do about it).
Status runSaga(OperationContext& ctx, const std::string& what, const std::vector<SagaStep>& steps);

/// The step "clone": `source` cloned as `clone` in `pool`
/// (StorageManager::cloneNow), the copy's progress spread from `percent` to
/// `end_percent`, after `check` (may be empty) passes. Its undo deletes the
/// clone (one already gone is fine). Its intent: pool, volume, source.
SagaStep cloneStep(StorageManager& storage, const std::string& pool, const std::string& source,
                   const std::string& clone, uint32_t percent, uint32_t end_percent, std::string message,
                   std::function<Status()> check = {});
/// The step "define": DomainManager::createNow defines the domain and,
/// unless `req.define_only`, starts it (the phase "start" from
/// `start_percent`; a failure there is named "start"). A start that fails
/// undoes its definition itself; the step's undo removes the definition for
/// the steps that come later. Its intent: domain, uuid, define_only ("1"
/// or "0"); the crash point "define:stored" is passed between the
/// definition and the hypervisor's create.
SagaStep defineStep(DomainManager& domains, DomainManager::CreateRequest req, DomainManager::Owner owner, uint32_t percent,
                    uint32_t start_percent);

/// What CreateDomain with a root image asks for.
struct ProvisionRequest {
  /// The domain; the root volume becomes its first disk. The uuid is
  /// assigned when empty, and MACs are generated, before customizing.
  core::DomainSpec spec;
  bool define_only = false;
  bool paused = false;

  /// A catalog image name ("debian-12"). A URI is refused (INVALID_ARGUMENT):
  /// import it first with `vm-image import`.
  std::string image;
  /// Pool for the root volume; "" = the image's pool. A root is cloned from
  /// the image's base volume, so another pool is refused (FAILED_PRECONDITION).
  std::string pool;
  uint64_t root_size_bytes = 0;  ///< 0 = the image's size; else grown, with its file system
  std::string root_vdev;         ///< "" = xvda

  /// Applied to the root volume before the domain is defined. `networks`
  /// and `instance_id` are filled here: one interface per vif with an ip (its
  /// MAC from the spec), and the domain's uuid.
  core::Customizations customizations;
  /// Gateway and DNS servers for the static address of vif `vif`.
  struct VifNetwork {
    size_t vif = 0;
    std::string gateway;
    std::vector<std::string> dns;
  };
  std::vector<VifNetwork> networks;

  /// A container file (the container language) whose statements change the
  /// new root, run in order in the customize phase after `customizations`
  /// (identity reset included), so its replace, copy and patch see what
  /// they wrote. Its statements name the root as "root" (or
  /// vol:POOL/NAME-root); checkForNewRoot (container_parser.h) says what
  /// else it may not hold. Its xl statements are not read: the spec comes
  /// from `spec`.
  struct ContainerText {
    std::string text;
    std::string file_name;  ///< names it in errors ("web1.container:3:1: ...")
  };
  std::optional<ContainerText> container;
};

class Provisioner {
 public:
  /// Applies customizations to the file system on `device_path` (a block
  /// device or an image file) offline. Real: customize::Customizer.
  using Customize = std::function<Status(const std::string& device_path, const core::Customizations&)>;

  /// `customize` may be empty: then a request with customizations (the
  /// identity reset included) is refused with UNIMPLEMENTED; so is one with
  /// a container text when `containers` is null (it runs the text through
  /// ContainerRunner::runNow, inside this operation).
  Provisioner(DomainManager& domains, StorageManager& storage, ImageManager& images, OperationRegistry& ops,
              Customize customize, ContainerRunner* containers = nullptr);

  /// Checked at once, nothing made: the image is in the catalog and its
  /// base volume in the pool, the root volume's name ("NAME-root") is free,
  /// the size is not below the image's, the spec is valid and its name and
  /// uuid are free, the network settings name vifs with an address, and the
  /// container text parses and changes only the root (INVALID_ARGUMENT
  /// "FILE:LINE:COLUMN: ...") and, unless the caller is an admin, reads no
  /// Dom0 file (a path or file:// source or patch: PERMISSION_DENIED). A
  /// container text that fails in the customize phase (a fetch, a hunk that
  /// does not apply) undoes the clone.
  /// Then one operation (kind "create-domain", target the domain's name)
  /// with the phases resolve, clone, grow (with a size only), customize
  /// (when there is something to apply), define, start (unless define_only;
  /// define and start are one step, DomainManager::createNow).
  Result<core::OperationRecord> create(ProvisionRequest req, const Caller& caller);

  /// "web1" -> "web1-root".
  static std::string rootVolumeName(const std::string& domain);

 private:
  struct Plan;
  /// The checks of create; fills the plan (pool, base, spec with its root
  /// disk, customizations).
  Status prepare(Plan& plan);
  std::vector<SagaStep> steps(const std::shared_ptr<Plan>& plan);

  DomainManager& domains_;
  StorageManager& storage_;
  ImageManager& images_;
  OperationRegistry& ops_;
  Customize customize_;
  ContainerRunner* containers_;
};

}  // namespace xenctl::provision
