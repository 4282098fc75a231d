#include "lib/provision/operation_registry.h"

#include <gtest/gtest.h>

#include <latch>
#include <thread>

#include "lib/core/limits.h"

#include "tests/fakes/fake_clock.h"
#include "tests/unit/provision/test_util.h"

namespace xenctl::provision {
namespace {

using core::OperationState;

class RegistryTest : public ::testing::Test {
 protected:
  /// An operation stored as running, as a daemon that stopped left it.
  core::OperationRecord storedRunning(const std::string& id, const std::string& request_id, const std::string& phase) {
    core::OperationRecord rec;
    rec.id = id;
    rec.kind = "create-domain";
    rec.target = "web1";
    rec.request_id = request_id;
    rec.state = OperationState::kRunning;
    rec.phase = phase;
    EXPECT_TRUE(store_->putOperation(rec).ok());
    return rec;
  }
  /// Starts an operation that holds a worker until `release` counts down;
  /// returns once it runs.
  static core::OperationRecord holdWorker(OperationRegistry& reg, std::latch& release) {
    auto running = std::make_shared<std::latch>(1);  // the work may still be in count_down() when wait() returns
    auto op = reg.start({"k", "hold", "", 0}, [running, &release](OperationContext&) {
      running->count_down();
      release.wait();
      return absl::OkStatus();
    });
    EXPECT_TRUE(op.ok()) << op.status();
    running->wait();
    return *op;
  }
  fakes::FakeClock clock_;
  std::unique_ptr<state::Store> store_ = *state::Store::open(":memory:");
};

// Work runs, reports phases, and the final record says how it ended.
TEST_F(RegistryTest, RunsToSuccessAndFailure) {
  OperationRegistry reg(clock_, store_.get(), {});
  auto ok = reg.start({"k", "t1", "", 7}, [](OperationContext& ctx) {
    ctx.phase("one", 40, "halfway");
    return absl::OkStatus();
  });
  auto bad = reg.start({"k", "t2", "", 7}, [](OperationContext&) { return absl::NotFoundError("no t2"); });
  ASSERT_TRUE(ok.ok() && bad.ok());
  auto a = waitFinished(reg, ok->id);
  auto b = waitFinished(reg, bad->id);
  EXPECT_EQ(a.state, OperationState::kSucceeded);
  EXPECT_EQ(a.percent, 100u);
  EXPECT_EQ(a.phase, "one");
  EXPECT_EQ(a.caller_uid, 7);
  EXPECT_EQ(b.state, OperationState::kFailed);
  EXPECT_EQ(b.status.code(), absl::StatusCode::kNotFound);
  // The history reached the store.
  reg.shutdown();
  auto stored = *store_->listOperations(10);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_TRUE(core::isFinished(stored[0].state));
}

// The history is trimmed in batches, not at every start: up to a tenth more
// are kept between two trims, then the store goes back to `history`.
TEST_F(RegistryTest, HistoryIsTrimmedInBatches) {
  OperationRegistry::Options o;
  o.history = 20;
  OperationRegistry reg(clock_, store_.get(), o);
  const auto run = [&] {
    clock_.advance(absl::Seconds(1));  // the store keeps the newest by created_at
    auto r = reg.start({"k", "t", "", 0}, [](OperationContext&) { return absl::OkStatus(); });
    ASSERT_TRUE(r.ok()) << r.status();
    waitFinished(reg, r->id);
  };
  for (int i = 0; i < 22; ++i) run();
  EXPECT_EQ(store_->listOperations(100)->size(), 22u);
  run();
  EXPECT_EQ(store_->listOperations(100)->size(), 20u);
  EXPECT_EQ(reg.list("", false, 100).size(), 20u);
}

// The same request_id returns the same operation; work runs once.
TEST_F(RegistryTest, RequestIdDeduplicates) {
  OperationRegistry reg(clock_, nullptr, {});
  std::atomic<int> runs{0};
  auto work = [&](OperationContext&) {
    ++runs;
    return absl::OkStatus();
  };
  auto a = reg.start({"create", "web1", "req-1", 0}, work);
  waitFinished(reg, a->id);
  auto b = reg.start({"create", "web1", "req-1", 0}, work);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(b->state, OperationState::kSucceeded);
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(reg.findByRequest("req-1", "uid:0")->id, a->id);
  auto c = reg.start({"delete", "web1", "req-1", 0}, work);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
}

// A request_id is its caller's and its request's: the same request again is
// the same operation, another request under it is refused naming the id and
// the earlier operation, and another caller's same id is another operation.
TEST_F(RegistryTest, RequestIdIsScopedToCallerAndRequest) {
  OperationRegistry reg(clock_, nullptr, {});
  std::atomic<int> runs{0};
  auto work = [&](OperationContext&) {
    ++runs;
    return absl::OkStatus();
  };
  auto a = reg.start({"delete-domain", "web1", "r1", 1000, "uid:1000", "digest-a"}, work);
  ASSERT_TRUE(a.ok()) << a.status();
  waitFinished(reg, a->id);
  auto again = reg.startChecked({"delete-domain", "web1", "r1", 1000, "uid:1000", "digest-a"},
                                [] { return absl::NotFoundError("precheck must not run for a repeat"); }, work);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, a->id);
  // Same kind and target, other fields (a digest that differs): refused.
  auto other = reg.startChecked({"delete-domain", "web1", "r1", 1000, "uid:1000", "digest-b"},
                                [] { return absl::OkStatus(); }, work);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("request_id 'r1' was already used"), std::string::npos) << other.status();
  EXPECT_NE(other.status().message().find(a->id), std::string::npos) << other.status();
  auto mine = reg.start({"create-domain", "web1", "r1", 1001, "uid:1001", "digest-a"}, work);
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_NE(mine->id, a->id);
  waitFinished(reg, mine->id);
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(reg.findByRequest("r1", "uid:1001")->id, mine->id);
}

