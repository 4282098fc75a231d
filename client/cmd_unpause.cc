// vm-unpause NAME: UnpauseDomain, then the domain.
#include "client/commands.h"

namespace xenctl::client {
namespace {

class UnpauseCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "Domain name")->type_name("")->required();
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    return s.finishMutation((*c)->unpauseDomain(Session::requestId(m_), name_), m_, name_, Session::Then::kShowDomain);
  }

 private:
  std::string name_;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makeUnpauseCommand() { return std::make_unique<UnpauseCommand>(); }

}  // namespace xenctl::client
