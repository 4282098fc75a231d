#include "daemon/services.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "daemon/authz.h"
#include "daemon/convert.h"
#include "daemon/list_page.h"
#include "daemon/stream_reactors.h"
#include "lib/customize/container_parser.h"
#include "lib/xen/xl_config.h"
#include "proto/convert/convert.h"

namespace xenctl::daemon {
namespace {

// The caller of this handler's request, admitted by the rule table
// (daemon/authz.h), or the refusal returned.
#define XENCTL_ADMIT(caller, method, request)                               \
  auto caller##_admitted = admit(c_, ctx, method, request);                 \
  if (!caller##_admitted.ok()) return toGrpc(caller##_admitted.status());   \
  [[maybe_unused]] const provision::Caller& caller = *caller##_admitted

// A DiffDomain answer above this is refused: clients take 4 MiB by default.
constexpr size_t kMaxDiffAnswerBytes = (size_t{4} << 20) - 4096;
// A list answer is cut into pages of at most this (next_page_token): clients
// take 4 MiB by default, and a list that outgrew it failed for every client.
constexpr size_t kMaxListAnswerBytes = (size_t{4} << 20) - (64 << 10);

// A stream holds buffers while it lives (no thread: daemon/stream_reactors.h):
// at most [daemon] max_streams_per_caller per caller.
Result<provision::CallerSlots::Slot> streamSlot(const ServiceContext& c, grpc::ServerContextBase* ctx) {
  return c.streams.acquire(callerOf(c, ctx, "").key());
}

// How long a mutating call's answer waits for its operation to end: one
// that ends sooner (a change of the store and the hypervisor takes well
// under a millisecond) is answered finished, and its client needs no
// second call to learn the result (operation.proto).
constexpr absl::Duration kAnswerWait = absl::Milliseconds(50);

// Answers a mutating call with its operation, finished when it ended
// within kAnswerWait, and audits it once.
grpc::Status answer(const ServiceContext& c, const char* call, const std::string& target,
                    const provision::Caller& caller, const Result<core::OperationRecord>& r, v1::Operation* out,
                    absl::Duration wait = kAnswerWait) {
  if (!r.ok()) {
    audit(caller, call, target, absl::StrCat("failed: ", r.status().ToString()));
    return toGrpc(r.status());
  }
  audit(caller, call, target, absl::StrCat("operation ", r->id));
  // One run on this thread (Request::run_inline) comes back finished.
  if (core::isFinished(r->state) || wait <= absl::ZeroDuration()) {
    toProto(*r, out);
    return grpc::Status::OK;
  }
  auto now = c.ops.waitFinished(r->id, absl::Now() + wait);
  toProto(now.ok() ? *now : *r, out);
  return grpc::Status::OK;
}

// "POOL/NAME" for the audit line; "" stands for the default pool.
std::string volumeTarget(const std::string& pool, const std::string& name) {
  return absl::StrCat(pool.empty() ? "(default)" : pool, "/", name);
}

// The spec a CreateDomain asks for: given as one, or read from an xl config
// by lib/xen's reader (libxlutil).
Result<core::DomainSpec> requestedSpec(const v1::CreateDomainRequest& req) {
  switch (req.source_case()) {
    case v1::CreateDomainRequest::kSpec: {
      // A spec's xl_config is what the daemon kept, not an input: an xl
      // config comes as the request's xl_config, where it is read.
      Result<core::DomainSpec> s = protoconv::fromProto(req.spec());
      if (s.ok()) s->xl_config_file.clear(), s->xl_config_text.clear();
      return s;
    }
    case v1::CreateDomainRequest::kXlConfig:
      return xen::readXlConfig(req.xl_config().text(), req.xl_config().file_name());
    case v1::CreateDomainRequest::SOURCE_NOT_SET: break;
  }
  return absl::InvalidArgumentError("CreateDomain needs a spec or an xl_config; the request has neither");
}

}  // namespace

HandlerPool::~HandlerPool() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  ready_.notify_all();
  for (auto& t : threads) t.join();
}

void HandlerPool::run(std::function<void()> task) {
  std::lock_guard lock(mu_);
  tasks_.push_back(std::move(task));
  if (tasks_.size() > idle_ && threads_.size() < kMaxThreads)
    threads_.emplace_back([this] { loop(); });
  else
    ready_.notify_one();
}

void HandlerPool::loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (tasks_.empty()) {
      if (stopping_) return;
      ++idle_;
      ready_.wait(lock);
      --idle_;
      continue;
    }
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
}

