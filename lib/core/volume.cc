#include "lib/core/volume.h"

#include "absl/strings/str_cat.h"
#include "lib/core/domain.h"

namespace xenctl::core {

Status validateVolumeName(std::string_view name, std::string_view what) { return validateObjectName(name, what); }

std::string snapshotName(std::string_view volume, std::string_view snapshot) {
  return absl::StrCat(av(volume), "@", av(snapshot));
}

Status validateVolumeSize(uint64_t size_bytes) {
  if (size_bytes < kMinVolumeBytes || size_bytes > kMaxVolumeBytes)
    return absl::InvalidArgumentError(absl::StrCat("volume size ", size_bytes, " bytes is out of range; use 1 MiB to ",
                                                   kMaxVolumeBytes >> 60, " EiB"));
  if (size_bytes % 512 != 0)
    return absl::InvalidArgumentError(
        absl::StrCat("volume size ", size_bytes, " bytes is not a whole number of 512-byte sectors"));
  return absl::OkStatus();
}

}  // namespace xenctl::core
