#include "daemon/stream_reactors.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "absl/strings/str_cat.h"
#include "daemon/authz.h"
#include "daemon/convert.h"

namespace xenctl::daemon {

WatchEventsReactor::WatchEventsReactor(const ServiceContext& c, provision::Caller caller, std::string name,
                                       provision::CallerSlots::Slot slot)
    : SlotStream(std::move(slot)), c_(c), caller_(std::move(caller)), name_(std::move(name)),
      sub_(c.events.subscribe()) {
  // Writes started here wait in gRPC until the stream is bound; OnWriteDone
  // cannot come before this constructor returns.
  sub_->onReady([this] {
    std::lock_guard lock(mu_);
    pumpLocked();
  });
  std::lock_guard lock(mu_);
  pumpLocked();
}

void WatchEventsReactor::pumpLocked() {
  if (writing_ || finished_) return;
  while (auto e = sub_->next(absl::InfinitePast())) {
    if (e->kind != core::DomainEventKind::kEventsLost &&
        ((!name_.empty() && e->name != name_) || !c_.access.maySeeDomain(caller_, e->name)))
      continue;
    out_.Clear();
    toProto(*e, &out_);
    return writeLocked();
  }
  if (sub_->closed()) finishLocked(grpc::Status::OK);  // xenctld is stopping
}

void WatchEventsReactor::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  writing_ = false;
  if (!ok) return finishLocked(grpc::Status::OK);  // the client left
  pumpLocked();
}

void WatchEventsReactor::OnDone() {
  // A wake-up in progress sees finished_ (under mu_) and leaves sub_ alone.
  sub_.reset();  // no wake-up runs from here on
  delete this;
}

WatchOperationReactor::WatchOperationReactor(const ServiceContext& c, const std::string& id,
                                             provision::CallerSlots::Slot slot)
    : SlotStream(std::move(slot)) {
  // The listener hears the record now, then each change; it runs under the
  // registry's lock, so it only takes the record and starts a write.
  auto w = c.ops.watch(id, [this](const core::OperationRecord& r) { offer(r); });
  std::lock_guard lock(mu_);
  if (w.ok())
    watch_ = *std::move(w);
  else
    finishLocked(toGrpc(w.status()));
}

void WatchOperationReactor::offer(const core::OperationRecord& r) {
  std::lock_guard lock(mu_);
  if (finished_ || r.version <= sent_) return;
  pending_ = r;
  if (!writing_) sendLocked();
}

void WatchOperationReactor::sendLocked() {
  if (!pending_) return;
  out_.Clear();
  toProto(*pending_, &out_);
  sent_ = pending_->version;
  const bool last = core::isFinished(pending_->state);
  pending_.reset();
  if (!last) return writeLocked();
  // The finished record and the end in one step: a waiting client hears both at once.
  finishWithLocked(grpc::Status::OK);
}

void WatchOperationReactor::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  writing_ = false;
  if (!ok) return finishLocked(grpc::Status::OK);  // the client left
  sendLocked();
}

void WatchOperationReactor::OnDone() {
  watch_.reset();  // waits for a listener call in progress; none comes after
  delete this;
}

WaitOperationReactor::WaitOperationReactor(const ServiceContext& c, const std::string& id, absl::Time end,
                                           v1::Operation* out)
    : out_(out) {
  // The listener hears the record now, then each change, under the
  // registry's lock: it only keeps the record and answers once finished.
  auto w = c.ops.watch(id, [this](const core::OperationRecord& r) {
    std::lock_guard lock(mu_);
    last_ = r;
    if (core::isFinished(r.state)) answerLocked();
  });
  std::lock_guard lock(mu_);
  if (!w.ok()) {
    finishLocked(toGrpc(w.status()));
    return;
  }
  watch_ = *std::move(w);
  if (finished_) return;
  timer_ = sys::UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer_) {
    finishLocked(toGrpc(errnoStatus(errno, "timerfd for WaitOperation")));
    return;
  }
  auto timer_watch = c.poller.watch(timer_.get(), [this](uint32_t) {
    std::lock_guard lock(mu_);
    answerLocked();
  });
  if (!timer_watch.ok()) {
    finishLocked(toGrpc(timer_watch.status()));
    return;
  }
  timer_watch_ = *std::move(timer_watch);
  itimerspec at{};
  at.it_value = absl::ToTimespec(std::max(end - absl::Now(), absl::Milliseconds(1)));
  (void)::timerfd_settime(timer_.get(), 0, &at, nullptr);
  (void)timer_watch_->arm(EPOLLIN);
}

