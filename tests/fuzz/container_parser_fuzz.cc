// libFuzzer entry for the container language's parser (DESIGN.md "Tests":
// every parser is fuzzed). Any input must parse or fail with an error;
// a parsed file's xl config is never longer than the input, and parsing
// the xl config again finds no expression in it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/customize/container_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = xenctl::customize::parseContainer(text, "fuzz.cfg");
  if (!parsed.ok()) return 0;
  if (parsed->xl_config.size() > size) std::abort();
  auto again = xenctl::customize::parseContainer(parsed->xl_config, "fuzz.cfg");
  if (!again.ok() || !again->statements.empty() || again->xl_config != parsed->xl_config) std::abort();
  return 0;
}