// Past max_active, operations wait PENDING with their place in the queue and
// run in turn; only past max_queued is a request refused, naming the limit.
TEST_F(RegistryTest, QueuesPastMaxActive) {
  OperationRegistry reg(clock_, nullptr, {2, 100, 0, 2});
  std::latch release(1), running(2);
  auto blocked = [&](OperationContext&) {
    running.count_down();
    release.wait();
    return absl::OkStatus();
  };
  auto a = reg.start({"k", "a", "", 0}, blocked);
  auto b = reg.start({"k", "b", "", 0}, blocked);
  ASSERT_TRUE(a.ok() && b.ok());
  running.wait();
  auto c = reg.start({"k", "c", "", 0}, [](OperationContext&) { return absl::OkStatus(); });
  auto d = reg.start({"k", "d", "", 0}, [](OperationContext&) { return absl::OkStatus(); });
  ASSERT_TRUE(c.ok() && d.ok());
  EXPECT_EQ(c->state, OperationState::kPending);
  EXPECT_EQ(c->queue_position, 1u);
  EXPECT_EQ(reg.get(d->id)->queue_position, 2u);
  EXPECT_EQ(reg.active(), 4u);
  EXPECT_EQ(reg.queued(), 2u);
  auto e = reg.start({"k", "e", "", 0}, [](OperationContext&) { return absl::OkStatus(); });
  EXPECT_EQ(e.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(e.status().message().find("the limit of the queue is 2 ([daemon] max_queued_operations)"),
            std::string::npos)
      << e.status();
  release.count_down();
  for (const auto& op : {*a, *b, *c, *d}) EXPECT_EQ(waitFinished(reg, op.id).state, OperationState::kSucceeded);
  EXPECT_EQ(reg.get(d->id)->queue_position, 0u);
  EXPECT_EQ(reg.active(), 0u);
}

// One caller runs at most max_per_caller at once; its next ones wait in the
// queue while another caller's run past them.
TEST_F(RegistryTest, BoundsOperationsPerCaller) {
  OperationRegistry reg(clock_, nullptr, {8, 100, 2});
  std::latch release(1), running(3);
  auto blocked = [&](OperationContext&) {
    running.count_down();
    release.wait();
    return absl::OkStatus();
  };
  auto a = reg.start({"k", "a", "", 1000, "uid:1000"}, blocked);
  auto b = reg.start({"k", "b", "", 1000, "uid:1000"}, blocked);
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = reg.start({"k", "c", "", 1000, "uid:1000"}, [](OperationContext&) { return absl::OkStatus(); });
  ASSERT_TRUE(c.ok()) << c.status();
  auto other = reg.start({"k", "d", "", 0, "cert:CN=orchestrator"}, blocked);
  ASSERT_TRUE(other.ok()) << other.status();
  running.wait();  // a, b and the other caller's: c waits behind its caller's limit
  EXPECT_EQ(reg.activeOf("uid:1000"), 2u);
  EXPECT_EQ(reg.activeOf("cert:CN=orchestrator"), 1u);
  EXPECT_EQ(reg.get(c->id)->state, OperationState::kPending);
  EXPECT_EQ(reg.get(c->id)->queue_position, 1u);
  release.count_down();
  for (const auto& op : {*a, *b, *c, *other})
    EXPECT_EQ(waitFinished(reg, op.id).state, OperationState::kSucceeded);
  EXPECT_EQ(reg.activeOf("uid:1000"), 0u);
}

// run_inline with a place free: the work runs on the starting thread before
// start() returns, which returns its end; watchers hear its versions as from
// a worker, and the end is stored.
TEST_F(RegistryTest, RunInlineEndsBeforeStartReturns) {
  OperationRegistry reg(clock_, store_.get(), {});
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  bool inlined = false;
  OperationRegistry::Request req{"k", "t", "", 7};
  req.run_inline = true;
  auto op = reg.start(req, [&](OperationContext& ctx) {
    ran_on = std::this_thread::get_id();
    inlined = ctx.onStartingThread();
    ctx.phase("one", 40);
    return absl::OkStatus();
  });
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(ran_on, caller);
  EXPECT_TRUE(inlined);
  EXPECT_EQ(op->state, OperationState::kSucceeded);
  EXPECT_EQ(op->phase, "one");
  EXPECT_EQ(op->version, 4u);  // pending, running, phase, end
  EXPECT_EQ(reg.active(), 0u);
  EXPECT_EQ(reg.activeOf("uid:7"), 0u);
  auto stored = *store_->listOperations(10);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].state, OperationState::kSucceeded);
  // A failing one ends FAILED the same way.
  auto bad = reg.start(req, [](OperationContext&) { return absl::NotFoundError("no t"); });
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->state, OperationState::kFailed);
}

