#include "daemon/pools.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "lib/storage/dir_volumes.h"
#include "lib/sys/posix_process_runner.h"

namespace xenctl::daemon {

Result<std::unique_ptr<provision::StorageManager>> openStorage(const Config& config, provision::OperationRegistry& ops,
                                                               const core::Clock& clock) {
  std::vector<std::unique_ptr<core::VolumeManager>> pools;
  auto tools = std::make_shared<sys::PosixProcessRunner>();
  for (const PoolConfig& pc : effectivePools(config)) {
    if (pc.driver != "dir")
      return absl::InvalidArgumentError(absl::StrCat("pool '", pc.name, "': driver \"", pc.driver, "\" is not built"));
    XENCTL_ASSIGN_OR_RETURN(auto dir, storage::DirVolumes::open(pc.name, pc.path, clock, tools));
    spdlog::info("pool {}: dir {} ({})", pc.name, pc.path, dir->reflink() ? "reflink clones" : "sparse copies");
    pools.push_back(std::move(dir));
  }
  return std::make_unique<provision::StorageManager>(std::move(pools), ops);
}

}  // namespace xenctl::daemon
