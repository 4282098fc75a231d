// Fan-out of domain events to WatchEvents subscribers. Each subscriber has a
// bounded queue: a slow reader loses events (and is told so), it never makes
// the daemon's memory grow or its publishers wait. A subscriber either waits
// in next() (a thread of its own) or is woken by onReady() (a stream served
// on gRPC's callback API, which holds no thread while it waits).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>

#include "lib/core/domain_event.h"

namespace xenctl::provision {

class EventBus {
 public:
  class Subscription {
   public:
    /// The next event, or nullopt when `deadline` passed or the bus closed.
    /// After an overflow the first event returned is kEventsLost.
    /// next(absl::InfinitePast()) takes what is queued without waiting.
    std::optional<core::DomainEvent> next(absl::Time deadline);
    /// True once the bus closed: next() returns nullopt from then on.
    bool closed() const;
    /// Calls `wake` after each event queued here and once when the bus
    /// closes, on the publishing (or closing) thread with no lock of the bus
    /// held, one call at a time; `wake` takes the events with next() and
    /// must not destroy this subscription. What was queued before is not
    /// announced: call next() after setting it. Once the destructor has
    /// returned, `wake` is not running and is not called again.
    void onReady(std::function<void()> wake);
    ~Subscription();

   private:
    friend class EventBus;
    /// Serializes the calls of `fn` with each other and with its removal.
    struct Waker {
      std::mutex mu;
      std::function<void()> fn;
      void operator()() {
        std::lock_guard lock(mu);
        if (fn) fn();
      }
    };
    explicit Subscription(EventBus& bus) : bus_(bus) {}
    EventBus& bus_;
    std::deque<core::DomainEvent> queue_;  // guarded by bus_.mu_
    bool lost_ = false;
    std::shared_ptr<Waker> waker_;  // guarded by bus_.mu_; shared with a publish() calling it
  };

  explicit EventBus(size_t queue_limit = 1024) : queue_limit_(queue_limit) {}
  std::unique_ptr<Subscription> subscribe();
  void publish(const core::DomainEvent& event);
  /// Wakes every subscriber; next() returns nullopt from then on.
  void close();

 private:
  const size_t queue_limit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::list<Subscription*> subs_;
  bool closed_ = false;
};

}  // namespace xenctl::provision