// An end writer that fails fails the operation with its error (a work
// already failed keeps its own), start() returns that end, and the end is
// stored without the writer's change, journal cleared.
TEST_F(RegistryTest, FailedEndWriterFailsTheOperation) {
  OperationRegistry reg(clock_, store_.get(), {});
  OperationRegistry::Request req{"k", "t", "", 7};
  req.run_inline = true;
  int writes = 0;
  auto failing = [&](const core::OperationRecord&) {
    ++writes;
    return absl::UnavailableError("disk full");
  };
  auto op = reg.start(req, [&](OperationContext& ctx) {
    EXPECT_TRUE(ctx.journal(0, "step", {{"a", "b"}}, false, state::Store::Durability::kCommitted).ok());
    ctx.storeEndWith(failing);
    return absl::OkStatus();
  });
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(writes, 1);
  EXPECT_EQ(op->state, OperationState::kFailed);
  EXPECT_TRUE(absl::IsUnavailable(op->status)) << op->status;
  EXPECT_EQ(op->status.message(), "disk full");
  EXPECT_EQ(reg.get(op->id)->state, OperationState::kFailed);
  auto stored = *store_->listOperations(10);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].state, OperationState::kFailed);
  EXPECT_TRUE(store_->listJournal()->empty());
  auto bad = reg.start(req, [&](OperationContext& ctx) {
    ctx.storeEndWith(failing);
    return absl::NotFoundError("no t");
  });
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->state, OperationState::kFailed);
  EXPECT_TRUE(absl::IsNotFound(bad->status)) << bad->status;
}

