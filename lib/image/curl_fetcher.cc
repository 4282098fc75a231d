#include "lib/image/curl_fetcher.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/image/uri.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::image {
namespace {

using core::FetchOptions;
using core::FetchProgress;
using core::FetchResult;

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

// What one transfer attempt shares with libcurl's callbacks.
struct Attempt {
  const core::ByteSink* sink = nullptr;
  const FetchOptions* options = nullptr;
  const std::string* uri = nullptr;
  uint64_t delivered = 0;  // bytes given to the sink over all attempts
  uint64_t skip = 0;       // bytes of this attempt the sink already has (server ignored the range)
  uint64_t offset = 0;     // where this attempt started
  int number = 1;
  bool ranged = true;      // the server honours ranges: its sizes count from `offset`
  CURL* easy = nullptr;
  Status sink_status;      // set when the sink or the size limit stopped the transfer
  std::chrono::steady_clock::time_point last_report{};
};

size_t onWrite(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* a = static_cast<Attempt*>(userdata);
  size_t n = size * nmemb;
  std::string_view chunk(data, n);
  if (a->skip > 0) {
    size_t drop = static_cast<size_t>(std::min<uint64_t>(a->skip, chunk.size()));
    chunk.remove_prefix(drop);
    a->skip -= drop;
    if (chunk.empty()) return n;
  }
  uint64_t limit = a->options->max_bytes;
  if (limit != 0 && a->delivered + chunk.size() > limit) {
    a->sink_status = absl::ResourceExhaustedError(
        absl::StrCat("fetching ", av(*a->uri), ": more than the limit of ", limit, " bytes arrived; raise ",
                     a->options->settings.max_bytes, " if it really is that large"));
    return CURL_WRITEFUNC_ERROR;
  }
  Status st = (*a->sink)(chunk);
  if (!st.ok()) {
    a->sink_status = std::move(st);
    return CURL_WRITEFUNC_ERROR;
  }
  a->delivered += chunk.size();
  return n;
}

int onProgress(void* userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* a = static_cast<Attempt*>(userdata);
  if (a->options->stop.stop_requested()) return 1;  // CURLE_ABORTED_BY_CALLBACK
  if (!a->options->progress) return 0;
  auto now = std::chrono::steady_clock::now();
  if (now - a->last_report < std::chrono::milliseconds(100)) return 0;
  a->last_report = now;
  FetchProgress p;
  p.bytes = a->delivered;
  p.total = dltotal <= 0 ? 0 : static_cast<uint64_t>(dltotal) + (a->ranged ? a->offset : 0);
  p.attempt = a->number;
  curl_off_t speed = 0;
  if (curl_easy_getinfo(a->easy, CURLINFO_SPEED_DOWNLOAD_T, &speed) == CURLE_OK)
    p.bytes_per_second = static_cast<double>(speed);
  (void)dlnow;
  a->options->progress(p);
  return 0;
}

bool transient(CURLcode rc, long http_code) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_FTP_ACCEPT_TIMEOUT:
    case CURLE_FTP_CANT_GET_HOST:
    case CURLE_WEIRD_SERVER_REPLY:
      return true;
    case CURLE_HTTP_RETURNED_ERROR:
      return http_code == 408 || http_code == 429 || http_code >= 500;
    default:
      return false;
  }
}

Status curlError(const std::string& uri, CURLcode rc, long http_code, const char* detail, int attempts,
                 const FetchOptions& options) {
  std::string what = absl::StrCat("fetching ", av(uri), ": ", *detail ? detail : curl_easy_strerror(rc));
  if (attempts > 1) absl::StrAppend(&what, " (after ", attempts, " attempts)");
  if (rc == CURLE_OPERATION_TIMEDOUT && absl::StrContains(what, "too slow"))
    absl::StrAppend(&what, "; the server stalled: ", options.settings.low_speed_time, " (",
                    absl::ToInt64Seconds(options.low_speed_time), " s) sets how long a transfer may stall");
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return absl::InvalidArgumentError(absl::StrCat(what, "; give a file://, http://, https:// or ftp:// URI"));
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_REMOTE_FILE_NOT_FOUND:
      return absl::NotFoundError(absl::StrCat(what, "; check the URI"));
    case CURLE_LOGIN_DENIED:
    case CURLE_REMOTE_ACCESS_DENIED:
      return absl::PermissionDeniedError(absl::StrCat(what, "; check the credentials and the server's permissions"));
    case CURLE_FILESIZE_EXCEEDED:
      return absl::ResourceExhaustedError(absl::StrCat(what, ": the announced size is more than the limit of ",
                                                       options.max_bytes, " bytes; raise ",
                                                       options.settings.max_bytes, " if it really is that large"));
    case CURLE_TOO_MANY_REDIRECTS:
      return absl::FailedPreconditionError(absl::StrCat(what, "; give the final URI"));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return absl::FailedPreconditionError(
          absl::StrCat(what, "; the server's TLS certificate is not trusted: add its CA to the trusted CAs"));
    case CURLE_HTTP_RETURNED_ERROR:
      if (http_code == 404 || http_code == 410) return absl::NotFoundError(absl::StrCat(what, "; check the URI"));
      if (http_code == 401 || http_code == 403)
        return absl::PermissionDeniedError(absl::StrCat(what, "; the server refuses access"));
      if (transient(rc, http_code)) return absl::UnavailableError(absl::StrCat(what, "; try again later"));
      return absl::FailedPreconditionError(what);
    default:
      if (transient(rc, http_code)) return absl::UnavailableError(absl::StrCat(what, "; try again later"));
      return absl::UnknownError(what);
  }
}

