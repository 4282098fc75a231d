#include "lib/provision/operation_registry.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/core/limits.h"
#include "lib/provision/crash_points.h"

namespace xenctl::provision {

using core::OperationRecord;
using core::OperationState;

namespace {
constexpr absl::Duration kNotifyInterval = absl::Milliseconds(100);
// Phase and progress reach the store at most this often per operation: at
// once when the last write is older, else by the flusher within about
// kSaveInterval. After a crash the record says where the work stopped
// (within a second), without a write per block copied or per phase of an
// operation that takes a millisecond.
constexpr absl::Duration kSaveInterval = absl::Seconds(1);

std::string cut(const std::string& message) { return core::truncateText(message, core::kMaxOperationMessageBytes); }

Status cut(const Status& st) {
  if (st.message().size() <= core::kMaxOperationMessageBytes) return st;
  return Status(st.code(), cut(std::string(st.message())));
}

// OK when `req` asks again what `prev` (found by the same caller's
// request_id) was started for; else the refusal, naming both.
Status sameRequest(const OperationRecord& prev, const OperationRegistry::Request& req) {
  const bool same = !prev.request_digest.empty() && !req.request_digest.empty()
                        ? prev.request_digest == req.request_digest
                        : prev.kind == req.kind && prev.target == req.target;
  if (same) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "request_id '", req.request_id, "' was already used by ", req.caller_key, " for another request: ", prev.kind,
      " of '", prev.target, "' (operation ", prev.id, "); use a new request_id for a new request"));
}
}  // namespace

void OperationContext::phase(const std::string& name, uint32_t percent, const std::string& message) {
  registry_.update(
      id_,
      [&](OperationRecord& r) {
        r.state = OperationState::kRunning;
        r.phase = name;
        r.percent = std::max(r.percent, std::min(percent, 100u));
        r.bytes_done = r.bytes_total = 0;
        r.message = cut(message);
      },
      /*throttle=*/false);
}

void OperationContext::progress(uint32_t percent, uint64_t bytes_done, uint64_t bytes_total,
                                const std::string& message) {
  registry_.update(
      id_,
      [&](OperationRecord& r) {
        r.percent = std::max(r.percent, std::min(percent, 100u));
        r.bytes_done = bytes_done;
        r.bytes_total = bytes_total;
        if (!message.empty()) r.message = cut(message);
      },
      /*throttle=*/true);
}

Status OperationContext::journal(int64_t seq, const std::string& step,
                                  const std::map<std::string, std::string>& record, bool done,
                                  state::Store::Durability durability) {
  if (done) crashPoint(step + ":done");
  if (registry_.store_) XENCTL_RETURN_IF_ERROR(registry_.journal({id_, seq, kind_, step, record, done}, durability));
  if (!done) crashPoint(step);
  return absl::OkStatus();
}

Status OperationContext::journalLastDone(int64_t seq, const std::string& step,
                                         const std::map<std::string, std::string>& record,
                                         state::Store::Durability durability) {
  if (durability == state::Store::Durability::kSynced) return journal(seq, step, record, true, durability);
  crashPoint(step + ":done");
  return absl::OkStatus();
}

void OperationContext::crashPoint(const std::string& point) const {
  provision::crashPoint(absl::StrCat(kind_, "/", point));
}

void OperationContext::storeEndWith(EndWriter writer) {
  std::lock_guard lock(registry_.mu_);
  if (auto it = registry_.ops_.find(id_); it != registry_.ops_.end()) it->second.end_writer = std::move(writer);
}

Status OperationRegistry::journal(const state::JournalStep& step, state::Store::Durability durability) {
  // The operation's first record goes in the journal's transaction: a
  // restart must find the operation that a journal names (load()).
  bool first_write;
  {
    std::lock_guard lock(mu_);
    auto it = ops_.find(step.op_id);
    first_write = it != ops_.end() && it->second.saved_version == 0;
  }
  if (!first_write) return store_->putJournalStep(step, durability);
  std::lock_guard order(save_mu_);
  std::optional<OperationRecord> first;
  {
    std::lock_guard lock(mu_);
    Entry& e = ops_.at(step.op_id);
    if (e.saved_version == 0) {
      first = e.rec;
      e.saved_version = e.rec.version;
      e.last_saved = clock_.now();
      e.dirty = false;
    }
  }
  return store_->putJournalStep(step, durability, first ? &*first : nullptr);
}

