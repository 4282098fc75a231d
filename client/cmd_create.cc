// vm-create NAME --memory SIZE --vcpus N [...], or vm-create FILE /
// --xl-config FILE (an xl config, parsed by the daemon, or a container file
// whose expressions run first), optionally with a root from a catalog image
// and its customizations (--image, --hostname, --ssh-key, --container ...):
// CreateDomain, then the domain.
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
    spec(app.add_option("--on-watchdog", f_.on_watchdog, "Action when the guest's watchdog fires (default: destroy)")
             ->type_name("ACTION"));
    spec(app.add_option("--ip", f_.ip,
                        "Static address of the first vif, with its prefix (10.0.0.5/24); adds a vif on Xen's "
                        "default bridge when none is given")
             ->type_name("ADDR/LEN"));
    // One-call provisioning: a root cloned from a catalog image, changed before its first boot.
    app.add_option("--image", f_.image,
                   "Clone the root (NAME-root, the first disk) from this catalog image (`vm-image list`); "
                   "--memory and --vcpus then default to 512M and 1")
        ->type_name("IMAGE");
    app.add_option("--pool", f_.pool, "Pool of the image, where the root is cloned (default: the image's)")
        ->type_name("POOL");
    app.add_option("--root-size", f_.root_size, "Grow the root and its file system to SIZE")->type_name("SIZE");
    app.add_option("--root-vdev", f_.root_vdev, "Guest device of the root (default: xvda)")->type_name("VDEV");
    app.add_option("--hostname", f_.hostname, "Set /etc/hostname and the 127.0.1.1 line of /etc/hosts")
        ->type_name("NAME");
    app.add_option("--ssh-key", f_.ssh_key_files, "Add the public keys in FILE to the user's authorized_keys")
        ->type_name("FILE")
        ->allow_extra_args(false);
    app.add_option("--ssh-user", f_.ssh_user, "Whose authorized_keys --ssh-key fills (default: root)")
        ->type_name("USER");
    app.add_option("--file", f_.files, "Write a file into the guest: /PATH=TEXT or /PATH=@LOCAL_FILE (mode 0644)")
        ->type_name("SPEC")
        ->allow_extra_args(false);
    app.add_option("--user", f_.users, "Create or update an account: NAME[:HASH][:GROUP,...] (HASH from mkpasswd)")
        ->type_name("SPEC")
        ->allow_extra_args(false);
    app.add_option("--gateway", f_.gateway, "Default gateway for the --ip address")->type_name("ADDR");
    app.add_option("--dns", f_.dns, "DNS server(s) for the --ip address (repeat, or comma-separate)")
        ->type_name("ADDR")
        ->allow_extra_args(false);
    app.add_option("--user-data", f_.user_data_file, "Write a cloud-init NoCloud seed with this user-data")
        ->type_name("FILE");
    app.add_option("--container", f_.container_file,
                   "Run this container file's expressions on the new root (named 'root' in them), in order, "
                   "after the other customizations")
        ->type_name("FILE");
    app.add_flag("--keep-identity", f_.keep_identity,
                 "Keep the image's machine-id, SSH host keys and random seed (default: new ones for this domain)");
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
    // A container file: with a root, its expressions run on it inside the
    // create's operation; without one, they run first, on their own.
    if (args->has_xl_config()) {
      int rc = args->has_root() ? moveContainerIntoCreate(s, **c, *args)
                                : applyContainerFile(s, **c, *args->mutable_xl_config(), args->request_id());
      if (rc != kExitOk) return rc;
    }
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
