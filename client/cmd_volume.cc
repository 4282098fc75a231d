// vm-volume / vmm volume: create, clone, snapshot, rollback, resize, delete,
// customize, attach, detach, list, pools. Each mutation waits for its
// operation, then shows the volume.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "client/lib/output.h"
#include "client/lib/specs.h"

namespace xenctl::client {
namespace {

class VolumeCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.require_subcommand(1);
    auto sub = [&](const char* name, const char* summary) { return addSubcommand(app, name, summary); };
    auto pool = [&](CLI::App* s) {
      s->add_option("--pool", pool_, "Storage pool (default: the daemon's first pool)")->type_name("POOL");
    };

    create_ = sub("create", "Create an empty (sparse) volume");
    create_->add_option("NAME", name_, "Volume name")->type_name("")->required();
    create_->add_option("SIZE", size_, "Size: 512M, 10G, 1T (a bare number is MiB)")->type_name("")->required();
    create_->add_flag("--ext4", ext4_, "Format it ext4");
    create_->add_option("--label", label_, "ext4 label (with --ext4)")->type_name("LABEL");
    pool(create_);
    addMutationOptions(*create_, m_);

    clone_ = sub("clone", "Clone a volume or snapshot (copy-on-write)");
    clone_->add_option("SOURCE", source_, "Base volume, or VOLUME@SNAPSHOT")->type_name("")->required();
    clone_->add_option("NAME", name_, "New volume name")->type_name("")->required();
    clone_->add_option("--size", size_, "Grow the clone to SIZE (default: the source's size)")->type_name("SIZE");
    pool(clone_);
    addMutationOptions(*clone_, m_);

    snapshot_ = sub("snapshot", "Take a read-only snapshot of a volume");
    snapshot_->add_option("VOLUME", name_, "Volume")->type_name("")->required();
    snapshot_->add_option("SNAPSHOT", snap_, "Snapshot name")->type_name("")->required();
    pool(snapshot_);
    addMutationOptions(*snapshot_, m_);

    rollback_ = sub("rollback", "Revert a volume to one of its snapshots (atomic)");
    rollback_->add_option("VOLUME", name_, "Volume")->type_name("")->required();
    rollback_->add_option("SNAPSHOT", snap_, "Snapshot name")->type_name("")->required();
    pool(rollback_);
    addMutationOptions(*rollback_, m_);

    resize_ = sub("resize", "Grow a volume");
    resize_->add_option("NAME", name_, "Volume")->type_name("")->required();
    resize_->add_option("SIZE", size_, "New size: 512M, 10G, 1T (a bare number is MiB)")->type_name("")->required();
    pool(resize_);
    addMutationOptions(*resize_, m_);

    delete_ = sub("delete", "Delete a volume or a snapshot (VOLUME@SNAPSHOT)");
    delete_->add_option("NAME", name_, "Volume or VOLUME@SNAPSHOT")->type_name("")->required();
    pool(delete_);
    addMutationOptions(*delete_, m_);

    customize_ = sub("customize", "Change a volume's ext4 offline: hostname, keys, files, addresses, a new identity");
    customize_->add_option("VOLUME", name_, "Volume (not one a running domain uses)")->type_name("")->required();
    customize_->add_option("--hostname", cf_.hostname, "Set /etc/hostname and the 127.0.1.1 line of /etc/hosts")
        ->type_name("NAME");
    customize_->add_option("--ssh-key", cf_.ssh_key_files, "Add the public keys in FILE to the user's authorized_keys")
        ->type_name("FILE")
        ->allow_extra_args(false);
    customize_->add_option("--ssh-user", cf_.ssh_user, "Whose authorized_keys --ssh-key fills (default: root)")
        ->type_name("USER");
    customize_->add_option("--file", cf_.files, "Write a file: /PATH=TEXT or /PATH=@LOCAL_FILE (mode 0644)")
        ->type_name("SPEC")
        ->allow_extra_args(false);
    customize_->add_option("--user", cf_.users, "Create or update an account: NAME[:HASH][:GROUP,...]")
        ->type_name("SPEC")
        ->allow_extra_args(false);
    customize_->add_option("--user-data", cf_.user_data_file, "Write a cloud-init NoCloud seed with this user-data")
        ->type_name("FILE");
    customize_->add_option("--ip", ips_, "Static address of interface N (the Nth --ip), with its prefix: 10.0.0.5/24")
        ->type_name("ADDR/LEN")
        ->allow_extra_args(false);
    customize_->add_option("--mac", macs_, "MAC of interface N (the Nth --mac), which the guest matches")
        ->type_name("MAC")
        ->allow_extra_args(false);
    customize_->add_option("--gateway", cf_.gateway, "Default gateway of the first interface")->type_name("ADDR");
    customize_->add_option("--dns", cf_.dns, "DNS server(s) of the first interface (repeat, or comma-separate)")
        ->type_name("ADDR")
        ->allow_extra_args(false);
    customize_->add_option("--instance-id", instance_id_, "cloud-init instance-id (default: a new uuid)")
        ->type_name("ID");
    customize_->add_flag("--keep-identity", cf_.keep_identity,
                         "Keep the volume's machine-id, SSH host keys and random seed (default: new ones)");
    pool(customize_);
    addMutationOptions(*customize_, m_);