OperationRegistry::OperationRegistry(const core::Clock& clock, state::Store* store, Options options)
    : clock_(clock), store_(store), options_(options) {}

OperationRegistry::~OperationRegistry() { shutdown(); }

Status OperationRegistry::load() {
  // Before schema 5 only the uid was kept: such a request_id is the uid's.
  if (!store_) return absl::OkStatus();
  XENCTL_ASSIGN_OR_RETURN(auto history, store_->listOperations(options_.history));
  XENCTL_ASSIGN_OR_RETURN(auto journal, store_->listJournal());
  std::set<std::string> journaled;
  for (const auto& j : journal) journaled.insert(j.op_id);
  std::lock_guard lock(mu_);
  for (auto& rec : history) {
    // Written before the limits existed: a huge request_id or message would
    // not fit in a ListOperations reply.
    if (rec.request_id.size() > core::kMaxRequestIdBytes) rec.request_id.clear();
    rec.message = cut(rec.message);
    rec.status = cut(rec.status);
    if (!core::isFinished(rec.state) && journaled.count(rec.id)) {
      interrupted_.insert(rec.id);  // Recovery finishes or undoes it
    } else if (!core::isFinished(rec.state)) {
      // Nothing runs it any more: say so rather than show it running forever.
      rec.state = OperationState::kFailed;
      rec.finished_at = rec.updated_at = clock_.now();
      rec.status = absl::AbortedError(absl::StrCat(rec.kind, " of '", rec.target, "' was interrupted by a daemon ",
                                                   "restart in phase '", rec.phase, "'; check the object and retry"));
      XENCTL_RETURN_IF_ERROR(store_->putOperation(rec));
    }
    if (rec.caller_key.empty()) rec.caller_key = absl::StrCat("uid:", rec.caller_uid);
    if (!rec.request_id.empty()) by_request_[requestKey(rec.caller_key, rec.request_id)] = rec.id;
    rec.queue_position = 0;
    ops_[rec.id].rec = std::move(rec);
  }
  return absl::OkStatus();
}

std::vector<OperationRecord> OperationRegistry::interrupted() const {
  std::lock_guard lock(mu_);
  std::vector<OperationRecord> out;
  for (const auto& id : interrupted_) out.push_back(ops_.at(id).rec);
  return out;
}

Status OperationRegistry::conclude(const std::string& id, Status status, const std::string& message) {
  OperationRecord snapshot;
  {
    std::lock_guard lock(mu_);
    if (!interrupted_.count(id))
      return absl::FailedPreconditionError(absl::StrCat("operation ", id, " is not one interrupted by a restart"));
    Entry& e = ops_.at(id);
    e.rec.state = status.ok() ? OperationState::kSucceeded : OperationState::kFailed;
    if (status.ok()) e.rec.percent = 100;
    e.rec.message = message;
    e.rec.finished_at = e.rec.updated_at = clock_.now();
    e.rec.status = std::move(status);
    ++e.rec.version;
    snapshot = e.rec;
    interrupted_.erase(id);
    changedLocked(id);
    finished_.notify_all();
  }
  return store_->finishOperation(snapshot);
}

std::string OperationRegistry::newId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id;
  do id = absl::StrFormat("op-%016x", rng());
  while (ops_.count(id));
  return id;
}

std::optional<OperationRecord> OperationRegistry::findByRequest(const std::string& request_id,
                                                                const std::string& caller_key) const {
  if (request_id.empty()) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = by_request_.find(requestKey(caller_key.empty() ? "uid:-1" : caller_key, request_id));
  if (it == by_request_.end()) return std::nullopt;
  return ops_.at(it->second).rec;
}

