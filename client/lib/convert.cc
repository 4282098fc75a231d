#include "client/lib/convert.h"

#include "proto/convert/convert.h"

namespace xenctl::client {

Domain fromProto(const v1::Domain& d) {
  Domain out;
  // A spec this build cannot read (a newer daemon's enum values) still shows its name and uuid.
  if (Result<core::DomainSpec> spec = protoconv::fromProto(d.spec()); spec.ok()) {
    out.spec = *std::move(spec);
  } else {
    out.spec.name = d.spec().name();
    out.spec.uuid = d.spec().uuid();
  }
  // Foreign domains carry no maxima; show the current values.
  if (out.spec.maxmem_mib == 0) out.spec.maxmem_mib = out.spec.memory_mib;
  if (out.spec.maxvcpus == 0) out.spec.maxvcpus = out.spec.vcpus;
  out.state = protoconv::fromProto(d.state());
  out.state_reason = d.state_reason();
  out.domid = d.domid();
  out.vcpus_online = d.vcpus_online();
  out.memory_current_mib = d.memory_mib();
  out.cpu_time_seconds = d.cpu_time_seconds();
  out.foreign = d.foreign();
  if (d.has_created_at()) out.created_at = protoconv::fromProto(d.created_at());
  out.owner_uid = d.owner_uid();
  return out;
}

Operation fromProto(const v1::Operation& op) {
  Operation out;
  out.id = op.id();
  out.kind = op.kind();
  out.target = op.target();
  out.request_id = op.request_id();
  out.state = protoconv::fromProto(op.state()).value_or(OperationState::kPending);
  out.phase = op.phase();
  out.percent = op.percent();
  out.bytes_done = op.bytes_done();
  out.bytes_total = op.bytes_total();
  out.message = op.message();
  if (op.has_created_at()) out.created_at = protoconv::fromProto(op.created_at());
  if (op.has_updated_at()) out.updated_at = protoconv::fromProto(op.updated_at());
  if (op.has_finished_at()) out.finished_at = protoconv::fromProto(op.finished_at());
  out.status_code = op.status_code();
  out.status_message = op.status_message();
  out.caller_uid = op.caller_uid();
  return out;
}

HostInfo fromProto(const v1::HostInfo& h) {
  HostInfo out;
  out.hypervisor = h.hypervisor();
  out.hypervisor_version = h.hypervisor_version();
  out.hostname = h.hostname();
  out.cpus = h.cpus();
  out.memory_total_mib = h.memory_total_mib();
  out.memory_free_mib = h.memory_free_mib();
  out.domains_defined = h.domains_defined();
  out.domains_running = h.domains_running();
  for (const v1::PoolCapacity& p : h.pools()) out.pools.push_back(fromProto(p));
  out.daemon_version = h.daemon_version();
  out.operations_active = h.operations_active();
  out.operations_limit = h.operations_limit();
  return out;
}

PoolCapacity fromProto(const v1::PoolCapacity& p) {
  return {.name = p.name(),
          .driver = p.driver(),
          .size_bytes = p.size_bytes(),
          .used_bytes = p.used_bytes(),
          .metadata_percent = p.metadata_percent()};
}

Volume fromProto(const v1::Volume& v) {
  Volume out;
  out.pool = v.pool();
  out.name = v.name();
  out.size_bytes = v.size_bytes();
  out.used_bytes = v.used_bytes();
  out.origin = v.origin();
  out.read_only = v.read_only();
  out.snapshots.assign(v.snapshots().begin(), v.snapshots().end());
  out.used_by = v.used_by();
  out.path = v.path();
  if (v.has_created_at()) out.created_at = protoconv::fromProto(v.created_at());
  return out;
}

Image fromProto(const v1::Image& i) {
  Image out;
  out.name = i.name();
  out.uri = i.uri();
  out.sha256 = i.sha256();
  out.signed_by = i.signed_by();
  out.format = i.format() == v1::ARCHIVE_FORMAT_RAW_EXT4 ? "raw-ext4" : "archive";
  out.base_volume = i.base_volume();
  out.size_bytes = i.size_bytes();
  out.clones = i.clones();
  if (i.has_imported_at()) out.imported_at = protoconv::fromProto(i.imported_at());
  return out;
}

v1::CreateDomainRequest toProto(const CreateDomainArgs& args) {
  v1::CreateDomainRequest req;
  req.set_request_id(args.request_id);
  req.set_define_only(args.define_only);
  req.set_paused(args.paused);
  if (args.xl_config) {
    req.mutable_xl_config()->set_file_name(args.xl_config->file_name);
    req.mutable_xl_config()->set_text(args.xl_config->text);
  } else {
    protoconv::toProto(args.spec, req.mutable_spec());
  }
  return req;
}

}  // namespace xenctl::client
