#include "client/lib/client.h"

#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <tuple>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/lib/exit_codes.h"
#include "proto/convert/convert.h"

namespace xenctl::client {

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
  if (t.kind == Target::Kind::kUnix) {
    reason = unixSocketProblem(t.endpoint);
    for (char& c : reason) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return markConnectError(absl::UnavailableError(
      absl::StrCat("cannot connect to xenctld at ", t.address, ": ", reason, "; ", connectAdvice(t))));
}

// What a tcp: connection presents and trusts, read from the files.
Result<std::shared_ptr<grpc::ChannelCredentials>> tlsCredentials(const Target& t, const TlsFiles& tls) {
  std::vector<std::string> missing;
  if (tls.cert.empty()) missing.push_back(absl::StrCat("--cert (or $", kCertEnv, ")"));
  if (tls.key.empty()) missing.push_back(absl::StrCat("--key (or $", kKeyEnv, ")"));
  if (tls.ca.empty()) missing.push_back(absl::StrCat("--ca (or $", kCaEnv, ")"));
  if (!missing.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        "connecting to ", t.address, " needs mutual TLS: give ", absl::StrJoin(missing, ", "),
        ": the client certificate and key, and the CA of xenctld's certificate"));
  grpc::SslCredentialsOptions options;
  for (auto [flag, path, out] : {std::tuple{"--cert", &tls.cert, &options.pem_cert_chain},
                                 std::tuple{"--key", &tls.key, &options.pem_private_key},
                                 std::tuple{"--ca", &tls.ca, &options.pem_root_certs}}) {
    std::ifstream f(*path, std::ios::binary);
    if (f) *out = std::string{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    if (!f || out->find("-----BEGIN ") == std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat("reading ", flag, " ", *path, ": ",
                                                     f ? "no PEM in it" : std::strerror(errno)));
  }
  return grpc::SslCredentials(options);
}

Status waitConnected(grpc::Channel& channel, const Target& t, absl::Duration timeout) {
  const auto deadline = deadlineIn(timeout);
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN)
      return connectError(t, t.kind == Target::Kind::kUnix
                                 ? "connection failed"
                                 : "connection refused or TLS handshake failed (--ca must hold the CA of xenctld's "
                                   "certificate, which must name the host; xenctld's client_ca must have signed "
                                   "--cert, and neither may have expired)");
    if (!channel.WaitForStateChange(state, deadline))
      return connectError(t, absl::StrCat("no answer within ", absl::FormatDuration(timeout)));
    state = channel.GetState(true);
  }
  return absl::OkStatus();
}

}  // namespace

Result<std::unique_ptr<Client>> Client::connect(const Target& target, const TlsFiles& tls,
                                                absl::Duration connect_timeout, absl::Duration call_timeout) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (target.kind == Target::Kind::kTcp) {
    XENCTL_ASSIGN_OR_RETURN(credentials, tlsCredentials(target, tls));
  }
  grpc::ChannelArguments args;
  // One attempt, reported at once: the CLI tells the user rather than retrying.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  auto channel = grpc::CreateCustomChannel(target.grpc_target, credentials, args);
  XENCTL_RETURN_IF_ERROR(waitConnected(*channel, target, connect_timeout));
  return std::unique_ptr<Client>(new Client(target, std::move(channel), call_timeout));
}

Client::Client(Target target, std::shared_ptr<grpc::Channel> channel, absl::Duration call_timeout)
    : target_(std::move(target)), channel_(std::move(channel)), call_timeout_(call_timeout) {}

std::chrono::system_clock::time_point Client::deadline() const { return deadlineIn(call_timeout_); }

std::optional<std::string> oversizeRequest(std::string_view grpc_message, size_t request_bytes) {
  absl::string_view m(grpc_message.data(), grpc_message.size());
  size_t n = 0, max = 0;
  if (!absl::ConsumePrefix(&m, "Received message larger than max (") || !absl::ConsumeSuffix(&m, ")")) return std::nullopt;
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(m, absl::MaxSplits(" vs. ", 1));
  if (!absl::SimpleAtoi(parts.first, &n) || !absl::SimpleAtoi(parts.second, &max) || n != request_bytes)
    return std::nullopt;
  return absl::StrCat("the request is ", n, " bytes, more than xenctld takes: ", max,
                      " bytes ([daemon] max_request_size in its config); send less, or raise it");
}