// run_inline is queued as any other when no place is free at once: all
// max_active running, its caller at max_per_caller, or others queued before it.
TEST_F(RegistryTest, RunInlineQueuesWhenNoPlaceIsFree) {
  OperationRegistry reg(clock_, nullptr, {2, 100, 1});
  std::latch release(1);
  const core::OperationRecord held = holdWorker(reg, release);  // uid:0's one place
  auto quick = [](OperationContext& ctx) {
    EXPECT_FALSE(ctx.onStartingThread());
    return absl::OkStatus();
  };
  OperationRegistry::Request same_caller{"k", "a", "", 0};
  same_caller.run_inline = true;
  auto a = reg.start(same_caller, quick);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->state, OperationState::kPending);  // its caller runs max_per_caller
  OperationRegistry::Request other{"k", "b", "", 1};
  other.run_inline = true;
  auto b = reg.start(other, quick);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->state, OperationState::kPending);  // a waits before it
  release.count_down();
  for (const auto& op : {held, *a, *b}) EXPECT_EQ(waitFinished(reg, op.id).state, OperationState::kSucceeded);
  EXPECT_EQ(reg.active(), 0u);
}

// A queued operation cancelled ends CANCELLED at once without running.
TEST_F(RegistryTest, CancelWhileQueued) {
  OperationRegistry reg(clock_, nullptr, {1, 100});
  std::latch release(1);
  const core::OperationRecord a = holdWorker(reg, release);
  bool ran = false;
  auto b = reg.start({"k", "b", "", 0}, [&](OperationContext&) {
    ran = true;
    return absl::OkStatus();
  });
  ASSERT_TRUE(b.ok());
  auto cancelled = reg.cancel(b->id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state, OperationState::kCancelled);
  EXPECT_EQ(reg.queued(), 0u);
  release.count_down();
  waitFinished(reg, a.id);
  EXPECT_FALSE(ran);
}

// A phase change reaches the store at once when the operation's last write
// is a second old, so that an operation a crash interrupted says where it
// stopped.
TEST_F(RegistryTest, PhaseSavedAsItChanges) {
  OperationRegistry reg(clock_, store_.get(), {});
  std::latch in_phase(1), release(1);
  auto op = reg.start({"k", "t", "", 0}, [&](OperationContext& ctx) {
    clock_.advance(absl::Seconds(1));
    ctx.phase("clone", 30, "cloning web1-root");
    in_phase.count_down();
    release.wait();
    return absl::OkStatus();
  });
  ASSERT_TRUE(op.ok());
  in_phase.wait();
  auto stored = *store_->listOperations(1);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].state, OperationState::kRunning);
  EXPECT_EQ(stored[0].phase, "clone");
  EXPECT_EQ(stored[0].percent, 30u);
  EXPECT_EQ(stored[0].message, "cloning web1-root");
  release.count_down();
  waitFinished(reg, op->id);
  EXPECT_EQ((*store_->listOperations(1))[0].state, OperationState::kSucceeded);
}

// Phase and progress reach the store at most once a second per operation;
// what changed meanwhile is stored by the next flush a second later.
TEST_F(RegistryTest, ProgressSavesThrottled) {
  OperationRegistry::Options options;
  options.flusher = false;
  OperationRegistry reg(clock_, store_.get(), options);
  std::latch step1(1), step2(1), next1(1), next2(1), release(1);
  auto op = reg.start({"k", "t", "", 0}, [&](OperationContext& ctx) {
    clock_.advance(absl::Seconds(1));
    ctx.phase("download", 0);     // a second after the PENDING row: stored at once
    ctx.progress(10, 100, 1000);  // within the second: not yet
    ctx.phase("verify", 50);      // not yet either
    step1.count_down();
    next1.wait();
    ctx.progress(60, 200, 1000);  // a second later: stored at once
    step2.count_down();
    next2.wait();
    release.wait();
    return absl::OkStatus();
  });
  ASSERT_TRUE(op.ok());
  step1.wait();
  EXPECT_EQ((*store_->listOperations(1))[0].phase, "download");
  reg.flushProgress();  // too early still
  EXPECT_EQ((*store_->listOperations(1))[0].phase, "download");
  clock_.advance(absl::Seconds(1));
  reg.flushProgress();
  auto flushed = (*store_->listOperations(1))[0];
  EXPECT_EQ(flushed.phase, "verify");
  EXPECT_EQ(flushed.percent, 50u);
  clock_.advance(absl::Seconds(1));
  next1.count_down();
  step2.wait();
  EXPECT_EQ((*store_->listOperations(1))[0].percent, 60u);
  next2.count_down();
  release.count_down();
  waitFinished(reg, op->id);
  EXPECT_EQ((*store_->listOperations(1))[0].state, OperationState::kSucceeded);
}

