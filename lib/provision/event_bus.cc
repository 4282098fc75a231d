#include "lib/provision/event_bus.h"

#include <algorithm>
#include <vector>

namespace xenctl::provision {

std::unique_ptr<EventBus::Subscription> EventBus::subscribe() {
  std::unique_ptr<Subscription> sub(new Subscription(*this));
  std::lock_guard lock(mu_);
  subs_.push_back(sub.get());
  return sub;
}

EventBus::Subscription::~Subscription() {
  std::shared_ptr<Waker> waker;
  {
    std::lock_guard lock(bus_.mu_);
    bus_.subs_.remove(this);
    waker = std::move(waker_);
  }
  if (waker) {
    std::lock_guard lock(waker->mu);  // waits for a call a publish() is making
    waker->fn = nullptr;
  }
}

void EventBus::Subscription::onReady(std::function<void()> wake) {
  auto waker = std::make_shared<Waker>();
  waker->fn = std::move(wake);
  std::lock_guard lock(bus_.mu_);
  waker_ = std::move(waker);
}

bool EventBus::Subscription::closed() const {
  std::lock_guard lock(bus_.mu_);
  return bus_.closed_;
}

void EventBus::publish(const core::DomainEvent& event) {
  std::vector<std::shared_ptr<Subscription::Waker>> wake;
  {
    std::lock_guard lock(mu_);
    for (Subscription* s : subs_) {
      if (s->queue_.size() >= queue_limit_) {
        s->queue_.pop_front();
        s->lost_ = true;
      }
      s->queue_.push_back(event);
      if (s->waker_) wake.push_back(s->waker_);
    }
  }
  cv_.notify_all();
  for (auto& w : wake) (*w)();
}

void EventBus::close() {
  std::vector<std::shared_ptr<Subscription::Waker>> wake;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    for (Subscription* s : subs_)
      if (s->waker_) wake.push_back(s->waker_);
  }
  cv_.notify_all();
  for (auto& w : wake) (*w)();
}

std::optional<core::DomainEvent> EventBus::Subscription::next(absl::Time deadline) {
  std::unique_lock lock(bus_.mu_);
  bus_.cv_.wait_until(lock, absl::ToChronoTime(deadline), [&] { return bus_.closed_ || !queue_.empty(); });
  if (bus_.closed_ || queue_.empty()) return std::nullopt;
  if (lost_) {
    lost_ = false;
    core::DomainEvent e;
    e.kind = core::DomainEventKind::kEventsLost;
    e.time = queue_.front().time;
    e.message = "this watcher fell behind; some events were dropped";
    return e;
  }
  core::DomainEvent e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

}  // namespace xenctl::provision
