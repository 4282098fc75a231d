// FakeFetcher: serves URIs from memory, in chunks, and remembers what was asked.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <map>
#include <optional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/core/fetcher.h"

namespace xenctl::fakes {

class FakeFetcher : public core::Fetcher {
 public:
  void serve(const std::string& uri, std::string body) {
    std::lock_guard lock(mu_);
    files_[uri] = std::move(body);
  }
  /// Makes fetches of `uri` fail with `status` after `after_bytes` bytes.
  void failAfter(const std::string& uri, uint64_t after_bytes, Status status) {
    std::lock_guard lock(mu_);
    failures_[uri] = {after_bytes, std::move(status)};
  }
  /// Makes fetches of `uri` stop after `after_bytes` bytes until the fetch
  /// is cancelled (options.stop), as a stalled server would.
  void blockAfter(const std::string& uri, uint64_t after_bytes) {
    std::lock_guard lock(mu_);
    blocks_[uri] = after_bytes;
  }
  /// Waits until a fetch is blocked by blockAfter.
  void waitBlocked() {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return blocked_; });
  }
  std::vector<std::string> requested() const {
    std::lock_guard lock(mu_);
    return requested_;
  }
  /// The file_roots the last fetch or put was given.
  std::optional<std::vector<std::string>> lastFileRoots() const {
    std::lock_guard lock(mu_);
    return last_file_roots_;
  }

  Result<core::FetchResult> fetch(const std::string& uri, const core::ByteSink& sink,
                                  const core::FetchOptions& options) override {
    std::string body;
    std::optional<std::pair<uint64_t, Status>> failure;
    std::optional<uint64_t> block;
    {
      std::lock_guard lock(mu_);
      requested_.push_back(uri);
      last_file_roots_ = options.file_roots;
      auto it = files_.find(uri);
      if (it == files_.end()) return absl::NotFoundError(absl::StrCat("fetching ", uri, ": not served by the fake"));
      body = it->second;
      if (auto f = failures_.find(uri); f != failures_.end()) failure = f->second;
      if (auto b = blocks_.find(uri); b != blocks_.end()) block = b->second;
    }
    if (options.max_bytes != 0 && body.size() > options.max_bytes)
      return absl::ResourceExhaustedError(absl::StrCat("fetching ", uri, ": more than the limit"));
    core::FetchResult r;
    for (size_t pos = 0; pos < body.size(); pos += kChunk) {
      if (options.stop.stop_requested()) return absl::CancelledError(absl::StrCat("fetching ", uri, ": cancelled"));
      if (block && pos >= *block) {
        std::unique_lock lock(mu_);
        blocked_ = true;
        changed_.notify_all();
        std::condition_variable_any cv;
        cv.wait(lock, options.stop, [] { return false; });
        return absl::CancelledError(absl::StrCat("fetching ", uri, ": cancelled"));
      }
      if (failure && pos + kChunk > failure->first) {
        if (failure->first > pos)
          XENCTL_RETURN_IF_ERROR(sink(std::string_view(body).substr(pos, failure->first - pos)));
        return failure->second;
      }
      XENCTL_RETURN_IF_ERROR(sink(std::string_view(body).substr(pos, kChunk)));
      r.bytes = std::min<uint64_t>(pos + kChunk, body.size());
      if (options.progress) options.progress({r.bytes, body.size(), 0, 1});
    }
    return r;
  }

  Result<uint64_t> put(const std::string& uri, const core::ByteSource& source,
                       const core::FetchOptions& options) override {
    {
      std::lock_guard lock(mu_);
      last_file_roots_ = options.file_roots;
    }
    std::string body;
    char buf[kChunk];
    for (;;) {
      if (options.stop.stop_requested()) return absl::CancelledError(absl::StrCat("storing ", uri, ": cancelled"));
      XENCTL_ASSIGN_OR_RETURN(size_t n, source(buf, sizeof buf));
      if (n == 0) break;
      body.append(buf, n);
    }
    serve(uri, body);
    return body.size();
  }

 private:
  static constexpr size_t kChunk = 4096;
  mutable std::mutex mu_;
  std::map<std::string, std::string> files_;
  std::map<std::string, std::pair<uint64_t, Status>> failures_;
  std::vector<std::string> requested_;
  std::map<std::string, uint64_t> blocks_;
  bool blocked_ = false;
  std::optional<std::vector<std::string>> last_file_roots_;
  std::condition_variable changed_;
};

}  // namespace xenctl::fakes
