// The operation registry: runs long tasks on a bounded pool of worker
// threads (up to max_active, started as needed and kept), queues what does
// not fit yet (PENDING, with its place in the queue), tracks phase and
// progress, lets clients watch and cancel them, deduplicates retries by the
// caller's request_id, and keeps a history in the store. An operation is
// stored with its first journal step, when it is still unfinished a second
// after its start (the flusher), and at its end (one transaction with the
// clearing of its journal): one of a millisecond costs one write.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/clock.h"
#include "lib/core/operation.h"
#include "lib/state/store.h"

namespace xenctl::provision {

class OperationRegistry;

/// Handed to an operation's work: reports progress, tells about cancellation.
class OperationContext {
 public:
  /// Enters a phase; `percent` is the overall progress at its start.
  void phase(const std::string& name, uint32_t percent, const std::string& message = "");
  /// Progress within the current phase. Watchers hear of it at most every
  /// 100 ms; phase changes and the end are always sent at once.
  void progress(uint32_t percent, uint64_t bytes_done, uint64_t bytes_total, const std::string& message = "");
  /// True once CancelOperation (or daemon shutdown) asked the work to stop.
  bool cancelled() const { return stop_.stop_requested(); }
  std::stop_token stopToken() const { return stop_; }
  const std::string& id() const { return id_; }
  const std::string& kind() const { return kind_; }
  /// True when the work runs on the thread that started it (Request::run_inline),
  /// before start() returns: what that thread holds, the work holds.
  bool onStartingThread() const { return inline_; }

  /// Writes step `seq` ("clone", with what undoing or finishing it needs)
  /// to the operation's journal in the store: with `done` false before the
  /// step's work changes anything, with `done` true after it completed.
  /// Recovery (recovery.h) reads it at the next start when the daemon
  /// stopped meanwhile. Passes the crash points "KIND/STEP" (after the entry
  /// that begins a step) and "KIND/STEP:done" (before the one that ends it).
  /// OK without a store. `durability`: kSynced (on disk when this returns,
  /// surviving a power cut) for a step that changes what outlives one (a
  /// volume, a file); kCommitted for one that changes only the store and
  /// the hypervisor, whose domains a power cut ends anyway: it survives a
  /// crash of xenctld, and a power cut loses at most the last second of
  /// such steps, in order (state::Store::Durability).
  Status journal(int64_t seq, const std::string& step, const std::map<std::string, std::string>& record, bool done,
                 state::Store::Durability durability = state::Store::Durability::kSynced);
  /// journal(seq, step, record, true, durability) for the step whose
  /// completion is the work's last act (it returns right after): a
  /// kCommitted one's end is not written on its own, the operation's end
  /// clears the journal in its transaction (OperationRegistry::finish), so
  /// a crash before that leaves the state the crash point "KIND/STEP:done"
  /// (passed here) tests, and one after finds the operation ended. kSynced
  /// is written as journal() does.
  Status journalLastDone(int64_t seq, const std::string& step, const std::map<std::string, std::string>& record,
                         state::Store::Durability durability);
  /// The crash point "KIND/POINT" (crash_points.h), inside a step.
  void crashPoint(const std::string& point) const;
  /// Stores the operation's end through `writer` (called once, when the
  /// work has returned, before anyone sees the end; even without the
  /// registry's store) instead of Store::finishOperation, which `writer`
  /// calls with what it adds to the end's transaction: a definition change
  /// the work leaves to its end, one commit instead of two. When `writer`
  /// fails (its transaction is rolled back), the operation fails with its
  /// error, as one whose work's last write failed (unless the work failed
  /// already: its own error stays), and its end is stored without what
  /// `writer` adds; `writer` puts back what it had changed in memory.
  using EndWriter = std::function<Status(const core::OperationRecord& end)>;
  void storeEndWith(EndWriter writer);

