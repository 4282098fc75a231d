#pragma once

#include "lib/provision/operation_registry.h"

namespace xenctl::provision {

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
