// libFuzzer entry for lvm2's JSON reports (parseLvsReport, parseVgsReport):
// any text parses or fails with INVALID_ARGUMENT (NOT_FOUND for a missing VG).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/storage/lvm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  auto lvs = xenctl::storage::parseLvsReport(json);
  if (!lvs.ok() && lvs.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
  auto vgs = xenctl::storage::parseVgsReport(json, "vg0");
  if (!vgs.ok() && vgs.status().code() != absl::StatusCode::kInvalidArgument &&
      vgs.status().code() != absl::StatusCode::kNotFound)
    std::abort();
  return 0;
}