// A request_id past its limit is refused before anything runs; an over-long message or status is cut and says so.
TEST_F(RegistryTest, LimitsRequestIdAndMessages) {
  OperationRegistry reg(clock_, nullptr, {});
  std::atomic<int> runs{0};
  auto r = reg.start({"k", "t", std::string(core::kMaxRequestIdBytes + 1, 'r'), 0}, [&](OperationContext&) {
    ++runs;
    return absl::OkStatus();
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("request_id is 129 bytes, more than the limit of 128"), std::string::npos)
      << r.status();
  auto checked = reg.startChecked({"k", "t", std::string(1 << 20, 'r'), 0}, [] { return absl::OkStatus(); },
                                  [&](OperationContext&) { return absl::OkStatus(); });
  EXPECT_EQ(checked.status().code(), absl::StatusCode::kInvalidArgument);
  auto op = reg.start({"k", "t", std::string(core::kMaxRequestIdBytes, 'r'), 0}, [](OperationContext& ctx) {
    ctx.phase("p", 10, std::string(100000, 'm'));
    return absl::InternalError(std::string(100000, 'e'));
  });
  ASSERT_TRUE(op.ok()) << op.status();
  auto done = waitFinished(reg, op->id);
  EXPECT_LE(done.message.size(), core::kMaxOperationMessageBytes);
  EXPECT_LE(done.status.message().size(), core::kMaxOperationMessageBytes);
  EXPECT_NE(std::string(done.status.message()).find("bytes cut)"), std::string::npos);
  EXPECT_EQ(runs.load(), 0);
}

// Cancel stops a running operation, which ends CANCELLED; a finished one cannot be cancelled.
TEST_F(RegistryTest, Cancel) {
  OperationRegistry reg(clock_, nullptr, {});
  std::latch started(1);
  auto op = reg.start({"k", "t", "", 0}, [&](OperationContext& ctx) {
    started.count_down();
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait(lock, ctx.stopToken(), [] { return false; });
    return absl::CancelledError("stopped");
  });
  started.wait();
  ASSERT_TRUE(reg.cancel(op->id).ok());
  auto r = waitFinished(reg, op->id);
  EXPECT_EQ(r.state, OperationState::kCancelled);
  EXPECT_EQ(reg.cancel(op->id).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reg.cancel("op-nope").status().code(), absl::StatusCode::kNotFound);
}

// waitChange returns at the deadline with the unchanged record, and at once on a change.
TEST_F(RegistryTest, WaitChange) {
  OperationRegistry reg(clock_, nullptr, {});
  std::latch go(1);
  auto op = reg.start({"k", "t", "", 0}, [&](OperationContext& ctx) {
    go.wait();
    ctx.phase("p", 50);
    return absl::OkStatus();
  });
  auto running = reg.waitChange(op->id, op->version, absl::Now() + absl::Seconds(10));  // a worker took it
  EXPECT_EQ(running->state, OperationState::kRunning);
  auto same = reg.waitChange(op->id, running->version, absl::Now() + absl::Milliseconds(20));
  EXPECT_EQ(same->version, running->version);
  go.count_down();
  auto r = waitFinished(reg, op->id);
  EXPECT_GT(r.version, op->version);
  EXPECT_EQ(reg.waitChange("op-nope", 0, absl::Now()).status().code(), absl::StatusCode::kNotFound);
}

// watch() hands a listener the record current at the call and then every
// later version once, in order, none skipped, each heard before waitChange()
// returns it; an unknown id is NOT_FOUND.
TEST_F(RegistryTest, WatchHearsEachVersion) {
  // One worker, held by another operation: ours stays PENDING (version 1)
  // until the watch is in place. Without it a worker may take ours first,
  // and the record at the call is RUNNING, version 2: both are the contract.
  OperationRegistry reg(clock_, nullptr, {1, 100});
  std::latch hold(1);
  holdWorker(reg, hold);  // running: else ours may be queued second and renumbered, a version more
  auto op = reg.start({"k", "t", "", 0}, [&](OperationContext& ctx) {
    ctx.phase("p", 50);
    return absl::OkStatus();
  });
  ASSERT_TRUE(op.ok()) << op.status();
  std::mutex mu;
  std::vector<core::OperationRecord> heard;
  auto w = reg.watch(op->id, [&](const core::OperationRecord& r) {
    std::lock_guard lock(mu);
    heard.push_back(r);
  });
  ASSERT_TRUE(w.ok()) << w.status();
  hold.count_down();
  const auto last = waitFinished(reg, op->id);
  {
    std::lock_guard lock(mu);
    // queued, taken by the worker, the phase, the end: versions 1..4.
    ASSERT_EQ(heard.size(), 4u);
    for (size_t i = 0; i < heard.size(); ++i) EXPECT_EQ(heard[i].version, op->version + i);
    EXPECT_EQ(heard[0].state, OperationState::kPending);
    EXPECT_EQ(heard[1].state, OperationState::kRunning);
    EXPECT_EQ(heard[2].phase, "p");
    EXPECT_EQ(heard.back().version, last.version);
    EXPECT_EQ(heard.back().state, OperationState::kSucceeded);
  }
  EXPECT_EQ(reg.watch("op-nope", [](const core::OperationRecord&) {}).status().code(),
            absl::StatusCode::kNotFound);
}

// The end is shown (get(), waitChange(), watchers) only once it is in the
// store, so whoever saw it finished finds it in the history.
TEST_F(RegistryTest, EndShownOnlyOnceStored) {
  OperationRegistry reg(clock_, store_.get(), {});
  for (int i = 0; i < 50; ++i) {
    auto op = reg.start({"k", "t", "", 0}, [](OperationContext&) { return absl::OkStatus(); });
    ASSERT_TRUE(op.ok()) << op.status();
    core::OperationRecord r;
    while (!core::isFinished((r = *reg.get(op->id)).state)) std::this_thread::yield();
    auto stored = *store_->listOperations(1000);
    auto it = std::find_if(stored.begin(), stored.end(), [&](const auto& s) { return s.id == op->id; });
    ASSERT_NE(it, stored.end());
    EXPECT_EQ(it->state, OperationState::kSucceeded) << "operation " << i << " seen finished before it was stored";
  }
}

// Byte progress is throttled to one notification per 100 ms; phases are not.
TEST_F(RegistryTest, ProgressThrottled) {
  OperationRegistry reg(clock_, nullptr, {});
  std::latch go(1), done(1);
  auto op = reg.start({"k", "t", "", 0}, [&](OperationContext& ctx) {
    go.wait();
    ctx.phase("download", 0);
    for (int i = 1; i <= 50; ++i) ctx.progress(i, i * 10, 500);  // the fake clock does not move
    done.count_down();
    return absl::OkStatus();
  });
  const uint64_t v0 = op->version;
  go.count_down();
  done.wait();
  auto r = *reg.get(op->id);
  EXPECT_EQ(r.bytes_done, 500u);  // the record is current
  EXPECT_LE(r.version, v0 + 3);   // but watchers were woken at most for phase + one progress (+ finish)
}

// Operations running when the daemon stopped are marked failed on load, and their request_id still dedups.
TEST_F(RegistryTest, LoadMarksInterrupted) {
  const core::OperationRecord rec = storedRunning("op-0000000000000001", "req-9", "create");
  OperationRegistry reg(clock_, store_.get(), {});
  ASSERT_TRUE(reg.load().ok());
  auto r = *reg.get(rec.id);
  EXPECT_EQ(r.state, OperationState::kFailed);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kAborted);
  EXPECT_NE(r.status.message().find("interrupted by a daemon restart"), absl::string_view::npos);
  EXPECT_EQ(reg.findByRequest("req-9")->id, rec.id);
  EXPECT_EQ((*store_->listOperations(1))[0].state, OperationState::kFailed);
}

