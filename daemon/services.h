// The gRPC services: translate protobuf to lib calls and back, map errors
// to gRPC codes, admit each call by the rule table and audit changes and
// refusals (daemon/authz.h). No logic of their own.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/domain_lister.h"
#include "daemon/peers.h"
#include "lib/provision/access_policy.h"
#include "lib/core/hypervisor.h"
#include "lib/provision/caller_slots.h"
#include "lib/provision/container_runner.h"
#include "lib/provision/domain_forker.h"
#include "lib/provision/domain_manager.h"
#include "lib/provision/event_bus.h"
#include "lib/provision/image_manager.h"
#include "lib/provision/operation_registry.h"
#include "lib/provision/provisioner.h"
#include "lib/provision/root_differ.h"
#include "lib/provision/storage_manager.h"
#include "lib/provision/volume_customizer.h"
#include "lib/sys/fd_poller.h"
#include "xenctl/v1/container.grpc.pb.h"
#include "xenctl/v1/domain.grpc.pb.h"
#include "xenctl/v1/host.grpc.pb.h"
#include "xenctl/v1/image.grpc.pb.h"
#include "xenctl/v1/operation.grpc.pb.h"
#include "xenctl/v1/volume.grpc.pb.h"

namespace xenctl::daemon {

/// What the services share; owned by the Server.
struct ServiceContext {
  provision::DomainManager& domains;
  provision::OperationRegistry& ops;
  provision::EventBus& events;
  core::Hypervisor& hv;
  const PeerRegistry& peers;
  provision::StorageManager& storage;
  provision::ImageManager& images;
  provision::ContainerRunner& containers;
  provision::Provisioner& provisioner;
  provision::DomainForker& forker;
  provision::RootDiffer& differ;
  provision::VolumeCustomizer& volume_customizer;
  /// Who may do what (daemon/authz.h applies it to each call).
  provision::AccessPolicy& access;
  /// Streams (WatchEvents, WatchOperation, AttachConsole) open per caller:
  /// [daemon] max_streams_per_caller.
  provision::CallerSlots& streams;
  /// Waits on the consoles' ptys for their streams (one thread for all).
  sys::FdPoller& poller;
};

/// Runs calls that may block (a precheck can read LVM) off gRPC's callback
/// threads, which must not: up to kMaxThreads threads, started as needed
/// and kept; what does not fit waits in order.
class HandlerPool {
 public:
  static constexpr size_t kMaxThreads = 16;
  HandlerPool() = default;
  HandlerPool(const HandlerPool&) = delete;
  HandlerPool& operator=(const HandlerPool&) = delete;
  /// Lets the running tasks end, and the queued ones run, then joins.
  ~HandlerPool();
  void run(std::function<void()> task);

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

// WatchEvents (and AttachConsole) are served on gRPC's callback API
// (daemon/stream_reactors.h): a waiting stream holds no thread. So are the
// lifecycle's mutations and ListDomains: a small call on the callback API
// costs about a quarter of one on the synchronous API's threads (README,
// Benchmarks). ListDomains runs on gRPC's thread (it reads memory and the
// hypervisor's list), and so do a mutation's checks and start unless they
// may read a storage backend (then on the HandlerPool). ListDomains takes
// and gives bytes (the raw API): its answer is written from each domain's
// kept encoding (daemon/domain_lister.h), the same bytes protobuf writes.
using DomainServiceBase = v1::DomainService::WithCallbackMethod_CreateDomain<
    v1::DomainService::WithCallbackMethod_StartDomain<v1::DomainService::WithCallbackMethod_DestroyDomain<
        v1::DomainService::WithCallbackMethod_DeleteDomain<v1::DomainService::WithRawCallbackMethod_ListDomains<
            v1::DomainService::WithCallbackMethod_AttachConsole<
                v1::DomainService::WithCallbackMethod_WatchEvents<v1::DomainService::Service>>>>>>>;

class DomainServiceImpl final : public DomainServiceBase {
 public:
  explicit DomainServiceImpl(ServiceContext& c);
  grpc::ServerUnaryReactor* CreateDomain(grpc::CallbackServerContext*, const v1::CreateDomainRequest*,
                                         v1::Operation*) override;
  grpc::Status GetDomain(grpc::ServerContext*, const v1::GetDomainRequest*, v1::Domain*) override;
  grpc::ServerUnaryReactor* ListDomains(grpc::CallbackServerContext*, const grpc::ByteBuffer*,
                                        grpc::ByteBuffer*) override;
  grpc::ServerUnaryReactor* StartDomain(grpc::CallbackServerContext*, const v1::StartDomainRequest*,
                                        v1::Operation*) override;
  grpc::Status ShutdownDomain(grpc::ServerContext*, const v1::ShutdownDomainRequest*, v1::Operation*) override;
  grpc::Status RebootDomain(grpc::ServerContext*, const v1::RebootDomainRequest*, v1::Operation*) override;
  grpc::ServerUnaryReactor* DestroyDomain(grpc::CallbackServerContext*, const v1::DestroyDomainRequest*,
                                          v1::Operation*) override;
  grpc::ServerUnaryReactor* DeleteDomain(grpc::CallbackServerContext*, const v1::DeleteDomainRequest*,
                                         v1::Operation*) override;
  grpc::Status PauseDomain(grpc::ServerContext*, const v1::PauseDomainRequest*, v1::Operation*) override;
  grpc::Status UnpauseDomain(grpc::ServerContext*, const v1::UnpauseDomainRequest*, v1::Operation*) override;
  grpc::Status SetDomainResources(grpc::ServerContext*, const v1::SetDomainResourcesRequest*,
                                  v1::Operation*) override;
  grpc::ServerBidiReactor<v1::ConsoleInput, v1::ConsoleOutput>* AttachConsole(grpc::CallbackServerContext*) override;
  grpc::ServerWriteReactor<v1::DomainEvent>* WatchEvents(grpc::CallbackServerContext*,
                                                         const v1::WatchEventsRequest*) override;
  grpc::Status ForkDomain(grpc::ServerContext*, const v1::ForkDomainRequest*, v1::Operation*) override;
  grpc::Status DiffDomain(grpc::ServerContext*, const v1::DiffDomainRequest*, v1::DiffDomainResponse*) override;
  grpc::Status SetDomainAccess(grpc::ServerContext*, const v1::SetDomainAccessRequest*, v1::Domain*) override;