// Bounds the retries that made progress (and so were not counted).
constexpr int kMaxAttempts = 64;

int64_t toMillis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// What a download and an upload set alike: the URI, the protocols xenctl
// speaks, errors into `errbuf`, HTTP errors as failures, the timeouts and the
// CA bundle of `options`.
void setCommon(CURL* c, const std::string& url, char* errbuf, const FetchOptions& options) {
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "file,http,https,ftp");
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(toMillis(options.connect_timeout)));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(options.low_speed_bytes));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(std::max<int64_t>(1, absl::ToInt64Seconds(options.low_speed_time))));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "xenctld/0.1");
  if (!options.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
}

// Waits `d` or until `stop` fires; false when it fired.
bool waitOrStop(absl::Duration d, const std::stop_token& stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return !cv.wait_for(lock, stop, std::chrono::milliseconds(toMillis(d)), [] { return false; });
}

// A file:// URI's file, opened by us rather than by libcurl: only a regular
// file (a FIFO would block the transfer forever, a device is not an image),
// beneath options.file_roots when set. libcurl is then given
// file:///proc/self/fd/N, which reopens the same inode.
class LocalFile {
 public:
  /// For reading (`create` false) or for storing into (created 0644 when
  /// missing, emptied when present).
  static Result<LocalFile> open(const std::string& uri, const FetchOptions& options, bool create) {
    const std::string verb = create ? "storing " : "fetching ";
    XENCTL_ASSIGN_OR_RETURN(std::string path, fileUriPath(uri));
    LocalFile f;
    int dirfd = AT_FDCWD;
    std::string rel = path;
    std::string root;
    if (options.file_roots) {
      for (const auto& r : *options.file_roots)
        if (pathIsUnder(path, r) && path.size() > r.size() && r.size() >= root.size()) root = r;
      if (root.empty())
        return absl::PermissionDeniedError(absl::StrCat(verb, uri, ": ", path,
                                                        " is not under a directory this caller may use ([security] "
                                                        "allowed_paths)"));
      f.root_ = sys::UniqueFd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!f.root_) return errnoStatus(errno, absl::StrCat(verb, uri, ": opening ", root));
      dirfd = f.root_.get();
      rel = path.substr(root == "/" ? 1 : root.size() + 1);
    }
    // Looked at through O_PATH first: a FIFO or a device is never opened.
    sys::UniqueFd node(openAt(dirfd, rel, O_PATH | (create ? O_NOFOLLOW : 0), 0, !root.empty()));
    if (!node && errno != ENOENT) return openError(errno, verb, uri, root);
    if (!node && !create) return absl::NotFoundError(absl::StrCat(verb, uri, ": ", path, " does not exist"));
    if (node) XENCTL_RETURN_IF_ERROR(regular(node.get(), verb, uri));
    if (create) {
      f.fd_ = sys::UniqueFd(openAt(dirfd, rel, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0644,
                                   !root.empty()));
      if (!f.fd_) return openError(errno, verb, uri, root);
      XENCTL_RETURN_IF_ERROR(regular(f.fd_.get(), verb, uri));
      if (::ftruncate(f.fd_.get(), 0) != 0) return errnoStatus(errno, absl::StrCat(verb, uri, ": emptying it"));
    } else {
      f.fd_ = std::move(node);
    }
    f.url_ = absl::StrCat("file:///proc/self/fd/", f.fd_.get());
    return f;
  }
  const std::string& url() const { return url_; }

 private:
  static int openAt(int dirfd, const std::string& rel, int flags, mode_t mode, bool beneath) {
    if (!beneath) return ::openat(dirfd, rel.c_str(), flags | O_CLOEXEC, mode);
    open_how how{};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    int fd;
    do fd = static_cast<int>(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
    while (fd < 0 && errno == EAGAIN);
    return fd;
  }
  static Status openError(int err, const std::string& verb, const std::string& uri, const std::string& root) {
    if (err == EXDEV)
      return absl::PermissionDeniedError(absl::StrCat(verb, uri, ": its path leads out of ", root,
                                                      " (through '..' or a symlink); give a path inside it"));
    if (err == ELOOP) return absl::FailedPreconditionError(absl::StrCat(verb, uri, ": it is a symlink; give the file"));
    if (err == ENXIO) return absl::FailedPreconditionError(absl::StrCat(verb, uri, ": it is not a regular file"));
    return errnoStatus(err, absl::StrCat(verb, uri));
  }
  static Status regular(int fd, const std::string& verb, const std::string& uri) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return errnoStatus(errno, absl::StrCat(verb, uri));
    if (S_ISREG(st.st_mode)) return absl::OkStatus();
    const char* kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                       : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device"
                       : S_ISDIR(st.st_mode) ? "a directory"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISLNK(st.st_mode)  ? "a symlink"
                                              : "not a regular file";
    return absl::FailedPreconditionError(absl::StrCat(
        verb, uri, ": it is ", kind, "; file:// reads and writes only regular files"));
  }

  sys::UniqueFd root_, fd_;
  std::string url_;
};

