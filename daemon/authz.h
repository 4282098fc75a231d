// Authorization and audit at the API's edge: one table maps every RPC to
// the rule it needs (provision::AccessPolicy decides) and to the request
// fields that name its target; admit() applies it at the start of each
// handler, and audit() writes the one record of every change and refusal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>

#include "lib/provision/access_policy.h"
#include "lib/provision/caller.h"

namespace xenctl::daemon {

struct ServiceContext;

/// One row of the table.
struct RpcRule {
  std::string_view method;  ///< "DomainService.StartDomain"
  provision::Rule rule;
  /// The request field naming the target ("name", "spec.name"), and its pool's ("" = none).
  std::string_view target_field;
  std::string_view pool_field;
  /// A bool field that, when set, makes the call a read (viewer) of the
  /// same target: AttachConsole's read_only.
  std::string_view read_only_field;
};

/// The table; nullptr for a method it lacks (which is then refused).
const RpcRule* ruleFor(std::string_view method);

/// "Service.Method" of every method of the xenctl.v1 services, from the
/// protobuf descriptors compiled into the binary.
std::vector<std::string> apiMethods();

/// Who calls: the Unix peer's uid, gid and groups (or, remote, unknown),
/// and its role from the configuration.
provision::Caller callerOf(const ServiceContext& c, grpc::ServerContextBase* ctx, const std::string& request_id);

/// The caller, when the table's rule for `method` lets it make this
/// request; PERMISSION_DENIED (audited) otherwise.
Result<provision::Caller> admit(const ServiceContext& c, grpc::ServerContextBase* ctx, std::string_view method,
                                const google::protobuf::Message& request);

/// The target the table names in `request`, for messages and the audit.
std::string targetOf(std::string_view method, const google::protobuf::Message& request);

/// One audit record: identity, role, method, target, request_id, outcome.
/// Under systemd a journal entry with the fields XENCTL_IDENTITY,
/// XENCTL_ROLE, XENCTL_METHOD, XENCTL_TARGET, XENCTL_REQUEST_ID and
/// XENCTL_OUTCOME; elsewhere a log line "audit identity=... outcome=...".
/// Never request bodies: no spec, user-data, password hash or key.
void audit(const provision::Caller& caller, std::string_view method, const std::string& target,
           const std::string& outcome);

}  // namespace xenctl::daemon