 private:
  // The bodies of the callback methods, as synchronous calls.
  grpc::Status createDomain(grpc::ServerContextBase*, const v1::CreateDomainRequest*, v1::Operation*);
  grpc::Status listDomains(grpc::ServerContextBase*, const grpc::ByteBuffer*, grpc::ByteBuffer*);
  grpc::Status startDomain(grpc::ServerContextBase*, const v1::StartDomainRequest*, v1::Operation*);
  grpc::Status destroyDomain(grpc::ServerContextBase*, const v1::DestroyDomainRequest*, v1::Operation*);
  grpc::Status deleteDomain(grpc::ServerContextBase*, const v1::DeleteDomainRequest*, v1::Operation*);
  /// A mutation's call: `body` admits, checks and starts it, and answers
  /// with its operation as it is then; the call is answered once the
  /// operation has finished, or as it is after kAnswerWait (services.cc).
  /// `body` runs on gRPC's thread unless it `may_block` (a check may read
  /// a storage backend), then on pool_.
  grpc::ServerUnaryReactor* mutation(grpc::CallbackServerContext* ctx, v1::Operation* out, bool may_block,
                                     std::function<grpc::Status()> body);

  ServiceContext& c_;
  HandlerPool pool_;
  DomainLister lister_;
};

// WatchOperation and WaitOperation are served on gRPC's callback API
// (daemon/stream_reactors.h): a waiting call holds no thread.
class OperationServiceImpl final
    : public v1::OperationService::WithCallbackMethod_WaitOperation<
          v1::OperationService::WithCallbackMethod_WatchOperation<v1::OperationService::Service>> {
 public:
  explicit OperationServiceImpl(ServiceContext& c) : c_(c) {}
  grpc::Status GetOperation(grpc::ServerContext*, const v1::GetOperationRequest*, v1::Operation*) override;
  grpc::Status ListOperations(grpc::ServerContext*, const v1::ListOperationsRequest*,
                              v1::ListOperationsResponse*) override;
  grpc::ServerWriteReactor<v1::Operation>* WatchOperation(grpc::CallbackServerContext*,
                                                          const v1::WatchOperationRequest*) override;
  grpc::Status CancelOperation(grpc::ServerContext*, const v1::CancelOperationRequest*, v1::Operation*) override;
  grpc::ServerUnaryReactor* WaitOperation(grpc::CallbackServerContext*, const v1::WaitOperationRequest*,
                                          v1::Operation*) override;

 private:
  ServiceContext& c_;
};

class HostServiceImpl final : public v1::HostService::Service {
 public:
  HostServiceImpl(ServiceContext& c, std::string daemon_version) : c_(c), version_(std::move(daemon_version)) {}
  grpc::Status GetHostInfo(grpc::ServerContext*, const v1::GetHostInfoRequest*, v1::HostInfo*) override;