Status Client::fromGrpc(const grpc::Status& s, size_t request_bytes) const {
  if (s.ok()) return absl::OkStatus();
  if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && request_bytes)
    if (std::optional<std::string> why = oversizeRequest(s.error_message(), request_bytes))
      return absl::ResourceExhaustedError(*why);
  // A transport failure, not the server's answer: the daemon went away.
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && channel_->GetState(false) != GRPC_CHANNEL_READY)
    return markConnectError(absl::UnavailableError(
        absl::StrCat("lost the connection to xenctld at ", target_.address, ": ", s.error_message())));
  return Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

Result<v1::Domain> Client::getDomain(const std::string& name) {
  v1::GetDomainRequest req;
  req.set_name(name);
  return call(&v1::DomainService::Stub::GetDomain, req);
}

Result<v1::Operation> Client::watchOperation(const std::string& id, const OperationSink& sink) {
  v1::WatchOperationRequest req;
  req.set_id(id);
  v1::OperationService::Stub stub(channel_);
  grpc::ClientContext ctx;  // no deadline: an operation may take as long as it takes
  auto reader = stub.WatchOperation(&ctx, req);
  v1::Operation msg;
  std::optional<v1::Operation> last;
  while (reader->Read(&msg)) {
    last = msg;
    if (sink) sink(*last);
  }
  XENCTL_RETURN_IF_ERROR(fromGrpc(reader->Finish()));
  if (!last || !isFinished(*last))
    return absl::UnavailableError(
        absl::StrCat("the daemon ended the watch of operation ", id, " before it finished; see `vmm watch ", id, "`"));
  return *last;
}

Result<v1::Operation> Client::waitOperation(const v1::Operation& op, const OperationSink& sink,
                                            absl::Duration poll) {
  v1::Operation last = op;
  // The daemon answers a little before the call's deadline.
  const absl::Duration each = std::max(absl::Seconds(1), std::min(poll, call_timeout_ - absl::Seconds(1)));
  while (!isFinished(last)) {
    if (sink) sink(last);
    v1::WaitOperationRequest req;
    req.set_id(op.id());
    req.set_timeout_seconds(static_cast<uint32_t>(absl::ToInt64Seconds(each)));
    XENCTL_ASSIGN_OR_RETURN(last, call(&v1::OperationService::Stub::WaitOperation, req));
  }
  if (sink) sink(last);
  return last;
}

Result<std::string> Client::attachConsole(const std::string& name, bool read_only,
                                          const std::function<void(std::string_view)>& output,
                                          const std::function<std::optional<std::string>()>& input) {
  v1::DomainService::Stub stub(channel_);
  grpc::ClientContext ctx;  // no deadline: a session lasts as long as its user wants
  auto stream = stub.AttachConsole(&ctx);
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
  XENCTL_RETURN_IF_ERROR(fromGrpc(st));
  return closed;
}

bool isFinished(const v1::Operation& op) {
  std::optional<core::OperationState> state = protoconv::fromProto(op.state());
  return state && core::isFinished(*state);
}

Status operationStatus(const v1::Operation& op) {
  const std::string what = absl::StrCat("operation ", op.id(), " (", op.kind(), " ", op.target(), ")");
  switch (op.state()) {
    case v1::OPERATION_STATE_SUCCEEDED: return absl::OkStatus();
    case v1::OPERATION_STATE_CANCELLED: return absl::CancelledError(absl::StrCat(what, " was cancelled"));
    case v1::OPERATION_STATE_FAILED: {
      auto code = static_cast<absl::StatusCode>(op.status_code());
      if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
      return Status(code, op.status_message().empty() ? absl::StrCat(what, " failed") : op.status_message());
    }
    default: {
      std::optional<core::OperationState> state = protoconv::fromProto(op.state());
      return absl::FailedPreconditionError(absl::StrCat("operation ", op.id(), " has not finished (",
                                                        state ? av(core::toString(*state)) : "unknown", ")"));
    }
  }
}

}  // namespace xenctl::client