Result<OperationRecord> OperationRegistry::start(Request req, Work work) {
  XENCTL_RETURN_IF_ERROR(core::checkLength(req.request_id, core::kMaxRequestIdBytes, "request_id"));
  if (req.caller_key.empty()) req.caller_key = absl::StrCat("uid:", req.caller_uid);
  std::unique_lock lock(mu_);
  if (!req.request_id.empty()) {
    if (auto it = by_request_.find(requestKey(req.caller_key, req.request_id)); it != by_request_.end()) {
      const OperationRecord& prev = ops_.at(it->second).rec;
      XENCTL_RETURN_IF_ERROR(sameRequest(prev, req));
      return prev;
    }
  }
  if (shutting_down_) return absl::UnavailableError("xenctld is shutting down; retry when it is back");
  if (queue_.size() >= options_.max_queued)
    return absl::ResourceExhaustedError(absl::StrCat(
        active_ - queue_.size(), " operations are running and ", queue_.size(), " wait, the limit of the queue is ",
        options_.max_queued, " ([daemon] max_queued_operations); retry when some have finished"));
  OperationRecord rec;
  rec.id = newId();
  rec.kind = std::move(req.kind);
  rec.target = std::move(req.target);
  rec.request_id = std::move(req.request_id);
  rec.caller_uid = req.caller_uid;
  rec.caller_key = std::move(req.caller_key);
  rec.request_digest = std::move(req.request_digest);
  rec.state = OperationState::kPending;
  rec.created_at = rec.updated_at = clock_.now();
  rec.version = 1;
  if (store_ && options_.flusher && !flusher_.joinable())
    flusher_ = std::jthread([this](std::stop_token st) {
      std::mutex m;
      std::condition_variable_any cv;
      for (;;) {
        std::unique_lock l(m);
        cv.wait_for(l, st, absl::ToChronoSeconds(kSaveInterval), [] { return false; });
        if (st.stop_requested()) return;
        l.unlock();
        flushProgress();
        // What was committed reaches the disk within about a second.
        (void)store_->sync();
      }
    });
  rec.queue_position = static_cast<uint32_t>(queue_.size() + 1);
  Entry& e = ops_[rec.id];
  e.rec = rec;
  e.work = std::move(work);
  // Not stored yet: an operation of a millisecond writes only its end (and
  // its journal, which carries its first record). One still unfinished a
  // second from now is stored by the flusher, so that a restart finds it.
  e.last_saved = rec.created_at;
  e.dirty = true;
  if (!rec.request_id.empty()) by_request_[requestKey(rec.caller_key, rec.request_id)] = rec.id;
  const size_t per_caller = options_.max_per_caller ? options_.max_per_caller : options_.max_active;
  auto caller_running = active_by_caller_.find(rec.caller_key);
  if (req.run_inline && queue_.empty() && active_ < options_.max_active &&
      (caller_running == active_by_caller_.end() || caller_running->second < per_caller)) {
    // A worker's place is free: this thread is its worker (nothing queued
    // is passed over, and the limits count it as running).
    ++active_;
    Taken taken = takeLocked(rec.id);
    lock.unlock();
    return run(rec.id, std::move(taken), /*on_inline=*/true);
  }
  ++active_;
  queue_.push_back(rec.id);
  // A worker for each waiting operation, up to max_active; they stay for the next.
  if (queue_.size() > idle_workers_ && workers_.size() < options_.max_active)
    workers_.emplace_back([this] { workerLoop(); });
  work_ready_.notify_all();
  return rec;
}

Result<OperationRecord> OperationRegistry::startChecked(Request req, const std::function<Status()>& precheck,
                                                        Work work) {
  XENCTL_RETURN_IF_ERROR(core::checkLength(req.request_id, core::kMaxRequestIdBytes, "request_id"));
  if (req.caller_key.empty()) req.caller_key = absl::StrCat("uid:", req.caller_uid);
  if (auto existing = findByRequest(req.request_id, req.caller_key)) {
    XENCTL_RETURN_IF_ERROR(sameRequest(*existing, req));
    return *existing;
  }
  XENCTL_RETURN_IF_ERROR(precheck());
  return start(std::move(req), std::move(work));
}

std::deque<std::string>::iterator OperationRegistry::nextRunnableLocked() {
  const size_t per_caller = options_.max_per_caller ? options_.max_per_caller : options_.max_active;
  // Operations run inline (Request::run_inline) hold places too.
  if (!shutting_down_ && active_ - queue_.size() >= options_.max_active) return queue_.end();
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (shutting_down_) return it;  // each ends at once, cancelled
    auto c = active_by_caller_.find(ops_.at(*it).rec.caller_key);
    if (c == active_by_caller_.end() || c->second < per_caller) return it;
  }
  return queue_.end();
}

