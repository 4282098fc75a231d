// lib types -> the daemon's own messages, and Status -> grpc::Status. The
// contract's shared types go through proto/convert.
#pragma once

#include <grpcpp/support/status.h>

#include "lib/core/domain.h"
#include "lib/core/domain_event.h"
#include "lib/core/hypervisor.h"
#include "lib/core/operation.h"
#include "lib/core/volume.h"
#include "lib/provision/domain_manager.h"
#include "lib/provision/provisioner.h"
#include "lib/provision/root_differ.h"
#include "lib/provision/volume_customizer.h"
#include "xenctl/v1/domain.pb.h"
#include "xenctl/v1/host.pb.h"
#include "xenctl/v1/operation.pb.h"
#include "xenctl/v1/volume.pb.h"

namespace xenctl::daemon {

grpc::Status toGrpc(const Status& st);

void toProto(const provision::DomainView& v, v1::Domain* p);
void toProto(const core::OperationRecord& r, v1::Operation* p);
void toProto(const core::DomainEvent& e, v1::DomainEvent* p);
void toProto(const core::Volume& v, v1::Volume* p);
void toProto(const core::PoolInfo& pool, v1::PoolCapacity* p);
void toProto(const provision::RootDiff& d, v1::DiffDomainResponse* p);

/// A CreateDomain with a root: its root, customizations and identity choice
/// around `spec` (read from the request's spec or xl config). INVALID_ARGUMENT
/// for a customization with no kind (one this build does not know) or a
/// second hostname or a second container_text.
Result<provision::ProvisionRequest> provisionRequest(const v1::CreateDomainRequest& req, core::DomainSpec spec);

/// A CustomizeVolume: its typed customizations and interfaces.
/// INVALID_ARGUMENT for a network or container_text customization (not
/// taken here), one with no kind, or a second hostname.
Result<provision::VolumeCustomizer::Request> customizeVolumeRequest(const v1::CustomizeVolumeRequest& req);

}  // namespace xenctl::daemon
