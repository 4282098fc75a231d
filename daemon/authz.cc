#include "daemon/authz.h"

#include <openssl/evp.h>
#include <syslog.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <spdlog/spdlog.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/services.h"
#include "lib/sys/journal.h"

namespace xenctl::daemon {
namespace {

using core::Role;
using provision::Scope;

constexpr provision::Rule kRead{Role::kViewer, Scope::kHost};
constexpr provision::Rule kReadDomain{Role::kViewer, Scope::kDomain};
constexpr provision::Rule kActOnDomain{Role::kOperator, Scope::kDomain};
constexpr provision::Rule kUseVolume{Role::kOperator, Scope::kVolume};
constexpr provision::Rule kAdmin{Role::kAdmin, Scope::kHost};

// Every RPC, what it needs and what it names. A viewer reads; an operator
// acts on its own domains and their volumes, and creates domains (on its
// volumes, from catalog images into configured pools); host-wide changes
// (blank volumes, images, containers) are an admin's. Lists, events and
// operations are filtered to what the caller may see in the handlers.
constexpr RpcRule kRules[] = {
    {"DomainService.CreateDomain", {Role::kOperator, Scope::kHost}, "spec.name", "", ""},
    {"DomainService.GetDomain", kReadDomain, "name", "", ""},
    {"DomainService.ListDomains", kRead, "", "", ""},
    {"DomainService.StartDomain", kActOnDomain, "name", "", ""},
    {"DomainService.ShutdownDomain", kActOnDomain, "name", "", ""},
    {"DomainService.RebootDomain", kActOnDomain, "name", "", ""},
    {"DomainService.DestroyDomain", kActOnDomain, "name", "", ""},
    {"DomainService.DeleteDomain", kActOnDomain, "name", "", ""},
    {"DomainService.PauseDomain", kActOnDomain, "name", "", ""},
    {"DomainService.UnpauseDomain", kActOnDomain, "name", "", ""},
    {"DomainService.SetDomainResources", kActOnDomain, "name", "", ""},
    {"DomainService.AttachConsole", kActOnDomain, "name", "", "read_only"},
    {"DomainService.WatchEvents", kRead, "name", "", ""},
    {"DomainService.ForkDomain", kActOnDomain, "source", "", ""},
    // Reads the guest's files, not only what the host knows of it.
    {"DomainService.DiffDomain", kActOnDomain, "name", "", ""},
    // Further: only its owner grants, only an admin gives it away (AccessPolicy).
    {"DomainService.SetDomainAccess", kActOnDomain, "name", "", ""},
    {"OperationService.GetOperation", {Role::kViewer, Scope::kOperation}, "id", "", ""},
    {"OperationService.ListOperations", kRead, "target", "", ""},
    {"OperationService.WatchOperation", {Role::kViewer, Scope::kOperation}, "id", "", ""},
    {"OperationService.CancelOperation", {Role::kOperator, Scope::kOperation}, "id", "", ""},
    {"OperationService.WaitOperation", {Role::kViewer, Scope::kOperation}, "id", "", ""},
    {"HostService.GetHostInfo", kRead, "", "", ""},
    {"VolumeService.CreateVolume", kAdmin, "name", "pool", ""},
    {"VolumeService.CloneVolume", kUseVolume, "source", "pool", ""},
    {"VolumeService.SnapshotVolume", kUseVolume, "volume", "pool", ""},
    {"VolumeService.RollbackVolume", kUseVolume, "volume", "pool", ""},
    {"VolumeService.ResizeVolume", kUseVolume, "name", "pool", ""},
    {"VolumeService.DeleteVolume", kUseVolume, "name", "pool", ""},
    // Changes the volume's files as CreateDomain's customize phase does.
    {"VolumeService.CustomizeVolume", kUseVolume, "name", "pool", ""},
    // Dom0 block devices for a cluster manager's storage hook (docs/ganeti.md).
    {"VolumeService.AttachVolume", kUseVolume, "name", "pool", ""},
    {"VolumeService.DetachVolume", kUseVolume, "name", "pool", ""},
    {"VolumeService.ListVolumes", kRead, "pool", "", ""},
    {"VolumeService.ListPools", kRead, "", "", ""},
    {"ImageService.ImportImage", kAdmin, "name", "", ""},
    {"ImageService.ListImages", kRead, "", "", ""},
    {"ImageService.DeleteImage", kAdmin, "name", "", ""},
    {"ImageService.ExportImage", kAdmin, "source", "", ""},
    {"ContainerService.ApplyContainer", kAdmin, "file_name", "", ""},
    {"ContainerService.StripContainer", kRead, "file_name", "", ""},
};


// The value of a (dotted) field of `m`, as text; "" when absent.
std::string fieldText(const google::protobuf::Message& m, std::string_view path) {
  if (path.empty()) return "";
  const google::protobuf::Message* cur = &m;
  std::vector<std::string> parts = absl::StrSplit(absl::string_view(path.data(), path.size()), '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto* f = cur->GetDescriptor()->FindFieldByName(parts[i]);
    if (!f || f->is_repeated()) return "";
    const auto* r = cur->GetReflection();
    if (i + 1 < parts.size()) {
      if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE || !r->HasField(*cur, f)) return "";
      cur = &r->GetMessage(*cur, f);
      continue;
    }
    switch (f->cpp_type()) {
      case google::protobuf::FieldDescriptor::CPPTYPE_STRING: return r->GetString(*cur, f);
      case google::protobuf::FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(*cur, f) ? "true" : "";
      default: return "";
    }
  }
  return "";
}

// What `request` asks of `method`, for OperationRegistry to tell a repeat
// from another request under the same request_id: SHA-256 of the method and
// the request's deterministic serialization without its request_id, hex.
std::string requestDigest(std::string_view method, const google::protobuf::Message& request) {
  std::unique_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  if (const auto* f = copy->GetDescriptor()->FindFieldByName("request_id")) copy->GetReflection()->ClearField(copy.get(), f);
  std::string bytes(method);
  bytes.push_back('\0');
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    copy->SerializeToCodedStream(&coded);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) absl::StrAppendFormat(&hex, "%02x", md[i]);
  return hex;
}