void OperationRegistry::renumberQueueLocked() {
  uint32_t pos = 0;
  for (const auto& id : queue_) {
    OperationRecord& r = ops_.at(id).rec;
    if (r.queue_position == ++pos) continue;
    r.queue_position = pos;
    ++r.version;
    changedLocked(id);
  }
  changed_.notify_all();
}

void OperationRegistry::workerLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    auto it = nextRunnableLocked();
    if (it == queue_.end()) {
      if (shutting_down_ && queue_.empty()) return;
      ++idle_workers_;
      work_ready_.wait(lock);
      --idle_workers_;
      continue;
    }
    const std::string id = *it;
    queue_.erase(it);
    renumberQueueLocked();
    Taken taken = takeLocked(id);
    lock.unlock();
    run(id, std::move(taken), /*on_inline=*/false);
    lock.lock();
  }
}

OperationRegistry::Taken OperationRegistry::takeLocked(const std::string& id) {
  Entry& e = ops_.at(id);
  ++active_by_caller_[e.rec.caller_key];
  e.rec.queue_position = 0;
  e.rec.state = OperationState::kRunning;
  e.rec.updated_at = clock_.now();
  ++e.rec.version;
  Taken taken{std::move(e.work), e.rec.kind, e.stop.get_token()};
  e.work = nullptr;
  changedLocked(id);
  return taken;
}

OperationRecord OperationRegistry::run(std::string id, Taken taken, bool on_inline) {
  OperationContext ctx(*this, id, std::move(taken.kind), std::move(taken.stop), on_inline);
  Status st;
  if (ctx.cancelled())
    st = absl::CancelledError("cancelled before it started");
  else
    st = taken.work(ctx);
  return finish(id, std::move(st), /*ran=*/true);
}

void OperationRegistry::update(const std::string& id, const std::function<void(OperationRecord&)>& change,
                               bool throttle) {
  std::optional<OperationRecord> snapshot;
  {
    std::lock_guard lock(mu_);
    auto it = ops_.find(id);
    if (it == ops_.end() || it->second.ending) return;  // the work has returned
    Entry& e = it->second;
    change(e.rec);
    const absl::Time now = clock_.now();
    e.rec.updated_at = now;
    if (!throttle || now - e.last_notify >= kNotifyInterval) {
      e.last_notify = now;
      ++e.rec.version;
      changedLocked(id);
    }
    e.dirty = true;
    if (store_ && now - e.last_saved >= kSaveInterval) {
      e.last_saved = now;
      e.dirty = false;
      snapshot = e.rec;
    }
  }
  if (snapshot) (void)save(*snapshot);
}

void OperationRegistry::flushProgress() {
  if (!store_) return;
  std::vector<OperationRecord> due;
  {
    std::lock_guard lock(mu_);
    const absl::Time now = clock_.now();
    for (auto& [id, e] : ops_) {
      if (!e.dirty || core::isFinished(e.rec.state) || now - e.last_saved < kSaveInterval) continue;
      e.dirty = false;
      e.last_saved = now;
      due.push_back(e.rec);
    }
  }
  for (const auto& rec : due) (void)save(rec);
}

Status OperationRegistry::save(const OperationRecord& snapshot, const OperationContext::EndWriter& end_writer) {
  if (!store_ && !end_writer) return absl::OkStatus();
  std::lock_guard order(save_mu_);
  {
    std::lock_guard lock(mu_);
    auto it = ops_.find(snapshot.id);
    if (it != ops_.end()) {
      // A newer state (the end, from another thread) is stored already.
      if (it->second.saved_version > snapshot.version) return absl::OkStatus();
      it->second.saved_version = snapshot.version;
    } else if (!core::isFinished(snapshot.state)) {
      return absl::OkStatus();
    }
  }
  // The in-memory record stays authoritative when the store fails. A
  // finished operation's journal goes in the same transaction: the work
  // has finished or undone itself.
  if (core::isFinished(snapshot.state) && end_writer)
    return end_writer(snapshot);
  else if (!store_)
    return absl::OkStatus();
  else if (core::isFinished(snapshot.state))
    (void)store_->finishOperation(snapshot);
  else
    (void)store_->putOperation(snapshot);
  return absl::OkStatus();
}

