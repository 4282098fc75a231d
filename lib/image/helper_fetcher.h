// HelperFetcher: the Fetcher port as seen by xenctld. Each transfer runs in
// a child process, xenctl-fetch (daemon/fetch_main.cc), which does it with
// CurlFetcher. So libcurl and its dependency tree (TLS, Kerberos, LDAP,
// SSH, IDN, HTTP/2...) are mapped only while a transfer runs, not in the
// idle daemon (issue 17 part 5), and the parsers of outside input (HTTP,
// FTP, TLS) run outside the daemon. systemd-importd runs systemd-pull the
// same way.
//
// The protocol between the two, defined here for both sides:
//   xenctl-fetch get|put URI [--name value]...   (helperArgs / parseHelperArgs)
//   get: the body arrives on the child's fd 1; put: the body goes to its fd 0.
//   fd 3: report lines (encodeProgress / encodeDone / encodeError), the
//   last one "done ..." or "error ...".
//   SIGTERM: the child cancels as options.stop would (CANCELLED).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/fetcher.h"

namespace xenctl::image {

class HelperFetcher final : public core::Fetcher {
 public:
  /// `helper` is the path of the xenctl-fetch executable (see findFetchHelper).
  explicit HelperFetcher(std::string helper) : helper_(std::move(helper)) {}

  /// Same contract as CurlFetcher's: the child's error codes and messages
  /// come back unchanged; the sink's or source's own error when it fails
  /// (the child is then stopped); CANCELLED when `options.stop` fires.
  /// INTERNAL, naming the helper, when it cannot be started or ends without
  /// a result.
  Result<core::FetchResult> fetch(const std::string& uri, const core::ByteSink& sink,
                                  const core::FetchOptions& options) override;
  Result<uint64_t> put(const std::string& uri, const core::ByteSource& source,
                       const core::FetchOptions& options) override;

 private:
  std::string helper_;
};

/// Where xenctld finds xenctl-fetch: beside its own executable when it is
/// there (the build tree, the lab), else at `installed`, a path relative to
/// the executable's directory (the package: sbin/../libexec/xenctl/, so any
/// install prefix works). NOT_FOUND naming both when neither exists.
Result<std::string> findFetchHelper(const std::string& installed);

// --- the protocol (both sides) ---

/// The arguments after "get|put URI" that carry `options` (all but
/// progress and stop, which the protocol carries itself).
std::vector<std::string> helperArgs(const core::FetchOptions& options);
/// The inverse of helperArgs. INVALID_ARGUMENT naming a bad argument.
Result<core::FetchOptions> parseHelperArgs(const std::vector<std::string>& args);

std::string encodeProgress(const core::FetchProgress& p);
std::string encodeDone(uint64_t bytes, int attempts, int resumes);
std::string encodeError(const Status& status);

}  // namespace xenctl::image