 private:
  ServiceContext& c_;
  std::string version_;
};

class VolumeServiceImpl final : public v1::VolumeService::Service {
 public:
  explicit VolumeServiceImpl(ServiceContext& c) : c_(c) {}
  grpc::Status CreateVolume(grpc::ServerContext*, const v1::CreateVolumeRequest*, v1::Operation*) override;
  grpc::Status CloneVolume(grpc::ServerContext*, const v1::CloneVolumeRequest*, v1::Operation*) override;
  grpc::Status SnapshotVolume(grpc::ServerContext*, const v1::SnapshotVolumeRequest*, v1::Operation*) override;
  grpc::Status RollbackVolume(grpc::ServerContext*, const v1::RollbackVolumeRequest*, v1::Operation*) override;
  grpc::Status ResizeVolume(grpc::ServerContext*, const v1::ResizeVolumeRequest*, v1::Operation*) override;
  grpc::Status DeleteVolume(grpc::ServerContext*, const v1::DeleteVolumeRequest*, v1::Operation*) override;
  grpc::Status CustomizeVolume(grpc::ServerContext*, const v1::CustomizeVolumeRequest*, v1::Operation*) override;
  grpc::Status AttachVolume(grpc::ServerContext*, const v1::AttachVolumeRequest*, v1::Volume*) override;
  grpc::Status DetachVolume(grpc::ServerContext*, const v1::DetachVolumeRequest*, v1::DetachVolumeResponse*) override;
  grpc::Status ListVolumes(grpc::ServerContext*, const v1::ListVolumesRequest*, v1::ListVolumesResponse*) override;
  grpc::Status ListPools(grpc::ServerContext*, const v1::ListPoolsRequest*, v1::ListPoolsResponse*) override;

 private:
  ServiceContext& c_;
};

class ImageServiceImpl final : public v1::ImageService::Service {
 public:
  explicit ImageServiceImpl(ServiceContext& c) : c_(c) {}
  grpc::Status ImportImage(grpc::ServerContext*, const v1::ImportImageRequest*, v1::Operation*) override;
  grpc::Status ListImages(grpc::ServerContext*, const v1::ListImagesRequest*, v1::ListImagesResponse*) override;
  grpc::Status DeleteImage(grpc::ServerContext*, const v1::DeleteImageRequest*, v1::Operation*) override;
  grpc::Status ExportImage(grpc::ServerContext*, const v1::ExportImageRequest*, v1::Operation*) override;

 private:
  ServiceContext& c_;
};

// The container language: StripContainer parses (lib/customize);
// ApplyContainer runs the expressions (provision::ContainerRunner).
class ContainerServiceImpl final : public v1::ContainerService::Service {
 public:
  explicit ContainerServiceImpl(ServiceContext& c) : c_(c) {}
  grpc::Status ApplyContainer(grpc::ServerContext*, const v1::ApplyContainerRequest*, v1::Operation*) override;
  grpc::Status StripContainer(grpc::ServerContext*, const v1::StripContainerRequest*,
                              v1::StripContainerResponse*) override;

 private:
  ServiceContext& c_;
};

}  // namespace xenctl::daemon
