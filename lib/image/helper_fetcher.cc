#include "lib/image/helper_fetcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lib/sys/spawn.h"

namespace xenctl::image {
namespace {

using core::FetchOptions;
using core::FetchProgress;
using core::FetchResult;

constexpr size_t kChunk = 64 * 1024;

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      ++i;
      out += s[i] == 'n' ? '\n' : s[i];
    } else {
      out += s[i];
    }
  }
  return out;
}

// What the child reported last: nothing yet, or its final line.
struct Outcome {
  bool final = false;
  Status status;
  FetchResult result;
};

// Handles one report line. INTERNAL for a line the protocol does not have.
Status handleLine(absl::string_view line, const FetchOptions& options, bool forward_progress, Outcome& out) {
  const std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(' ', 4));
  if (f[0] == "progress" && f.size() == 5) {
    FetchProgress p;
    if (!absl::SimpleAtoi(f[1], &p.bytes) || !absl::SimpleAtoi(f[2], &p.total) ||
        !absl::SimpleAtod(f[3], &p.bytes_per_second) || !absl::SimpleAtoi(f[4], &p.attempt))
      return absl::InternalError(absl::StrCat("bad progress report '", line, "'"));
    if (forward_progress && options.progress) options.progress(p);
    return absl::OkStatus();
  }
  if (f[0] == "done" && f.size() == 4) {
    out.final = true;
    if (!absl::SimpleAtoi(f[1], &out.result.bytes) || !absl::SimpleAtoi(f[2], &out.result.attempts) ||
        !absl::SimpleAtoi(f[3], &out.result.resumes))
      return absl::InternalError(absl::StrCat("bad result report '", line, "'"));
    return absl::OkStatus();
  }
  if (f[0] == "error" && f.size() >= 2) {
    const std::vector<absl::string_view> e = absl::StrSplit(line.substr(6), absl::MaxSplits(' ', 1));
    int code = 0;
    if (!absl::SimpleAtoi(e[0], &code) || code <= 0 || code > 16)
      return absl::InternalError(absl::StrCat("bad error report '", line, "'"));
    out.final = true;
    out.status = Status(static_cast<absl::StatusCode>(code), e.size() > 1 ? unescape(std::string_view(e[1].data(), e[1].size())) : "");
    return absl::OkStatus();
  }
  return absl::InternalError(absl::StrCat("unknown report '", line, "'"));
}

