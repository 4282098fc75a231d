// The URIs images are fetched from: the schemes xenctl accepts, and the
// names of the files beside an image (URI.minisig, SHA256SUMS).
#pragma once

#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace xenctl::image {

/// "file", "http", "https", "ftp" for a URI with one of those schemes,
/// INVALID_ARGUMENT otherwise (naming the URI and the schemes allowed).
Result<std::string> uriScheme(std::string_view uri);

/// The host path a file:// URI names, percent-decoded as libcurl decodes it:
/// "file:///srv/a%20b.img" -> "/srv/a b.img". The host part must be empty or
/// "localhost". INVALID_ARGUMENT for another scheme, another host, a path
/// that is not absolute or one holding a NUL.
Result<std::string> fileUriPath(std::string_view uri);

/// `path` is `dir` or below it, compared by whole components (both absolute,
/// without trailing '/').
bool pathIsUnder(std::string_view path, std::string_view dir);

/// The URI with everything after the last '/' of its path replaced by `name`
/// ("https://h/a/img.tar.zst" + "SHA256SUMS" -> "https://h/a/SHA256SUMS").
std::string siblingUri(std::string_view uri, std::string_view name);
/// The last path component of the URI, query and fragment left out.
std::string uriBasename(std::string_view uri);

}  // namespace xenctl::image
