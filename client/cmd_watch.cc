// vmm watch OP-ID: WatchOperation, one line (or JSON object) per change;
// the exit code is the operation's result.
#include "client/commands.h"
#include "client/lib/output.h"

namespace xenctl::client {
namespace {

class WatchCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("OP-ID", id_, "Operation id (op-...), as --no-wait and vmm ops print it")->type_name("")->required();
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    Result<v1::Operation> last = (*c)->watchOperation(id_, [&](const v1::Operation& op) {
      if (s.json())
        s.print(toJson(op).dump() + "\n");
      else
        s.print(operationLine(op) + "\n");
    });
    if (!last.ok()) return s.fail(last.status());
    if (Status st = operationStatus(*last); !st.ok()) return s.fail(st);
    return kExitOk;
  }

 private:
  std::string id_;
};

}  // namespace

std::unique_ptr<Command> makeWatchCommand() { return std::make_unique<WatchCommand>(); }

}  // namespace xenctl::client