// One transfer through the child: `sink` for get, `source` for put.
Result<FetchResult> transfer(const std::string& helper, const char* mode, const std::string& uri,
                             const FetchOptions& options, const core::ByteSink* sink, const core::ByteSource* source) {
  const std::string what = absl::StrCat("running ", helper, " to ", mode, " ", uri);
  XENCTL_ASSIGN_OR_RETURN(sys::Pipe body, sys::makePipe());
  XENCTL_ASSIGN_OR_RETURN(sys::Pipe reports, sys::makePipe());
  sys::SpawnOptions so;
  so.argv = {helper, mode, uri};
  for (auto& a : helperArgs(options)) so.argv.push_back(std::move(a));
  so.fds = {{sink ? 1 : 0, sink ? body.write.get() : body.read.get()}, {3, reports.write.get()}};
  so.own_process_group = true;
  Result<sys::Child> spawned = sys::spawn(so);
  if (!spawned.ok())
    return absl::InternalError(absl::StrCat(what, ": ", spawned.status().message(),
                                            "; reinstall xenctl (xenctl-fetch does every download and upload)"));
  sys::Child child = std::move(*spawned);
  sys::UniqueFd data = sink ? std::move(body.read) : std::move(body.write);
  (sink ? body.write : body.read).reset();
  reports.write.reset();
  if (source) fcntl(data.get(), F_SETFL, fcntl(data.get(), F_GETFL) | O_NONBLOCK);

  sys::UniqueFd stopfd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stopfd) return errnoStatus(errno, what);
  std::stop_callback on_stop(options.stop, [&] {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stopfd.get(), &one, sizeof one);
  });

  // The sink's or source's error, once one failed: the child is stopped and
  // its result no longer matters.
  std::optional<Status> local_error;
  bool terminated = false;
  const auto terminate = [&] {
    if (!terminated && child.running()) ::kill(child.pid(), SIGTERM);
    terminated = true;
  };
  Outcome outcome;
  std::string line_buf;
  std::string out_buf;  // put: bytes taken from the source, not yet written
  size_t out_pos = 0;
  bool source_done = false;
  std::vector<char> chunk(kChunk);

  while (reports.read || data) {
    pollfd p[3];
    int n = 0;
    int ri = -1, di = -1, si = -1;
    if (reports.read) p[ri = n++] = {reports.read.get(), POLLIN, 0};
    if (data) p[di = n++] = {data.get(), static_cast<short>(sink ? POLLIN : POLLOUT), 0};
    if (!terminated) p[si = n++] = {stopfd.get(), POLLIN, 0};
    if (::poll(p, n, -1) < 0) {
      if (errno == EINTR) continue;
      const Status s = errnoStatus(errno, what);
      child.kill();
      return s;
    }
    if (si >= 0 && p[si].revents) terminate();
    if (ri >= 0 && p[ri].revents) {
      const ssize_t got = ::read(reports.read.get(), chunk.data(), chunk.size());
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        reports.read.reset();
      } else {
        line_buf.append(chunk.data(), got);
        size_t nl;
        while ((nl = line_buf.find('\n')) != std::string::npos) {
          const Status s = handleLine(absl::string_view(line_buf.data(), nl), options,
                                      !terminated && !local_error, outcome);
          line_buf.erase(0, nl + 1);
          if (!s.ok() && !local_error) {
            local_error = absl::InternalError(absl::StrCat(what, ": ", s.message()));
            terminate();
          }
        }
      }
    }
    if (di >= 0 && p[di].revents && sink) {
      const ssize_t got = ::read(data.get(), chunk.data(), chunk.size());
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        data.reset();
      } else if (!terminated && !local_error) {
        Status s = sink->operator()(std::string_view(chunk.data(), got));
        if (!s.ok()) {
          local_error = std::move(s);
          terminate();
        }
      }
    } else if (di >= 0 && p[di].revents && source) {
      if (terminated || local_error) {
        child.kill();  // as above: never end a cancelled upload's body
        data.reset();
        continue;
      }
      if (out_pos == out_buf.size() && !source_done) {
        out_buf.resize(kChunk);
        out_pos = 0;
        Result<size_t> got = (*source)(out_buf.data(), out_buf.size());
        if (!got.ok()) {
          // SIGKILL, not SIGTERM: closing the body would otherwise let the
          // child store a cut-short body as if it were whole.
          local_error = got.status();
          terminated = true;
          child.kill();
          data.reset();
          continue;
        }
        out_buf.resize(*got);
        source_done = *got == 0;
      }
      if (out_pos < out_buf.size()) {
        const ssize_t w = ::write(data.get(), out_buf.data() + out_pos, out_buf.size() - out_pos);
        if (w > 0) {
          out_pos += w;
        } else if (errno != EAGAIN && errno != EINTR) {
          data.reset();  // the child stopped reading: its report says why
        }
      } else if (source_done) {
        data.reset();  // end of the body
      }
    }
  }
  const int exit_status = child.wait();
  if (local_error) return *local_error;
  // Stopped by the caller: cancelled, even when the child's result came
  // before its SIGTERM (as the in-process transfer answers a stop seen
  // between two chunks).
  if (terminated) return absl::CancelledError(absl::StrCat(mode, " ", uri, ": cancelled"));
  if (outcome.final) {
    if (!outcome.status.ok()) return outcome.status;
    return outcome.result;
  }
  return absl::InternalError(absl::StrCat(what, ": it ended (status ", exit_status,
                                          ") without a result; see the journal for a crash of xenctl-fetch"));
}

}  // namespace

Result<FetchResult> HelperFetcher::fetch(const std::string& uri, const core::ByteSink& sink,
                                         const FetchOptions& options) {
  return transfer(helper_, "get", uri, options, &sink, nullptr);
}

Result<uint64_t> HelperFetcher::put(const std::string& uri, const core::ByteSource& source,
                                    const FetchOptions& options) {
  XENCTL_ASSIGN_OR_RETURN(FetchResult r, transfer(helper_, "put", uri, options, nullptr, &source));
  return r.bytes;
}

Result<std::string> findFetchHelper(const std::string& installed) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return errnoStatus(ec.value(), "finding xenctld's own executable (/proc/self/exe) to find xenctl-fetch");
  const std::filesystem::path dir = self.parent_path();
  const std::filesystem::path beside = dir / "xenctl-fetch";
  if (::access(beside.c_str(), X_OK) == 0) return beside.string();
  const std::filesystem::path packaged = (dir / installed).lexically_normal();
  if (::access(packaged.c_str(), X_OK) == 0) return packaged.string();
  return absl::NotFoundError(absl::StrCat("the download helper xenctl-fetch is neither at ", beside.string(),
                                          " nor at ", packaged.string(), "; reinstall xenctl"));
}

