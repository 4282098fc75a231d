// The Fetcher port: streams the bytes at a URI into a sink, or from a
// source to a URI. Real:
// image::CurlFetcher (file, http, https, ftp). Test: a fake that serves
// strings from memory.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "lib/core/status.h"

namespace xenctl::core {

/// How far a transfer has come.
struct FetchProgress {
  uint64_t bytes = 0;          ///< bytes given to the sink so far (over all attempts)
  uint64_t total = 0;          ///< the size the server announced; 0 when unknown
  double bytes_per_second = 0; ///< the current attempt's average rate
  int attempt = 1;             ///< 1, then 2, 3 … after retries
};

struct FetchOptions {
  absl::Duration connect_timeout = absl::Seconds(30);
  /// A transfer slower than `low_speed_bytes` per second for `low_speed_time`
  /// is cut (and retried as a transient error).
  uint64_t low_speed_bytes = 1024;
  absl::Duration low_speed_time = absl::Seconds(60);
  /// Retries after a transient error (connection refused or dropped, timeout,
  /// HTTP 408/429/5xx). Each resumes where the last attempt stopped.
  int max_retries = 4;
  absl::Duration retry_backoff = absl::Seconds(1);  ///< doubles per retry
  absl::Duration max_backoff = absl::Seconds(30);
  int max_redirects = 5;
  /// More bytes than this is RESOURCE_EXHAUSTED; 0 means no limit. Checked
  /// against the size the server announces (Content-Length), before the
  /// body, and again as the bytes arrive.
  uint64_t max_bytes = 0;
  /// All attempts and the waits between them must end within this (0: no
  /// limit); then DEADLINE_EXCEEDED.
  absl::Duration total_timeout = absl::ZeroDuration();
  /// The settings behind max_bytes, total_timeout and low_speed_time, named
  /// in the errors they cause so that the reader knows what to change.
  struct SettingNames {
    std::string max_bytes = "[images] max_download_size";
    std::string total_timeout = "[images] fetch_timeout";
    std::string low_speed_time = "[images] fetch_stall_timeout";
  };
  SettingNames settings;
  /// file:// transfers read and write only regular files: a FIFO, a device,
  /// a directory or a socket is FAILED_PRECONDITION, found without opening
  /// it for reading or writing. When set, the path must also resolve beneath
  /// one of these directories (openat2 RESOLVE_BENEATH: neither ".." nor a
  /// symlink may lead out; PERMISSION_DENIED otherwise); an empty list allows
  /// no file:// at all. nullopt: anywhere.
  std::optional<std::vector<std::string>> file_roots;
  /// A PEM bundle of CAs to trust for https instead of the system's ("" = system).
  std::string ca_file;
  /// Called as bytes arrive, at most every ~100 ms, and once at the end.
  std::function<void(const FetchProgress&)> progress;
  /// Cancels the transfer (and a backoff wait): the fetch returns CANCELLED.
  std::stop_token stop;
};

/// Receives the body in order, exactly once even across retries and
/// resumes. A non-OK return stops the transfer and is what fetch() returns.
using ByteSink = std::function<Status(std::string_view chunk)>;

/// Gives the next bytes to send into `buf` (at most `max`), and how many;
/// 0 at the end. An error stops the transfer and is what put() returns.
using ByteSource = std::function<Result<size_t>(char* buf, size_t max)>;

struct FetchResult {
  uint64_t bytes = 0;  ///< bytes given to the sink
  int attempts = 1;    ///< 1 when no retry was needed
  int resumes = 0;     ///< attempts that continued from an offset (Range / REST)
};

class Fetcher {
 public:
  virtual ~Fetcher() = default;
  /// Streams `uri` into `sink`. Codes: INVALID_ARGUMENT for a malformed URI or
  /// an unsupported scheme; NOT_FOUND when there is nothing at the URI;
  /// PERMISSION_DENIED when the server refuses access; RESOURCE_EXHAUSTED past
  /// max_bytes; UNAVAILABLE when the retries are spent on transient errors;
  /// FAILED_PRECONDITION for an untrusted TLS certificate or too many
  /// redirects; CANCELLED when `options.stop` fired; the sink's own status.
  virtual Result<FetchResult> fetch(const std::string& uri, const ByteSink& sink, const FetchOptions& options) = 0;
  /// Stores what `source` gives at `uri`: file:// (created or replaced),
  /// ftp:// (STOR, missing directories created), http(s):// (PUT). Not
  /// retried: the source is a stream. Returns the bytes sent. Codes as
  /// fetch(), and the source's own error.
  virtual Result<uint64_t> put(const std::string& uri, const ByteSource& source, const FetchOptions& options) = 0;
};

}  // namespace xenctl::core
