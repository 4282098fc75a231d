#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/support/temp_dir.h"

namespace xenctl::storage::testing {

using xenctl::test_support::readAll;
using xenctl::test_support::TempDir;

inline void writeAt(const std::string& path, uint64_t offset, const std::string& data) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

/// `n` bytes of a pattern that differs per `seed`, with no zero byte.
inline std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(1 + (i * 7 + static_cast<size_t>(seed)) % 251);
  return s;
}

}  // namespace xenctl::storage::testing
