// The one gRPC client of xenctld used by vmm and vm-*. It speaks the v1 API's
// own messages: a command builds the request, `call` sends it, and the
// response is what the command prints (client/lib/output.h). What the
// library adds is the connection, deadlines, and errors as Status.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/time/time.h"
#include "client/lib/target.h"
#include "lib/core/status.h"
#include "xenctl/v1/domain.grpc.pb.h"
#include "xenctl/v1/host.grpc.pb.h"
#include "xenctl/v1/image.grpc.pb.h"
#include "xenctl/v1/operation.grpc.pb.h"
#include "xenctl/v1/volume.grpc.pb.h"

namespace xenctl::client {

class Client {
 public:
  /// Called with each state of an operation while it is watched.
  using OperationSink = std::function<void(const v1::Operation&)>;

  /// A unary RPC of one of the v1 services' stubs, e.g.
  /// &v1::DomainService::Stub::StartDomain.
  template <class Stub, class Req, class Resp>
  using Unary = grpc::Status (Stub::*)(grpc::ClientContext*, const Req&, Resp*);

  /// Connects to `target`. A failure to reach the daemon within
  /// `connect_timeout` is UNAVAILABLE marked as a connect error (exit 4); its
  /// message names the address, where it came from, and what to do.
  /// `call_timeout` bounds each unary call (watching has no deadline).
  /// A tcp: target is reached over mutual TLS with `tls`'s files, all three
  /// required (INVALID_ARGUMENT naming the missing flags); the daemon's
  /// certificate must be signed by `tls.ca` and name the target's host.
  static Result<std::unique_ptr<Client>> connect(const Target& target, const TlsFiles& tls,
                                                 absl::Duration connect_timeout, absl::Duration call_timeout);

  const Target& target() const { return target_; }

  /// One unary call within the call timeout: the response, or the server's
  /// code and message as a Status (a lost connection is a connect error).
  template <class Stub, class Req, class Resp>
  Result<Resp> call(Unary<Stub, Req, Resp> method, const std::type_identity_t<Req>& req) {
    Stub stub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    Resp resp;
    XENCTL_RETURN_IF_ERROR(fromGrpc((stub.*method)(&ctx, req, &resp), req.ByteSizeLong()));
    return resp;
  }

  /// A paged list call (ListDomains, ListOperations, ListVolumes, ListImages): asks again with each
  /// next_page_token until the last page and returns every page's items
  /// (`items` names the repeated field), in order.
  template <class Stub, class Req, class Resp, class Item>
  Result<google::protobuf::RepeatedPtrField<Item>> callPages(
      Unary<Stub, Req, Resp> method, std::type_identity_t<Req> req,
      google::protobuf::RepeatedPtrField<Item>* (Resp::*items)()) {
    google::protobuf::RepeatedPtrField<Item> all;
    do {
      XENCTL_ASSIGN_OR_RETURN(Resp resp, call(method, req));
      for (Item& item : *(resp.*items)()) *all.Add() = std::move(item);
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
    return all;
  }

  /// GetDomain by name.
  Result<v1::Domain> getDomain(const std::string& name);

  /// A console session (AttachConsole): what the guest writes goes to
  /// `output` as it arrives. Unless `read_only`, `input` is called over and
  /// over from a second thread: it returns what was typed ("" when nothing
  /// was, within a fraction of a second) or nullopt to leave. Returns why
  /// the daemon ended the console ("" when the client left).
  Result<std::string> attachConsole(const std::string& name, bool read_only,
                                    const std::function<void(std::string_view)>& output,
                                    const std::function<std::optional<std::string>()>& input);

  /// Streams the operation until it has finished and returns its last state.
  /// `sink` (may be empty) sees every state, the last one included.
  Result<v1::Operation> watchOperation(const std::string& id, const OperationSink& sink);
  /// Waits for the operation to finish with WaitOperation, each call within
  /// the call timeout (or `poll` when shorter: how often `sink`, which may
  /// be empty, sees the state meanwhile), and returns its final state. An
  /// operation already finished is returned without a call.
  Result<v1::Operation> waitOperation(const v1::Operation& op, const OperationSink& sink, absl::Duration poll);

 private:
  Client(Target target, std::shared_ptr<grpc::Channel> channel, absl::Duration call_timeout);
  std::chrono::system_clock::time_point deadline() const;
  /// The call's result as a Status; UNAVAILABLE with the channel down is a
  /// connect error naming the address; gRPC's refusal of a request of
  /// `request_bytes` names the daemon's setting (oversizeRequest).
  Status fromGrpc(const grpc::Status& s, size_t request_bytes = 0) const;

  Target target_;
  std::shared_ptr<grpc::Channel> channel_;
  absl::Duration call_timeout_;
};

/// A request gRPC refused as over the daemon's limit, before xenctld saw
/// it (RESOURCE_EXHAUSTED "Received message larger than max (N vs. M)",
/// which the daemon cannot reword): that message naming `[daemon]
/// max_request_size` and its value M, when N is `request_bytes`, the size
/// of the request sent (so a reply too large for the client is not taken
/// for it); nullopt otherwise.
std::optional<std::string> oversizeRequest(std::string_view grpc_message, size_t request_bytes);

/// Whether the operation has finished (succeeded, failed or cancelled).
bool isFinished(const v1::Operation& op);

/// The operation's result as a Status: OK when it succeeded, its server code
/// and message when it failed, CANCELLED naming it when cancelled.
Status operationStatus(const v1::Operation& op);

}  // namespace xenctl::client