// The remaining time of a total timeout; `deadline` InfiniteFuture without one.
absl::Time deadlineOf(const FetchOptions& options) {
  return options.total_timeout > absl::ZeroDuration() ? absl::Now() + options.total_timeout
                                                      : absl::InfiniteFuture();
}

Status totalTimeoutError(const std::string& uri, const FetchOptions& options, uint64_t bytes) {
  return absl::DeadlineExceededError(absl::StrCat("fetching ", uri, ": not finished within ",
                                                  absl::FormatDuration(options.total_timeout), " (", bytes,
                                                  " bytes so far); raise ", options.settings.total_timeout,
                                                  " for a download that long"));
}

}  // namespace

Result<std::unique_ptr<CurlFetcher>> CurlFetcher::create() {
  static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (init != CURLE_OK)
    return absl::FailedPreconditionError(absl::StrCat("initialising libcurl: ", curl_easy_strerror(init)));
  return std::unique_ptr<CurlFetcher>(new CurlFetcher());
}

Result<FetchResult> CurlFetcher::fetch(const std::string& uri, const core::ByteSink& sink,
                                       const FetchOptions& options) {
  const Result<std::string> scheme = uriScheme(uri);
  if (!scheme.ok()) return scheme.status();
  std::optional<LocalFile> local;
  if (*scheme == "file") {
    XENCTL_ASSIGN_OR_RETURN(local, LocalFile::open(uri, options, /*create=*/false));
  }
  const std::string& url = local ? local->url() : uri;
  const absl::Time deadline = deadlineOf(options);
  Attempt a;
  a.sink = &sink;
  a.options = &options;
  a.uri = &uri;
  FetchResult result;
  bool ranges_work = true;
  absl::Duration backoff = options.retry_backoff;
  int retries_left = options.max_retries;

  for (int attempt = 1;; ++attempt) {
    if (options.stop.stop_requested())
      return absl::CancelledError(absl::StrCat("fetching ", av(uri), ": cancelled"));
    Easy easy(curl_easy_init());
    if (!easy) return absl::ResourceExhaustedError(absl::StrCat("fetching ", av(uri), ": curl_easy_init failed"));
    CURL* c = easy.get();
    char errbuf[CURL_ERROR_SIZE] = {0};
    a.number = attempt;
    a.offset = ranges_work ? a.delivered : 0;
    a.skip = ranges_work ? 0 : a.delivered;
    a.ranged = ranges_work;
    a.easy = c;
    a.sink_status = Status();

    setCommon(c, url, errbuf, options);
    if (deadline != absl::InfiniteFuture()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return totalTimeoutError(uri, options, a.delivered);
      curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, toMillis(left))));
    }
    // A redirect never leads to file:// (nor to any scheme but these).
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https,ftp");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, static_cast<long>(options.max_redirects));
    // Fewer, larger chunks: each one is a sink call and a copy into the pipe.
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L << 10);
    if (options.max_bytes != 0)
      curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes - a.offset));
    if (a.offset > 0) {
      curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(a.offset));
      ++result.resumes;
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, onWrite);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, onProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &a);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

    auto started = std::chrono::steady_clock::now();
    uint64_t before = a.delivered;
    CURLcode rc = curl_easy_perform(c);
    long http_code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http_code);
    result.attempts = attempt;

    if (rc == CURLE_OK) {
      result.bytes = a.delivered;
      if (options.progress) {
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        FetchProgress p;
        p.bytes = p.total = a.delivered;
        p.bytes_per_second = secs > 0 ? static_cast<double>(a.delivered - before) / secs : 0;
        p.attempt = attempt;
        options.progress(p);
      }
      return result;
    }
    if (!a.sink_status.ok()) return a.sink_status;
    if (rc == CURLE_ABORTED_BY_CALLBACK)
      return absl::CancelledError(absl::StrCat("fetching ", av(uri), ": cancelled after ", a.delivered, " bytes"));
    if (rc == CURLE_OPERATION_TIMEDOUT && absl::Now() >= deadline) return totalTimeoutError(uri, options, a.delivered);
    if (rc == CURLE_RANGE_ERROR && ranges_work && a.offset > 0) {
      // The server sent the whole body to a range request: read it again from
      // the start and skip what the sink already has. Not counted as a retry.
      ranges_work = false;
      continue;
    }
    bool progressed = a.delivered > before;
    if (!transient(rc, http_code) || (retries_left <= 0 && !progressed) || attempt >= kMaxAttempts)
      return curlError(uri, rc, http_code, errbuf, attempt, options);
    // A dropped connection that delivered data earns its retry back: a long
    // download over a flaky link is not failed for one drop per gigabyte.
    if (progressed) {
      backoff = options.retry_backoff;
    } else {
      --retries_left;
    }
    if (absl::Now() + backoff >= deadline) return totalTimeoutError(uri, options, a.delivered);
    if (!waitOrStop(backoff, options.stop))
      return absl::CancelledError(absl::StrCat("fetching ", av(uri), ": cancelled while waiting to retry"));
    backoff = std::min(backoff * 2, options.max_backoff);
  }
}