// An interrupted operation with a journal is left to recovery, still found by its request_id, until concluded.
TEST_F(RegistryTest, LoadLeavesJournaledOperationsToRecovery) {
  const core::OperationRecord rec = storedRunning("op-0000000000000002", "req-7", "clone");
  ASSERT_TRUE(store_->putJournalStep({rec.id, 0, rec.kind, "clone", {{"volume", "web1-root"}}, false}).ok());
  OperationRegistry reg(clock_, store_.get(), {});
  ASSERT_TRUE(reg.load().ok());
  ASSERT_EQ(reg.interrupted().size(), 1u);
  EXPECT_EQ(reg.get(rec.id)->state, OperationState::kRunning);
  EXPECT_EQ(reg.active(), 0u);
  // A retry meanwhile gets the same operation, and nothing runs.
  bool ran = false;
  auto again = reg.start({"create-domain", "web1", "req-7", -1}, [&](OperationContext&) {
    ran = true;
    return absl::OkStatus();
  });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, rec.id);

  ASSERT_TRUE(reg.conclude(rec.id, absl::AbortedError("undone at restart"), "undone at restart: x").ok());
  EXPECT_TRUE(reg.interrupted().empty());
  auto r = *reg.get(rec.id);
  EXPECT_EQ(r.state, OperationState::kFailed);
  EXPECT_EQ(r.message, "undone at restart: x");
  EXPECT_EQ((*store_->listOperations(1))[0].state, OperationState::kFailed);
  EXPECT_TRUE(store_->listJournal()->empty());
  EXPECT_EQ(reg.conclude(rec.id, absl::OkStatus(), "").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reg.findByRequest("req-7")->id, rec.id);
  EXPECT_FALSE(ran);
}

