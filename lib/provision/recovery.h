// Recovery: at start, before serving, each operation the daemon was running
// when it stopped (a crash, kill -9, a power loss) and that left a journal
// (OperationContext::journal) is finished or undone, so that nothing stays
// half-made: no clone without its domain, no stored definition of a domain
// that never ran, no base volume without its catalog row.
//
// Forward where the work is complete enough to finish:
//   create-domain, fork-domain: the "define" step completed, or the domain
//     is present in the hypervisor (it stays, and is marked as expected to
//     run), or, define_only, the definition is stored.
//   import-image: the catalog row is stored.
//   delete-domain: always, once begun: the definition and the journaled
//     volumes are removed (what is already gone is skipped).
//   delete-image: always, once begun: the base volume, then the catalog row.
//   apply-container: only when its "write" step completed; otherwise it
//     fails naming the trees it may have partly changed (a container file
//     edits volumes in place and keeps no copy to go back to).
// Backward otherwise: every journaled step is undone in reverse from its
// record ("clone"/"base-volume": the volume; "define": the definition, and
// the domain if present; "stage": the staging directory). A volume or a
// definition is only removed while it is still the one the step made (the
// clone's origin, the definition's uuid).
//
// Each such operation then ends SUCCEEDED (forward) or FAILED with ABORTED
// (backward), its message saying which, why, and what was done.
#pragma once

#include <string>
#include <vector>

#include "lib/provision/domain_manager.h"
#include "lib/provision/operation_registry.h"
#include "lib/provision/storage_manager.h"
#include "lib/state/store.h"

namespace xenctl::provision {

class Recovery {
 public:
  Recovery(state::Store& store, OperationRegistry& ops, DomainManager& domains, StorageManager& storage);

  struct Outcome {
    std::string op_id, kind, target;
    bool forward = false;
    bool complete = true;  ///< false: something could not be undone (named in message)
    std::string message;
  };
  /// Recovers every interrupted operation (OperationRegistry::interrupted
  /// after load()) and concludes it; clears the journals of operations that
  /// had finished. Run it after the managers have loaded and before serving.
  Result<std::vector<Outcome>> run();

 private:
  Outcome recover(const core::OperationRecord& op, const std::vector<state::JournalStep>& steps);
  /// Whether create-domain / fork-domain `steps` can be finished; `why` says.
  bool createCanFinish(const std::vector<state::JournalStep>& steps, std::string& why);
  /// Undoes one step from its record; what was done is appended to `done`.
  Status undo(const state::JournalStep& step, std::vector<std::string>& done);
  Status removeVolume(const std::string& pool, const std::string& volume, const std::string& source,
                      std::vector<std::string>& done);
  Status finishDelete(const state::JournalStep& step, std::vector<std::string>& done);
  /// delete-image's forward step: its base volume, then its catalog row.
  Status finishDeleteImage(const state::JournalStep& step, std::vector<std::string>& done);

  state::Store& store_;
  OperationRegistry& ops_;
  DomainManager& domains_;
  StorageManager& storage_;
};

}  // namespace xenctl::provision
