// The streaming RPCs on gRPC's callback API: a stream that waits holds no
// thread (a sync handler held one each, and about 800 of them exhausted the
// daemon). Each reactor is woken by what it serves (the EventBus, the
// OperationRegistry's watch()), writes one message at a time, and holds its
// caller's stream slot (provision::CallerSlots) until gRPC is done with it:
// a client that cancels or disconnects frees its slot. A slot is given back
// as the stream ends (Finish), before its client can hear of the end: a
// client that opens its next stream then finds the slot free. The handlers in
// services.cc admit the call (daemon/authz.h) and take the slot first.
#pragma once

#include <grpcpp/support/server_callback.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "daemon/services.h"
#include "lib/sys/console_pty.h"
#include "lib/sys/fd_poller.h"

namespace xenctl::daemon {

/// A stream refused before it began: it ends at once with `status`.
template <class Message>
grpc::ServerWriteReactor<Message>* refusedStream(grpc::Status status) {
  class Refused final : public grpc::ServerWriteReactor<Message> {
   public:
    explicit Refused(grpc::Status st) { this->Finish(std::move(st)); }
    void OnDone() override { delete this; }
  };
  return new Refused(std::move(status));
}

/// A server stream holding its caller's slot: one write in flight at a time
/// (out_), finished once, the slot given back as it finishes, and a client's
/// cancel (or disconnect) finishing it at once. State under mu_.
template <class Message>
class SlotStream : public grpc::ServerWriteReactor<Message> {
 public:
  void OnCancel() override {
    std::lock_guard lock(mu_);
    finishLocked(grpc::Status::CANCELLED);
  }

 protected:
  explicit SlotStream(provision::CallerSlots::Slot slot) : slot_(std::move(slot)) {}
  void finishLocked(grpc::Status status) {
    if (finished_) return;
    finished_ = true;
    slot_.reset();
    this->Finish(std::move(status));
  }
  void writeLocked() {
    writing_ = true;
    this->StartWrite(&out_);
  }
  /// Writes out_ and finishes with `status`, in one step.
  void finishWithLocked(grpc::Status status) {
    finished_ = true;
    slot_.reset();
    this->StartWriteAndFinish(&out_, grpc::WriteOptions(), std::move(status));
  }

  std::mutex mu_;
  Message out_;  // the write in flight
  bool writing_ = false, finished_ = false;

 private:
  std::optional<provision::CallerSlots::Slot> slot_;
};

/// WatchEvents: the domain events `caller` may see (of the domain `name`
/// only, when set), from its subscription on; ends OK when xenctld stops.
class WatchEventsReactor final : public SlotStream<v1::DomainEvent> {
 public:
  WatchEventsReactor(const ServiceContext& c, provision::Caller caller, std::string name,
                     provision::CallerSlots::Slot slot);
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  void pumpLocked();

  const ServiceContext& c_;
  const provision::Caller caller_;
  const std::string name_;
  std::unique_ptr<provision::EventBus::Subscription> sub_;  // reset in OnDone, before the rest goes
};

/// WatchOperation: the operation as it changes (versions that come faster
/// than the client reads are skipped to the newest), ending OK after its
/// finished record; NOT_FOUND for an unknown id.
class WatchOperationReactor final : public SlotStream<v1::Operation> {
 public:
  WatchOperationReactor(const ServiceContext& c, const std::string& id, provision::CallerSlots::Slot slot);
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  void offer(const core::OperationRecord& r);
  void sendLocked();

  std::unique_ptr<provision::OperationRegistry::Watch> watch_;  // reset in OnDone, before the rest goes
  std::optional<core::OperationRecord> pending_;  // newer than the last sent; guarded by mu_
  uint64_t sent_ = 0;
};

/// WaitOperation: answers with the operation once it has finished (a
/// stopping xenctld cancels every operation first), or as it is at `end`;
/// waits on the registry's watch() and a timerfd on the daemon's FdPoller,
/// so a waiting call holds no thread. It takes no stream slot: vm-* wait
/// with it while their caller may hold its streams.
class WaitOperationReactor final : public grpc::ServerUnaryReactor {
 public:
  WaitOperationReactor(const ServiceContext& c, const std::string& id, absl::Time end, v1::Operation* out);
  void OnCancel() override;
  void OnDone() override;

 private:
  /// Answers with the newest record heard (at most once).
  void answerLocked();
  /// Ends the call with `status` unless it has ended.
  void finishLocked(grpc::Status status);

  std::mutex mu_;
  bool finished_ = false;
  v1::Operation* out_;
  std::optional<core::OperationRecord> last_;  // the newest record heard
  sys::UniqueFd timer_;
  std::unique_ptr<sys::FdPoller::Watch> timer_watch_;             // reset in OnDone
  std::unique_ptr<provision::OperationRegistry::Watch> watch_;   // reset in OnDone
};

/// AttachConsole: the first message names the domain (and asks read-only
/// or not); the session then carries what the guest writes out and
/// keystrokes in, waiting on the pty through the daemon's FdPoller. It ends
/// with a message saying why (the domain is gone, the guest took no input
/// for kInputWait, xenctld is stopping), or when the client leaves.
class ConsoleReactor final : public grpc::ServerBidiReactor<v1::ConsoleInput, v1::ConsoleOutput> {
 public:
  /// Keystrokes the guest side does not take within this end the session.
  static constexpr absl::Duration kInputWait = absl::Seconds(5);

  ConsoleReactor(const ServiceContext& c, grpc::CallbackServerContext* ctx, provision::CallerSlots::Slot slot);
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void attachLocked();
  void onPty(uint32_t events);
  void pumpOutputLocked();
  void feedInputLocked();
  void armLocked();
  /// Ends the session with a last message saying why, after a write in flight.
  void closeLocked(const std::string& reason);
  void sendCloseLocked();
  void finishLocked(grpc::Status status);

  const ServiceContext& c_;
  grpc::CallbackServerContext* const ctx_;
  std::optional<provision::CallerSlots::Slot> slot_;  // given back when the stream ends
  std::unique_ptr<provision::EventBus::Subscription> stopping_;  // closes when xenctld stops
  std::mutex mu_;
  v1::ConsoleInput in_;
  v1::ConsoleOutput out_;
  std::string what_;  // "domain 'web1'"
  std::optional<sys::ConsolePty> console_;
  std::string input_;            // keystrokes the guest has not taken yet
  absl::Time input_deadline_;    // when input_ became non-empty, plus kInputWait
  sys::UniqueFd timer_;          // a timerfd at input_deadline_ while input_ waits
  bool attached_ = false, read_only_ = false, input_ended_ = false;
  std::string close_reason_;  // set once the session is ending
  bool writing_ = false, finished_ = false;
  // Declared last: reset in OnDone, before the rest goes.
  std::unique_ptr<sys::FdPoller::Watch> pty_watch_, timer_watch_;
};

}  // namespace xenctl::daemon
