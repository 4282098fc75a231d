// vm-delete NAME [--force] [--delete-volumes]: DeleteDomain, then a note.
#include "client/commands.h"

namespace xenctl::client {
namespace {

class DeleteCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "Domain name")->type_name("")->required();
    app.add_flag("--force", force_, "Destroy the domain first when it is running");
    app.add_flag("--delete-volumes", delete_volumes_, "Also delete the managed volumes its disks name");
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    auto req = Session::domainRequest<v1::DeleteDomainRequest>(m_, name_);
    req.set_force(force_);
    req.set_delete_volumes(delete_volumes_);
    return s.finishMutation((*c)->call(&v1::DomainService::Stub::DeleteDomain, req), m_, name_,
                            Session::Then::kReportDeleted);
  }

 private:
  std::string name_;
  bool force_ = false;
  bool delete_volumes_ = false;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makeDeleteCommand() { return std::make_unique<DeleteCommand>(); }

}  // namespace xenctl::client
