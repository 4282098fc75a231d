// The configured storage pools, opened with their backends.
#pragma once

#include <memory>

#include "daemon/config.h"
#include "lib/core/clock.h"
#include "lib/provision/operation_registry.h"
#include "lib/provision/storage_manager.h"

namespace xenctl::daemon {

/// Opens every pool of effectivePools(config) (creating a dir pool's
/// directory). Errors name the pool and its path.
Result<std::unique_ptr<provision::StorageManager>> openStorage(const Config& config, provision::OperationRegistry& ops,
                                                               const core::Clock& clock,
                                                               provision::VolumeUsage& usage);

}  // namespace xenctl::daemon
