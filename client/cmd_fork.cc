// vm-fork SRC NEW [--hostname NAME] [--define-only] [--paused]: ForkDomain,
// then the new domain.
#include "client/commands.h"

namespace xenctl::client {
namespace {

class ForkCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("SRC", source_, "The stopped domain to fork")->type_name("")->required();
    app.add_option("NEW", name_, "The new domain's name")->type_name("")->required();
    app.add_option("--hostname", hostname_, "The fork's hostname (default: the source's)")->type_name("NAME");
    app.add_flag("--define-only", define_only_, "Define the fork; do not start it");
    app.add_flag("--paused", paused_, "Start it paused");
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    auto req = Session::domainRequest<v1::ForkDomainRequest>(m_, name_);
    req.set_source(source_);
    req.set_hostname(hostname_);
    req.set_define_only(define_only_);
    req.set_paused(paused_);
    return s.finishMutation((*c)->call(&v1::DomainService::Stub::ForkDomain, req), m_, name_,
                            Session::Then::kShowDomain);
  }

 private:
  std::string source_, name_, hostname_;
  bool define_only_ = false;
  bool paused_ = false;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makeForkCommand() { return std::make_unique<ForkCommand>(); }

}  // namespace xenctl::client