grpc::ServerUnaryReactor* DomainServiceImpl::mutation(grpc::CallbackServerContext* ctx, v1::Operation* out,
                                                      bool may_block, std::function<grpc::Status()> body) {
  auto finished = [out] {
    return out->state() == v1::OPERATION_STATE_SUCCEEDED || out->state() == v1::OPERATION_STATE_FAILED ||
           out->state() == v1::OPERATION_STATE_CANCELLED;
  };
  if (!may_block) {
    // On gRPC's thread, which must not block: then the operation's end (or
    // kAnswerWait) answers from the thread that ends it.
    grpc::Status st = body();
    if (st.ok() && !finished()) return new WaitOperationReactor(c_, out->id(), absl::Now() + kAnswerWait, out);
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(st);
    return r;
  }
  // The request and the answer live until Finish has been called and done.
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  pool_.run([this, r, out, finished, body = std::move(body)] {
    grpc::Status st = body();
    if (st.ok() && !finished())
      if (auto now = c_.ops.waitFinished(out->id(), absl::Now() + kAnswerWait); now.ok()) toProto(*now, out);
    r->Finish(st);
  });
  return r;
}

grpc::ServerUnaryReactor* DomainServiceImpl::CreateDomain(grpc::CallbackServerContext* ctx,
                                                          const v1::CreateDomainRequest* req, v1::Operation* out) {
  // Only a volume (or an image's root) makes the checks read a storage
  // backend, LVM's maybe; the rest reads memory and the hypervisor.
  bool may_block = req->has_root() || !req->has_spec();
  for (const auto& d : req->spec().disks()) may_block = may_block || core::isVolumeTarget(d.target());
  return mutation(ctx, out, may_block, [this, ctx, req, out] { return createDomain(ctx, req, out); });
}

grpc::ServerUnaryReactor* DomainServiceImpl::StartDomain(grpc::CallbackServerContext* ctx,
                                                         const v1::StartDomainRequest* req, v1::Operation* out) {
  // Its checks resolve the definition's volumes.
  return mutation(ctx, out, true, [this, ctx, req, out] { return startDomain(ctx, req, out); });
}

grpc::ServerUnaryReactor* DomainServiceImpl::DestroyDomain(grpc::CallbackServerContext* ctx,
                                                           const v1::DestroyDomainRequest* req, v1::Operation* out) {
  return mutation(ctx, out, false, [this, ctx, req, out] { return destroyDomain(ctx, req, out); });
}

grpc::ServerUnaryReactor* DomainServiceImpl::DeleteDomain(grpc::CallbackServerContext* ctx,
                                                          const v1::DeleteDomainRequest* req, v1::Operation* out) {
  return mutation(ctx, out, req->delete_volumes(), [this, ctx, req, out] { return deleteDomain(ctx, req, out); });
}

DomainServiceImpl::DomainServiceImpl(ServiceContext& c)
    : c_(c), lister_(c.domains, c.access, kMaxListAnswerBytes) {}

grpc::ServerUnaryReactor* DomainServiceImpl::ListDomains(grpc::CallbackServerContext* ctx,
                                                         const grpc::ByteBuffer* req, grpc::ByteBuffer* out) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(listDomains(ctx, req, out));
  return r;
}

grpc::Status DomainServiceImpl::createDomain(grpc::ServerContextBase* ctx, const v1::CreateDomainRequest* req,
                                             v1::Operation* out) {
  XENCTL_ADMIT(caller, "DomainService.CreateDomain", *req);
  auto spec = requestedSpec(*req);
  if (!spec.ok())
    return answer(c_, "DomainService.CreateDomain",
                  req->has_xl_config() ? req->xl_config().file_name() : req->spec().name(), caller, spec.status(), out, absl::ZeroDuration());
  const std::string name = spec->name;
  if (Status st = c_.access.authorizeSpec(caller, *spec); !st.ok()) {
    audit(caller, "DomainService.CreateDomain", name, absl::StrCat("denied: ", st.message()));
    return toGrpc(st);
  }
  if (req->has_root()) {
    auto pr = provisionRequest(*req, *std::move(spec));
    if (!pr.ok()) return answer(c_, "DomainService.CreateDomain", name, caller, pr.status(), out, absl::ZeroDuration());
    return answer(c_, "DomainService.CreateDomain", name, caller, c_.provisioner.create(*std::move(pr), caller), out, absl::ZeroDuration());
  }
  if (req->customizations_size() > 0 || req->keep_identity())
    return answer(c_, "DomainService.CreateDomain", name, caller,
                  absl::InvalidArgumentError(absl::StrCat("domain '", name,
                                                          "': customizations and keep_identity apply to a root "
                                                          "cloned from an image; give a root image (--image)")),
                  out);
  provision::DomainManager::CreateRequest cr{*std::move(spec), req->define_only(), req->paused()};
  return answer(c_, "DomainService.CreateDomain", name, caller, c_.domains.create(std::move(cr), caller), out, absl::ZeroDuration());
}

