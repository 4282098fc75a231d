// BytePipe: a bounded queue of byte chunks between one writer thread (the
// fetcher) and one reader thread (the extractor). The writer blocks while
// the pipe holds `capacity` bytes, so a slow disk slows the download instead
// of filling memory.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace xenctl::image {

class BytePipe {
 public:
  explicit BytePipe(size_t capacity) : capacity_(capacity) {}

  /// Queues a copy of `data`, waiting while the pipe is full. Returns the
  /// reader's status once the reader has closed its end (it stopped reading).
  Status write(std::string_view data);
  /// Ends the stream: OK for a complete stream, else the error the reader sees.
  void closeWrite(Status status);

  /// The next chunk, waiting for one; an empty string at the end of a
  /// complete stream; the writer's error otherwise.
  Result<std::string> read();
  /// The reader stops: pending and later writes return `why`.
  void closeRead(Status why);

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::string> chunks_;
  size_t queued_ = 0;
  bool write_closed_ = false;
  Status write_status_;
  bool read_closed_ = false;
  Status read_status_;
};

}  // namespace xenctl::image
