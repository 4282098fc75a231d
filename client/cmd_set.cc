// vm-set NAME [--vcpus N] [--memory SIZE]: SetDomainResources, then the domain.
#include "client/commands.h"
#include "client/lib/specs.h"

namespace xenctl::client {
namespace {

class SetCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "Domain name")->type_name("")->required();
    app.add_option("--vcpus", vcpus_, "Online vcpus, 1 to maxvcpus")->type_name("N")->check(CLI::PositiveNumber);
    app.add_option("--memory", memory_, "Memory target up to maxmem: MiB, or 512M, 2G")->type_name("SIZE");
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    if (vcpus_ == 0 && memory_.empty()) return s.usage("give --vcpus, --memory or both");
    uint64_t memory_mib = 0;
    if (!memory_.empty()) {
      Result<uint64_t> mib = parseSizeFlag("--memory", memory_);
      if (!mib.ok()) return s.fail(mib.status());
      memory_mib = *mib;
    }
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    auto req = Session::domainRequest<v1::SetDomainResourcesRequest>(m_, name_);
    req.set_vcpus(vcpus_);
    req.set_memory_mib(memory_mib);
    return s.finishMutation((*c)->call(&v1::DomainService::Stub::SetDomainResources, req), m_, name_,
                            Session::Then::kShowDomain);
  }

 private:
  std::string name_;
  uint32_t vcpus_ = 0;
  std::string memory_;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makeSetCommand() { return std::make_unique<SetCommand>(); }

}  // namespace xenctl::client
