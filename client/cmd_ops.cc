// vmm ops [--all] [--target NAME] [--limit N]: ListOperations.
#include "client/commands.h"
#include "client/lib/output.h"

namespace xenctl::client {
namespace {

class OpsCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_flag("--all,-a", all_, "Include finished operations (the daemon keeps a bounded history)");
    app.add_option("--target", target_, "Only operations on this domain, volume or image")->type_name("NAME");
    app.add_option("--limit", limit_, "At most N, newest first (default: the daemon's, 100)")->type_name("N");
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    v1::ListOperationsRequest req;
    req.set_target(target_);
    req.set_active_only(!all_);
    req.set_limit(limit_);
    auto all = (*c)->callPages(&v1::OperationService::Stub::ListOperations, req,
                               &v1::ListOperationsResponse::mutable_operations);
    if (!all.ok()) return s.fail(all.status());
    if (s.json())
      s.printJson(toJson(*all));
    else
      s.print(operationTable(*all));
    return kExitOk;
  }

 private:
  bool all_ = false;
  std::string target_;
  uint32_t limit_ = 0;
};

}  // namespace

std::unique_ptr<Command> makeOpsCommand() { return std::make_unique<OpsCommand>(); }

}  // namespace xenctl::client
