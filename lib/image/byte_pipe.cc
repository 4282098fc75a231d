#include "lib/image/byte_pipe.h"

namespace xenctl::image {

namespace {
// Writes are appended to the last queued chunk up to this size.
constexpr size_t kCoalesceBytes = size_t{256} << 10;
}  // namespace

Status BytePipe::write(std::string_view data) {
  if (data.empty()) return Status();
  std::unique_lock lock(mu_);
  // A chunk larger than the capacity still goes in once the pipe is empty.
  auto room = [&] { return read_closed_ || queued_ == 0 || queued_ + data.size() <= capacity_; };
  if (!room()) {
    writer_waiting_ = true;
    changed_.wait(lock, room);
    writer_waiting_ = false;
  }
  if (read_closed_) return read_status_;
  if (!chunks_.empty() && chunks_.back().size() + data.size() <= kCoalesceBytes)
    chunks_.back().append(data);
  else
    chunks_.emplace_back(data);
  queued_ += data.size();
  if (reader_waiting_) changed_.notify_all();
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
  auto ready = [&] { return !chunks_.empty() || write_closed_; };
  if (!ready()) {
    reader_waiting_ = true;
    changed_.wait(lock, ready);
    reader_waiting_ = false;
  }
  if (!chunks_.empty()) {
    std::string out = std::move(chunks_.front());
    chunks_.pop_front();
    queued_ -= out.size();
    if (writer_waiting_ && queued_ <= capacity_ / 2) changed_.notify_all();
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
