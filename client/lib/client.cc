#include "client/lib/client.h"

#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "client/lib/convert.h"
#include "client/lib/exit_codes.h"
#include "xenctl/v1/container.grpc.pb.h"
#include "xenctl/v1/domain.grpc.pb.h"
#include "xenctl/v1/host.grpc.pb.h"
#include "xenctl/v1/image.grpc.pb.h"
#include "xenctl/v1/operation.grpc.pb.h"
#include "xenctl/v1/volume.grpc.pb.h"

namespace xenctl::client {

struct Client::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::DomainService::Stub> domains;
  std::unique_ptr<v1::OperationService::Stub> operations;
  std::unique_ptr<v1::HostService::Stub> host;
  std::unique_ptr<v1::VolumeService::Stub> volumes;
  std::unique_ptr<v1::ImageService::Stub> images;
  std::unique_ptr<v1::ContainerService::Stub> containers;
  absl::Duration call_timeout;
};

namespace {

std::chrono::system_clock::time_point deadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

std::string connectAdvice(const Target& t) {
  std::string where = t.source == "default" ? "the default address" : absl::StrCat("the address from ", t.source);
  return absl::StrCat("is xenctld running? Start it (systemctl start xenctld, or xenctld --listen ", t.address,
                      ") or give its address with --connect or ", kConnectEnv, " (", where, " was used)");
}

/// Why a Unix socket does not answer, from the kernel's own words.
std::string unixSocketProblem(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (!S_ISSOCK(st.st_mode)) return "not a socket";
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::strerror(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    ::close(fd);
    return "socket path too long";
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  std::string problem;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) problem = std::strerror(errno);
  ::close(fd);
  return problem.empty() ? "the daemon does not answer gRPC" : problem;
}

Status connectError(const Target& t, std::string_view why) {
  std::string reason(why);
  if (t.kind == Target::Kind::kUnix) reason = unixSocketProblem(t.endpoint);
  for (char& c : reason) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return markConnectError(absl::UnavailableError(
      absl::StrCat("cannot connect to xenctld at ", t.address, ": ", reason, "; ", connectAdvice(t))));
}

Status waitConnected(grpc::Channel& channel, const Target& t, absl::Duration timeout) {
  const auto deadline = deadlineIn(timeout);
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN)
      return connectError(t, "connection failed");
    if (!channel.WaitForStateChange(state, deadline))
      return connectError(t, absl::StrCat("no answer within ", absl::FormatDuration(timeout)));
    state = channel.GetState(true);
  }
  return absl::OkStatus();
}

}  // namespace

Result<std::unique_ptr<Client>> Client::connect(const Target& target, absl::Duration connect_timeout,
                                                absl::Duration call_timeout) {
  grpc::ChannelArguments args;
  // One attempt, reported at once: the CLI tells the user rather than retrying.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // TODO(tls): tcp: needs the mutual-TLS credentials of the security issue.
  auto channel = grpc::CreateCustomChannel(target.grpc_target, grpc::InsecureChannelCredentials(), args);
  XENCTL_RETURN_IF_ERROR(waitConnected(*channel, target, connect_timeout));
  auto impl = std::make_unique<Impl>();
  impl->domains = v1::DomainService::NewStub(channel);
  impl->operations = v1::OperationService::NewStub(channel);
  impl->host = v1::HostService::NewStub(channel);
  impl->volumes = v1::VolumeService::NewStub(channel);
  impl->images = v1::ImageService::NewStub(channel);
  impl->containers = v1::ContainerService::NewStub(channel);
  impl->channel = std::move(channel);
  impl->call_timeout = call_timeout;
  return std::unique_ptr<Client>(new Client(target, std::move(impl)));
}

Client::Client(Target target, std::unique_ptr<Impl> impl) : target_(std::move(target)), impl_(std::move(impl)) {}
Client::~Client() = default;

namespace {

Status fromGrpc(const grpc::Status& s, grpc::Channel& channel, const Target& t) {
  if (s.ok()) return absl::OkStatus();
  Status status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  // A transport failure, not the server's answer: the daemon went away.
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && channel.GetState(false) != GRPC_CHANNEL_READY)
    return markConnectError(
        absl::UnavailableError(absl::StrCat("lost the connection to xenctld at ", t.address, ": ", s.error_message())));
  return status;
}