OperationRecord OperationRegistry::finish(const std::string& id, Status status, bool ran) {
  // The end is stored first and then shown to everyone in one step under
  // mu_: get(), list(), waitChange(), a new watch() and the listeners all see
  // it at once, and only once it is in the history (a watcher that reads the
  // history after the end must find it there). Meanwhile `ending` keeps the
  // record as it was: no other change may take the end's version.
  OperationRecord last;
  OperationContext::EndWriter end_writer;
  {
    std::lock_guard lock(mu_);
    Entry& e = ops_.at(id);
    e.ending = true;
    last = e.rec;
    end_writer = std::move(e.end_writer);
    e.end_writer = nullptr;
  }
  auto endWith = [&](const Status& st) {
    OperationRecord end = last;
    end.state = st.ok()                 ? OperationState::kSucceeded
                : absl::IsCancelled(st) ? OperationState::kCancelled
                                        : OperationState::kFailed;
    if (st.ok()) end.percent = 100;
    end.queue_position = 0;
    end.finished_at = end.updated_at = clock_.now();
    end.status = cut(st);
    ++end.version;
    return end;
  };
  OperationRecord end = endWith(status);
  // Stored, with its journal's clearing in the same transaction (the work
  // has finished or undone itself), before anyone can see the end: a
  // watcher that reads the history after the end must find it there.
  if (Status stored = save(end, end_writer); !stored.ok()) {
    // The writer's change (the work's last write, left to the end) is not
    // stored: the operation fails with the store's error, as a worker's
    // run does when that write fails in its work, and its end is stored
    // without it.
    if (status.ok()) end = endWith(stored);
    (void)save(end);
  }
  std::lock_guard lock(mu_);
  Entry& e = ops_.at(id);
  // Not the caller's any more once it is seen finished: a watcher may start the next at once.
  if (auto c = active_by_caller_.find(e.rec.caller_key); ran && c != active_by_caller_.end() && --c->second == 0)
    active_by_caller_.erase(c);
  e.rec = end;
  e.ending = false;
  e.dirty = false;
  --active_;
  changedLocked(id);
  finished_.notify_all();
  work_ready_.notify_all();  // a per-caller slot is free
  // Here rather than at a start: the store then holds what memory keeps.
  trimHistoryLocked();
  return end;
}

void OperationRegistry::trimHistoryLocked() {
  // In batches: a trim sorts the history and prunes the store (a DELETE
  // over the table), too much for every start once the history is full.
  const size_t slack = std::max<size_t>(1, options_.history / 10);
  if (ops_.size() <= options_.history + slack) return;
  // Drop the oldest finished operations from memory; the store keeps its own bound.
  std::vector<std::pair<absl::Time, std::string>> finished;
  for (const auto& [id, e] : ops_)
    if (core::isFinished(e.rec.state)) finished.emplace_back(e.rec.created_at, id);
  std::sort(finished.begin(), finished.end());
  for (size_t i = 0; i < finished.size() && ops_.size() > options_.history; ++i) {
    const auto& rec = ops_.at(finished[i].second).rec;
    if (!rec.request_id.empty()) by_request_.erase(requestKey(rec.caller_key, rec.request_id));
    ops_.erase(finished[i].second);
  }
  if (store_) (void)store_->pruneOperations(options_.history);
}

Result<OperationRecord> OperationRegistry::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = ops_.find(id);
  if (it == ops_.end())
    return absl::NotFoundError(absl::StrCat("operation '", id, "' not found; `vmm ops --all` lists them"));
  return it->second.rec;
}

