// protobuf ⇄ plain values. Internal to the client library.
#pragma once

#include "client/lib/types.h"
#include "xenctl/v1/domain.pb.h"
#include "xenctl/v1/host.pb.h"
#include "xenctl/v1/image.pb.h"
#include "xenctl/v1/operation.pb.h"
#include "xenctl/v1/volume.pb.h"

namespace xenctl::client {

Domain fromProto(const v1::Domain& d);
Operation fromProto(const v1::Operation& op);
HostInfo fromProto(const v1::HostInfo& h);
Volume fromProto(const v1::Volume& v);
PoolCapacity fromProto(const v1::PoolCapacity& p);
Image fromProto(const v1::Image& i);
v1::CreateDomainRequest toProto(const CreateDomainArgs& args);

}  // namespace xenctl::client
