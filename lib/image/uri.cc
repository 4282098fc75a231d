#include "lib/image/uri.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
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

Result<std::string> fileUriPath(std::string_view uri) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("'", av(uri), "' is not a file:// URI of this host: ", av(why),
                                                   "; give file:///ABSOLUTE/PATH"));
  };
  if (!absl::StartsWithIgnoreCase(av(uri), "file://")) return bad("it does not start with file://");
  std::string_view rest = uri.substr(7);
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return bad("it has no path");
  std::string_view host = rest.substr(0, slash);
  if (!host.empty() && !absl::EqualsIgnoreCase(av(host), "localhost")) return bad("it names another host");
  // libcurl leaves a query and a fragment out of a file:// path.
  std::string_view encoded = rest.substr(slash);
  encoded = encoded.substr(0, encoded.find_first_of("?#"));
  auto hex = [](char c) {
    return absl::ascii_isdigit(c) ? c - '0' : absl::ascii_isxdigit(c) ? (c | 0x20) - 'a' + 10 : -1;
  };
  std::string path;
  for (size_t i = 0; i < encoded.size(); ++i) {
    int hi, lo;
    if (encoded[i] == '%' && i + 2 < encoded.size() && (hi = hex(encoded[i + 1])) >= 0 &&
        (lo = hex(encoded[i + 2])) >= 0) {
      path.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      path.push_back(encoded[i]);
    }
  }
  if (path.find('\0') != std::string::npos) return bad("its path holds a NUL byte");
  return path;
}

bool pathIsUnder(std::string_view path, std::string_view dir) {
  if (dir == "/") return absl::StartsWith(av(path), "/");
  return absl::StartsWith(av(path), av(dir)) && (path.size() == dir.size() || path[dir.size()] == '/');
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
