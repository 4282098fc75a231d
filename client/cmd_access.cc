// vm-access NAME [--grant ID]... [--revoke ID]... [--owner ID | --no-owner]:
// who owns a domain and who may act on it (SetDomainAccess); without
// options, shows them (GetDomain). IDs are uid:N or cert:SUBJECT.
#include "absl/strings/str_join.h"
#include "client/commands.h"

namespace xenctl::client {
namespace {

class AccessCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "Domain name")->type_name("")->required();
    app.add_option("--grant", grant_, "Give ID operator rights on the domain (uid:N or cert:SUBJECT; repeatable)")
        ->type_name("ID");
    app.add_option("--revoke", revoke_, "Take them from ID (repeatable)")->type_name("ID");
    auto* owner = app.add_option("--owner", owner_, "Make ID the domain's owner (admins only)")->type_name("ID");
    app.add_flag("--no-owner", no_owner_, "Leave the domain without an owner (admins only)")->excludes(owner);
    app.add_option("--request-id", request_id_, "Idempotency key of the change (default: a random one)")
        ->type_name("ID");
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    Result<v1::Domain> d = absl::UnknownError("");
    if (grant_.empty() && revoke_.empty() && owner_.empty() && !no_owner_) {
      d = (*c)->getDomain(name_);
    } else {
      v1::SetDomainAccessRequest req;
      req.set_request_id(Session::requestId({false, request_id_}));
      req.set_name(name_);
      if (!owner_.empty() || no_owner_) req.set_owner(owner_);
      for (const auto& g : grant_) req.add_grant(g);
      for (const auto& r : revoke_) req.add_revoke(r);
      d = (*c)->call(&v1::DomainService::Stub::SetDomainAccess, req);
    }
    if (!d.ok()) return s.fail(d.status());
    if (s.json()) {
      s.printJson({{"name", d->spec().name()},
                   {"owner", d->owner()},
                   {"grants", std::vector<std::string>(d->grants().begin(), d->grants().end())}});
    } else {
      s.print(absl::StrCat("owner:  ", d->owner().empty() ? "(none)" : d->owner(), "\ngrants: ",
                           d->grants().empty() ? "(none)" : absl::StrJoin(d->grants(), ", "), "\n"));
    }
    return kExitOk;
  }

 private:
  std::string name_;
  std::vector<std::string> grant_, revoke_;
  std::string owner_;
  bool no_owner_ = false;
  std::string request_id_;
};

}  // namespace

std::unique_ptr<Command> makeAccessCommand() { return std::make_unique<AccessCommand>(); }

}  // namespace xenctl::client
