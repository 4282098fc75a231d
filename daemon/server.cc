#include "daemon/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/convert.h"
#include "daemon/images.h"
#include "daemon/pools.h"
#include "daemon/tls.h"
#include "lib/customize/customizer.h"
#include "lib/customize/ext4_file_tree.h"
#include "lib/image/helper_fetcher.h"
#include "lib/provision/recovery.h"
#include "lib/sys/posix_process_runner.h"
#include "lib/testhv/test_hypervisor.h"
#include "lib/xen/libxl_hypervisor.h"

namespace xenctl::daemon {

Result<std::unique_ptr<Server>> Server::start(const Config& config, std::string version) {
  XENCTL_RETURN_IF_ERROR(validateConfig(config));
  std::unique_ptr<Server> s(new Server());
  XENCTL_RETURN_IF_ERROR(s->openState(config));
  XENCTL_RETURN_IF_ERROR(s->openHypervisor(config, version));

  s->ops_ = std::make_unique<provision::OperationRegistry>(
      s->clock_, s->store_.get(),
      provision::OperationRegistry::Options{config.max_operations, 1000, config.max_operations_per_caller,
                                            config.max_queued_operations});
  XENCTL_RETURN_IF_ERROR(s->ops_->load());
  s->events_ = std::make_unique<provision::EventBus>();
  s->startEventLog();
  // Storage first: adopting the running domains resolves their volumes.
  XENCTL_ASSIGN_OR_RETURN(s->storage_, openStorage(config, *s->ops_, s->clock_, s->volume_usage_));
  // Host paths in requests: any for admins, else under [security] allowed_paths.
  // HostPaths::Options::volume_check (nullptr here: every volume allowed) is
  // where authorization (issue 13 part 3) checks a vol: disk against the caller's rights.
  const provision::HostPaths host_paths({config.security.allowed_paths, config.security.bootloaders, nullptr});
  s->domains_ = std::make_unique<provision::DomainManager>(*s->hv_, *s->storage_, s->volume_usage_, *s->store_,
                                                           *s->ops_, *s->events_, s->clock_, host_paths);
  XENCTL_RETURN_IF_ERROR(s->domains_->load());
  for (const auto& w : s->domains_->loadWarnings()) spdlog::warn("{}", w);
  // Before serving: operations a crash interrupted are finished or undone.
  XENCTL_ASSIGN_OR_RETURN(auto recovered,
                          provision::Recovery(*s->store_, *s->ops_, *s->domains_, *s->storage_).run());
  for (const auto& r : recovered)
    spdlog::log(r.complete ? spdlog::level::warn : spdlog::level::err, "recovered {} {}: {}", r.kind, r.op_id,
                r.message);

  // Transfers run in xenctl-fetch, so libcurl is not mapped at idle (helper_fetcher.h).
  XENCTL_ASSIGN_OR_RETURN(const std::string fetch_helper, image::findFetchHelper(XENCTL_FETCH_HELPER));
  s->fetcher_ = std::make_unique<image::HelperFetcher>(fetch_helper);
  s->image_tools_ = std::make_unique<sys::PosixProcessRunner>();
  XENCTL_ASSIGN_OR_RETURN(provision::ImageConfig image_config, imageConfig(config));
  image_config.host_paths = host_paths;
  // Container files fetch under the images' source policy (container_runner.h).
  provision::ContainerRunner::Config container_config;
  container_config.sources = image_config.sources;
  container_config.ca_file = image_config.ca_file;
  container_config.work_dir = image_config.work_dir;
  container_config.extract = image_config.extract;
  container_config.fetch_timeout = image_config.fetch_timeout;
  container_config.fetch_stall_timeout = image_config.fetch_stall_timeout;
  container_config.host_paths = host_paths;
  s->images_ = std::make_unique<provision::ImageManager>(*s->storage_, *s->fetcher_, *s->store_, *s->ops_,
                                                         *s->image_tools_, s->clock_, std::move(image_config));
  // After recovery: the catalog's base volumes are golden (read-only, deleted only with their image).
  XENCTL_ASSIGN_OR_RETURN(auto image_warnings, s->images_->load());
  for (const auto& w : image_warnings) spdlog::warn("{}", w);

  s->customizer_ = std::make_unique<customize::Customizer>(*s->image_tools_, customize::Ext4FileTree::open);
  // The Customizer on a device or image file, offline: CreateDomain's
  // customize phase, vm-fork's identity reset and CustomizeVolume.
  const provision::Provisioner::Customize to_device =
      [c = s->customizer_.get()](const std::string& device, const core::Customizations& customizations) {
        return c->applyToDevice(device, customizations);
      };
  provision::ContainerRunner::Ports container_ports{
      customize::Ext4FileTree::open, s->fetcher_.get(),
      [c = s->customizer_.get()](core::FileTree& t, const core::Customizations& cz) { return c->apply(t, cz); },
      [tools = s->image_tools_.get()](const std::string& path, const std::string& label) -> Status {
        auto r = tools->run({"mkfs.ext4", "-q", "-F", "-L", label, "-E", "lazy_itable_init=1,nodiscard", path},
                            absl::Minutes(10));
        if (!r.ok()) return r.status();
        if (r->exit_code != 0)
          return absl::InternalError(absl::StrCat("mkfs.ext4 exited with ", r->exit_code, ": ", r->output));
        return absl::OkStatus();
      }};
  s->containers_ = std::make_unique<provision::ContainerRunner>(
      *s->storage_, s->volume_usage_, *s->ops_, std::move(container_ports), std::move(container_config));
  // CreateDomain with a root: its customizations are applied by the same
  // Customizer, to the root volume's ext4, offline.
  s->provisioner_ = std::make_unique<provision::Provisioner>(*s->domains_, *s->storage_, *s->images_, *s->ops_,
                                                             to_device, s->containers_.get());
  // vm-fork resets the fork's identity with the same Customizer; vm-diff
  // reads roots read-only through the same opener.
  s->forker_ = std::make_unique<provision::DomainForker>(*s->domains_, *s->storage_, *s->ops_, to_device);
  s->differ_ = std::make_unique<provision::RootDiffer>(*s->domains_, *s->storage_, customize::Ext4FileTree::open);
  // CustomizeVolume: the same Customizer on a volume of its own.
  s->volume_customizer_ =
      std::make_unique<provision::VolumeCustomizer>(*s->storage_, *s->ops_, to_device);

  XENCTL_RETURN_IF_ERROR(s->serve(config, version));
  return s;
}

Status Server::openState(const Config& config) {
  std::error_code ec;
  std::filesystem::create_directories(config.state_dir, ec);
  if (ec)
    return absl::FailedPreconditionError(
        absl::StrCat("creating state directory ", config.state_dir, ": ", ec.message()));
  // One daemon per state directory: a second would own the same database,
  // pools and domains' events beside the first.
  XENCTL_ASSIGN_OR_RETURN(sys::PidLock lock, sys::PidLock::acquire(config.state_dir + "/xenctld.lock",
                                                                    "state directory " + config.state_dir));
  state_lock_.emplace(std::move(lock));
  XENCTL_ASSIGN_OR_RETURN(store_, state::Store::open(config.state_dir + "/xenctld.db"));
  return absl::OkStatus();
}

Status Server::openHypervisor(const Config& config, const std::string& version) {
  if (config.hypervisor == "test") {
    hv_ = std::make_unique<testhv::TestHypervisor>(
        testhv::TestHypervisor::Options{config.test_cpus, config.test_memory_mib, version});
    return absl::OkStatus();
  }
  xen::LibxlHypervisor::Options options;
  options.log = [](xen::LibxlLogLevel level, std::string_view line) {
    static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::debug, spdlog::level::info,
                                                            spdlog::level::warn, spdlog::level::err};
    spdlog::log(kLevels[static_cast<int>(level)], "{}", line);
  };
  options.min_log_level = spdlog::get_level() <= spdlog::level::debug ? xen::LibxlLogLevel::kDebug
                                                                      : xen::LibxlLogLevel::kWarn;
  XENCTL_ASSIGN_OR_RETURN(hv_, xen::LibxlHypervisor::create(std::move(options)));
  return absl::OkStatus();
}

