// vm-list [--all]: ListDomains as a table, or a JSON array.
#include "client/commands.h"
#include "client/lib/output.h"

namespace xenctl::client {
namespace {

class ListCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_flag("--all,-a", include_foreign_, "Also list domains created outside xenctld (by xl)");
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    v1::ListDomainsRequest req;
    req.set_include_foreign(include_foreign_);
    auto all = (*c)->callPages(&v1::DomainService::Stub::ListDomains, req,
                               &v1::ListDomainsResponse::mutable_domains);
    if (!all.ok()) return s.fail(all.status());
    if (s.json())
      s.printJson(toJson(*all));
    else
      s.print(domainTable(*all));
    return kExitOk;
  }

 private:
  bool include_foreign_ = false;
};

}  // namespace

std::unique_ptr<Command> makeListCommand() { return std::make_unique<ListCommand>(); }

}  // namespace xenctl::client