// A value for a key=value log line: as is when plain, else quoted and escaped.
std::string logValue(const std::string& v) {
  if (!v.empty() && v.find_first_of(" \"\\=\t\r\n") == std::string::npos && absl::CEscape(v) == v) return v;
  return absl::StrCat("\"", absl::CEscape(v), "\"");
}

}  // namespace

const RpcRule* ruleFor(std::string_view method) {
  for (const auto& r : kRules)
    if (r.method == method) return &r;
  return nullptr;
}

std::vector<std::string> apiMethods() {
  // The files whose services are the API, each through one of its messages
  // (which also links the file's descriptor into the binary).
  const google::protobuf::FileDescriptor* files[] = {
      v1::CreateDomainRequest::descriptor()->file(), v1::GetOperationRequest::descriptor()->file(),
      v1::GetHostInfoRequest::descriptor()->file(),  v1::CreateVolumeRequest::descriptor()->file(),
      v1::ImportImageRequest::descriptor()->file(),  v1::ApplyContainerRequest::descriptor()->file()};
  std::vector<std::string> out;
  for (const auto* file : files) {
    for (int s = 0; s < file->service_count(); ++s)
      for (int m = 0; m < file->service(s)->method_count(); ++m)
        out.push_back(absl::StrCat(file->service(s)->name(), ".", file->service(s)->method(m)->name()));
  }
  return out;
}

provision::Caller callerOf(const ServiceContext& c, grpc::ServerContextBase* ctx, const std::string& request_id) {
  provision::Caller caller;
  caller.request_id = request_id;
  const std::string peer_name = ctx->peer();
  sys::PeerCredentials peer = c.peers.lookup(peer_name);
  caller.uid = static_cast<int64_t>(static_cast<int32_t>(peer.uid));
  if (caller.uid >= 0) {
    caller.identity.kind = core::Identity::Kind::kUnix;
    caller.identity.uid = caller.uid;
    caller.identity.gid = static_cast<int64_t>(static_cast<int32_t>(peer.gid));
    caller.identity.groups = c.peers.groups(peer_name, peer);
  } else if (auto cert = certificateIdentity(*ctx->auth_context())) {
    caller.identity = *std::move(cert);
  }
  // Deny by default: an identity nothing in [access] binds has no role.
  caller.role = c.access.roleOf(caller.identity);
  return caller;
}

std::string targetOf(std::string_view method, const google::protobuf::Message& request) {
  const RpcRule* r = ruleFor(method);
  if (!r) return "";
  std::string name = fieldText(request, r->target_field);
  if (r->pool_field.empty()) return name;
  std::string pool = fieldText(request, r->pool_field);
  return absl::StrCat(pool.empty() ? "(default)" : pool, "/", name);
}

Result<provision::Caller> admit(const ServiceContext& c, grpc::ServerContextBase* ctx, std::string_view method,
                                const google::protobuf::Message& request) {
  provision::Caller caller = callerOf(c, ctx, fieldText(request, "request_id"));
  if (!caller.request_id.empty()) caller.request_digest = requestDigest(method, request);
  const RpcRule* r = ruleFor(method);
  Status st;
  if (!r) {
    st = absl::PermissionDeniedError(absl::StrCat("permission denied: ", av(method),
                                                  " has no authorization rule in xenctld; nobody may call it"));
  } else {
    provision::Rule rule = r->rule;
    if (!r->read_only_field.empty() && fieldText(request, r->read_only_field) == "true") rule.need = Role::kViewer;
    provision::Target target{fieldText(request, r->target_field), fieldText(request, r->pool_field)};
    st = c.access.authorize(caller, method, rule, target);
  }
  if (!st.ok()) {
    audit(caller, method, targetOf(method, request), absl::StrCat("denied: ", st.message()));
    return st;
  }
  return caller;
}

void audit(const provision::Caller& caller, std::string_view method, const std::string& target,
           const std::string& outcome) {
  const std::string identity = core::principal(caller.identity);
  const std::string role(core::toString(caller.role));
  const std::string line =
      absl::StrCat("audit identity=", logValue(identity), " role=", role, " method=", av(method),
                   " target=", logValue(target), " request_id=", logValue(caller.request_id),
                   " outcome=", logValue(outcome));
  if (sys::stderrIsJournal() &&
      sys::sendToJournal(LOG_INFO, line,
                         {{"XENCTL_IDENTITY", identity},
                          {"XENCTL_ROLE", role},
                          {"XENCTL_METHOD", std::string(method)},
                          {"XENCTL_TARGET", target},
                          {"XENCTL_REQUEST_ID", caller.request_id},
                          {"XENCTL_OUTCOME", outcome}}))
    return;
  spdlog::info("{}", line);
}

}  // namespace xenctl::daemon
