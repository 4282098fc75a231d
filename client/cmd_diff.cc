// vm-diff NAME [--vdev VDEV] [--patch]: DiffDomain, as one line per changed
// entry, the unified diff itself, or the answer as JSON.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/lib/output.h"

namespace xenctl::client {
namespace {

// "file 0644 0:0", "symlink -> target 0:0".
std::string describe(const v1::FileInfo& f) {
  if (f.type() == "symlink") return absl::StrFormat("symlink -> %s %u:%u", f.link_target(), f.uid(), f.gid());
  return absl::StrFormat("%s %04o %u:%u", f.type(), f.mode(), f.uid(), f.gid());
}

// "changed  /etc/motd  mode 0644 -> 0600"; "added    /srv  directory 0755 0:0".
std::string changeLine(const v1::FileChange& c) {
  switch (c.kind()) {
    case v1::FileChange::KIND_ADDED: return absl::StrCat("added    ", c.path(), "  ", describe(c.after()));
    case v1::FileChange::KIND_REMOVED: return absl::StrCat("removed  ", c.path(), "  ", describe(c.before()));
    default: break;
  }
  std::vector<std::string> what;
  if (c.type_changed()) what.push_back(absl::StrCat("type ", c.before().type(), " -> ", c.after().type()));
  if (c.content_changed()) what.push_back("content");
  if (c.mode_changed()) what.push_back(absl::StrFormat("mode %04o -> %04o", c.before().mode(), c.after().mode()));
  if (c.owner_changed())
    what.push_back(absl::StrFormat("owner %u:%u -> %u:%u", c.before().uid(), c.before().gid(), c.after().uid(),
                                   c.after().gid()));
  if (c.link_target_changed())
    what.push_back(absl::StrCat("link target ", c.before().link_target(), " -> ", c.after().link_target()));
  return absl::StrCat("changed  ", c.path(), "  ", absl::StrJoin(what, ", "));
}

class DiffCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "A stopped domain")->type_name("")->required();
    app.add_option("--vdev", vdev_, "The disk to compare (default: the first on a managed volume)")
        ->type_name("VDEV");
    app.add_flag("--patch", patch_, "Print the differences as a unified diff for [patch]");
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    v1::DiffDomainRequest req;
    req.set_name(name_);
    req.set_vdev(vdev_);
    req.set_patch(patch_);
    Result<v1::DiffDomainResponse> d = (*c)->call(&v1::DomainService::Stub::DiffDomain, req);
    if (!d.ok()) return s.fail(d.status());
    if (s.json()) {
      s.printJson(toJson(*d));
    } else if (patch_) {
      s.print(d->patch());
    } else {
      std::string out;
      for (const v1::FileChange& change : d->changes()) absl::StrAppend(&out, changeLine(change), "\n");
      s.print(out);
    }
    return kExitOk;
  }

 private:
  std::string name_, vdev_;
  bool patch_ = false;
};

}  // namespace

std::unique_ptr<Command> makeDiffCommand() { return std::make_unique<DiffCommand>(); }

}  // namespace xenctl::client