    attach_ = sub("attach", "Make a volume a block device in Dom0 and print it (idempotent)");
    attach_->add_option("VOLUME", name_, "Volume or VOLUME@SNAPSHOT")->type_name("")->required();
    pool(attach_);

    detach_ = sub("detach", "Release the Dom0 block device of a volume (idempotent)");
    detach_->add_option("VOLUME", name_, "Volume or VOLUME@SNAPSHOT")->type_name("")->required();
    pool(detach_);

    list_ = sub("list", "List volumes and snapshots");
    pool(list_);

    pools_ = sub("pools", "List storage pools and their space");
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    Client& cl = **c;
    using Stub = v1::VolumeService::Stub;
    if (list_->parsed()) {
      v1::ListVolumesRequest req;
      req.set_pool(pool_);
      auto all = cl.callPages(&Stub::ListVolumes, req, &v1::ListVolumesResponse::mutable_volumes);
      if (!all.ok()) return s.fail(all.status());
      s.json() ? s.printJson(toJson(*all)) : s.print(volumeTable(*all));
      return kExitOk;
    }
    if (attach_->parsed()) {
      v1::AttachVolumeRequest req;
      req.set_pool(pool_);
      req.set_name(name_);
      auto resp = cl.call(&Stub::AttachVolume, req);
      if (!resp.ok()) return s.fail(resp.status());
      s.json() ? s.printJson(toJson(*resp)) : s.print(resp->host_device() + "\n");
      return kExitOk;
    }
    if (detach_->parsed()) {
      v1::DetachVolumeRequest req;
      req.set_pool(pool_);
      req.set_name(name_);
      auto resp = cl.call(&Stub::DetachVolume, req);
      if (!resp.ok()) return s.fail(resp.status());
      if (s.json()) s.printJson(nlohmann::ordered_json::object());
      return kExitOk;
    }
    if (pools_->parsed()) {
      auto resp = cl.call(&Stub::ListPools, {});
      if (!resp.ok()) return s.fail(resp.status());
      s.json() ? s.printJson(toJson(resp->pools())) : s.print(poolTable(resp->pools()));
      return kExitOk;
    }
    uint64_t bytes = 0;
    if (!size_.empty()) {
      Result<uint64_t> mib = parseSizeFlag("SIZE", size_);
      if (!mib.ok()) return s.fail(mib.status());
      bytes = *mib << 20;
    }
    // Every request here starts with request_id and pool.
    auto request = [&]<class Req>(Req req) {
      req.set_request_id(Session::requestId(m_));
      req.set_pool(pool_);
      return req;
    };
    if (create_->parsed()) {
      if (!ext4_ && !label_.empty()) return s.usage("--label needs --ext4");
      auto req = request(v1::CreateVolumeRequest());
      req.set_name(name_);
      req.set_size_bytes(bytes);
      req.set_make_ext4(ext4_);
      req.set_ext4_label(label_);
      return s.finishMutation(cl.call(&Stub::CreateVolume, req), m_, show(s, name_));
    }
    if (clone_->parsed()) {
      auto req = request(v1::CloneVolumeRequest());
      req.set_source(source_);
      req.set_name(name_);
      req.set_size_bytes(bytes);
      return s.finishMutation(cl.call(&Stub::CloneVolume, req), m_, show(s, name_));
    }
    if (snapshot_->parsed()) {
      auto req = request(v1::SnapshotVolumeRequest());
      req.set_volume(name_);
      req.set_snapshot(snap_);
      return s.finishMutation(cl.call(&Stub::SnapshotVolume, req), m_, show(s, name_ + "@" + snap_));
    }
    if (rollback_->parsed()) {
      auto req = request(v1::RollbackVolumeRequest());
      req.set_volume(name_);
      req.set_snapshot(snap_);
      return s.finishMutation(cl.call(&Stub::RollbackVolume, req), m_, show(s, name_));
    }
    if (resize_->parsed()) {
      auto req = request(v1::ResizeVolumeRequest());
      req.set_name(name_);
      req.set_size_bytes(bytes);
      return s.finishMutation(cl.call(&Stub::ResizeVolume, req), m_, show(s, name_));
    }
    if (customize_->parsed()) {
      auto req = request(v1::CustomizeVolumeRequest());
      req.set_name(name_);
      req.set_keep_identity(cf_.keep_identity);
      req.set_instance_id(instance_id_);
      if (Status st = addCustomizationFlags(cf_, *req.mutable_customizations()); !st.ok()) return s.fail(st);
      if (ips_.size() != macs_.size())
        return s.usage(absl::StrCat("give one --mac per --ip (", ips_.size(), " --ip, ", macs_.size(),
                                    " --mac): the guest matches each address's interface by its MAC"));
      if (ips_.empty() && (!cf_.gateway.empty() || !cf_.dns.empty()))
        return s.usage("--gateway and --dns complete the first --ip address; give --ip and --mac too");
      for (size_t i = 0; i < ips_.size(); ++i) {
        v1::GuestInterface* g = req.add_interfaces();
        g->set_address(ips_[i]);
        g->set_mac(macs_[i]);
        g->set_vif_index(static_cast<uint32_t>(i));
        if (i > 0) continue;
        g->set_gateway(cf_.gateway);
        for (const std::string& d : cf_.dns)
          for (absl::string_view server : absl::StrSplit(d, ',', absl::SkipEmpty())) g->add_dns(std::string(server));
      }
      return s.finishMutation(cl.call(&Stub::CustomizeVolume, req), m_, show(s, name_));
    }
    if (delete_->parsed()) {
      auto req = request(v1::DeleteVolumeRequest());
      req.set_name(name_);
      return s.finishMutation(cl.call(&Stub::DeleteVolume, req), m_, [&s](const v1::Operation& done) -> int {
        if (s.json())
          s.printJson(toJson(done));
        else
          s.print(absl::StrCat("deleted volume '", done.target(), "'\n"));
        return kExitOk;
      });
    }
    return s.usage("no volume command given; run 'vmm volume --help'");
  }