namespace {

struct Upload {
  const core::ByteSource* source = nullptr;
  const FetchOptions* options = nullptr;
  uint64_t sent = 0;
  Status source_status;
  std::chrono::steady_clock::time_point last_report{};
};

size_t onRead(char* buf, size_t size, size_t nitems, void* userdata) {
  auto* u = static_cast<Upload*>(userdata);
  Result<size_t> n = (*u->source)(buf, size * nitems);
  if (!n.ok()) {
    u->source_status = n.status();
    return CURL_READFUNC_ABORT;
  }
  u->sent += *n;
  return *n;
}

int onUploadProgress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
  auto* u = static_cast<Upload*>(userdata);
  if (u->options->stop.stop_requested()) return 1;
  if (!u->options->progress) return 0;
  auto now = std::chrono::steady_clock::now();
  if (now - u->last_report < std::chrono::milliseconds(100)) return 0;
  u->last_report = now;
  FetchProgress p;
  p.bytes = static_cast<uint64_t>(ulnow);
  u->options->progress(p);
  return 0;
}

}  // namespace

Result<uint64_t> CurlFetcher::put(const std::string& uri, const core::ByteSource& source,
                                  const FetchOptions& options) {
  const Result<std::string> scheme = uriScheme(uri);
  if (!scheme.ok()) return scheme.status();
  std::optional<LocalFile> local;
  if (*scheme == "file") {
    XENCTL_ASSIGN_OR_RETURN(local, LocalFile::open(uri, options, /*create=*/true));
  }
  Easy easy(curl_easy_init());
  if (!easy) return absl::ResourceExhaustedError(absl::StrCat("storing ", uri, ": curl_easy_init failed"));
  CURL* c = easy.get();
  char errbuf[CURL_ERROR_SIZE] = {0};
  Upload u;
  u.source = &source;
  u.options = &options;
  setCommon(c, local ? local->url() : uri, errbuf, options);
  if (options.total_timeout > absl::ZeroDuration())
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(toMillis(options.total_timeout)));
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_FTP_CREATE_MISSING_DIRS, static_cast<long>(CURLFTP_CREATE_DIR));
  curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 512L << 10);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, onRead);
  curl_easy_setopt(c, CURLOPT_READDATA, &u);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, onUploadProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &u);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  CURLcode rc = curl_easy_perform(c);
  long http_code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http_code);
  if (rc == CURLE_OK) return u.sent;
  if (!u.source_status.ok()) return u.source_status;
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    return absl::CancelledError(absl::StrCat("storing ", uri, ": cancelled after ", u.sent, " bytes"));
  Status st = curlError(uri, rc, http_code, errbuf, 1, options);
  // curlError speaks of fetching; this is the other direction.
  return Status(st.code(), absl::StrCat("storing", st.message().substr(std::string_view("fetching").size())));
}

}  // namespace xenctl::image
