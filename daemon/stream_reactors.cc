#include "daemon/stream_reactors.h"

#include "daemon/convert.h"

namespace xenctl::daemon {

WatchEventsReactor::WatchEventsReactor(const ServiceContext& c, provision::Caller caller, std::string name,
                                       provision::CallerSlots::Slot slot)
    : c_(c), caller_(std::move(caller)), name_(std::move(name)), slot_(std::move(slot)), sub_(c.events.subscribe()) {
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
    writing_ = true;
    StartWrite(&out_);
    return;
  }
  if (sub_->closed()) finishLocked(grpc::Status::OK);  // xenctld is stopping
}

void WatchEventsReactor::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  writing_ = false;
  if (!ok) return finishLocked(grpc::Status::OK);  // the client left
  pumpLocked();
}

void WatchEventsReactor::OnCancel() {
  std::lock_guard lock(mu_);
  finishLocked(grpc::Status::CANCELLED);
}

void WatchEventsReactor::finishLocked(grpc::Status status) {
  if (finished_) return;
  finished_ = true;
  slot_.reset();
  Finish(std::move(status));
}

void WatchEventsReactor::OnDone() {
  sub_.reset();  // no wake-up runs from here on
  delete this;
}

WatchOperationReactor::WatchOperationReactor(const ServiceContext& c, const std::string& id,
                                             provision::CallerSlots::Slot slot)
    : slot_(std::move(slot)) {
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
  last_sent_ = core::isFinished(pending_->state);
  pending_.reset();
  writing_ = true;
  StartWrite(&out_);
}

void WatchOperationReactor::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  writing_ = false;
  if (!ok || last_sent_) return finishLocked(grpc::Status::OK);  // the client left, or the end was sent
  sendLocked();
}

void WatchOperationReactor::OnCancel() {
  std::lock_guard lock(mu_);
  finishLocked(grpc::Status::CANCELLED);
}

void WatchOperationReactor::finishLocked(grpc::Status status) {
  if (finished_) return;
  finished_ = true;
  slot_.reset();
  Finish(std::move(status));
}

void WatchOperationReactor::OnDone() {
  watch_.reset();  // waits for a listener call in progress; none comes after
  delete this;
}

}  // namespace xenctl::daemon
