// vm-start NAME [--paused]: StartDomain, then the domain.
#include "client/commands.h"

namespace xenctl::client {
namespace {

class StartCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "Domain name")->type_name("")->required();
    app.add_flag("--paused", paused_, "Start it paused");
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    auto req = Session::domainRequest<v1::StartDomainRequest>(m_, name_);
    req.set_paused(paused_);
    return s.finishMutation((*c)->call(&v1::DomainService::Stub::StartDomain, req), m_, name_,
                            Session::Then::kShowDomain);
  }

 private:
  std::string name_;
  bool paused_ = false;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makeStartCommand() { return std::make_unique<StartCommand>(); }

}  // namespace xenctl::client
