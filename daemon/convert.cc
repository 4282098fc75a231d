#include "daemon/convert.h"

#include "absl/strings/str_cat.h"
#include "proto/convert/convert.h"

namespace xenctl::daemon {

grpc::Status toGrpc(const Status& st) {
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

void toProto(const provision::DomainView& v, v1::Domain* p) {
  protoconv::toProto(v.spec, p->mutable_spec());
  p->set_state(protoconv::toProto(v.state));
  p->set_domid(v.live.domid);
  p->set_vcpus_online(v.live.vcpus_online);
  p->set_memory_mib(v.live.memory_mib);
  p->set_cpu_time_seconds(v.live.cpu_time_seconds);
  p->set_foreign(v.foreign);
  if (!v.foreign) protoconv::toProto(v.created_at, p->mutable_created_at());
  p->set_state_reason(v.state_reason);
  p->set_owner_uid(v.owner_uid);
  p->set_owner(v.owner);
  for (const auto& g : v.grants) p->add_grants(g);
}

void toProto(const core::OperationRecord& r, v1::Operation* p) {
  p->set_id(r.id);
  p->set_kind(r.kind);
  p->set_target(r.target);
  p->set_request_id(r.request_id);
  p->set_state(protoconv::toProto(r.state));
  p->set_phase(r.phase);
  p->set_percent(r.percent);
  p->set_bytes_done(r.bytes_done);
  p->set_bytes_total(r.bytes_total);
  p->set_message(r.message);
  protoconv::toProto(r.created_at, p->mutable_created_at());
  protoconv::toProto(r.updated_at, p->mutable_updated_at());
  if (core::isFinished(r.state)) {
    protoconv::toProto(r.finished_at, p->mutable_finished_at());
    p->set_status_code(static_cast<int32_t>(r.status.code()));
    p->set_status_message(std::string(r.status.message()));
  }
  p->set_caller_uid(r.caller_uid);
  p->set_queue_position(r.queue_position);
}

void toProto(const core::DomainEvent& e, v1::DomainEvent* p) {
  using K = core::DomainEventKind;
  v1::DomainEvent::Kind k = v1::DomainEvent::KIND_UNSPECIFIED;
  switch (e.kind) {
    case K::kDefined: k = v1::DomainEvent::KIND_DEFINED; break;
    case K::kStarted: k = v1::DomainEvent::KIND_STARTED; break;
    case K::kPaused: k = v1::DomainEvent::KIND_PAUSED; break;
    case K::kUnpaused: k = v1::DomainEvent::KIND_UNPAUSED; break;
    case K::kShutdown: k = v1::DomainEvent::KIND_SHUTDOWN; break;
    case K::kRebooted: k = v1::DomainEvent::KIND_REBOOTED; break;
    case K::kCrashed: k = v1::DomainEvent::KIND_CRASHED; break;
    case K::kDestroyed: k = v1::DomainEvent::KIND_DESTROYED; break;
    case K::kDeleted: k = v1::DomainEvent::KIND_DELETED; break;
    case K::kResourcesChanged: k = v1::DomainEvent::KIND_RESOURCES_CHANGED; break;
    case K::kVanished: k = v1::DomainEvent::KIND_VANISHED; break;
    case K::kEventsLost: k = v1::DomainEvent::KIND_EVENTS_LOST; break;
  }
  p->set_kind(k);
  p->set_name(e.name);
  p->set_uuid(e.uuid);
  p->set_domid(e.domid);
  p->set_state(protoconv::toProto(e.state));
  protoconv::toProto(e.time, p->mutable_time());
  p->set_message(e.message);
}

void toProto(const core::Volume& v, v1::Volume* p) {
  p->set_pool(v.pool);
  p->set_name(v.name);
  p->set_size_bytes(v.size_bytes);
  p->set_used_bytes(v.used_bytes);
  p->set_origin(v.origin);
  p->set_read_only(v.read_only);
  for (const auto& s : v.snapshots) p->add_snapshots(s);
  p->set_path(v.path);
  protoconv::toProto(v.created_at, p->mutable_created_at());
  p->set_used_by(v.used_by);
  p->set_host_device(v.host_device);
  for (int64_t domid : v.host_device_domids) p->add_host_device_domids(domid);
}

void toProto(const core::PoolInfo& pool, v1::PoolCapacity* p) {
  p->set_name(pool.name);
  p->set_driver(pool.driver);
  p->set_size_bytes(pool.size_bytes);
  p->set_used_bytes(pool.used_bytes);
  p->set_metadata_percent(pool.metadata_percent);
}

namespace {

void toProto(const core::FileStat& st, v1::FileInfo* p) {
  static constexpr const char* kTypes[] = {"file", "directory", "symlink", "other"};
  p->set_type(kTypes[static_cast<int>(st.type)]);
  p->set_mode(st.mode);
  p->set_uid(st.uid);
  p->set_gid(st.gid);
  p->set_size(st.size);
  p->set_link_target(st.link_target);
}

}  // namespace

void toProto(const provision::RootDiff& d, v1::DiffDomainResponse* p) {
  using Kind = customize::TreeChange::Kind;
  p->set_volume(d.root.target());
  p->set_vdev(d.vdev);
  p->set_origin(d.base.target());
  p->mutable_changes()->Reserve(static_cast<int>(d.changes.size()));
  for (const customize::TreeChange& c : d.changes) {
    v1::FileChange* f = p->add_changes();
    f->set_path(c.path);
    f->set_kind(c.kind == Kind::kAdded     ? v1::FileChange::KIND_ADDED
                : c.kind == Kind::kRemoved ? v1::FileChange::KIND_REMOVED
                                           : v1::FileChange::KIND_CHANGED);
    f->set_type_changed(c.type);
    f->set_content_changed(c.content);
    f->set_mode_changed(c.mode);
    f->set_owner_changed(c.owner);
    f->set_link_target_changed(c.link_target);
    if (c.kind != Kind::kAdded) toProto(c.before, f->mutable_before());
    if (c.kind != Kind::kRemoved) toProto(c.after, f->mutable_after());
  }
  p->set_patch(d.patch);
}

namespace {

// Adds a typed customization (hostname, file, ssh keys, user, user-data)
// to `c`; false for a kind the caller handles (network, container_text, one
// this build does not know).
Result<bool> addTypedCustomization(const v1::Customization& p, int i, core::Customizations& c) {
  switch (p.kind_case()) {
    case v1::Customization::kHostname:
      if (c.hostname)
        return absl::InvalidArgumentError(absl::StrCat("customization ", i, ": a second hostname ('", p.hostname(),
                                                       "' after '", *c.hostname, "'); give one"));
      c.hostname = p.hostname();
      return true;
    case v1::Customization::kFile:
      c.files.push_back(
          {p.file().path(), p.file().content(), p.file().mode() ? p.file().mode() : 0644u, p.file().owner()});
      return true;
    case v1::Customization::kSshAuthorizedKeys:
      c.ssh_keys.push_back({p.ssh_authorized_keys().user().empty() ? "root" : p.ssh_authorized_keys().user(),
                            {p.ssh_authorized_keys().keys().begin(), p.ssh_authorized_keys().keys().end()}});
      return true;
    case v1::Customization::kUser:
      c.users.push_back(
          {p.user().name(), p.user().password_hash(), {p.user().groups().begin(), p.user().groups().end()}});
      return true;
    case v1::Customization::kCloudInitUserData: c.cloud_init_user_data = p.cloud_init_user_data(); return true;
    default: return false;
  }
}

Status unknownCustomization(int i) {
  return absl::InvalidArgumentError(
      absl::StrCat("customization ", i, " has no kind this xenctld knows (sent by a newer client?)"));
}

}  // namespace

Result<provision::ProvisionRequest> provisionRequest(const v1::CreateDomainRequest& req, core::DomainSpec spec) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  provision::ProvisionRequest out;
  out.spec = std::move(spec);
  out.define_only = req.define_only();
  out.paused = req.paused();
  out.image = req.root().image();
  out.pool = req.root().pool();
  out.root_size_bytes = req.root().size_mib() * kMiB;
  out.root_vdev = req.root().vdev();
  core::Customizations& c = out.customizations;
  c.reset_identity = !req.keep_identity();
  for (int i = 0; i < req.customizations_size(); ++i) {
    const v1::Customization& p = req.customizations(i);
    XENCTL_ASSIGN_OR_RETURN(bool typed, addTypedCustomization(p, i, c));
    if (typed) continue;
    switch (p.kind_case()) {
      case v1::Customization::kNetwork:
        out.networks.push_back({p.network().vif(), p.network().gateway(),
                                {p.network().dns().begin(), p.network().dns().end()}});
        break;
      case v1::Customization::kContainerText:
        if (out.container)
          return absl::InvalidArgumentError(absl::StrCat(
              "customization ", i, ": a second container_text; give one (its statements run in order)"));
        out.container = provision::ProvisionRequest::ContainerText{p.container_text(), req.container_file_name()};
        break;
      default: return unknownCustomization(i);
    }
  }
  return out;
}

Result<provision::VolumeCustomizer::Request> customizeVolumeRequest(const v1::CustomizeVolumeRequest& req) {
  provision::VolumeCustomizer::Request out;
  out.pool = req.pool();
  out.name = req.name();
  core::Customizations& c = out.customizations;
  c.reset_identity = !req.keep_identity();
  c.instance_id = req.instance_id();
  for (int i = 0; i < req.customizations_size(); ++i) {
    const v1::Customization& p = req.customizations(i);
    XENCTL_ASSIGN_OR_RETURN(bool typed, addTypedCustomization(p, i, c));
    if (typed) continue;
    if (p.kind_case() == v1::Customization::kNetwork || p.kind_case() == v1::Customization::kContainerText)
      return absl::InvalidArgumentError(absl::StrCat(
          "customization ", i, ": ", p.kind_case() == v1::Customization::kNetwork ? "network" : "container_text",
          " is not taken by CustomizeVolume; give addresses in `interfaces`, and run a container file with "
          "vm-container"));
    return unknownCustomization(i);
  }
  for (const v1::GuestInterface& g : req.interfaces()) {
    core::NetworkInterface n;
    n.mac = g.mac();
    n.address = g.address();
    n.gateway = g.gateway();
    n.dns.assign(g.dns().begin(), g.dns().end());
    n.vif_index = static_cast<int>(g.vif_index());
    c.networks.push_back(std::move(n));
  }
  return out;
}

}  // namespace xenctl::daemon
