// vmm host: GetHostInfo.
#include "client/commands.h"
#include "client/lib/output.h"

namespace xenctl::client {
namespace {

class HostCommand : public Command {
 public:
  void setup(CLI::App&) override {}

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    Result<v1::HostInfo> h = (*c)->call(&v1::HostService::Stub::GetHostInfo, {});
    if (!h.ok()) return s.fail(h.status());
    if (s.json())
      s.printJson(toJson(*h));
    else
      s.print(hostDetails(*h));
    return kExitOk;
  }
};

}  // namespace

std::unique_ptr<Command> makeHostCommand() { return std::make_unique<HostCommand>(); }

}  // namespace xenctl::client
