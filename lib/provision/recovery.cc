#include "lib/provision/recovery.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/provision/image_manager.h"

namespace xenctl::provision {
namespace {

std::string field(const state::JournalStep& s, const std::string& key) {
  auto it = s.record.find(key);
  return it == s.record.end() ? std::string() : it->second;
}

// The last journaled step, "resolve" or "clone (done)", for the message.
std::string whereStopped(const std::vector<state::JournalStep>& steps) {
  if (steps.empty()) return "before its first step";
  const auto& last = steps.back();
  return absl::StrCat("in step '", last.step, "' (", last.done ? "completed" : "begun", ")");
}

}  // namespace

Recovery::Recovery(state::Store& store, OperationRegistry& ops, DomainManager& domains, StorageManager& storage)
    : store_(store), ops_(ops), domains_(domains), storage_(storage) {}

Result<std::vector<Recovery::Outcome>> Recovery::run() {
  XENCTL_ASSIGN_OR_RETURN(auto journal, store_.listJournal());
  std::map<std::string, std::vector<state::JournalStep>> by_op;
  for (auto& j : journal) by_op[j.op_id].push_back(std::move(j));
  std::map<std::string, core::OperationRecord> interrupted;
  for (auto& op : ops_.interrupted()) interrupted[op.id] = std::move(op);

  std::vector<Outcome> out;
  for (const auto& [id, steps] : by_op) {
    auto it = interrupted.find(id);
    if (it == interrupted.end()) {
      // Finished before the journal was cleared, or pruned from the history.
      XENCTL_RETURN_IF_ERROR(store_.clearJournal(id));
      continue;
    }
    Outcome o = recover(it->second, steps);
    Status final = o.forward ? absl::OkStatus() : absl::AbortedError(o.message);
    XENCTL_RETURN_IF_ERROR(ops_.conclude(id, final, o.message));
    out.push_back(std::move(o));
  }
  return out;
}

Recovery::Outcome Recovery::recover(const core::OperationRecord& op, const std::vector<state::JournalStep>& steps) {
  Outcome o{op.id, op.kind, op.target, false, true, ""};
  const std::string what = absl::StrCat(op.kind, " of '", op.target, "' was interrupted by a daemon restart ",
                                        whereStopped(steps));
  std::vector<std::string> done;
  std::string why;
  bool forward = false;
  if (op.kind == "create-domain" || op.kind == "fork-domain") {
    forward = createCanFinish(steps, why);
  } else if (op.kind == "import-image") {
    auto images = store_.listImages();
    if (images.ok())
      for (const auto& img : *images)
        if (img.name == op.target) forward = true;
    why = forward ? absl::StrCat("image '", op.target, "' is in the catalog")
                  : absl::StrCat("image '", op.target, "' was not yet in the catalog");
  } else if (op.kind == "delete-domain" || op.kind == "delete-image") {
    forward = true;
    why = "a deletion once begun is finished";
  } else if (op.kind == "apply-container") {
    // Written in place through libext2fs, with nothing to roll back to.
    forward = !steps.empty() && steps.back().done;
    why = forward ? "every statement was written"
                  : absl::StrCat("it was writing, and its statements cannot be undone: ",
                                 field(steps.back(), "targets").empty() ? std::string("its trees")
                                                                        : field(steps.back(), "targets"),
                                 " may be partly changed; check their file systems (e2fsck -f) and apply the file again");
  } else {
    why = "xenctld does not know how to recover this kind of operation";
  }

  std::vector<std::string> left;
  if (forward) {
    for (const auto& s : steps) {
      Status st;
      if (s.step == "define") {
        // The domain stays: when present it is marked as expected to run.
        auto view = domains_.get(field(s, "domain"));
        if (view.ok() && view->live.domid >= 0) {
          st = domains_.completeCreate(field(s, "domain"));
          if (st.ok()) done.push_back(absl::StrCat("domain '", field(s, "domain"), "' kept running"));
        }
      } else if (s.step == "delete") {
        st = op.kind == "delete-image" ? finishDeleteImage(s, done) : finishDelete(s, done);
      } else if (s.step == "stage") {
        st = undo(s, done);  // the staging directory goes either way
      }
      if (!st.ok()) left.push_back(absl::StrCat(s.step, " (", st.message(), ")"));
    }
  } else {
    for (auto it = steps.rbegin(); it != steps.rend(); ++it)
      if (Status st = undo(*it, done); !st.ok()) left.push_back(absl::StrCat(it->step, " (", st.message(), ")"));
  }

  o.forward = forward && left.empty();
  o.complete = left.empty();
  const char* verdict = forward                        ? "finished at restart"
                        : op.kind == "apply-container" ? "left as it stopped at restart"
                                                       : "undone at restart";
  o.message = absl::StrCat(what, "; ", verdict, ": ", why);
  if (!done.empty()) absl::StrAppend(&o.message, "; ", absl::StrJoin(done, "; "));
  if (!left.empty())
    absl::StrAppend(&o.message, "; could not ", forward ? "finish" : "undo", ": ", absl::StrJoin(left, ", "),
                    ": remove what is left by hand (`vm-volume delete`, `vm-delete`)");
  if (!forward && op.kind != "apply-container") absl::StrAppend(&o.message, "; retry the request");
  return o;
}

bool Recovery::createCanFinish(const std::vector<state::JournalStep>& steps, std::string& why) {
  const state::JournalStep* define = nullptr;
  for (const auto& s : steps)
    if (s.step == "define") define = &s;
  if (!define) {
    why = "the domain was not yet defined";
    return false;
  }
  const std::string name = field(*define, "domain");
  if (define->done) {
    why = absl::StrCat("domain '", name, "' was defined", field(*define, "define_only") == "1" ? "" : " and started");
    return true;
  }
  auto view = domains_.get(name);
  if (!view.ok() || view->spec.uuid != field(*define, "uuid")) {
    why = absl::StrCat("domain '", name, "' was not yet defined");
    return false;
  }
  if (view->live.domid >= 0) {
    why = absl::StrCat("domain '", name, "' is running (domid ", view->live.domid, "); its definition is complete");
    return true;
  }
  if (field(*define, "define_only") == "1") {
    why = absl::StrCat("domain '", name, "' is defined, which is all that was asked");
    return true;
  }
  why = absl::StrCat("domain '", name, "' was defined but is not running");
  if (view->state == core::DomainState::kVanished && !view->state_reason.empty())
    absl::StrAppend(&why, " (", view->state_reason, ")");
  return false;
}

Status Recovery::removeVolume(const std::string& pool, const std::string& volume, const std::string& source,
                              std::vector<std::string>& done) {
  auto manager = storage_.pool(pool);
  if (!manager.ok()) return manager.status();
  auto v = (*manager)->get(volume);
  if (absl::IsNotFound(v.status())) return absl::OkStatus();
  XENCTL_RETURN_IF_ERROR(v.status());
  // A volume of that name cloned from something else is not this step's.
  if (!source.empty() && !v->origin.empty() && v->origin != source) return absl::OkStatus();
  Status st = storage_.removeNow(pool, volume);
  if (absl::IsNotFound(st)) return absl::OkStatus();
  XENCTL_RETURN_IF_ERROR(annotate(st, absl::StrCat("volume ", pool, "/", volume)));
  done.push_back(absl::StrCat("volume ", pool, "/", volume, " deleted"));
  return absl::OkStatus();
}

Status Recovery::undo(const state::JournalStep& s, std::vector<std::string>& done) {
  if (s.step == "clone" || s.step == "base-volume")
    return removeVolume(field(s, "pool"), field(s, "volume"), field(s, "source"), done);
  if (s.step == "define") {
    const std::string name = field(s, "domain");
    auto view = domains_.get(name);
    if (!view.ok() || view->foreign || view->spec.uuid != field(s, "uuid")) return absl::OkStatus();
    Status st = domains_.removeNow(name, /*delete_volumes=*/false);
    if (absl::IsNotFound(st)) return absl::OkStatus();
    XENCTL_RETURN_IF_ERROR(st);
    done.push_back(absl::StrCat("domain '", name, "' ", view->live.domid >= 0 ? "destroyed and " : "", "undefined"));
    return absl::OkStatus();
  }
  if (s.step == "stage") {
    if (!field(s, "dir").empty()) removeStagingTree(field(s, "dir"));
    return absl::OkStatus();
  }
  if (s.step == "catalog") {
    Status st = store_.deleteImage(field(s, "image"));
    if (st.ok()) done.push_back(absl::StrCat("image '", field(s, "image"), "' removed from the catalog"));
    return absl::IsNotFound(st) ? absl::OkStatus() : st;
  }
  return absl::OkStatus();  // resolve, grow, customize: their work is in the clone
}

Status Recovery::finishDeleteImage(const state::JournalStep& s, std::vector<std::string>& done) {
  XENCTL_RETURN_IF_ERROR(removeVolume(field(s, "pool"), field(s, "volume"), "", done));
  Status st = store_.deleteImage(field(s, "image"));
  if (st.ok()) done.push_back(absl::StrCat("image '", field(s, "image"), "' removed from the catalog"));
  return absl::IsNotFound(st) ? absl::OkStatus() : st;
}

Status Recovery::finishDelete(const state::JournalStep& s, std::vector<std::string>& done) {
  const std::string name = field(s, "domain");
  auto view = domains_.get(name);
  if (view.ok() && !view->foreign && view->spec.uuid == field(s, "uuid")) {
    XENCTL_RETURN_IF_ERROR(domains_.removeNow(name, /*delete_volumes=*/false));
    done.push_back(absl::StrCat("domain '", name, "' deleted"));
  }
  for (const auto& target : absl::StrSplit(field(s, "volumes"), ',', absl::SkipEmpty())) {
    XENCTL_ASSIGN_OR_RETURN(core::VolumeRef ref, core::parseVolumeTarget(std::string(target)));
    XENCTL_RETURN_IF_ERROR(removeVolume(ref.pool, ref.name, "", done));
  }
  return absl::OkStatus();
}

}  // namespace xenctl::provision
