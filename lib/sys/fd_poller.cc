#include "lib/sys/fd_poller.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace xenctl::sys {

Result<std::unique_ptr<FdPoller>> FdPoller::create() {
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return errnoStatus(errno, "epoll_create1 for the descriptor poller");
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return errnoStatus(errno, "eventfd for the descriptor poller");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0)
    return errnoStatus(errno, "epoll_ctl for the descriptor poller");
  std::unique_ptr<FdPoller> p(new FdPoller(std::move(ep), std::move(wake)));
  p->thread_ = std::thread([raw = p.get()] { raw->run(); });
  return p;
}

FdPoller::~FdPoller() {
  uint64_t one = 1;
  (void)::write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void FdPoller::run() {
  epoll_event events[64];
  for (;;) {
    const int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) return;  // the destructor's wake-up
      std::shared_ptr<Watch::Entry> e;
      {
        std::lock_guard lock(mu_);
        auto it = entries_.find(events[i].data.u64);
        if (it == entries_.end()) continue;
        e = it->second;
      }
      std::lock_guard lock(e->mu);
      if (e->handler) e->handler(events[i].events);
    }
  }
}

Result<std::unique_ptr<FdPoller::Watch>> FdPoller::watch(int fd, Handler handler) {
  auto entry = std::make_shared<Watch::Entry>();
  entry->handler = std::move(handler);
  std::lock_guard lock(mu_);
  const uint64_t token = next_token_++;
  epoll_event ev{};
  ev.events = EPOLLONESHOT;  // nothing until arm()
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    return errnoStatus(errno, absl::StrCat("epoll_ctl(ADD) of descriptor ", fd));
  entries_.emplace(token, entry);
  return std::unique_ptr<Watch>(new Watch(*this, fd, token, std::move(entry)));
}

Status FdPoller::Watch::arm(uint32_t events) {
  epoll_event ev{};
  ev.events = events | EPOLLONESHOT;
  ev.data.u64 = token_;
  if (::epoll_ctl(poller_.epoll_.get(), EPOLL_CTL_MOD, fd_, &ev) != 0)
    return errnoStatus(errno, absl::StrCat("epoll_ctl(MOD) of descriptor ", fd_));
  return absl::OkStatus();
}

FdPoller::Watch::~Watch() {
  {
    std::lock_guard lock(poller_.mu_);
    poller_.entries_.erase(token_);
    (void)::epoll_ctl(poller_.epoll_.get(), EPOLL_CTL_DEL, fd_, nullptr);
  }
  std::lock_guard lock(entry_->mu);  // waits for a handler call in progress
  entry_->handler = nullptr;
}

}  // namespace xenctl::sys
