#include "lib/image/uri.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace xenctl::image {

Result<std::string> uriScheme(std::string_view uri) {
  size_t colon = uri.find("://");
  if (colon != std::string_view::npos) {
    std::string scheme = absl::AsciiStrToLower(av(uri.substr(0, colon)));
    if (scheme == "file" || scheme == "http" || scheme == "https" || scheme == "ftp") return scheme;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", av(uri), "' is not a URI xenctl fetches; give a file://, http://, https:// or ftp:// URI"));
}

std::string siblingUri(std::string_view uri, std::string_view name) {
  std::string_view path = uri.substr(0, uri.find_first_of("?#"));
  size_t slash = path.rfind('/');
  return absl::StrCat(av(path.substr(0, slash == std::string_view::npos ? 0 : slash + 1)), av(name));
}

std::string uriBasename(std::string_view uri) {
  std::string_view path = uri.substr(0, uri.find_first_of("?#"));
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

}  // namespace xenctl::image
