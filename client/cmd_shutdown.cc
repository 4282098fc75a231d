// vm-shutdown NAME [--timeout S] [--force]: ShutdownDomain, then the domain.
#include "client/commands.h"

namespace xenctl::client {
namespace {

class ShutdownCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "Domain name")->type_name("")->required();
    app.add_option("--timeout", timeout_, "Seconds to wait for the guest to go down (default: 60)")->type_name("S");
    app.add_flag("--force", force_, "Destroy the domain when it has not gone down in time");
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    auto req = Session::domainRequest<v1::ShutdownDomainRequest>(m_, name_);
    req.set_timeout_seconds(timeout_);
    req.set_force(force_);
    return s.finishMutation((*c)->call(&v1::DomainService::Stub::ShutdownDomain, req), m_, name_,
                            Session::Then::kShowDomain);
  }

 private:
  std::string name_;
  uint32_t timeout_ = 0;
  bool force_ = false;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makeShutdownCommand() { return std::make_unique<ShutdownCommand>(); }

}  // namespace xenctl::client
