#include "daemon/pools.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "lib/storage/dir_volumes.h"
#include "lib/storage/file_ops.h"
#include "lib/storage/lvm_shell.h"
#include "lib/storage/lvm_volumes.h"
#include "lib/sys/posix_process_runner.h"

namespace xenctl::daemon {

Result<std::unique_ptr<provision::StorageManager>> openStorage(const Config& config, provision::OperationRegistry& ops,
                                                               const core::Clock& clock,
                                                               provision::VolumeUsage& usage) {
  std::vector<std::unique_ptr<core::VolumeManager>> pools;
  auto tools = std::make_shared<sys::PosixProcessRunner>();
  storage::LvmCommon lvm;
  lvm.clock = &clock;
  lvm.runner = tools;
  lvm.lvm = std::make_shared<storage::LvmShells>();  // started on first use
  lvm.groups = std::make_shared<storage::VolumeGroups>();
  lvm.models = storage::VgModels::onHost(lvm.lvm);  // VGs read from their PVs, lvs when it cannot
  lvm.warn = [](const std::string& message) { spdlog::warn("{}", message); };
  lvm.await_device = storage::awaitBlockDevice;  // clones wait for udev outside the VG lock
  for (const PoolConfig& pc : effectivePools(config)) {
    if (pc.driver == "lvm-thin") {
      XENCTL_ASSIGN_OR_RETURN(
          auto thin, storage::LvmThinVolumes::open(pc.name,
                                                   {pc.vg, pc.thinpool, pc.max_overcommit, pc.data_watermark,
                                                    pc.metadata_watermark},
                                                   lvm));
      spdlog::info("pool {}: lvm-thin {}/{} (max over-commit {}x, watermarks data {}% metadata {}%)", pc.name, pc.vg,
                   pc.thinpool, pc.max_overcommit, pc.data_watermark, pc.metadata_watermark);
      pools.push_back(std::move(thin));
      continue;
    }
    if (pc.driver == "lvm-snapshot") {
      XENCTL_ASSIGN_OR_RETURN(auto snap, storage::LvmSnapshotVolumes::open(
                                             pc.name,
                                             {pc.vg, pc.snapshot_size_mib << 20, pc.snapshot_percent,
                                              pc.snapshot_watermark},
                                             lvm));
      spdlog::info("pool {}: lvm-snapshot on VG {} (copy-on-write stores of {}, watermark {}%)", pc.name, pc.vg,
                   pc.snapshot_size_mib ? absl::StrCat(pc.snapshot_size_mib, " MiB")
                                        : absl::StrCat(pc.snapshot_percent, "% of the origin"),
                   pc.snapshot_watermark);
      pools.push_back(std::move(snap));
      continue;
    }
    if (pc.driver != "dir")
      return absl::InvalidArgumentError(absl::StrCat("pool '", pc.name, "': driver \"", pc.driver, "\" is unknown"));
    XENCTL_ASSIGN_OR_RETURN(auto dir, storage::DirVolumes::open(pc.name, pc.path, clock, tools));
    spdlog::info("pool {}: dir {} ({})", pc.name, pc.path, dir->reflink() ? "reflink clones" : "sparse copies");
    pools.push_back(std::move(dir));
  }
  return std::make_unique<provision::StorageManager>(std::move(pools), ops, usage);
}

}  // namespace xenctl::daemon
