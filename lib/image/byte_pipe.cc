#include "lib/image/byte_pipe.h"

namespace xenctl::image {

Status BytePipe::write(std::string_view data) {
  if (data.empty()) return Status();
  std::unique_lock lock(mu_);
  // A chunk larger than the capacity still goes in once the pipe is empty.
  changed_.wait(lock, [&] { return read_closed_ || queued_ == 0 || queued_ + data.size() <= capacity_; });
  if (read_closed_) return read_status_;
  chunks_.emplace_back(data);
  queued_ += data.size();
  changed_.notify_all();
  return Status();
}

void BytePipe::closeWrite(Status status) {
  std::lock_guard lock(mu_);
  if (write_closed_) return;
  write_closed_ = true;
  write_status_ = std::move(status);
  changed_.notify_all();
}

Result<std::string> BytePipe::read() {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return !chunks_.empty() || write_closed_; });
  if (!chunks_.empty()) {
    std::string out = std::move(chunks_.front());
    chunks_.pop_front();
    queued_ -= out.size();
    changed_.notify_all();
    return out;
  }
  if (!write_status_.ok()) return write_status_;
  return std::string();
}

void BytePipe::closeRead(Status why) {
  std::lock_guard lock(mu_);
  if (read_closed_) return;
  read_closed_ = true;
  read_status_ = why.ok() ? absl::CancelledError("the reader stopped") : std::move(why);
  chunks_.clear();
  queued_ = 0;
  changed_.notify_all();
}

}  // namespace xenctl::image