// An operation reaches the store with its first journal step (a restart must find it), and at its end.
TEST_F(RegistryTest, StoredWithItsFirstJournalStep) {
  OperationRegistry::Options options;
  options.flusher = false;
  OperationRegistry reg(clock_, store_.get(), options);
  std::latch journaled(1), release(1);
  size_t stored_before = 99, stored_after = 99;
  auto op = reg.start({"t", "x", "", 0}, [&](OperationContext& ctx) -> Status {
    stored_before = store_->listOperations(10)->size();
    XENCTL_RETURN_IF_ERROR(ctx.journal(0, "make", {{"thing", "x"}}, false, state::Store::Durability::kCommitted));
    stored_after = store_->listOperations(10)->size();
    journaled.count_down();
    release.wait();
    return ctx.journal(0, "make", {{"thing", "x"}}, true, state::Store::Durability::kCommitted);
  });
  ASSERT_TRUE(op.ok());
  journaled.wait();
  EXPECT_EQ(stored_before, 0u);
  EXPECT_EQ(stored_after, 1u);
  auto stored = *store_->listOperations(1);
  EXPECT_EQ(stored[0].id, op->id);
  EXPECT_FALSE(core::isFinished(stored[0].state));
  release.count_down();
  waitFinished(reg, op->id);
  stored = *store_->listOperations(1);
  EXPECT_EQ(stored[0].state, OperationState::kSucceeded);
  EXPECT_TRUE(store_->listJournal()->empty());
}