std::vector<OperationRecord> OperationRegistry::list(const std::string& target, bool active_only,
                                                     size_t limit) const {
  std::vector<OperationRecord> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : ops_) {
      if (!target.empty() && e.rec.target != target) continue;
      if (active_only && core::isFinished(e.rec.state)) continue;
      out.push_back(e.rec);
    }
  }
  std::sort(out.begin(), out.end(), [](const OperationRecord& a, const OperationRecord& b) {
    return std::tie(a.created_at, a.id) > std::tie(b.created_at, b.id);
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

Result<OperationRecord> OperationRegistry::cancel(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    auto it = ops_.find(id);
    if (it == ops_.end()) return absl::NotFoundError(absl::StrCat("operation '", id, "' not found"));
    Entry& e = it->second;
    if (interrupted_.count(id))
      return absl::FailedPreconditionError(absl::StrCat(
          "operation ", id, " was interrupted by a restart; xenctld finishes or undoes it before it serves"));
    if (core::isFinished(e.rec.state))
      return absl::FailedPreconditionError(
          absl::StrCat("operation ", id, " has already ", av(core::toString(e.rec.state))));
    if (e.ending)
      return absl::FailedPreconditionError(absl::StrCat(
          "operation ", id, " has already ended (its end is being stored); `vmm ops --all` shows how"));
    e.stop.request_stop();
    auto queued = std::find(queue_.begin(), queue_.end(), id);
    if (queued == queue_.end()) {
      e.rec.message = "cancel requested";
      ++e.rec.version;
      changedLocked(id);
      return e.rec;
    }
    // Nothing ran: it ends now rather than when a worker gets to it.
    queue_.erase(queued);
    e.work = nullptr;
    renumberQueueLocked();
  }
  finish(id, absl::CancelledError("cancelled while it waited in the queue; nothing was done"), /*ran=*/false);
  return get(id);
}

Result<OperationRecord> OperationRegistry::waitFor(std::condition_variable& cv, const std::string& id,
                                                  absl::Time deadline,
                                                  const std::function<bool(const OperationRecord&)>& done) const {
  std::unique_lock lock(mu_);
  auto find = [&]() -> const Entry* {
    auto it = ops_.find(id);
    return it == ops_.end() ? nullptr : &it->second;
  };
  cv.wait_until(lock, absl::ToChronoTime(deadline), [&] {
    const Entry* e = find();
    return !e || done(e->rec);
  });
  const Entry* e = find();
  if (!e) return absl::NotFoundError(absl::StrCat("operation '", id, "' not found"));
  return e->rec;
}

Result<OperationRecord> OperationRegistry::waitChange(const std::string& id, uint64_t after_version,
                                                      absl::Time deadline) const {
  return waitFor(changed_, id, deadline, [&](const OperationRecord& r) { return r.version > after_version; });
}

Result<OperationRecord> OperationRegistry::waitFinished(const std::string& id, absl::Time deadline) const {
  return waitFor(finished_, id, deadline, [](const OperationRecord& r) { return core::isFinished(r.state); });
}

void OperationRegistry::changedLocked(const std::string& id) const {
  changed_.notify_all();
  auto l = listeners_.find(id);
  if (l == listeners_.end()) return;
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  for (const auto& [token, listener] : l->second) listener(it->second.rec);
}

Result<std::unique_ptr<OperationRegistry::Watch>> OperationRegistry::watch(const std::string& id,
                                                                          Listener listener) const {
  std::lock_guard lock(mu_);
  auto it = ops_.find(id);
  if (it == ops_.end())
    return absl::NotFoundError(absl::StrCat("operation '", id, "' not found; `vmm ops --all` lists them"));
  listener(it->second.rec);
  const uint64_t token = next_listener_++;
  listeners_[id].emplace(token, std::move(listener));
  return std::unique_ptr<Watch>(new Watch(*this, id, token));
}

OperationRegistry::Watch::~Watch() {
  std::lock_guard lock(reg_.mu_);
  auto l = reg_.listeners_.find(id_);
  if (l == reg_.listeners_.end()) return;
  l->second.erase(token_);
  if (l->second.empty()) reg_.listeners_.erase(l);
}

size_t OperationRegistry::active() const {
  std::lock_guard lock(mu_);
  return active_;
}

size_t OperationRegistry::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

size_t OperationRegistry::activeOf(const std::string& caller_key) const {
  std::lock_guard lock(mu_);
  auto it = active_by_caller_.find(caller_key);
  return it == active_by_caller_.end() ? 0 : it->second;
}

void OperationRegistry::shutdown() {
  std::vector<std::jthread> workers;
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
    for (auto& [id, e] : ops_)
      if (!core::isFinished(e.rec.state)) e.stop.request_stop();
    workers.swap(workers_);
    work_ready_.notify_all();
  }
  workers.clear();  // joins each once the queue has drained (cancelled)
  flusher_ = std::jthread();  // stops and joins it
}

}  // namespace xenctl::provision
