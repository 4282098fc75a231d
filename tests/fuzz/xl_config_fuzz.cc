// libFuzzer entry for the xl config reader (readXlConfig over libxlutil).
// Any text must map onto a spec or fail with INVALID_ARGUMENT; nothing else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/xen/xl_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = xenctl::xen::readXlConfig(text, "fuzz.cfg");
  if (!spec.ok() && spec.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
  return 0;
}
