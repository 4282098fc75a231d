// vm-pause, vm-unpause, vm-reboot, vm-destroy NAME: one call on a named
// domain, then the domain. They differ only in the call.
#include "client/commands.h"

namespace xenctl::client {
namespace {

class NamedDomainCommand : public Command {
 public:
  using Call = Result<Operation> (Client::*)(const std::string& request_id, const std::string& name);
  explicit NamedDomainCommand(Call call) : call_(call) {}

  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "Domain name")->type_name("")->required();
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    return s.finishMutation(((*c)->*call_)(Session::requestId(m_), name_), m_, name_, Session::Then::kShowDomain);
  }

 private:
  Call call_;
  std::string name_;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makePauseCommand() { return std::make_unique<NamedDomainCommand>(&Client::pauseDomain); }
std::unique_ptr<Command> makeUnpauseCommand() { return std::make_unique<NamedDomainCommand>(&Client::unpauseDomain); }
std::unique_ptr<Command> makeRebootCommand() { return std::make_unique<NamedDomainCommand>(&Client::rebootDomain); }
std::unique_ptr<Command> makeDestroyCommand() { return std::make_unique<NamedDomainCommand>(&Client::destroyDomain); }

}  // namespace xenctl::client