grpc::Status DomainServiceImpl::GetDomain(grpc::ServerContext* ctx, const v1::GetDomainRequest* req, v1::Domain* out) {
  XENCTL_ADMIT(caller, "DomainService.GetDomain", *req);
  auto v = c_.domains.get(req->name());
  if (!v.ok()) return toGrpc(v.status());
  toProto(*v, out);
  return grpc::Status::OK;
}

grpc::Status DomainServiceImpl::listDomains(grpc::ServerContextBase* ctx, const grpc::ByteBuffer* raw,
                                            grpc::ByteBuffer* out) {
  v1::ListDomainsRequest request;
  grpc::ByteBuffer in(*raw);  // shares the slices; Deserialize consumes its buffer
  if (!grpc::SerializationTraits<v1::ListDomainsRequest>::Deserialize(&in, &request).ok())
    return toGrpc(absl::InvalidArgumentError(
        "ListDomains: the request is not a xenctl.v1.ListDomainsRequest (it does not decode); send one"));
  XENCTL_ADMIT(caller, "DomainService.ListDomains", request);
  auto answer = lister_.list(caller, request);
  if (!answer.ok()) return toGrpc(answer.status());
  // The answer's bytes become the slice's, without a copy.
  auto* bytes = new std::string(*std::move(answer));
  grpc::Slice slice(bytes->data(), bytes->size(), [](void* p) { delete static_cast<std::string*>(p); }, bytes);
  grpc::ByteBuffer buffer(&slice, 1);
  out->Swap(&buffer);
  return grpc::Status::OK;
}

grpc::Status DomainServiceImpl::startDomain(grpc::ServerContextBase* ctx, const v1::StartDomainRequest* req,
                                            v1::Operation* out) {
  XENCTL_ADMIT(caller, "DomainService.StartDomain", *req);
  return answer(c_, "DomainService.StartDomain", req->name(), caller,
                c_.domains.start(req->name(), req->paused(), caller), out, absl::ZeroDuration());
}

grpc::Status DomainServiceImpl::ShutdownDomain(grpc::ServerContext* ctx, const v1::ShutdownDomainRequest* req,
                                               v1::Operation* out) {
  XENCTL_ADMIT(caller, "DomainService.ShutdownDomain", *req);
  provision::DomainManager::ShutdownRequest sr;
  if (req->timeout_seconds() > 0) sr.timeout = absl::Seconds(req->timeout_seconds());
  sr.force = req->force();
  return answer(c_, "DomainService.ShutdownDomain", req->name(), caller, c_.domains.shutdown(req->name(), sr, caller), out);
}

grpc::Status DomainServiceImpl::RebootDomain(grpc::ServerContext* ctx, const v1::RebootDomainRequest* req,
                                             v1::Operation* out) {
  XENCTL_ADMIT(caller, "DomainService.RebootDomain", *req);
  return answer(c_, "DomainService.RebootDomain", req->name(), caller, c_.domains.reboot(req->name(), caller), out);
}

grpc::Status DomainServiceImpl::destroyDomain(grpc::ServerContextBase* ctx, const v1::DestroyDomainRequest* req,
                                              v1::Operation* out) {
  XENCTL_ADMIT(caller, "DomainService.DestroyDomain", *req);
  return answer(c_, "DomainService.DestroyDomain", req->name(), caller, c_.domains.destroy(req->name(), caller), out, absl::ZeroDuration());
}

grpc::Status DomainServiceImpl::deleteDomain(grpc::ServerContextBase* ctx, const v1::DeleteDomainRequest* req,
                                             v1::Operation* out) {
  XENCTL_ADMIT(caller, "DomainService.DeleteDomain", *req);
  return answer(c_, "DomainService.DeleteDomain", req->name(), caller,
                c_.domains.remove(req->name(), req->force(), req->delete_volumes(), caller), out, absl::ZeroDuration());
}

