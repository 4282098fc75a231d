// A private temporary directory for a fuzz target's files, made on first use
// and removed (with everything in it) when the process exits.
#pragma once
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace xenctl::fuzz {

/// TMPDIR/xenctl-fuzz-WHAT.XXXXXX; aborts when it cannot be made.
inline const std::filesystem::path& tempDir(const char* what) {
  static const std::filesystem::path dir = [what] {
    std::string d = (std::filesystem::temp_directory_path() / (std::string("xenctl-fuzz-") + what + ".XXXXXX")).string();
    if (!mkdtemp(d.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    return std::filesystem::path(d);
  }();
  static const bool registered = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    });
    return true;
  }();
  (void)registered;
  return dir;
}

}  // namespace xenctl::fuzz
