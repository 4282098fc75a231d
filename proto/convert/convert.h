// The contract's shared types <-> lib/core types: one translation, used by
// the daemon (daemon/convert) and the client library (client/lib/convert).
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <optional>

#include "absl/time/time.h"
#include "lib/core/domain.h"
#include "lib/core/operation.h"
#include "xenctl/v1/domain.pb.h"
#include "xenctl/v1/operation.pb.h"

namespace xenctl::protoconv {

/// UNSPECIFIED enum values become the core defaults (PVH; destroy, restart,
/// destroy); values this build does not know are INVALID_ARGUMENT.
Result<core::DomainSpec> fromProto(const v1::DomainSpec& p);
void toProto(const core::DomainSpec& s, v1::DomainSpec* p);

v1::DomainState toProto(core::DomainState s);
/// nullopt for UNSPECIFIED or a value this build does not know.
std::optional<core::DomainState> fromProto(v1::DomainState s);

v1::OperationState toProto(core::OperationState s);
std::optional<core::OperationState> fromProto(v1::OperationState s);

void toProto(absl::Time t, google::protobuf::Timestamp* ts);
/// nullopt for an unset (zero) timestamp.
std::optional<absl::Time> fromProto(const google::protobuf::Timestamp& ts);

}  // namespace xenctl::protoconv