grpc::Status DomainServiceImpl::PauseDomain(grpc::ServerContext* ctx, const v1::PauseDomainRequest* req,
                                            v1::Operation* out) {
  XENCTL_ADMIT(caller, "DomainService.PauseDomain", *req);
  return answer(c_, "DomainService.PauseDomain", req->name(), caller, c_.domains.pause(req->name(), caller), out);
}

grpc::Status DomainServiceImpl::UnpauseDomain(grpc::ServerContext* ctx, const v1::UnpauseDomainRequest* req,
                                              v1::Operation* out) {
  XENCTL_ADMIT(caller, "DomainService.UnpauseDomain", *req);
  return answer(c_, "DomainService.UnpauseDomain", req->name(), caller, c_.domains.unpause(req->name(), caller), out);
}

grpc::Status DomainServiceImpl::SetDomainResources(grpc::ServerContext* ctx, const v1::SetDomainResourcesRequest* req,
                                                   v1::Operation* out) {
  XENCTL_ADMIT(caller, "DomainService.SetDomainResources", *req);
  return answer(c_, "DomainService.SetDomainResources", req->name(), caller,
                c_.domains.setResources(req->name(), {req->vcpus(), req->memory_mib()}, caller), out);
}

grpc::ServerBidiReactor<v1::ConsoleInput, v1::ConsoleOutput>* DomainServiceImpl::AttachConsole(
    grpc::CallbackServerContext* ctx) {
  // The slot first: the caller is admitted on the first message, which names the domain.
  auto slot = streamSlot(c_, ctx);
  if (!slot.ok()) {
    class Refused final : public grpc::ServerBidiReactor<v1::ConsoleInput, v1::ConsoleOutput> {
     public:
      explicit Refused(grpc::Status st) { Finish(std::move(st)); }
      void OnDone() override { delete this; }
    };
    return new Refused(toGrpc(slot.status()));
  }
  return new ConsoleReactor(c_, ctx, *std::move(slot));
}

grpc::ServerWriteReactor<v1::DomainEvent>* DomainServiceImpl::WatchEvents(grpc::CallbackServerContext* ctx,
                                                                          const v1::WatchEventsRequest* req) {
  auto caller = admit(c_, ctx, "DomainService.WatchEvents", *req);
  if (!caller.ok()) return refusedStream<v1::DomainEvent>(toGrpc(caller.status()));
  auto slot = c_.streams.acquire(caller->key());
  if (!slot.ok()) return refusedStream<v1::DomainEvent>(toGrpc(slot.status()));
  return new WatchEventsReactor(c_, *std::move(caller), req->name(), *std::move(slot));
}

grpc::Status DomainServiceImpl::ForkDomain(grpc::ServerContext* ctx, const v1::ForkDomainRequest* req,
                                           v1::Operation* out) {
  XENCTL_ADMIT(caller, "DomainService.ForkDomain", *req);
  provision::ForkRequest fr;
  fr.source = req->source();
  fr.name = req->name();
  if (!req->hostname().empty()) fr.hostname = req->hostname();
  fr.define_only = req->define_only();
  fr.paused = req->paused();
  return answer(c_, "DomainService.ForkDomain", req->name(), caller, c_.forker.fork(std::move(fr), caller), out);
}

grpc::Status DomainServiceImpl::DiffDomain(grpc::ServerContext* ctx, const v1::DiffDomainRequest* req,
                                           v1::DiffDomainResponse* out) {
  XENCTL_ADMIT(caller, "DomainService.DiffDomain", *req);
  auto d = c_.differ.diff(req->name(), req->vdev(), req->patch());
  if (!d.ok()) return toGrpc(d.status());
  toProto(*d, out);
  // gRPC's clients take at most 4 MiB in one answer by default.
  if (out->ByteSizeLong() > kMaxDiffAnswerBytes)
    return toGrpc(absl::ResourceExhaustedError(absl::StrCat(
        "diffing domain '", req->name(), "': the answer (", d->changes.size(), " changed entries",
        req->patch() ? absl::StrCat(", a patch of ", d->patch.size(), " bytes") : std::string(), ") is ",
        out->ByteSizeLong(), " bytes, more than the ", kMaxDiffAnswerBytes, " one answer carries",
        req->patch() ? "; list the changes without the patch" : "")));
  return grpc::Status::OK;
}