// One still unfinished a second after its start is stored by the flusher, as
// queued or running, so that a restart shows it interrupted.
TEST_F(RegistryTest, LongOperationStoredBeforeItsEnd) {
  OperationRegistry::Options options;
  options.flusher = false;
  OperationRegistry reg(clock_, store_.get(), options);
  std::latch running(1), release(1);
  auto op = reg.start({"t", "x", "", 0}, [&](OperationContext&) {
    running.count_down();
    release.wait();
    return absl::OkStatus();
  });
  ASSERT_TRUE(op.ok());
  running.wait();
  reg.flushProgress();
  EXPECT_TRUE(store_->listOperations(10)->empty());  // younger than a second: not yet
  clock_.advance(absl::Seconds(1));
  reg.flushProgress();
  auto stored = *store_->listOperations(10);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_FALSE(core::isFinished(stored[0].state));
  release.count_down();
  waitFinished(reg, op->id);
  EXPECT_EQ((*store_->listOperations(1))[0].state, OperationState::kSucceeded);
}

// waitFinished() returns at the operation's end, not at a phase before it, and at the deadline when it has not ended.
TEST_F(RegistryTest, WaitFinished) {
  OperationRegistry reg(clock_, nullptr, {});
  std::latch in_phase(1), release(1);
  auto op = reg.start({"k", "t", "", 0}, [&](OperationContext& ctx) {
    ctx.phase("one", 10);
    in_phase.count_down();
    release.wait();
    ctx.phase("two", 50);
    return absl::OkStatus();
  });
  ASSERT_TRUE(op.ok());
  in_phase.wait();
  auto early = reg.waitFinished(op->id, absl::Now());  // the deadline has come: as it is
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(early->state, OperationState::kRunning);
  release.count_down();
  auto done = reg.waitFinished(op->id, absl::InfiniteFuture());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, OperationState::kSucceeded);
  EXPECT_EQ(reg.waitFinished("op-none", absl::InfiniteFuture()).status().code(), absl::StatusCode::kNotFound);
}

// A journaled step is in the store while it runs; the journal is gone once the operation has finished.
TEST_F(RegistryTest, JournalLivesAsLongAsItsOperation) {
  OperationRegistry reg(clock_, store_.get(), {});
  std::vector<state::JournalStep> seen;
  auto op = reg.start({"t", "x", "", 0}, [&](OperationContext& ctx) -> Status {
    XENCTL_RETURN_IF_ERROR(ctx.journal(0, "make", {{"thing", "x"}}, false));
    seen = *store_->listJournal();
    return ctx.journal(0, "make", {{"thing", "x"}}, true);
  });
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(waitFinished(reg, op->id).state, OperationState::kSucceeded);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kind, "t");
  EXPECT_EQ(seen[0].record.at("thing"), "x");
  EXPECT_FALSE(seen[0].done);
  EXPECT_TRUE(store_->listJournal()->empty());
}

// A last step's kCommitted end is not written on its own: the begun entry
// stays until the operation's end clears it (what a crash at "STEP:done"
// leaves); a kSynced one is written at once.
TEST_F(RegistryTest, LastCommittedStepEndsWithTheOperation) {
  OperationRegistry reg(clock_, store_.get(), {});
  std::vector<state::JournalStep> committed, synced;
  auto op = reg.start({"t", "x", "", 0}, [&](OperationContext& ctx) -> Status {
    XENCTL_RETURN_IF_ERROR(ctx.journal(0, "make", {{"thing", "x"}}, false, state::Store::Durability::kCommitted));
    XENCTL_RETURN_IF_ERROR(
        ctx.journalLastDone(0, "make", {{"thing", "x"}}, state::Store::Durability::kCommitted));
    committed = *store_->listJournal();
    XENCTL_RETURN_IF_ERROR(ctx.journal(1, "wipe", {{"thing", "x"}}, false));
    XENCTL_RETURN_IF_ERROR(ctx.journalLastDone(1, "wipe", {{"thing", "x"}}, state::Store::Durability::kSynced));
    synced = *store_->listJournal();
    return absl::OkStatus();
  });
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(waitFinished(reg, op->id).state, OperationState::kSucceeded);
  ASSERT_EQ(committed.size(), 1u);
  EXPECT_FALSE(committed[0].done);
  ASSERT_EQ(synced.size(), 2u);
  EXPECT_TRUE(synced[1].done);
  EXPECT_TRUE(store_->listJournal()->empty());
}

}  // namespace
}  // namespace xenctl::provision
