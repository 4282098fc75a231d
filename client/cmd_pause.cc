// vm-pause NAME: PauseDomain, then the domain.
#include "client/commands.h"

namespace xenctl::client {
namespace {

class PauseCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "Domain name")->type_name("")->required();
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    return s.finishMutation((*c)->pauseDomain(Session::requestId(m_), name_), m_, name_, Session::Then::kShowDomain);
  }

 private:
  std::string name_;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makePauseCommand() { return std::make_unique<PauseCommand>(); }

}  // namespace xenctl::client