void Server::startEventLog() {
  // Guests' lives in the log, one line per event (a crash, an on_* restart,
  // a domain destroyed outside xenctld), from before the domains are adopted.
  // At a level that drops them, no thread is woken for each event.
  if (!spdlog::should_log(spdlog::level::info)) return;
  event_log_ = std::jthread([sub = std::shared_ptr(events_->subscribe())](std::stop_token st) {
    while (!st.stop_requested()) {
      auto e = sub->next(absl::Now() + absl::Milliseconds(500));
      if (!e) continue;
      spdlog::info("event domain={} kind={} domid={} state={}{}{}{}", e->name, core::toString(e->kind), e->domid,
                   core::toString(e->state), e->message.empty() ? "" : " message=\"", e->message,
                   e->message.empty() ? "" : "\"");
    }
  });
}

std::vector<std::unique_ptr<grpc::Service>> Server::makeServices() const {
  std::vector<std::unique_ptr<grpc::Service>> services;
  services.push_back(std::make_unique<DomainServiceImpl>(*context_));
  services.push_back(std::make_unique<OperationServiceImpl>(*context_));
  services.push_back(std::make_unique<HostServiceImpl>(*context_, version_));
  services.push_back(std::make_unique<VolumeServiceImpl>(*context_));
  services.push_back(std::make_unique<ImageServiceImpl>(*context_));
  services.push_back(std::make_unique<ContainerServiceImpl>(*context_));
  return services;
}

