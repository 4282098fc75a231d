// FdPoller: one thread that waits on many descriptors (epoll) and calls each
// one's handler when it is ready, so that a console stream served on gRPC's
// callback API waits for its guest without a thread of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "lib/core/status.h"
#include "lib/sys/unique_fd.h"

namespace xenctl::sys {

class FdPoller {
 public:
  /// Called on the poller's thread with the epoll events that fired.
  using Handler = std::function<void(uint32_t events)>;

  /// One descriptor watched. Nothing is waited for until arm().
  class Watch {
   public:
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    /// Stops watching; waits for a call of the handler in progress, and
    /// none comes after. Must not run inside that handler.
    ~Watch();
    /// Waits once for `events` (EPOLLIN, EPOLLOUT ...): the handler is called
    /// once when one is ready, and then nothing until the next arm(). May be
    /// called from the handler.
    Status arm(uint32_t events);

   private:
    friend class FdPoller;
    struct Entry {
      std::mutex mu;  // held while the handler runs
      Handler handler;
    };
    Watch(FdPoller& poller, int fd, uint64_t token, std::shared_ptr<Entry> entry)
        : poller_(poller), fd_(fd), token_(token), entry_(std::move(entry)) {}
    FdPoller& poller_;
    const int fd_;
    const uint64_t token_;
    std::shared_ptr<Entry> entry_;
  };

  /// Starts the thread. An error names the failing call (epoll_create1, eventfd).
  static Result<std::unique_ptr<FdPoller>> create();
  /// Stops the thread; every Watch must be gone.
  ~FdPoller();

  /// Watches `fd` (open for as long as the Watch lives) with `handler`.
  Result<std::unique_ptr<Watch>> watch(int fd, Handler handler);

 private:
  FdPoller(UniqueFd epoll, UniqueFd wake) : epoll_(std::move(epoll)), wake_(std::move(wake)) {}
  void run();

  UniqueFd epoll_, wake_;
  std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<Watch::Entry>> entries_;  // guarded by mu_
  uint64_t next_token_ = 1;                                     // 0 is the wake-up eventfd
  std::thread thread_;
};

}  // namespace xenctl::sys