template <class Stub, class Req, class Resp>
Status unary(Client::Impl& impl, const Target& t, Stub* stub,
             grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(deadlineIn(impl.call_timeout));
  return fromGrpc((stub->*method)(&ctx, req, resp), *impl.channel, t);
}

}  // namespace

#define XENCTL_UNARY(stub, Method, req, resp) \
  unary(*impl_, target_, impl_->stub.get(), &std::remove_reference_t<decltype(*impl_->stub)>::Method, req, resp)

Result<std::vector<Domain>> Client::listDomains(bool include_foreign) {
  v1::ListDomainsRequest req;
  req.set_include_foreign(include_foreign);
  v1::ListDomainsResponse resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, ListDomains, req, &resp));
  std::vector<Domain> out;
  out.reserve(resp.domains_size());
  for (const v1::Domain& d : resp.domains()) out.push_back(fromProto(d));
  return out;
}

Result<Domain> Client::getDomain(const std::string& name) {
  v1::GetDomainRequest req;
  req.set_name(name);
  v1::Domain resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, GetDomain, req, &resp));
  return fromProto(resp);
}

Result<HostInfo> Client::hostInfo() {
  v1::GetHostInfoRequest req;
  v1::HostInfo resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(host, GetHostInfo, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::createDomain(const CreateDomainArgs& args) {
  v1::CreateDomainRequest req = toProto(args);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, CreateDomain, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::startDomain(const std::string& request_id, const std::string& name, bool paused) {
  v1::StartDomainRequest req;
  req.set_request_id(request_id);
  req.set_name(name);
  req.set_paused(paused);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, StartDomain, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::shutdownDomain(const std::string& request_id, const std::string& name,
                                         uint32_t timeout_seconds, bool force) {
  v1::ShutdownDomainRequest req;
  req.set_request_id(request_id);
  req.set_name(name);
  req.set_timeout_seconds(timeout_seconds);
  req.set_force(force);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, ShutdownDomain, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::rebootDomain(const std::string& request_id, const std::string& name) {
  v1::RebootDomainRequest req;
  req.set_request_id(request_id);
  req.set_name(name);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, RebootDomain, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::destroyDomain(const std::string& request_id, const std::string& name) {
  v1::DestroyDomainRequest req;
  req.set_request_id(request_id);
  req.set_name(name);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, DestroyDomain, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::deleteDomain(const std::string& request_id, const std::string& name, bool force,
                                       bool delete_volumes) {
  v1::DeleteDomainRequest req;
  req.set_request_id(request_id);
  req.set_name(name);
  req.set_force(force);
  req.set_delete_volumes(delete_volumes);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, DeleteDomain, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::pauseDomain(const std::string& request_id, const std::string& name) {
  v1::PauseDomainRequest req;
  req.set_request_id(request_id);
  req.set_name(name);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, PauseDomain, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::unpauseDomain(const std::string& request_id, const std::string& name) {
  v1::UnpauseDomainRequest req;
  req.set_request_id(request_id);
  req.set_name(name);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, UnpauseDomain, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::setDomainResources(const std::string& request_id, const std::string& name, uint32_t vcpus,
                                             uint64_t memory_mib) {
  v1::SetDomainResourcesRequest req;
  req.set_request_id(request_id);
  req.set_name(name);
  req.set_vcpus(vcpus);
  req.set_memory_mib(memory_mib);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(domains, SetDomainResources, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::getOperation(const std::string& id) {
  v1::GetOperationRequest req;
  req.set_id(id);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(operations, GetOperation, req, &resp));
  return fromProto(resp);
}

Result<std::vector<Operation>> Client::listOperations(const std::string& target, bool active_only, uint32_t limit) {
  v1::ListOperationsRequest req;
  req.set_target(target);
  req.set_active_only(active_only);
  req.set_limit(limit);
  v1::ListOperationsResponse resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(operations, ListOperations, req, &resp));
  std::vector<Operation> out;
  out.reserve(resp.operations_size());
  for (const v1::Operation& op : resp.operations()) out.push_back(fromProto(op));
  return out;
}

Result<Operation> Client::watchOperation(const std::string& id, const OperationSink& sink) {
  v1::WatchOperationRequest req;
  req.set_id(id);
  grpc::ClientContext ctx;  // no deadline: an operation may take as long as it takes
  auto reader = impl_->operations->WatchOperation(&ctx, req);
  v1::Operation msg;
  std::optional<Operation> last;
  while (reader->Read(&msg)) {
    last = fromProto(msg);
    if (sink) sink(*last);
  }
  XENCTL_RETURN_IF_ERROR(fromGrpc(reader->Finish(), *impl_->channel, target_));
  if (!last || !last->finished())
    return absl::UnavailableError(
        absl::StrCat("the daemon ended the watch of operation ", id, " before it finished; see `vmm watch ", id, "`"));
  return *last;
}

Result<std::string> Client::attachConsole(const std::string& name, bool read_only,
                                          const std::function<void(std::string_view)>& output,
                                          const std::function<std::optional<std::string>()>& input) {
  grpc::ClientContext ctx;  // no deadline: a session lasts as long as its user wants
  auto stream = impl_->domains->AttachConsole(&ctx);
  v1::ConsoleInput first;
  first.set_name(name);
  first.set_read_only(read_only);
  stream->Write(first);  // a failure shows in Finish
  std::atomic<bool> ended{false}, left{false};
  std::thread typing;
  if (read_only) {
    stream->WritesDone();
  } else {
    typing = std::thread([&] {
      v1::ConsoleInput in;
      while (!ended) {
        std::optional<std::string> keys = input();
        if (!keys) {
          left = true;
          ctx.TryCancel();  // ends the output loop below
          return;
        }
        if (keys->empty()) continue;
        in.set_data(*std::move(keys));
        if (!stream->Write(in)) return;
      }
    });
  }
  v1::ConsoleOutput msg;
  std::string closed;
  while (stream->Read(&msg)) {
    if (!msg.data().empty()) output(msg.data());
    if (!msg.closed_reason().empty()) closed = msg.closed_reason();
  }
  ended = true;
  if (typing.joinable()) typing.join();
  grpc::Status st = stream->Finish();
  // The daemon cancels the call after a closing message, and so does a user leaving.
  if (!closed.empty() || (st.error_code() == grpc::StatusCode::CANCELLED && left)) return closed;
  XENCTL_RETURN_IF_ERROR(fromGrpc(st, *impl_->channel, target_));
  return closed;
}

Status operationStatus(const Operation& op) {
  switch (op.state) {
    case OperationState::kSucceeded: return absl::OkStatus();
    case OperationState::kCancelled:
      return absl::CancelledError(absl::StrCat("operation ", op.id, " (", op.kind, " ", op.target, ") was cancelled"));
    case OperationState::kFailed: {
      auto code = static_cast<absl::StatusCode>(op.status_code);
      if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
      std::string message = op.status_message.empty()
                                ? absl::StrCat("operation ", op.id, " (", op.kind, " ", op.target, ") failed")
                                : op.status_message;
      return Status(code, message);
    }
    default:
      return absl::FailedPreconditionError(
          absl::StrCat("operation ", op.id, " has not finished (", av(core::toString(op.state)), ")"));
  }
}

Result<std::vector<Image>> Client::listImages() {
  v1::ListImagesRequest req;
  v1::ListImagesResponse resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(images, ListImages, req, &resp));
  std::vector<Image> out;
  for (const v1::Image& i : resp.images()) out.push_back(fromProto(i));
  return out;
}

Result<Operation> Client::importImage(const ImportImageArgs& args) {
  v1::ImportImageRequest req;
  req.set_request_id(args.request_id);
  req.set_name(args.name);
  req.set_uri(args.uri);
  req.set_sha256(args.sha256);
  req.set_pool(args.pool);
  if (args.policy == "signed")
    req.set_policy(v1::SIGNATURE_POLICY_SIGNED);
  else if (args.policy == "digest")
    req.set_policy(v1::SIGNATURE_POLICY_DIGEST);
  else if (args.policy == "none")
    req.set_policy(v1::SIGNATURE_POLICY_NONE);
  else if (!args.policy.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("signature policy '", args.policy, "' is unknown; use signed, digest or none"));
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(images, ImportImage, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::deleteImage(const std::string& request_id, const std::string& name) {
  v1::DeleteImageRequest req;
  req.set_request_id(request_id);
  req.set_name(name);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(images, DeleteImage, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::exportImage(const ExportImageArgs& args) {
  v1::ExportImageRequest req;
  req.set_request_id(args.request_id);
  req.set_source(args.source);
  req.set_uri(args.uri);
  if (args.format.empty() || args.format == "cpio.gz")
    req.set_format(v1::ARCHIVE_FORMAT_CPIO_GZ);
  else if (args.format == "tar.zst")
    req.set_format(v1::ARCHIVE_FORMAT_TAR_ZST);
  else
    return absl::InvalidArgumentError(absl::StrCat("export format '", args.format, "' is unknown; use cpio.gz or tar.zst"));
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(images, ExportImage, req, &resp));
  return fromProto(resp);
}

Result<std::string> Client::stripContainer(const std::string& text, const std::string& file_name) {
  v1::StripContainerRequest req;
  req.set_text(text);
  req.set_file_name(file_name);
  v1::StripContainerResponse resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(containers, StripContainer, req, &resp));
  return resp.xl_config();
}

Result<Operation> Client::applyContainer(const std::string& request_id, const std::string& text,
                                         const std::string& file_name) {
  v1::ApplyContainerRequest req;
  req.set_request_id(request_id);
  req.set_text(text);
  req.set_file_name(file_name);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(containers, ApplyContainer, req, &resp));
  return fromProto(resp);
}

Result<std::vector<Volume>> Client::listVolumes(const std::string& pool) {
  v1::ListVolumesRequest req;
  req.set_pool(pool);
  v1::ListVolumesResponse resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(volumes, ListVolumes, req, &resp));
  std::vector<Volume> out;
  for (const v1::Volume& v : resp.volumes()) out.push_back(fromProto(v));
  return out;
}

Result<std::vector<PoolCapacity>> Client::listPools() {
  v1::ListPoolsRequest req;
  v1::ListPoolsResponse resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(volumes, ListPools, req, &resp));
  std::vector<PoolCapacity> out;
  for (const v1::PoolCapacity& p : resp.pools()) out.push_back(fromProto(p));
  return out;
}

Result<Operation> Client::createVolume(const std::string& request_id, const std::string& pool,
                                       const std::string& name, uint64_t size_bytes,
                                       const std::optional<std::string>& ext4_label) {
  v1::CreateVolumeRequest req;
  req.set_request_id(request_id);
  req.set_pool(pool);
  req.set_name(name);
  req.set_size_bytes(size_bytes);
  if (ext4_label) {
    req.set_make_ext4(true);
    req.set_ext4_label(*ext4_label);
  }
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(volumes, CreateVolume, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::cloneVolume(const std::string& request_id, const std::string& pool,
                                      const std::string& source, const std::string& name, uint64_t size_bytes) {
  v1::CloneVolumeRequest req;
  req.set_request_id(request_id);
  req.set_pool(pool);
  req.set_source(source);
  req.set_name(name);
  req.set_size_bytes(size_bytes);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(volumes, CloneVolume, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::snapshotVolume(const std::string& request_id, const std::string& pool,
                                         const std::string& volume, const std::string& snapshot) {
  v1::SnapshotVolumeRequest req;
  req.set_request_id(request_id);
  req.set_pool(pool);
  req.set_volume(volume);
  req.set_snapshot(snapshot);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(volumes, SnapshotVolume, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::rollbackVolume(const std::string& request_id, const std::string& pool,
                                         const std::string& volume, const std::string& snapshot) {
  v1::RollbackVolumeRequest req;
  req.set_request_id(request_id);
  req.set_pool(pool);
  req.set_volume(volume);
  req.set_snapshot(snapshot);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(volumes, RollbackVolume, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::resizeVolume(const std::string& request_id, const std::string& pool,
                                       const std::string& name, uint64_t size_bytes) {
  v1::ResizeVolumeRequest req;
  req.set_request_id(request_id);
  req.set_pool(pool);
  req.set_name(name);
  req.set_size_bytes(size_bytes);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(volumes, ResizeVolume, req, &resp));
  return fromProto(resp);
}

Result<Operation> Client::deleteVolume(const std::string& request_id, const std::string& pool,
                                       const std::string& name) {
  v1::DeleteVolumeRequest req;
  req.set_request_id(request_id);
  req.set_pool(pool);
  req.set_name(name);
  v1::Operation resp;
  XENCTL_RETURN_IF_ERROR(XENCTL_UNARY(volumes, DeleteVolume, req, &resp));
  return fromProto(resp);
}

}  // namespace xenctl::client