grpc::Status DomainServiceImpl::SetDomainAccess(grpc::ServerContext* ctx, const v1::SetDomainAccessRequest* req,
                                                v1::Domain* out) {
  XENCTL_ADMIT(caller, "DomainService.SetDomainAccess", *req);
  if (Status st = c_.access.authorizeAccessChange(caller, req->name(), req->has_owner()); !st.ok()) {
    audit(caller, "DomainService.SetDomainAccess", req->name(), absl::StrCat("denied: ", st.message()));
    return toGrpc(st);
  }
  provision::DomainManager::AccessChange change;
  if (req->has_owner()) change.owner = req->owner();
  change.grant.assign(req->grant().begin(), req->grant().end());
  change.revoke.assign(req->revoke().begin(), req->revoke().end());
  auto v = c_.domains.changeAccess(req->name(), change);
  // The identities are not secrets: the change is in the record.
  audit(caller, "DomainService.SetDomainAccess", req->name(),
        v.ok() ? absl::StrCat("changed: owner ", v->owner.empty() ? "(none)" : v->owner, ", grants [",
                              absl::StrJoin(v->grants, ","), "]")
               : absl::StrCat("failed: ", v.status().ToString()));
  if (!v.ok()) return toGrpc(v.status());
  toProto(*v, out);
  return grpc::Status::OK;
}

grpc::Status OperationServiceImpl::GetOperation(grpc::ServerContext* ctx, const v1::GetOperationRequest* req,
                                                v1::Operation* out) {
  XENCTL_ADMIT(caller, "OperationService.GetOperation", *req);
  auto r = c_.ops.get(req->id());
  if (!r.ok()) return toGrpc(r.status());
  toProto(*r, out);
  return grpc::Status::OK;
}

grpc::Status OperationServiceImpl::ListOperations(grpc::ServerContext* ctx, const v1::ListOperationsRequest* req,
                                                  v1::ListOperationsResponse* out) {
  XENCTL_ADMIT(caller, "OperationService.ListOperations", *req);
  // Newest first; a page continues after the (created_at, id) its token
  // names. `limit` counts over all pages what the caller may see, and the
  // token carries how many the pages before gave: an operation started
  // between two pages is newer than the token, so it neither shows up nor
  // pushes the oldest ones out of the limit (it did when each page took the
  // newest `limit` again before skipping to the token).
  auto key = [](const core::OperationRecord& r) {
    return std::make_pair(absl::ToUnixNanos(r.created_at), r.id);
  };
  std::optional<std::pair<int64_t, std::string>> after;
  size_t given = 0;  // by the pages before
  if (!req->page_token().empty()) {
    std::vector<std::string> parts = absl::StrSplit(req->page_token(), ':');
    int64_t nanos = 0;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &nanos) || !absl::SimpleAtoi(parts[2], &given))
      return toGrpc(absl::InvalidArgumentError(absl::StrCat("ListOperations: page_token '", req->page_token(),
                                                            "' is not one xenctld gave; list again without it")));
    after.emplace(nanos, parts[1]);
  }
  const size_t limit = req->limit() ? req->limit() : 100;
  size_t bytes = 0;
  std::string last;
  for (const auto& r : c_.ops.list(req->target(), req->active_only(), SIZE_MAX)) {
    if (given >= limit) break;
    if ((after && key(r) >= *after) || !c_.access.maySeeOperation(caller, r)) continue;
    v1::Operation o;
    toProto(r, &o);
    const size_t n = o.ByteSizeLong() + kListElementOverhead;
    if (bytes + n > kMaxListAnswerBytes && out->operations_size() > 0) {
      out->set_next_page_token(last);
      break;
    }
    bytes += n;
    last = absl::StrCat(key(r).first, ":", r.id, ":", ++given);
    *out->add_operations() = std::move(o);
  }
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<v1::Operation>* OperationServiceImpl::WatchOperation(grpc::CallbackServerContext* ctx,
                                                                             const v1::WatchOperationRequest* req) {
  auto caller = admit(c_, ctx, "OperationService.WatchOperation", *req);
  if (!caller.ok()) return refusedStream<v1::Operation>(toGrpc(caller.status()));
  auto slot = c_.streams.acquire(caller->key());
  if (!slot.ok()) return refusedStream<v1::Operation>(toGrpc(slot.status()));
  return new WatchOperationReactor(c_, req->id(), *std::move(slot));
}

grpc::Status OperationServiceImpl::CancelOperation(grpc::ServerContext* ctx, const v1::CancelOperationRequest* req,
                                                   v1::Operation* out) {
  XENCTL_ADMIT(caller, "OperationService.CancelOperation", *req);
  return answer(c_, "OperationService.CancelOperation", req->id(), caller, c_.ops.cancel(req->id()), out);
}

