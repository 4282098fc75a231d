// CurlFetcher: the Fetcher port on libcurl (file, http, https, ftp).
#pragma once

#include <memory>

#include "lib/core/fetcher.h"

namespace xenctl::image {

/// One libcurl easy handle per fetch, so one CurlFetcher serves any number
/// of threads. Redirects may go to http, https or ftp, never to file://.
/// An interrupted transfer is retried from where it stopped (HTTP Range,
/// FTP REST, file offset); a server that ignores ranges is read again from
/// the start and the bytes the sink already has are skipped, so the sink
/// always sees one continuous stream.
class CurlFetcher final : public core::Fetcher {
 public:
  /// Initialises libcurl once per process. FAILED_PRECONDITION when it cannot.
  static Result<std::unique_ptr<CurlFetcher>> create();

  Result<core::FetchResult> fetch(const std::string& uri, const core::ByteSink& sink,
                                  const core::FetchOptions& options) override;
  Result<uint64_t> put(const std::string& uri, const core::ByteSource& source,
                       const core::FetchOptions& options) override;

 private:
  CurlFetcher() = default;
};

}  // namespace xenctl::image
