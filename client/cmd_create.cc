// vm-create NAME --memory SIZE --vcpus N [...], or vm-create FILE /
// --xl-config FILE (an xl config, parsed by the daemon, or a container file
// whose expressions run first): CreateDomain, then the domain.
#include <vector>

#include "client/commands.h"
#include "client/lib/specs.h"

namespace xenctl::client {
namespace {

class CreateCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("NAME", f_.name,
                   "Domain name (1-63 of a-z 0-9 - _ . , starting with a letter or digit), or an xl config file")
        ->type_name("");
    app.add_option("--xl-config", xl_config_,
                   "Create from this xl config file (xl.cfg(5)); the file gives the name and the spec")
        ->type_name("FILE");
    spec(app.add_option("--memory", f_.memory, "Memory target: MiB, or 512M, 2G (required without an xl config)")
             ->type_name("SIZE"));
    spec(app.add_option("--vcpus", f_.vcpus, "Online vcpus (required without an xl config)")->type_name("N"));
    spec(app.add_option("--maxmem", f_.maxmem, "Memory maximum (default: --memory)")->type_name("SIZE"));
    spec(app.add_option("--maxvcpus", f_.maxvcpus, "Maximum vcpus (default: --vcpus)")->type_name("N"));
    spec(app.add_option("--type", f_.type, "pv, pvh or hvm (default: pvh)")->type_name("TYPE"));
    spec(app.add_option("--kernel", f_.kernel, "Kernel for direct boot (a path in Dom0)")->type_name("PATH"));
    spec(app.add_option("--ramdisk", f_.ramdisk, "Initial ramdisk for direct boot")->type_name("PATH"));
    spec(app.add_option("--cmdline", f_.cmdline, "Kernel command line")->type_name("TEXT"));
    spec(app.add_option("--disk", f_.disks, "TARGET[,VDEV[,MODE]], e.g. /dev/vg0/web1,xvda,w or vol:pool/web1")
             ->type_name("SPEC")
             ->allow_extra_args(false));
    spec(app.add_option("--vif", f_.vifs, "bridge=BR[,mac=MAC][,ip=IP]")->type_name("SPEC")->allow_extra_args(false));
    spec(app.add_option("--on-poweroff", f_.on_poweroff, "destroy, restart, preserve, rename-restart, ...")
             ->type_name("ACTION"));
    spec(app.add_option("--on-reboot", f_.on_reboot, "Action when the guest reboots (default: restart)")
             ->type_name("ACTION"));
    spec(app.add_option("--on-crash", f_.on_crash, "Action when the guest crashes (default: destroy)")
             ->type_name("ACTION"));
    app.add_flag("--define-only", f_.define_only, "Define the domain; do not start it");
    app.add_flag("--paused", f_.paused, "Start it paused");
    addMutationOptions(app, m_);
  }

  int run(Session& s) override {
    std::vector<std::string> given;
    for (const CLI::Option* o : spec_options_)
      if (o->count() > 0) given.push_back(o->get_name());
    Result<v1::CreateDomainRequest> args = createArgs(f_, xl_config_, given, Session::requestId(m_));
    if (!args.ok()) return s.fail(args.status());
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    if (args->has_xl_config())  // a container file: its expressions run first
      if (int rc = applyContainerFile(s, **c, *args->mutable_xl_config(), args->request_id()); rc != kExitOk)
        return rc;
    // With an xl config only the daemon knows the name: it is the operation's target.
    return s.finishMutation((*c)->call(&v1::DomainService::Stub::CreateDomain, *args), m_,
                            [&](const v1::Operation& done) { return s.showDomain(done.target()); });
  }

 private:
  // The options that make up the spec, which an xl config replaces.
  void spec(CLI::Option* o) { spec_options_.push_back(o); }

  CreateFlags f_;
  std::string xl_config_;
  std::vector<const CLI::Option*> spec_options_;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makeCreateCommand() { return std::make_unique<CreateCommand>(); }

}  // namespace xenctl::client