grpc::ServerUnaryReactor* OperationServiceImpl::WaitOperation(grpc::CallbackServerContext* ctx,
                                                               const v1::WaitOperationRequest* req,
                                                               v1::Operation* out) {
  const auto refuse = [ctx](const grpc::Status& st) {
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(st);
    return r;
  };
  auto caller = admit(c_, ctx, "OperationService.WaitOperation", *req);
  if (!caller.ok()) return refuse(toGrpc(caller.status()));
  const absl::Duration timeout = absl::Seconds(req->timeout_seconds() ? req->timeout_seconds() : 30);
  // Answered a little before the call's deadline, so that the client gets
  // the operation as it is rather than DEADLINE_EXCEEDED.
  const absl::Time end =
      std::min(absl::Now() + timeout, absl::FromChrono(ctx->deadline()) - absl::Milliseconds(100));
  return new WaitOperationReactor(c_, req->id(), end, out);
}

grpc::Status HostServiceImpl::GetHostInfo(grpc::ServerContext* ctx, const v1::GetHostInfoRequest* req,
                                          v1::HostInfo* out) {
  XENCTL_ADMIT(caller, "HostService.GetHostInfo", *req);
  auto info = c_.hv.hostInfo();
  if (!info.ok()) return toGrpc(info.status());
  out->set_hypervisor(info->name);
  out->set_hypervisor_version(info->version);
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) out->set_hostname(host);
  out->set_cpus(info->cpus);
  out->set_memory_total_mib(info->memory_total_mib);
  out->set_memory_free_mib(info->memory_free_mib);
  auto counts = c_.domains.counts();
  out->set_domains_defined(static_cast<uint32_t>(counts.defined));
  out->set_domains_running(static_cast<uint32_t>(counts.present));
  out->set_daemon_version(version_);
  out->set_operations_active(static_cast<uint32_t>(c_.ops.active()));
  out->set_operations_limit(static_cast<uint32_t>(c_.ops.limit()));
  auto pools = c_.storage.pools();
  if (!pools.ok()) return toGrpc(pools.status());
  for (const auto& p : *pools) toProto(p, out->add_pools());
  return grpc::Status::OK;
}

grpc::Status VolumeServiceImpl::CreateVolume(grpc::ServerContext* ctx, const v1::CreateVolumeRequest* req,
                                             v1::Operation* out) {
  XENCTL_ADMIT(caller, "VolumeService.CreateVolume", *req);
  provision::StorageManager::CreateRequest cr{req->pool(), req->name(), req->size_bytes(), std::nullopt};
  if (req->make_ext4()) cr.ext4_label = req->ext4_label();
  return answer(c_, "VolumeService.CreateVolume", volumeTarget(req->pool(), req->name()), caller,
                c_.storage.create(cr, caller), out);
}

grpc::Status VolumeServiceImpl::CloneVolume(grpc::ServerContext* ctx, const v1::CloneVolumeRequest* req,
                                            v1::Operation* out) {
  XENCTL_ADMIT(caller, "VolumeService.CloneVolume", *req);
  return answer(c_, "VolumeService.CloneVolume", volumeTarget(req->pool(), req->name()), caller,
                c_.storage.clone(req->pool(), req->source(), req->name(), req->size_bytes(), caller), out);
}

grpc::Status VolumeServiceImpl::SnapshotVolume(grpc::ServerContext* ctx, const v1::SnapshotVolumeRequest* req,
                                               v1::Operation* out) {
  XENCTL_ADMIT(caller, "VolumeService.SnapshotVolume", *req);
  return answer(c_, "VolumeService.SnapshotVolume", volumeTarget(req->pool(), req->volume()), caller,
                c_.storage.snapshot(req->pool(), req->volume(), req->snapshot(), caller), out);
}

grpc::Status VolumeServiceImpl::RollbackVolume(grpc::ServerContext* ctx, const v1::RollbackVolumeRequest* req,
                                               v1::Operation* out) {
  XENCTL_ADMIT(caller, "VolumeService.RollbackVolume", *req);
  return answer(c_, "VolumeService.RollbackVolume", volumeTarget(req->pool(), req->volume()), caller,
                c_.storage.rollback(req->pool(), req->volume(), req->snapshot(), caller), out);
}

grpc::Status VolumeServiceImpl::ResizeVolume(grpc::ServerContext* ctx, const v1::ResizeVolumeRequest* req,
                                             v1::Operation* out) {
  XENCTL_ADMIT(caller, "VolumeService.ResizeVolume", *req);
  return answer(c_, "VolumeService.ResizeVolume", volumeTarget(req->pool(), req->name()), caller,
                c_.storage.resize(req->pool(), req->name(), req->size_bytes(), caller), out);
}