Status Server::serve(const Config& config, const std::string& version) {
  access_ = std::make_unique<provision::AccessPolicy>(config.access, *domains_, *storage_, *ops_);
  streams_ = std::make_unique<provision::CallerSlots>(config.max_streams_per_caller, "streams",
                                                      "[daemon] max_streams_per_caller");
  XENCTL_ASSIGN_OR_RETURN(poller_, sys::FdPoller::create());
  context_.reset(new ServiceContext{*domains_, *ops_, *events_, *hv_, peers_, *storage_, *images_,
                                    *containers_, *provisioner_, *forker_, *differ_, *volume_customizer_,
                                    *access_, *streams_, *poller_});
  version_ = version;
  tls_ = config.tls;
  max_request_bytes_ = config.max_request_bytes;
  services_ = makeServices();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_request_bytes_));
  for (auto& svc : services_) builder.RegisterService(svc.get());
  XENCTL_RETURN_IF_ERROR(listen(config));
  grpc_ = builder.BuildAndStart();
  if (!grpc_) return absl::UnavailableError("gRPC server did not start");
  if (!tcp_listeners_.empty()) {
    XENCTL_ASSIGN_OR_RETURN(tcp_, startTcp());
    for (const auto& l : tcp_listeners_)
      addresses_.push_back(absl::StrCat("tcp:", l.host, ":", l.port, l.insecure ? " (insecure)" : " (mutual TLS)"));
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  for (auto& u : unix_) {
    int fd = u->fd.get();
    std::string path = u->path;
    u->thread = std::jthread([this, fd, path](std::stop_token st) { acceptLoop(st, fd, path); });
  }
  return absl::OkStatus();
}

Status Server::listen(const Config& config) {
  // Unix sockets are accepted by us (for SO_PEERCRED); TCP goes to a gRPC
  // server of its own (startTcp). Sockets systemd passes (xenctld.socket)
  // take the place of unix: entries.
  auto activated = sys::systemdListenSockets();
  for (auto& [path, fd] : activated) {
    auto u = std::make_unique<UnixListener>();
    u->path = path;
    u->fd = std::move(fd);
    u->owned = false;
    addresses_.push_back("unix:" + u->path + " (from systemd)");
    unix_.push_back(std::move(u));
  }
  for (const auto& l : config.listen) {
    if (absl::StartsWith(l, "unix:")) {
      if (!activated.empty()) continue;
      auto u = std::make_unique<UnixListener>();
      u->path = l.substr(5);
      auto fd = sys::listenUnix(u->path, 0660);
      if (!fd.ok()) return annotate(fd.status(), absl::StrCat("listening on ", l));
      u->fd = *std::move(fd);
      unix_.push_back(std::move(u));
      addresses_.push_back(l);
      continue;
    }
    TcpListener t;
    t.address = l;
    const size_t colon = l.rfind(':');
    t.host = l.substr(4, colon == std::string::npos || colon < 4 ? std::string::npos : colon - 4);
    if (colon == std::string::npos || colon < 4 || !absl::SimpleAtoi(l.substr(colon + 1), &t.port) || t.port < 0 ||
        t.port > 65535)
      return absl::InvalidArgumentError(absl::StrCat("listen address '", l, "' is not tcp:HOST:PORT"));
    t.insecure = std::find(config.insecure_listen.begin(), config.insecure_listen.end(), l) !=
                 config.insecure_listen.end();
    if (t.insecure)
      spdlog::warn("listening on {} without TLS (insecure = true): anyone who can reach it controls this host's "
                   "domains",
                   l);
    tcp_listeners_.push_back(std::move(t));
  }
  return absl::OkStatus();
}

