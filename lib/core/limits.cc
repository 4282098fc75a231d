#include "lib/core/limits.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace xenctl::core {

Status checkLength(std::string_view value, size_t max, std::string_view what) {
  if (value.size() <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(av(what), " is ", value.size(), " bytes, more than the limit of ", max, "; give a shorter one"));
}

Status checkCount(size_t count, size_t max, std::string_view what) {
  if (count <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(av(what), ": ", count, " given, more than the limit of ", max));
}

std::string truncateText(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  // " ... (N bytes cut)" takes at most 32 bytes for any size_t N.
  constexpr size_t kSuffix = 32;
  size_t keep = max > kSuffix ? max - kSuffix : 0;
  // Back up to the start of a UTF-8 sequence: continuation bytes are 10xxxxxx.
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  return absl::StrCat(av(text.substr(0, keep)), " ... (", text.size() - keep, " bytes cut)");
}

}  // namespace xenctl::core
