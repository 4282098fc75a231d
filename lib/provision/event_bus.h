// Fan-out of domain events to WatchEvents subscribers. Each subscriber has a
// bounded queue: a slow reader loses events (and is told so), it never makes
// the daemon's memory grow or its publishers wait.
#pragma once

#include <condition_variable>
#include <deque>
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
    std::optional<core::DomainEvent> next(absl::Time deadline);
    ~Subscription();

   private:
    friend class EventBus;
    explicit Subscription(EventBus& bus) : bus_(bus) {}
    EventBus& bus_;
    std::deque<core::DomainEvent> queue_;  // guarded by bus_.mu_
    bool lost_ = false;
  };

  explicit EventBus(size_t queue_limit = 1024) : queue_limit_(queue_limit) {}
  std::unique_ptr<Subscription> subscribe();
  void publish(const core::DomainEvent& event);
  /// Wakes every subscriber; next() returns nullopt from then on.
  void close();

 private:
  const size_t queue_limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<Subscription*> subs_;
  bool closed_ = false;
};

}  // namespace xenctl::provision