 private:
  // Prints the volume `name` as the operation left it (its pool is in the
  // operation's target, "POOL/NAME").
  std::function<int(const v1::Operation&)> show(Session& s, std::string name) {
    return [&s, name](const v1::Operation& done) -> int {
      v1::ListVolumesRequest req;
      req.set_pool(done.target().substr(0, done.target().find('/')));
      Result<Client*> c = s.client();
      if (!c.ok()) return s.fail(c.status());
      auto all = (*c)->callPages(&v1::VolumeService::Stub::ListVolumes, req,
                                 &v1::ListVolumesResponse::mutable_volumes);
      if (!all.ok()) return s.fail(all.status());
      for (const v1::Volume& v : *all) {
        if (v.name() != name) continue;
        s.json() ? s.printJson(toJson(v)) : s.print(volumeTable(one(v)));
        return kExitOk;
      }
      return s.fail(
          absl::NotFoundError(absl::StrCat("volume '", req.pool(), "/", name, "' is gone (deleted meanwhile?)")));
    };
  }

  CLI::App *create_ = nullptr, *clone_ = nullptr, *snapshot_ = nullptr, *rollback_ = nullptr, *resize_ = nullptr,
           *delete_ = nullptr, *customize_ = nullptr, *attach_ = nullptr, *detach_ = nullptr, *list_ = nullptr,
           *pools_ = nullptr;
  std::string pool_, name_, source_, snap_, size_, label_, instance_id_;
  CreateFlags cf_;  // customize's flags, as vm-create --image takes them
  std::vector<std::string> ips_, macs_;
  bool ext4_ = false;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makeVolumeCommand() { return std::make_unique<VolumeCommand>(); }

}  // namespace xenctl::client
