#include "lib/provision/event_bus.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace xenctl::provision {
namespace {

core::DomainEvent ev(const std::string& name) {
  core::DomainEvent e;
  e.kind = core::DomainEventKind::kStarted;
  e.name = name;
  return e;
}

// Every subscriber gets every event, in order.
TEST(EventBus, FanOut) {
  EventBus bus;
  auto a = bus.subscribe();
  auto b = bus.subscribe();
  bus.publish(ev("x"));
  bus.publish(ev("y"));
  for (auto* s : {a.get(), b.get()}) {
    EXPECT_EQ(s->next(absl::Now())->name, "x");
    EXPECT_EQ(s->next(absl::Now())->name, "y");
    EXPECT_FALSE(s->next(absl::Now()).has_value());
  }
}

// A slow subscriber loses the oldest events and is told so first.
TEST(EventBus, OverflowReported) {
  EventBus bus(2);
  auto s = bus.subscribe();
  for (const char* n : {"a", "b", "c"}) bus.publish(ev(n));
  EXPECT_EQ(s->next(absl::Now())->kind, core::DomainEventKind::kEventsLost);
  EXPECT_EQ(s->next(absl::Now())->name, "b");
  EXPECT_EQ(s->next(absl::Now())->name, "c");
}

// Closing wakes waiters and ends their streams.
TEST(EventBus, CloseEnds) {
  EventBus bus;
  auto s = bus.subscribe();
  bus.close();
  EXPECT_FALSE(s->next(absl::Now() + absl::Seconds(5)).has_value());
}

// onReady wakes a subscriber that waits in no thread for each event and for
// the close, and never after the subscription is gone.
TEST(EventBus, OnReadyWakesWithoutAWaitingThread) {
  EventBus bus;
  auto s = bus.subscribe();
  std::vector<std::string> got;
  int closes = 0;
  s->onReady([&] {
    while (auto e = s->next(absl::InfinitePast())) got.push_back(e->name);
    if (s->closed()) ++closes;
  });
  bus.publish(ev("x"));
  bus.publish(ev("y"));
  EXPECT_EQ(got, (std::vector<std::string>{"x", "y"}));
  auto quiet = bus.subscribe();
  int calls = 0;
  quiet->onReady([&] { ++calls; });
  quiet.reset();
  bus.publish(ev("z"));
  EXPECT_EQ(calls, 0);
  bus.close();
  EXPECT_EQ(got.back(), "z");
  EXPECT_EQ(closes, 1);
}

}  // namespace
}  // namespace xenctl::provision