Result<std::unique_ptr<Server::TcpServer>> Server::startTcp() {
  std::shared_ptr<grpc::ServerCredentials> tls;
  if (tls_.configured()) {
    XENCTL_ASSIGN_OR_RETURN(TlsMaterial material, loadTlsMaterial(tls_));
    spdlog::info("mutual TLS on tcp: listeners: certificate {}", material.summary);
    for (const auto& w : material.warnings) spdlog::warn("{}", w);
    tls = mutualTlsCredentials(material);
  }
  auto t = std::make_unique<TcpServer>();
  t->services = makeServices();
  grpc::ServerBuilder builder;
  // A reload binds the ports again while the server it replaces still holds them.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 1);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_request_bytes_));
  for (auto& svc : t->services) builder.RegisterService(svc.get());
  std::vector<int> bound(tcp_listeners_.size(), 0);
  for (size_t i = 0; i < tcp_listeners_.size(); ++i) {
    const TcpListener& l = tcp_listeners_[i];
    builder.AddListeningPort(absl::StrCat(l.host, ":", l.port), l.insecure ? grpc::InsecureServerCredentials() : tls,
                             &bound[i]);
  }
  t->server = builder.BuildAndStart();
  std::string addresses;
  for (const auto& l : tcp_listeners_) addresses += (addresses.empty() ? "" : ", ") + l.address;
  if (!t->server)
    return absl::UnavailableError(
        absl::StrCat("listening on ", addresses, ": gRPC could not bind; is the port in use by another program?"));
  for (size_t i = 0; i < tcp_listeners_.size(); ++i) tcp_listeners_[i].port = bound[i];
  return t;
}

Status Server::reloadTls(absl::Duration grace) {
  if (!tcp_ || !tls_.configured())
    return absl::FailedPreconditionError("nothing to reload: no tcp: listener uses [daemon.tls]");
  XENCTL_ASSIGN_OR_RETURN(std::unique_ptr<TcpServer> fresh, startTcp());
  std::erase_if(retiring_, [](const auto& r) { return r->done.load(); });
  // The old server stops accepting at once; its calls finish or are
  // cancelled at the deadline, on a thread of their own, so that this (the
  // main thread, which also feeds systemd's watchdog) never waits for them.
  auto& r = *retiring_.emplace_back(std::make_unique<Retiring>());
  r.tcp = std::exchange(tcp_, std::move(fresh));
  r.thread = std::jthread([&r, deadline = absl::ToChronoTime(absl::Now() + grace)] {
    r.tcp->server->Shutdown(deadline);
    r.tcp->server->Wait();
    r.done = true;
  });
  return absl::OkStatus();
}

void Server::acceptLoop(std::stop_token stop, int listen_fd, const std::string& path) {
  while (!stop.stop_requested()) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll on {}: {}", path, std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        spdlog::warn("accept on {}: {}", path, std::strerror(errno));
      continue;
    }
    auto creds = sys::peerCredentials(fd);
    if (!creds.ok()) {
      spdlog::warn("dropping a connection on {}: {}", path, creds.status().ToString());
      ::close(fd);
      continue;
    }
    spdlog::debug("connection on {} from pid={} uid={} gid={}", path, creds->pid, creds->uid, creds->gid);
    peers_.add(fd, *creds);
    grpc::AddInsecureChannelFromFd(grpc_.get(), fd);  // gRPC owns fd from here
  }
}

void Server::stop(absl::Duration grace) {
  if (stopped_) return;
  stopped_ = true;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)::write(wake_fd_, &one, sizeof(one));
  }
  for (auto& u : unix_) {
    if (u->thread.joinable()) u->thread.join();
    u->fd = sys::UniqueFd();
    if (u->owned) ::unlink(u->path.c_str());  // systemd owns activated sockets
  }
  events_->close();
  ops_->shutdown();  // cancels running work, so watchers see the end
  const auto deadline = absl::ToChronoTime(absl::Now() + grace);
  if (tcp_) tcp_->server->Shutdown(deadline);
  grpc_->Shutdown(deadline);
  grpc_->Wait();
  if (tcp_) tcp_->server->Wait();
  retiring_.clear();  // joins each; ops_->shutdown() above ended their streams
  if (wake_fd_ >= 0) ::close(wake_fd_);
  wake_fd_ = -1;
}

Server::~Server() {
  if (grpc_) stop(absl::Seconds(2));
}

}  // namespace xenctl::daemon
