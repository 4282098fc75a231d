#include "lib/sys/fd_poller.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <future>

namespace xenctl::sys {
namespace {

struct Pipe {
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    r = UniqueFd(fds[0]);
    w = UniqueFd(fds[1]);
  }
  UniqueFd r, w;
};

// A watched descriptor's handler runs once per arm(), with the events that
// fired, and may arm again from inside the handler.
TEST(FdPoller, HandlerRunsOncePerArm) {
  auto poller = FdPoller::create();
  ASSERT_TRUE(poller.ok()) << poller.status();
  Pipe p;
  std::promise<void> first, second;
  int calls = 0;
  std::unique_ptr<FdPoller::Watch> watch;
  auto w = (*poller)->watch(p.r.get(), [&](uint32_t events) {
    EXPECT_TRUE(events & EPOLLIN);
    char buf[16];
    (void)::read(p.r.get(), buf, sizeof(buf));
    if (++calls == 1) {
      first.set_value();
    } else if (calls == 2) {
      second.set_value();
    }
  });
  ASSERT_TRUE(w.ok()) << w.status();
  watch = *std::move(w);
  ASSERT_EQ(::write(p.w.get(), "a", 1), 1);  // not armed yet: nothing is called
  ASSERT_TRUE(watch->arm(EPOLLIN).ok());
  first.get_future().wait();
  ASSERT_EQ(::write(p.w.get(), "b", 1), 1);
  ASSERT_TRUE(watch->arm(EPOLLIN).ok());
  second.get_future().wait();
  EXPECT_EQ(calls, 2);
  watch.reset();  // then the poller goes with no watch left
}

// A Watch destroyed while armed is never called after its destructor returns.
TEST(FdPoller, NoCallAfterTheWatchGoes) {
  auto poller = FdPoller::create();
  ASSERT_TRUE(poller.ok());
  Pipe p;
  bool gone = false;
  auto w = (*poller)->watch(p.r.get(), [&](uint32_t) { EXPECT_FALSE(gone); });
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->arm(EPOLLIN).ok());
  w->reset();
  gone = true;
  ASSERT_EQ(::write(p.w.get(), "a", 1), 1);
  // A second watch on the same pipe proves the poller went on past the write.
  std::promise<void> seen;
  auto again = (*poller)->watch(p.r.get(), [&](uint32_t) { seen.set_value(); });
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE((*again)->arm(EPOLLIN).ok());
  seen.get_future().wait();
}

}  // namespace
}  // namespace xenctl::sys