std::vector<std::string> helperArgs(const FetchOptions& o) {
  const auto us = [](absl::Duration d) { return absl::StrCat(absl::ToInt64Microseconds(d)); };
  std::vector<std::string> a = {"--connect-timeout-us", us(o.connect_timeout),
                                "--low-speed-bytes",    absl::StrCat(o.low_speed_bytes),
                                "--low-speed-time-us",  us(o.low_speed_time),
                                "--max-retries",        absl::StrCat(o.max_retries),
                                "--retry-backoff-us",   us(o.retry_backoff),
                                "--max-backoff-us",     us(o.max_backoff),
                                "--max-redirects",      absl::StrCat(o.max_redirects),
                                "--max-bytes",          absl::StrCat(o.max_bytes),
                                "--total-timeout-us",   us(o.total_timeout),
                                "--max-bytes-setting",  o.settings.max_bytes,
                                "--total-timeout-setting", o.settings.total_timeout,
                                "--low-speed-time-setting", o.settings.low_speed_time,
                                "--ca-file",            o.ca_file};
  if (o.file_roots) {
    a.insert(a.end(), {"--file-roots", "confined"});
    for (const auto& r : *o.file_roots) a.insert(a.end(), {"--file-root", r});
  }
  return a;
}

Result<FetchOptions> parseHelperArgs(const std::vector<std::string>& args) {
  FetchOptions o;
  if (args.size() % 2 != 0) return absl::InvalidArgumentError("fetch options: an option without a value");
  for (size_t i = 0; i < args.size(); i += 2) {
    const std::string& k = args[i];
    const std::string& v = args[i + 1];
    const auto bad = [&] { return absl::InvalidArgumentError(absl::StrCat("fetch option ", k, ": bad value '", v, "'")); };
    int64_t n = 0;
    const bool num = absl::SimpleAtoi(v, &n) && n >= 0;
    const auto dur = [&](absl::Duration& d) {
      if (!num) return false;
      d = absl::Microseconds(n);
      return true;
    };
    bool ok = true;
    if (k == "--connect-timeout-us") {
      ok = dur(o.connect_timeout);
    } else if (k == "--low-speed-bytes") {
      ok = num, o.low_speed_bytes = n;
    } else if (k == "--low-speed-time-us") {
      ok = dur(o.low_speed_time);
    } else if (k == "--max-retries") {
      ok = num, o.max_retries = static_cast<int>(n);
    } else if (k == "--retry-backoff-us") {
      ok = dur(o.retry_backoff);
    } else if (k == "--max-backoff-us") {
      ok = dur(o.max_backoff);
    } else if (k == "--max-redirects") {
      ok = num, o.max_redirects = static_cast<int>(n);
    } else if (k == "--max-bytes") {
      ok = num, o.max_bytes = n;
    } else if (k == "--total-timeout-us") {
      ok = dur(o.total_timeout);
    } else if (k == "--max-bytes-setting") {
      o.settings.max_bytes = v;
    } else if (k == "--total-timeout-setting") {
      o.settings.total_timeout = v;
    } else if (k == "--low-speed-time-setting") {
      o.settings.low_speed_time = v;
    } else if (k == "--ca-file") {
      o.ca_file = v;
    } else if (k == "--file-roots") {
      ok = v == "confined";
      if (!o.file_roots) o.file_roots.emplace();
    } else if (k == "--file-root") {
      if (!o.file_roots) o.file_roots.emplace();
      o.file_roots->push_back(v);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("fetch options: unknown option ", k));
    }
    if (!ok) return bad();
  }
  return o;
}

std::string encodeProgress(const FetchProgress& p) {
  return absl::StrCat("progress ", p.bytes, " ", p.total, " ", p.bytes_per_second, " ", p.attempt, "\n");
}

std::string encodeDone(uint64_t bytes, int attempts, int resumes) {
  return absl::StrCat("done ", bytes, " ", attempts, " ", resumes, "\n");
}

std::string encodeError(const Status& status) {
  return absl::StrCat("error ", static_cast<int>(status.code()), " ", escape(std::string(status.message())), "\n");
}

}  // namespace xenctl::image
