// Reading back an archive a test made or stored: unpacked whole into a new
// directory by lib/image's safe extractor.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "lib/core/status.h"
#include "lib/image/archive_extractor.h"

namespace xenctl::test_support {

/// Makes the directory `dir` and unpacks `archive` (any format the
/// extractor reads) into it.
inline Status unpackArchive(const std::string& archive, const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0) return errnoStatus(errno, absl::StrCat("making ", dir));
  bool given = false;
  auto x = image::extractArchive(
      [&]() -> Result<std::string> {
        if (given) return std::string();
        given = true;
        return archive;
      },
      dir, {});
  return x.status();
}

}  // namespace xenctl::test_support
