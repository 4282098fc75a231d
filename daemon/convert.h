// proto <-> lib types, and Status -> grpc::Status. The only place both kinds meet.
#pragma once

#include <grpcpp/support/status.h>

#include "lib/core/domain.h"
#include "lib/core/domain_event.h"
#include "lib/core/hypervisor.h"
#include "lib/core/operation.h"
#include "lib/provision/domain_manager.h"
#include "xenctl/v1/domain.pb.h"
#include "xenctl/v1/host.pb.h"
#include "xenctl/v1/operation.pb.h"

namespace xenctl::daemon {

grpc::Status toGrpc(const Status& st);

/// INVALID_ARGUMENT for enum values this daemon does not know.
Result<core::DomainSpec> fromProto(const v1::DomainSpec& p);
void toProto(const core::DomainSpec& s, v1::DomainSpec* p);
void toProto(const provision::DomainView& v, v1::Domain* p);
void toProto(const core::OperationRecord& r, v1::Operation* p);
void toProto(const core::DomainEvent& e, v1::DomainEvent* p);
v1::DomainState toProto(core::DomainState s);

}  // namespace xenctl::daemon