void WaitOperationReactor::answerLocked() {
  if (finished_ || !last_) return;
  toProto(*last_, out_);
  finishLocked(grpc::Status::OK);
}

void WaitOperationReactor::finishLocked(grpc::Status status) {
  if (finished_) return;
  finished_ = true;
  Finish(std::move(status));
}

void WaitOperationReactor::OnCancel() {
  std::lock_guard lock(mu_);
  finishLocked(grpc::Status::CANCELLED);
}

void WaitOperationReactor::OnDone() {
  watch_.reset();  // each waits for a call in progress; none comes after
  timer_watch_.reset();
  delete this;
}

ConsoleReactor::ConsoleReactor(const ServiceContext& c, grpc::CallbackServerContext* ctx,
                               provision::CallerSlots::Slot slot)
    : c_(c), ctx_(ctx), slot_(std::move(slot)), stopping_(c.events.subscribe()) {
  // The event bus closes when xenctld stops: the session ends saying so.
  // The raw pointer: OnDone's reset() nulls stopping_ before the destructor
  // waits for a call of this in progress.
  stopping_->onReady([this, sub = stopping_.get()] {
    while (sub->next(absl::InfinitePast())) {
    }
    if (!sub->closed()) return;
    std::lock_guard lock(mu_);
    closeLocked("xenctld is stopping");
  });
  std::lock_guard lock(mu_);
  StartRead(&in_);
}

void ConsoleReactor::OnReadDone(bool ok) {
  std::lock_guard lock(mu_);
  if (finished_ || !close_reason_.empty()) return;
  if (!attached_) {
    if (!ok)
      return finishLocked(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "AttachConsole: the first message must name the domain"));
    return attachLocked();
  }
  if (!ok) {  // the client sends no more; what the guest writes still goes out
    input_ended_ = true;
    return;
  }
  if (read_only_ || in_.data().empty()) return StartRead(&in_);
  if (input_.empty()) input_deadline_ = absl::Now() + kInputWait;
  input_ += in_.data();
  feedInputLocked();
}

void ConsoleReactor::attachLocked() {
  read_only_ = in_.read_only();
  auto caller = admit(c_, ctx_, "DomainService.AttachConsole", in_);
  if (!caller.ok()) return finishLocked(toGrpc(caller.status()));
  auto path = c_.domains.consolePath(in_.name(), read_only_);
  audit(*caller, "DomainService.AttachConsole", in_.name(),
        absl::StrCat(read_only_ ? "read-only " : "", path.ok() ? "attached" : "failed: " + path.status().ToString()));
  if (!path.ok()) return finishLocked(toGrpc(path.status()));
  what_ = absl::StrCat("domain '", in_.name(), "'");
  auto console = sys::ConsolePty::open(*path, what_);
  if (!console.ok()) return finishLocked(toGrpc(console.status()));
  console_ = *std::move(console);
  auto watch = c_.poller.watch(console_->fd(), [this](uint32_t events) { onPty(events); });
  if (!watch.ok()) return finishLocked(toGrpc(watch.status()));
  pty_watch_ = *std::move(watch);
  timer_ = sys::UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer_) return finishLocked(toGrpc(errnoStatus(errno, "timerfd for a console session")));
  auto timer_watch = c_.poller.watch(timer_.get(), [this](uint32_t) {
    std::lock_guard lock(mu_);
    if (!input_.empty() && absl::Now() >= input_deadline_)
      closeLocked(absl::StrCat("the console of ", what_, " takes no input (", input_.size(), " bytes left unsent)"));
  });
  if (!timer_watch.ok()) return finishLocked(toGrpc(timer_watch.status()));
  timer_watch_ = *std::move(timer_watch);
  attached_ = true;
  if (!read_only_ && !in_.data().empty()) {
    input_deadline_ = absl::Now() + kInputWait;
    input_ = in_.data();
    feedInputLocked();
  } else {
    StartRead(&in_);
  }
  pumpOutputLocked();
}

