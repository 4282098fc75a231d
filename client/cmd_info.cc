// vm-info NAME: GetDomain, as "key: value" lines or a JSON object.
#include "client/commands.h"
#include "client/lib/output.h"

namespace xenctl::client {
namespace {

class InfoCommand : public Command {
 public:
  void setup(CLI::App& app) override { app.add_option("NAME", name_, "Domain name")->type_name("")->required(); }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    Result<v1::Domain> d = (*c)->getDomain(name_);
    if (!d.ok()) return s.fail(d.status());
    if (s.json())
      s.printJson(toJson(*d));
    else
      s.print(domainDetails(*d));
    return kExitOk;
  }

 private:
  std::string name_;
};

}  // namespace

std::unique_ptr<Command> makeInfoCommand() { return std::make_unique<InfoCommand>(); }

}  // namespace xenctl::client