grpc::Status VolumeServiceImpl::DeleteVolume(grpc::ServerContext* ctx, const v1::DeleteVolumeRequest* req,
                                             v1::Operation* out) {
  XENCTL_ADMIT(caller, "VolumeService.DeleteVolume", *req);
  return answer(c_, "VolumeService.DeleteVolume", volumeTarget(req->pool(), req->name()), caller,
                c_.storage.remove(req->pool(), req->name(), caller), out);
}

grpc::Status VolumeServiceImpl::CustomizeVolume(grpc::ServerContext* ctx, const v1::CustomizeVolumeRequest* req,
                                                v1::Operation* out) {
  XENCTL_ADMIT(caller, "VolumeService.CustomizeVolume", *req);
  const std::string target = volumeTarget(req->pool(), req->name());
  auto r = customizeVolumeRequest(*req);
  if (!r.ok()) return answer(c_, "VolumeService.CustomizeVolume", target, caller, r.status(), out);
  return answer(c_, "VolumeService.CustomizeVolume", target, caller,
                c_.volume_customizer.customize(*std::move(r), caller), out);
}

grpc::Status VolumeServiceImpl::AttachVolume(grpc::ServerContext* ctx, const v1::AttachVolumeRequest* req,
                                             v1::Volume* out) {
  XENCTL_ADMIT(caller, "VolumeService.AttachVolume", *req);
  const std::string target = volumeTarget(req->pool(), req->name());
  auto v = c_.storage.attach(req->pool(), req->name());
  if (!v.ok()) {
    audit(caller, "VolumeService.AttachVolume", target, absl::StrCat("failed: ", v.status().ToString()));
    return toGrpc(v.status());
  }
  audit(caller, "VolumeService.AttachVolume", target, absl::StrCat("attached at ", v->host_device));
  toProto(*v, out);
  return grpc::Status::OK;
}

grpc::Status VolumeServiceImpl::DetachVolume(grpc::ServerContext* ctx, const v1::DetachVolumeRequest* req,
                                             v1::DetachVolumeResponse*) {
  XENCTL_ADMIT(caller, "VolumeService.DetachVolume", *req);
  const std::string target = volumeTarget(req->pool(), req->name());
  Status st = c_.storage.detach(req->pool(), req->name());
  audit(caller, "VolumeService.DetachVolume", target, st.ok() ? "detached" : absl::StrCat("failed: ", st.ToString()));
  return toGrpc(st);
}

grpc::Status VolumeServiceImpl::ListVolumes(grpc::ServerContext* ctx, const v1::ListVolumesRequest* req,
                                            v1::ListVolumesResponse* out) {
  XENCTL_ADMIT(caller, "VolumeService.ListVolumes", *req);
  auto vols = c_.storage.list(req->pool());
  if (!vols.ok()) return toGrpc(vols.status());
  // Pages continue after a key: "POOL/NAME".
  std::vector<std::pair<std::string, v1::Volume>> keyed;
  for (const auto& v : *vols) {
    std::string k = absl::StrCat(v.pool, "/", v.name);
    if (k <= req->page_token() || !c_.access.maySeeVolume(caller, v.pool, v.name)) continue;
    toProto(v, &keyed.emplace_back(std::move(k), v1::Volume()).second);
  }
  out->set_next_page_token(fillPage(std::move(keyed), out->mutable_volumes(), kMaxListAnswerBytes));
  return grpc::Status::OK;
}

grpc::Status VolumeServiceImpl::ListPools(grpc::ServerContext* ctx, const v1::ListPoolsRequest* req,
                                          v1::ListPoolsResponse* out) {
  XENCTL_ADMIT(caller, "VolumeService.ListPools", *req);
  auto pools = c_.storage.pools();
  if (!pools.ok()) return toGrpc(pools.status());
  for (const auto& p : *pools) toProto(p, out->add_pools());
  return grpc::Status::OK;
}