void ConsoleReactor::onPty(uint32_t events) {
  std::lock_guard lock(mu_);
  if (finished_ || !close_reason_.empty()) return;
  if (events & EPOLLOUT) feedInputLocked();
  pumpOutputLocked();
}

void ConsoleReactor::pumpOutputLocked() {
  if (finished_ || !close_reason_.empty()) return;
  if (!writing_) {
    auto out = console_->read(absl::ZeroDuration());
    if (!out.ok()) return closeLocked(std::string(out.status().message()));
    if (!out->empty()) {
      out_.Clear();
      out_.set_data(*std::move(out));
      writing_ = true;
      StartWrite(&out_);
    }
  }
  armLocked();
}

void ConsoleReactor::feedInputLocked() {
  if (input_.empty() || finished_ || !close_reason_.empty()) return;
  auto put = console_->writeSome(input_);
  if (!put.ok()) return closeLocked(std::string(put.status().message()));
  input_.erase(0, *put);
  itimerspec at{};
  if (input_.empty()) {
    (void)::timerfd_settime(timer_.get(), 0, &at, nullptr);  // disarmed
    if (!input_ended_) StartRead(&in_);  // the next keystrokes wait until these are taken
  } else {
    const absl::Duration left = std::max(input_deadline_ - absl::Now(), absl::Milliseconds(1));
    at.it_value = absl::ToTimespec(left);
    (void)::timerfd_settime(timer_.get(), 0, &at, nullptr);
    (void)timer_watch_->arm(EPOLLIN);
  }
  armLocked();
}

void ConsoleReactor::armLocked() {
  // One-shot: what fired is waited for again only when still wanted.
  const uint32_t events = (writing_ ? 0u : uint32_t{EPOLLIN}) | (input_.empty() ? 0u : uint32_t{EPOLLOUT});
  if (events && pty_watch_) {
    if (Status st = pty_watch_->arm(events); !st.ok()) closeLocked(std::string(st.message()));
  }
}

void ConsoleReactor::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  writing_ = false;
  if (finished_) return;
  if (!ok) return finishLocked(grpc::Status::OK);  // the client left
  if (!close_reason_.empty()) return sendCloseLocked();
  pumpOutputLocked();
}

void ConsoleReactor::closeLocked(const std::string& reason) {
  if (finished_ || !close_reason_.empty()) return;
  close_reason_ = reason;
  if (!writing_) sendCloseLocked();  // else OnWriteDone sends it
}

void ConsoleReactor::sendCloseLocked() {
  finished_ = true;
  slot_.reset();
  out_.Clear();
  out_.set_closed_reason(close_reason_);
  StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
}

void ConsoleReactor::OnCancel() {
  std::lock_guard lock(mu_);
  finishLocked(grpc::Status::CANCELLED);
}

void ConsoleReactor::finishLocked(grpc::Status status) {
  if (finished_) return;
  finished_ = true;
  slot_.reset();
  Finish(std::move(status));
}

void ConsoleReactor::OnDone() {
  pty_watch_.reset();  // each waits for a handler call in progress; none comes after
  timer_watch_.reset();
  stopping_.reset();
  delete this;
}

}  // namespace xenctl::daemon