 private:
  friend class OperationRegistry;
  OperationContext(OperationRegistry& r, std::string id, std::string kind, std::stop_token stop, bool on_inline)
      : registry_(r), id_(std::move(id)), kind_(std::move(kind)), stop_(std::move(stop)), inline_(on_inline) {}
  OperationRegistry& registry_;
  std::string id_;
  std::string kind_;
  std::stop_token stop_;
  bool inline_;
};

class OperationRegistry {
 public:
  struct Options {
    size_t max_active = 16;  ///< operations running at once: the workers ([daemon] max_operations)
    /// Finished operations kept, in memory and in the store; trimmed in
    /// batches: up to a tenth more are kept between two trims.
    size_t history = 1000;
    /// Operations one caller may have running at once ([daemon]
    /// max_operations_per_caller); 0: max_active. More of its operations
    /// wait in the queue while others' run.
    size_t max_per_caller = 0;
    /// Operations waiting for a worker, at most ([daemon] max_queued_operations).
    size_t max_queued = 256;
    /// A thread that stores, each second, the phase and progress not yet
    /// stored, and syncs the store (false in tests that call
    /// flushProgress() themselves).
    bool flusher = true;
  };
  struct Request {
    std::string kind, target, request_id;
    int64_t caller_uid = -1;
    std::string caller_key = {};  ///< Caller::key(); "" = "uid:CALLER_UID"
    /// Caller::request_digest: what a repeat of request_id must ask again.
    std::string request_digest = {};
    /// For work that ends without waiting (memory and kCommitted store
    /// writes only, no lock another operation holds for long): when a
    /// worker's place is free at once (nothing queued, fewer than
    /// max_active running, its caller under max_per_caller), start() runs
    /// it on the calling thread and returns its finished record, with no
    /// hand-off to a worker and back. Its record, versions, watchers, store
    /// writes and limits are those of a worker's run. Otherwise it is
    /// queued as any other.
    bool run_inline = false;
  };
  /// The work of an operation. Return CANCELLED after undoing, when
  /// ctx.cancelled() stopped it.
  using Work = std::function<Status(OperationContext&)>;

  /// `store` may be null (no history kept).
  OperationRegistry(const core::Clock& clock, state::Store* store, Options options);
  ~OperationRegistry();

  /// Loads the history from the store. Operations that were running when
  /// the daemon stopped (stored: see the top) are marked failed (ABORTED)
  /// and say so, except those
  /// with a journal: they stay unfinished, listed by interrupted(), for
  /// Recovery to finish or undo and then conclude().
  Status load();
  /// The operations load() left for recovery.
  std::vector<core::OperationRecord> interrupted() const;
  /// Ends an interrupted operation: SUCCEEDED with `status` OK (finished
  /// forward), else FAILED with it; `message` says what recovery did.
  /// Stored, and its journal cleared. FAILED_PRECONDITION when the
  /// operation is not one load() left.
  Status conclude(const std::string& id, Status status, const std::string& message);

  /// The operation `caller_key` started earlier with this request_id, if any
  /// ("" = "uid:-1", as start() counts a caller without a key).
  std::optional<core::OperationRecord> findByRequest(const std::string& request_id,
                                                     const std::string& caller_key = "uid:-1") const;
  /// Starts `work` as a new operation, or returns the existing one when the
  /// same caller sent this request_id before with the same request
  /// (FAILED_PRECONDITION naming the id and the earlier operation when that
  /// asked something else: another digest, or without digests another kind
  /// or target). The id of another caller is another id. The new operation
  /// is queued PENDING for a worker; it runs when one is free and its
  /// caller has fewer than max_per_caller running. RESOURCE_EXHAUSTED only
  /// when max_queued wait already (naming the limit); INVALID_ARGUMENT for a
  /// request_id longer than core::kMaxRequestIdBytes. Messages and final
  /// statuses are kept to core::kMaxOperationMessageBytes (cut, saying so).
  Result<core::OperationRecord> start(Request req, Work work);
  /// What every mutating use case does: a request_id seen before returns its
  /// operation (or the refusal above); otherwise `precheck` runs (its error
  /// is returned at once, no operation is made) and then start().
  Result<core::OperationRecord> startChecked(Request req, const std::function<Status()>& precheck, Work work);
  /// NOT_FOUND for an unknown id.
  Result<core::OperationRecord> get(const std::string& id) const;
  /// Newest first.
  std::vector<core::OperationRecord> list(const std::string& target, bool active_only, size_t limit) const;
  /// Asks a running operation to stop. FAILED_PRECONDITION once finished.
  Result<core::OperationRecord> cancel(const std::string& id);
  /// Blocks until the operation's version passes `after_version` or
  /// `deadline` comes, and returns it as it is then (which may be several
  /// versions on; watch() hears each one).
  Result<core::OperationRecord> waitChange(const std::string& id, uint64_t after_version, absl::Time deadline) const;

  /// Blocks until the operation has finished or `deadline` comes, and
  /// returns it as it is then. Woken by its end only, not by each phase.
  Result<core::OperationRecord> waitFinished(const std::string& id, absl::Time deadline) const;

  /// Hears of one operation's changes while it lives (watch()).
  class Watch {
   public:
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    /// Waits for a call of the listener in progress; none comes after.
    ~Watch();

