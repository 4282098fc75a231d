// The daemon assembled: store, hypervisor, registry, services, listeners.
#pragma once

#include <grpcpp/server.h>

#include <atomic>
#include <list>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "daemon/config.h"
#include "daemon/peers.h"
#include "daemon/services.h"
#include "lib/customize/customizer.h"
#include "lib/sys/pid_lock.h"
#include "lib/sys/system_clock.h"
#include "lib/sys/unix_socket.h"

namespace grpc {
class ServerBuilder;
}

namespace xenctl::daemon {

class Server {
 public:
  /// Opens the store, loads the state, binds every listener and starts
  /// serving. Errors name what failed (the socket path, the state dir).
  static Result<std::unique_ptr<Server>> start(const Config& config, std::string version);
  ~Server();

  /// Where it listens: "unix:PATH" (systemd's sockets too) and "tcp:HOST:PORT".
  const std::vector<std::string>& addresses() const { return addresses_; }

  /// Rereads [daemon.tls]'s files and serves the tcp: listeners with them
  /// (SIGHUP). A new TCP server binds the same ports (SO_REUSEPORT) before the
  /// old one stops accepting; the old one's calls get `grace` to finish. The
  /// Unix sockets and their connections are untouched. On an error (a file
  /// missing, a key that does not match) nothing changes and the old
  /// certificates keep serving. FAILED_PRECONDITION when no listener has TLS.
  Status reloadTls(absl::Duration grace);

  /// Stops accepting, lets in-flight calls finish (or cancels them after
  /// `grace`), cancels running operations and removes the socket files.
  void stop(absl::Duration grace);

 private:
  Server() = default;
  struct UnixListener {
    std::string path;
    sys::UniqueFd fd;
    bool owned = true;  // false when systemd passed it
    std::jthread thread;
  };
  /// The tcp: listeners, served by a gRPC server of their own so that a
  /// certificate reload restarts only them.
  struct TcpListener {
    std::string address;  // "tcp:HOST:PORT" as configured
    std::string host;
    int port = 0;  // the bound port once started (a configured 0 keeps the first one chosen)
    bool insecure = false;
  };
  struct TcpServer {
    std::vector<std::unique_ptr<grpc::Service>> services;
    std::unique_ptr<grpc::Server> server;  // declared last: stopped before its services go
  };
  /// A TCP server a reload replaced, finishing its calls on a thread of its own.
  struct Retiring {
    std::unique_ptr<TcpServer> tcp;
    std::atomic<bool> done{false};
    std::jthread thread;  // declared last: joined before `tcp` goes
  };
  // The steps of start(), in its order.
  Status openState(const Config& config);
  Status openHypervisor(const Config& config, const std::string& version);
  void startEventLog();
  /// The services, the listeners, gRPC and the accept loops.
  Status serve(const Config& config, const std::string& version);
  Status listen(const Config& config);
  std::vector<std::unique_ptr<grpc::Service>> makeServices() const;
  /// A TCP server on tcp_listeners_, TLS from [daemon.tls]'s files as they are now.
  Result<std::unique_ptr<TcpServer>> startTcp();
  void acceptLoop(std::stop_token stop, int listen_fd, const std::string& path);

  // Declared first, so released last: held from before the store opens until the daemon is gone.
  std::optional<sys::PidLock> state_lock_;
  sys::SystemClock clock_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<core::Hypervisor> hv_;
  std::unique_ptr<provision::OperationRegistry> ops_;
  std::unique_ptr<provision::EventBus> events_;
  std::jthread event_log_;  // every domain event into the log (the journal under systemd)
  provision::VolumeUsage volume_usage_;  // domains_ records, storage_ reads
  std::unique_ptr<provision::StorageManager> storage_;  // before domains_, which resolves volumes through it
  std::unique_ptr<provision::DomainManager> domains_;
  std::unique_ptr<core::Fetcher> fetcher_;
  std::unique_ptr<core::ProcessRunner> image_tools_;
  std::unique_ptr<provision::ImageManager> images_;
  std::unique_ptr<customize::Customizer> customizer_;
  std::unique_ptr<provision::ContainerRunner> containers_;
  std::unique_ptr<provision::Provisioner> provisioner_;  // after customizer_, which it calls
  std::unique_ptr<provision::DomainForker> forker_;
  std::unique_ptr<provision::RootDiffer> differ_;
  std::unique_ptr<provision::VolumeCustomizer> volume_customizer_;
  std::unique_ptr<provision::AccessPolicy> access_;
  PeerRegistry peers_;
  std::unique_ptr<provision::CallerSlots> streams_;  // streams open per caller
  std::unique_ptr<sys::FdPoller> poller_;            // the consoles' ptys; outlives the services
  std::unique_ptr<ServiceContext> context_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> grpc_;
  std::string version_;
  TlsConfig tls_;
  uint64_t max_request_bytes_ = 0;  // [daemon] max_request_size, for every gRPC server
  std::vector<TcpListener> tcp_listeners_;
  std::unique_ptr<TcpServer> tcp_;
  std::list<std::unique_ptr<Retiring>> retiring_;  // several when reloads come faster than calls end
  std::vector<std::unique_ptr<UnixListener>> unix_;
  std::vector<std::string> addresses_;
  int wake_fd_ = -1;  // eventfd that ends the accept loops
  bool stopped_ = false;
};

}  // namespace xenctl::daemon
