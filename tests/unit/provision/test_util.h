#pragma once

#include "lib/core/domain.h"
#include "lib/provision/caller.h"
#include "lib/provision/operation_registry.h"

namespace xenctl::provision {

/// A caller with every right, as the daemon's callers are until roles are mapped.
inline Caller adminCaller(std::string request_id = "", int64_t uid = 0) {
  Caller c(std::move(request_id), uid);
  c.role = core::Role::kAdmin;
  return c;
}

/// A spec of `mem` MiB and one vcpu that may grow to 4 vcpus and 2 GiB.
inline core::DomainSpec smallSpec(const std::string& name, uint64_t mem) {
  core::DomainSpec s;
  s.name = name;
  s.memory_mib = mem;
  s.vcpus = 1;
  s.maxvcpus = 4;
  s.maxmem_mib = 2048;
  return s;
}

/// Waits (bounded) for an operation to finish and returns its final record.
inline core::OperationRecord waitFinished(const OperationRegistry& ops, const std::string& id) {
  core::OperationRecord r;
  uint64_t seen = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    r = *ops.waitChange(id, seen, deadline);
    seen = r.version;
  } while (!core::isFinished(r.state) && absl::Now() < deadline);
  return r;
}

}  // namespace xenctl::provision
