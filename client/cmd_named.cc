// vm-pause, vm-unpause, vm-reboot, vm-destroy NAME: one call on a named
// domain, then the domain. They differ only in the call.
#include "client/commands.h"

namespace xenctl::client {
namespace {

// Req: one of the requests that carry only request_id and name.
template <class Req>
class NamedDomainCommand : public Command {
 public:
  using Call = Client::Unary<v1::DomainService::Stub, Req, v1::Operation>;
  explicit NamedDomainCommand(Call call) : call_(call) {}

  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "Domain name")->type_name("")->required();
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    return s.finishMutation((*c)->call(call_, Session::domainRequest<Req>(m_, name_)), m_, name_,
                            Session::Then::kShowDomain);
  }

 private:
  Call call_;
  std::string name_;
  MutationOptions m_;
};

template <class Req>
std::unique_ptr<Command> make(typename NamedDomainCommand<Req>::Call call) {
  return std::make_unique<NamedDomainCommand<Req>>(call);
}

}  // namespace

using Stub = v1::DomainService::Stub;
std::unique_ptr<Command> makePauseCommand() { return make<v1::PauseDomainRequest>(&Stub::PauseDomain); }
std::unique_ptr<Command> makeUnpauseCommand() { return make<v1::UnpauseDomainRequest>(&Stub::UnpauseDomain); }
std::unique_ptr<Command> makeRebootCommand() { return make<v1::RebootDomainRequest>(&Stub::RebootDomain); }
std::unique_ptr<Command> makeDestroyCommand() { return make<v1::DestroyDomainRequest>(&Stub::DestroyDomain); }

}  // namespace xenctl::client