namespace {

image::SignaturePolicy fromProto(v1::SignaturePolicy p) {
  switch (p) {
    case v1::SIGNATURE_POLICY_SIGNED: return image::SignaturePolicy::kSigned;
    case v1::SIGNATURE_POLICY_DIGEST: return image::SignaturePolicy::kDigest;
    case v1::SIGNATURE_POLICY_NONE: return image::SignaturePolicy::kNone;
    default: return image::SignaturePolicy::kAuto;
  }
}

void toProto(const provision::ImageManager::ImageView& v, v1::Image* out) {
  const state::ImageRecord& r = v.record;
  out->set_name(r.name);
  out->set_uri(r.uri);
  out->set_sha256(r.sha256);
  out->set_signed_by(r.signed_by);
  out->set_format(r.kind == "raw-ext" ? v1::ARCHIVE_FORMAT_RAW_EXT4 : v1::ARCHIVE_FORMAT_UNSPECIFIED);
  out->set_base_volume(absl::StrCat(r.pool, "/", r.volume));
  out->set_size_bytes(r.size_bytes);
  out->set_clones(v.clones);
  const int64_t us = absl::ToUnixMicros(r.imported_at);
  out->mutable_imported_at()->set_seconds(us / 1000000);
  out->mutable_imported_at()->set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
}

}  // namespace

grpc::Status ImageServiceImpl::ImportImage(grpc::ServerContext* ctx, const v1::ImportImageRequest* req,
                                           v1::Operation* out) {
  XENCTL_ADMIT(caller, "ImageService.ImportImage", *req);
  provision::ImageManager::ImportRequest ir{req->name(), req->uri(), req->sha256(), fromProto(req->policy()),
                                            req->pool()};
  return answer(c_, "ImageService.ImportImage", req->name(), caller, c_.images.import(ir, caller), out);
}

grpc::Status ImageServiceImpl::ListImages(grpc::ServerContext* ctx, const v1::ListImagesRequest* req,
                                          v1::ListImagesResponse* out) {
  XENCTL_ADMIT(caller, "ImageService.ListImages", *req);
  auto images = c_.images.list();
  if (!images.ok()) return toGrpc(images.status());
  // Pages continue after a name.
  std::vector<std::pair<std::string, v1::Image>> keyed;
  for (const auto& v : *images)
    if (v.record.name > req->page_token()) toProto(v, &keyed.emplace_back(v.record.name, v1::Image()).second);
  out->set_next_page_token(fillPage(std::move(keyed), out->mutable_images(), kMaxListAnswerBytes));
  return grpc::Status::OK;
}

grpc::Status ImageServiceImpl::DeleteImage(grpc::ServerContext* ctx, const v1::DeleteImageRequest* req,
                                           v1::Operation* out) {
  XENCTL_ADMIT(caller, "ImageService.DeleteImage", *req);
  return answer(c_, "ImageService.DeleteImage", req->name(), caller, c_.images.remove(req->name(), caller), out);
}

grpc::Status ImageServiceImpl::ExportImage(grpc::ServerContext* ctx, const v1::ExportImageRequest* req,
                                           v1::Operation* out) {
  XENCTL_ADMIT(caller, "ImageService.ExportImage", *req);
  provision::ImageManager::ExportRequest er{req->source(), req->uri(), image::ExportFormat::kCpioGz};
  switch (req->format()) {
    case v1::ARCHIVE_FORMAT_UNSPECIFIED:
    case v1::ARCHIVE_FORMAT_CPIO_GZ:
      break;
    case v1::ARCHIVE_FORMAT_TAR_ZST:
      er.format = image::ExportFormat::kTarZst;
      break;
    default:
      return answer(c_, "ImageService.ExportImage", req->source(), caller,
                    absl::InvalidArgumentError("export formats are cpio.gz and tar.zst"), out);
  }
  return answer(c_, "ImageService.ExportImage", req->source(), caller, c_.images.exportImage(er, caller), out);
}

grpc::Status ContainerServiceImpl::ApplyContainer(grpc::ServerContext* ctx, const v1::ApplyContainerRequest* req,
                                                  v1::Operation* out) {
  XENCTL_ADMIT(caller, "ContainerService.ApplyContainer", *req);
  provision::ContainerRunner::ApplyRequest ar{req->text(), req->file_name(), req->dry_run()};
  return answer(c_, "ContainerService.ApplyContainer", req->file_name(), caller, c_.containers.apply(ar, caller), out);
}

grpc::Status ContainerServiceImpl::StripContainer(grpc::ServerContext* ctx, const v1::StripContainerRequest* req,
                                                  v1::StripContainerResponse* out) {
  XENCTL_ADMIT(caller, "ContainerService.StripContainer", *req);
  auto parsed = customize::parseContainer(req->text(), req->file_name().empty() ? "container" : req->file_name());
  if (!parsed.ok()) return toGrpc(parsed.status());
  out->set_xl_config(std::move(parsed->xl_config));
  return grpc::Status::OK;
}

}  // namespace xenctl::daemon