   private:
    friend class OperationRegistry;
    Watch(const OperationRegistry& reg, std::string id, uint64_t token)
        : reg_(reg), id_(std::move(id)), token_(token) {}
    const OperationRegistry& reg_;
    const std::string id_;
    const uint64_t token_;
  };
  using Listener = std::function<void(const core::OperationRecord&)>;
  /// Calls `listener` with the operation's record now and then with each
  /// new version, for as long as the Watch lives: a watcher that holds no
  /// thread (a stream on gRPC's callback API). The contract:
  ///  - the first call is the record current when watch() is called, which
  ///    need not be the one start() returned (a worker may have taken it:
  ///    RUNNING, a version later);
  ///  - after it, every version is heard, each once, in increasing order;
  ///    none is skipped (throttled progress makes no version: it is heard
  ///    with the next one);
  ///  - a version is heard no later than get(), list() or waitChange() can
  ///    return it: each change and its calls happen under one hold of the
  ///    registry's lock. The end is shown only once it is stored.
  /// WaitOperation and WatchOperation rely on this. The listener is called
  /// on the changing thread under the registry's lock, so it must not call
  /// the registry; it should only hand the record on.
  /// NOT_FOUND for an unknown id.
  Result<std::unique_ptr<Watch>> watch(const std::string& id, Listener listener) const;

  /// Stores the phase and progress of running operations that changed
  /// since they were last stored, kSaveInterval or longer ago (the flusher
  /// thread calls it each second).
  void flushProgress();

  /// Operations running or queued.
  size_t active() const;
  /// Operations `caller_key` has running (not queued).
  size_t activeOf(const std::string& caller_key) const;
  /// Operations waiting in the queue.
  size_t queued() const;
  size_t limit() const { return options_.max_active; }
  /// Cancels everything running or queued (a queued one ends CANCELLED
  /// without running) and waits for the workers to finish.
  void shutdown();

 private:
  friend class OperationContext;
  struct Entry {
    core::OperationRecord rec;
    std::stop_source stop;
    absl::Time last_notify = absl::InfinitePast();
    absl::Time last_saved = absl::InfinitePast();  // progress reached the store
    uint64_t saved_version = 0;                    // under save_mu_ too
    bool dirty = false;                            // phase or progress not stored yet
    bool ending = false;                           // finish() stores the end: no change until it shows it
    Work work;               // while queued
    OperationContext::EndWriter end_writer;        // OperationContext::storeEndWith
  };
  void update(const std::string& id, const std::function<void(core::OperationRecord&)>& change, bool throttle);
  /// Writes a journal step, with the operation's record when it is not stored yet.
  Status journal(const state::JournalStep& step, state::Store::Durability durability);
  /// `ran`: it held a per-caller slot (not cancelled in the queue). Returns the end.
  core::OperationRecord finish(const std::string& id, Status status, bool ran);
  /// Takes queued or new `id` as running (a worker's or the starting thread's) and
  /// returns what run() needs; under mu_.
  struct Taken {
    Work work;
    std::string kind;
    std::stop_token stop;
  };
  Taken takeLocked(const std::string& id);
  core::OperationRecord run(std::string id, Taken taken, bool on_inline);
  /// Blocks on `cv` until `done` holds for the operation (or it is gone) or `deadline` comes.
  Result<core::OperationRecord> waitFor(std::condition_variable& cv, const std::string& id, absl::Time deadline,
                                        const std::function<bool(const core::OperationRecord&)>& done) const;
  /// Wakes waitChange() and calls the listeners of `id` (watch()).
  void changedLocked(const std::string& id) const;
  void workerLoop();
  /// The first queued operation whose caller may run one more; queue_.end() if none.
  std::deque<std::string>::iterator nextRunnableLocked();
  /// Renumbers the queued operations' queue_position after the queue changed.
  void renumberQueueLocked();
  /// Writes `snapshot` to the store unless a newer version of it was
  /// written; a finished one through `end_writer` when given, whose error
  /// is returned (the store's own errors are not: the in-memory record
  /// stays authoritative).
  Status save(const core::OperationRecord& snapshot, const OperationContext::EndWriter& end_writer = nullptr);
  void trimHistoryLocked();
  std::string newId();
  static std::string requestKey(const std::string& caller_key, const std::string& request_id) {
    return caller_key + '\n' + request_id;
  }

  const core::Clock& clock_;
  state::Store* store_;
  const Options options_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  mutable std::condition_variable finished_;  // an operation finished
  std::map<std::string, Entry> ops_;
  std::map<std::string, std::string> by_request_;  // requestKey(caller, request_id) -> op id
  std::deque<std::string> queue_;                  // PENDING, oldest first
  std::condition_variable work_ready_;             // queue_ or shutting_down_ changed
  std::vector<std::jthread> workers_;              // at most max_active, kept once started
  size_t idle_workers_ = 0;
  std::set<std::string> interrupted_;              // left by load() for recovery
  size_t active_ = 0;                              // running or queued
  std::map<std::string, size_t> active_by_caller_;  // caller key -> running, no zero entries
  bool shutting_down_ = false;
  // watch()'s listeners: op id -> token -> listener.
  mutable std::map<std::string, std::map<uint64_t, Listener>> listeners_;
  mutable uint64_t next_listener_ = 0;
  std::mutex save_mu_;                             // orders save()s; taken before mu_
  std::jthread flusher_;                           // flushProgress() each second, from the first start()
};

}  // namespace xenctl::provision
