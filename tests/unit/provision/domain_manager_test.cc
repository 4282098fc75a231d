#include "lib/provision/domain_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"

#include "lib/testhv/test_hypervisor.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_volumes.h"
#include "tests/unit/provision/test_util.h"
#include "tests/unit/storage/storage_test_util.h"

namespace xenctl::provision {
namespace {

using core::DomainState;
using core::OperationState;

core::DomainSpec spec(const std::string& name, uint64_t mem = 512) { return smallSpec(name, mem); }

// A daemon's worth of parts over one store and one pool "main" (in memory);
// `restart()` builds new ones over the same store and pool, with
// a fresh test hypervisor, as a daemon restart does.
// `restart(kKeepDomains)` keeps the hypervisor's domains running, as Xen
// does across a restart of xenctld, managed by no one until adopted.
class DomainManagerTest : public ::testing::Test {
 protected:
  static constexpr bool kKeepDomains = true;
  void SetUp() override { restart(); }
  void restart(bool keep_domains = false) {
    domains_.reset();
    storage_.reset();
    usage_ = std::make_unique<VolumeUsage>();
    ops_.reset();
    if (keep_domains) hv_->forgetManaged();
    else hv_ = std::make_unique<testhv::TestHypervisor>(testhv::TestHypervisor::Options{8, 4096, "t"});
    ops_ = std::make_unique<OperationRegistry>(clock_, store_.get(), OperationRegistry::Options{});
    ASSERT_TRUE(ops_->load().ok());
    auto pool = std::make_unique<fakes::FakeVolumes>(pool_name_, pool_state_);
    pool_ = pool.get();
    std::vector<std::unique_ptr<core::VolumeManager>> pools;
    pools.push_back(std::move(pool));
    storage_ = std::make_unique<StorageManager>(std::move(pools), *ops_, *usage_);
    domains_ = std::make_unique<DomainManager>(*hv_, *storage_, *usage_, *store_, *ops_, bus_, clock_);
    Status loaded = domains_->load();
    ASSERT_TRUE(loaded.ok()) << loaded;
  }
  // A volume of 16 MiB in pool "main"; its host path.
  std::string volume(const std::string& name) {
    auto v = pool_->create(name, 16 << 20, std::nullopt);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? v->path : "";
  }
  core::DomainSpec withDisk(const std::string& name, const std::string& target, const std::string& mode = "w") {
    core::DomainSpec s = spec(name);
    s.disks = {{target, "xvda", mode, ""}};
    return s;
  }
  // The disks the hypervisor was given for a present domain of ours.
  std::vector<core::DiskSpec> hvDisks(const std::string& name) {
    auto v = domains_->get(name);
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) return {};
    auto s = hv_->specOf(v->spec.uuid);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->disks : std::vector<core::DiskSpec>{};
  }
  // Runs an operation-returning call to its end.
  core::OperationRecord done(const Result<core::OperationRecord>& r) {
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? waitFinished(*ops_, r->id) : core::OperationRecord{};
  }
  DomainState stateOf(const std::string& name) { return domains_->get(name)->state; }

  fakes::FakeClock clock_;
  std::unique_ptr<state::Store> store_ = *state::Store::open(":memory:");
  EventBus bus_;
  std::unique_ptr<testhv::TestHypervisor> hv_;
  std::unique_ptr<OperationRegistry> ops_;
  storage::testing::TempDir tmp_;
  std::shared_ptr<fakes::FakeVolumes::State> pool_state_ = std::make_shared<fakes::FakeVolumes::State>();
  fakes::FakeVolumes* pool_ = nullptr;
  std::string pool_name_ = "main";  // the configured pool's name at the next restart()
  std::unique_ptr<VolumeUsage> usage_;
  std::unique_ptr<StorageManager> storage_;
  std::unique_ptr<DomainManager> domains_;
  Caller caller_ = adminCaller("", 1000);
};

// Create defines and starts the domain; the definition holds the normalized spec.
TEST_F(DomainManagerTest, CreateRuns) {
  auto op = done(domains_->create({spec("web1"), false, false}, caller_));
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  auto v = *domains_->get("web1");
  EXPECT_EQ(v.state, DomainState::kRunning);
  EXPECT_EQ(v.live.domid, 1);
  EXPECT_EQ(v.spec.maxmem_mib, 2048u);
  EXPECT_FALSE(v.spec.uuid.empty());
  EXPECT_EQ(v.owner_uid, 1000);
  EXPECT_EQ(store_->listDomains()->size(), 1u);
}

// On the test hypervisor create, destroy and delete run on the calling
// thread and come back finished; each leaves the store as a worker's run
// does (the definition's last change written with the operation's end).
TEST_F(DomainManagerTest, QuickVerbsRunInlineAndStoreTheirEnd) {
  auto created = domains_->create({spec("web1"), false, false}, caller_);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->state, OperationState::kSucceeded) << created->status;
  auto stored = *store_->listDomains();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_TRUE(stored[0].running_expected);
  EXPECT_TRUE(store_->listJournal()->empty());
  auto destroyed = domains_->destroy("web1", caller_);
  ASSERT_TRUE(destroyed.ok());
  EXPECT_EQ(destroyed->state, OperationState::kSucceeded) << destroyed->status;
  EXPECT_FALSE((*store_->listDomains())[0].running_expected);
  auto deleted = domains_->remove("web1", false, false, caller_);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->state, OperationState::kSucceeded) << deleted->status;
  EXPECT_TRUE(store_->listDomains()->empty());
  auto ops = *store_->listOperations(10);
  ASSERT_EQ(ops.size(), 3u);
  for (const auto& op : ops) EXPECT_EQ(op.state, OperationState::kSucceeded) << op.kind;
  // A restart reads the same.
  restart();
  EXPECT_TRUE(domains_->list(false)->empty());
}

// A quick request its checks refuse (an unknown domain, a bad name) leaves
// no per-domain lock behind: one per name asked about would grow without
// bound.
TEST_F(DomainManagerTest, RefusedQuickRequestsKeepNoLock) {
  done(domains_->create({spec("web1"), false, false}, caller_));
  const size_t locks = domains_->counts().locks;
  for (int i = 0; i < 20; ++i) {
    const std::string name = absl::StrCat("nosuch", i);
    EXPECT_TRUE(absl::IsNotFound(domains_->destroy(name, caller_).status()));
    EXPECT_TRUE(absl::IsNotFound(domains_->pause(name, caller_).status()));
    EXPECT_TRUE(absl::IsNotFound(domains_->remove(name, true, false, caller_).status()));
    EXPECT_FALSE(domains_->create({spec(absl::StrCat("bad name/", i)), false, false}, caller_).ok());
  }
  EXPECT_EQ(domains_->counts().locks, locks);
  // The quick verbs still run inline on a defined domain.
  EXPECT_EQ(domains_->destroy("web1", caller_)->state, OperationState::kSucceeded);
}

// A per-domain lock lives only while it is held or waited for: after
// many create+delete cycles of distinct names (inline, on a worker, and
// the *Now methods) and creates refused early or late, none is kept.
TEST_F(DomainManagerTest, LocksGoWhenUnused) {
  volume("v");
  for (int i = 0; i < 50; ++i) {
    const std::string name = absl::StrCat("cycle", i);
    EXPECT_EQ(done(domains_->create({spec(name), false, false}, caller_)).state, OperationState::kSucceeded);
    EXPECT_EQ(done(domains_->destroy(name, caller_)).state, OperationState::kSucceeded);
    EXPECT_EQ(done(domains_->remove(name, false, false, caller_)).state, OperationState::kSucceeded);
    // With a volume: run by a worker, which waits for the lock.
    const std::string on_volume = absl::StrCat("vol", i);
    EXPECT_EQ(done(domains_->create({withDisk(on_volume, "vol:main/v"), true, false}, caller_)).state,
              OperationState::kSucceeded);
    EXPECT_EQ(done(domains_->remove(on_volume, false, false, caller_)).state, OperationState::kSucceeded);
    const std::string now = absl::StrCat("now", i);
    ASSERT_TRUE(domains_->createNow({spec(now), true, false}, 1000).ok());
    ASSERT_TRUE(domains_->removeNow(now, false).ok());
  }
  EXPECT_EQ(domains_->counts().locks, 0u);
  done(domains_->create({spec("web1"), true, false}, caller_));
  for (int i = 0; i < 20; ++i) {
    // Refused by the request's checks, and (createNow) under the lock.
    EXPECT_TRUE(absl::IsAlreadyExists(domains_->create({spec("web1"), false, false}, caller_).status()));
    EXPECT_TRUE(absl::IsAlreadyExists(domains_->createNow({spec("web1"), true, false}, 1000).status()));
    EXPECT_FALSE(domains_->create({withDisk(absl::StrCat("late", i), "vol:main/nosuch"), false, false}, caller_).ok());
    EXPECT_TRUE(absl::IsNotFound(domains_->destroy(absl::StrCat("nosuch", i), caller_).status()));
    EXPECT_FALSE(domains_->changeAccess(absl::StrCat("nosuch", i), {std::nullopt, {"uid:1"}, {}}).ok());
  }
  EXPECT_EQ(domains_->counts().locks, 0u);
}

// Threads racing on one name still change it one at a time, the lock's
// entry coming and going between them: grants added by some (each a read
// and a write of the definition under the lock) while others change its
// resources (inline or on a worker) are all kept, none lost to an
// overlapping write.
TEST_F(DomainManagerTest, DomainLockExcludesUnderRaces) {
  done(domains_->create({spec("web1"), true, false}, caller_));
  constexpr int kThreads = 4, kGrants = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kGrants; ++i) {
        const std::string who = absl::StrCat("uid:", 10000 + t * kGrants + i);
        EXPECT_TRUE(domains_->changeAccess("web1", {std::nullopt, {who}, {}}).ok());
      }
    });
    threads.emplace_back([&, t] {
      for (int i = 0; i < kGrants; ++i) {
        auto op = domains_->setResources("web1", {0, static_cast<uint64_t>(256 + t)}, caller_);
        ASSERT_TRUE(op.ok()) << op.status();
        EXPECT_EQ(waitFinished(*ops_, op->id).state, OperationState::kSucceeded);
      }
    });
  }
  for (auto& th : threads) th.join();
  auto access = *domains_->access("web1");
  EXPECT_EQ(access.grants.size(), static_cast<size_t>(kThreads * kGrants));
  EXPECT_EQ(store_->listDomains()->at(0).grants.size(), static_cast<size_t>(kThreads * kGrants));
  EXPECT_EQ(domains_->counts().locks, 0u);
}

// An inline operation whose end cannot be stored with its definition's
// last change fails, as a worker's run does when that write fails in its
// work: the caller hears the store's error, the definition (cache and
// store) stays as it was, and the failed end is stored without it.
TEST_F(DomainManagerTest, InlineEndStoreFailureFailsTheOperation) {
  const std::string path = tmp_.path() + "/state.db";
  store_ = *state::Store::open(path);
  restart();
  // Makes the store's writes of domain rows fail ("" lets them through again),
  // behind its back through a second connection.
  auto failRows = [&](const std::string& on) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    std::string sql = "DROP TRIGGER IF EXISTS fail_rows;";
    if (!on.empty())
      sql += absl::StrCat("CREATE TRIGGER fail_rows BEFORE ", on,
                          " ON domains BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  };
  auto storedRow = [&](const std::string& name) -> std::optional<state::DomainRecord> {
    auto rows = store_->listDomains();
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (rows.ok())
      for (auto& r : *rows)
        if (r.spec.name == name) return r;
    return std::nullopt;
  };
  auto lastStoredOp = [&] { return store_->listOperations(1)->at(0); };

  // create: the row is inserted in the work; running_expected goes with the end.
  failRows("UPDATE");
  auto created = domains_->create({spec("web1"), false, false}, caller_);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->state, OperationState::kFailed);
  EXPECT_THAT(created->status.message(), ::testing::HasSubstr("injected failure"));
  EXPECT_THAT(created->status.message(), ::testing::HasSubstr("domain 'web1'"));
  ASSERT_TRUE(storedRow("web1"));
  EXPECT_FALSE(storedRow("web1")->running_expected);
  EXPECT_EQ(lastStoredOp().state, OperationState::kFailed);
  EXPECT_TRUE(store_->listJournal()->empty());
  failRows("");
  ASSERT_TRUE(domains_->completeCreate("web1").ok());  // as recovery would
  EXPECT_TRUE(storedRow("web1")->running_expected);

  // destroy: the domain is gone; its definition still expects it to run.
  failRows("UPDATE");
  auto destroyed = domains_->destroy("web1", caller_);
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(destroyed->state, OperationState::kFailed);
  EXPECT_THAT(destroyed->status.message(), ::testing::HasSubstr("injected failure"));
  EXPECT_TRUE(storedRow("web1")->running_expected);
  EXPECT_EQ(stateOf("web1"), DomainState::kVanished);  // the cache says what the store says
  EXPECT_EQ(lastStoredOp().state, OperationState::kFailed);
  failRows("");

  // delete: the row stays, and so does the domain.
  failRows("DELETE");
  auto deleted = domains_->remove("web1", false, false, caller_);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->state, OperationState::kFailed);
  EXPECT_THAT(deleted->status.message(), ::testing::HasSubstr("injected failure"));
  EXPECT_TRUE(storedRow("web1"));
  EXPECT_TRUE(domains_->get("web1").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(domains_->create({spec("web1"), true, false}, caller_).status()));
  EXPECT_EQ(lastStoredOp().state, OperationState::kFailed);
  failRows("");
  EXPECT_EQ(domains_->remove("web1", false, false, caller_)->state, OperationState::kSucceeded);
  EXPECT_FALSE(storedRow("web1"));
  EXPECT_TRUE(absl::IsNotFound(domains_->get("web1").status()));
  EXPECT_EQ(domains_->counts().locks, 0u);
}

// define_only stores it without starting; paused starts it paused.
TEST_F(DomainManagerTest, DefineOnlyAndPaused) {
  done(domains_->create({spec("a"), true, false}, caller_));
  done(domains_->create({spec("b"), false, true}, caller_));
  EXPECT_EQ(stateOf("a"), DomainState::kStopped);
  EXPECT_EQ(stateOf("b"), DomainState::kPaused);
}

// A non-admin's spec names host paths only under [security] allowed_paths and a bootloader only from [security]
// bootloaders: refused at once (PERMISSION_DENIED), nothing defined, no operation.
TEST_F(DomainManagerTest, NonAdminHostPathsRefused) {
  domains_ = std::make_unique<DomainManager>(*hv_, *storage_, *usage_, *store_, *ops_, bus_, clock_,
                                             HostPaths({{"/srv/xen"}, {"pygrub"}, nullptr}));
  Caller op("", 1000);
  op.role = core::Role::kOperator;
  core::DomainSpec s = withDisk("web1", "/dev/sda");
  auto r = domains_->create({s, false, false}, op);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("domain 'web1': disk xvda: host path /dev/sda"));
  s = spec("web1");
  s.kernel = "/root/secret";
  r = domains_->create({s, true, false}, op);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  s.kernel.clear();
  s.bootloader = "/usr/bin/python3";
  r = domains_->create({s, true, false}, op);
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("[security] bootloaders (pygrub)"));
  EXPECT_TRUE(domains_->list(false)->empty()) << "nothing is defined";
  EXPECT_TRUE(ops_->list("", false, 100).empty()) << "no operation is made";
  s.bootloader.clear();
  s.kernel = "/srv/xen/vmlinuz";
  EXPECT_EQ(done(domains_->create({s, true, false}, op)).state, OperationState::kSucceeded);
  // An admin may name any.
  s = withDisk("web2", "/dev/sda");
  EXPECT_EQ(done(domains_->create({s, true, false}, caller_)).state, OperationState::kSucceeded);
}

// Bad specs and taken names fail at once, before any operation exists.
TEST_F(DomainManagerTest, CreateRejectsBadInputSynchronously) {
  done(domains_->create({spec("web1"), false, false}, caller_));
  auto dup = domains_->create({spec("web1"), false, false}, caller_);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  auto bad = domains_->create({spec("Web_1!"), false, false}, caller_);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  auto small = domains_->create({spec("tiny", 10), false, false}, caller_);
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ops_->list("", false, 100).size(), 1u);
  EXPECT_EQ(store_->listDomains()->size(), 1u);
}

// A create the hypervisor refuses leaves no definition behind, and says why.
TEST_F(DomainManagerTest, FailedCreateLeavesNothing) {
  auto op = done(domains_->create({spec("huge", 2048), false, false}, caller_));
  done(domains_->create({spec("huge2", 2048), false, false}, caller_));
  auto op3 = done(domains_->create({spec("huge3", 2048), false, false}, caller_));
  EXPECT_EQ(op.state, OperationState::kSucceeded);
  EXPECT_EQ(op3.state, OperationState::kFailed);
  EXPECT_EQ(op3.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(op3.status.message().find("creating domain 'huge3'"), absl::string_view::npos) << op3.status;
  EXPECT_EQ(domains_->get("huge3").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->listDomains()->size(), 2u);
}

// A retried create with the same request_id returns the first operation, not ALREADY_EXISTS.
TEST_F(DomainManagerTest, RetrySameRequestId) {
  Caller c = adminCaller("req-42", 0);
  auto first = done(domains_->create({spec("web1"), false, false}, c));
  auto again = domains_->create({spec("web1"), false, false}, c);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, first.id);
}

// Lifecycle: pause, unpause, shutdown, start, reboot, destroy.
TEST_F(DomainManagerTest, Lifecycle) {
  done(domains_->create({spec("web1"), false, false}, caller_));
  EXPECT_EQ(done(domains_->pause("web1", caller_)).state, OperationState::kSucceeded);
  EXPECT_EQ(stateOf("web1"), DomainState::kPaused);
  auto again = done(domains_->pause("web1", caller_));
  EXPECT_EQ(again.status.code(), absl::StatusCode::kFailedPrecondition);
  done(domains_->unpause("web1", caller_));
  EXPECT_EQ(stateOf("web1"), DomainState::kRunning);
  auto sd = done(domains_->shutdown("web1", {}, caller_));
  EXPECT_EQ(sd.state, OperationState::kSucceeded) << sd.status;
  EXPECT_EQ(stateOf("web1"), DomainState::kStopped);
  EXPECT_EQ(domains_->shutdown("web1", {}, caller_).status().code(), absl::StatusCode::kFailedPrecondition);
  done(domains_->start("web1", false, caller_));
  const int64_t domid = domains_->get("web1")->live.domid;
  EXPECT_EQ(domains_->start("web1", false, caller_).status().code(), absl::StatusCode::kFailedPrecondition);
  done(domains_->reboot("web1", caller_));
  EXPECT_GT(domains_->get("web1")->live.domid, domid);
  done(domains_->destroy("web1", caller_));
  EXPECT_EQ(stateOf("web1"), DomainState::kStopped);
}

// on_poweroff=preserve: shutdown completes with the domain kept in shutdown state.
TEST_F(DomainManagerTest, ShutdownPreserved) {
  auto s = spec("keep");
  s.on_poweroff = core::LifecycleAction::kPreserve;
  done(domains_->create({s, false, false}, caller_));
  EXPECT_EQ(done(domains_->shutdown("keep", {}, caller_)).state, OperationState::kSucceeded);
  EXPECT_EQ(stateOf("keep"), DomainState::kShutdown);
}

// Unknown names are NOT_FOUND at once.
TEST_F(DomainManagerTest, UnknownDomain) {
  EXPECT_EQ(domains_->get("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(domains_->pause("nope", caller_).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(domains_->remove("nope", false, false, caller_).status().code(), absl::StatusCode::kNotFound);
}

// Delete refuses a running domain unless forced; forced, it destroys and removes.
TEST_F(DomainManagerTest, DeleteRunning) {
  done(domains_->create({spec("web1"), false, false}, caller_));
  EXPECT_EQ(domains_->remove("web1", false, false, caller_).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(done(domains_->remove("web1", true, false, caller_)).state, OperationState::kSucceeded);
  EXPECT_EQ(domains_->get("web1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(hv_->listDomains()->empty());
  EXPECT_TRUE(store_->listDomains()->empty());
}

// Live resource changes reach the hypervisor and the stored spec; out-of-range ones change nothing.
TEST_F(DomainManagerTest, SetResources) {
  done(domains_->create({spec("web1"), false, false}, caller_));
  EXPECT_EQ(domains_->setResources("web1", {5, 0}, caller_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(domains_->setResources("web1", {0, 4096}, caller_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(domains_->setResources("web1", {0, 0}, caller_).status().code(), absl::StatusCode::kInvalidArgument);
  done(domains_->setResources("web1", {3, 1024}, caller_));
  auto v = *domains_->get("web1");
  EXPECT_EQ(v.live.vcpus_online, 3u);
  EXPECT_EQ(v.live.memory_mib, 1024u);
  EXPECT_EQ(v.spec.vcpus, 3u);
  EXPECT_EQ((*store_->listDomains())[0].spec.memory_mib, 1024u);
}

// After a restart definitions are kept; what was running shows vanished (with the reason), the rest stopped.
TEST_F(DomainManagerTest, RestartKeepsDefinitions) {
  done(domains_->create({spec("run"), false, false}, caller_));
  done(domains_->create({spec("def"), true, false}, caller_));
  done(domains_->create({spec("off"), false, false}, caller_));
  done(domains_->destroy("off", caller_));
  restart();
  auto all = *domains_->list(false);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(stateOf("run"), DomainState::kVanished);
  EXPECT_NE(domains_->get("run")->state_reason.find("test hypervisor"), std::string::npos);
  EXPECT_EQ(stateOf("def"), DomainState::kStopped);
  EXPECT_EQ(stateOf("off"), DomainState::kStopped);
  done(domains_->start("run", false, caller_));
  EXPECT_EQ(stateOf("run"), DomainState::kRunning);
}

// Domains that outlive the daemon are taken back at start: same domid,
// running, and their on_* actions apply again (without adoption a crash
// would leave the guest crashed: nobody would restart it).
TEST_F(DomainManagerTest, RestartAdoptsRunningDomains) {
  core::DomainSpec s = spec("keep");
  s.on_crash = core::LifecycleAction::kRestart;
  done(domains_->create({s, false, false}, caller_));
  done(domains_->create({spec("gone"), false, false}, caller_));
  const int64_t domid = domains_->get("keep")->live.domid;
  const std::string gone = domains_->get("gone")->spec.uuid;
  domains_.reset();
  ASSERT_TRUE(hv_->destroyDomain(gone).ok());  // while no daemon watches
  restart(kKeepDomains);
  EXPECT_EQ(stateOf("keep"), DomainState::kRunning);
  EXPECT_EQ(domains_->get("keep")->live.domid, domid);
  EXPECT_EQ(stateOf("gone"), DomainState::kVanished);
  ASSERT_TRUE(hv_->crashDomain(domains_->get("keep")->spec.uuid).ok());
  EXPECT_EQ(stateOf("keep"), DomainState::kRunning);
  EXPECT_NE(domains_->get("keep")->live.domid, domid);  // restarted: a new domain
}

// A guest that powers off on its own is seen through the hypervisor's events.
TEST_F(DomainManagerTest, GuestEventsUpdateState) {
  auto sub = bus_.subscribe();
  done(domains_->create({spec("web1"), false, false}, caller_));
  const std::string uuid = domains_->get("web1")->spec.uuid;
  ASSERT_TRUE(hv_->crashDomain(uuid).ok());  // on_crash=destroy
  EXPECT_EQ(stateOf("web1"), DomainState::kStopped);  // not vanished: xenctld saw it go
  std::vector<core::DomainEventKind> kinds;
  while (auto e = sub->next(absl::Now())) kinds.push_back(e->kind);
  using K = core::DomainEventKind;
  EXPECT_EQ(kinds, (std::vector<K>{K::kDefined, K::kStarted, K::kCrashed, K::kDestroyed}));
}

// Domains present in the hypervisor but not defined here are foreign and read-only.
TEST_F(DomainManagerTest, ForeignDomains) {
  core::DomainSpec s = spec("xl-made");
  s.uuid = "11111111-2222-4333-8444-555555555555";
  s.type = core::DomainType::kHvm;
  s = *core::normalizeSpec(s);
  ASSERT_TRUE(hv_->createDomain(s, false).ok());
  EXPECT_EQ(domains_->list(false)->size(), 0u);
  auto all = *domains_->list(true);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].foreign);
  EXPECT_EQ(all[0].spec.type, core::DomainType::kHvm);  // as the hypervisor has it, not a default
  EXPECT_TRUE(domains_->get("xl-made")->foreign);
  EXPECT_EQ(domains_->pause("xl-made", caller_).status().code(), absl::StatusCode::kFailedPrecondition);
  // Its console can be read, not typed into.
  EXPECT_EQ(domains_->consolePath("xl-made", false).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(domains_->consolePath("xl-made", true).ok());
}

// A vol: disk reaches the hypervisor as the volume's host path, at create,
// at start, at an on_* restart and at adoption after a daemon restart; the
// definition keeps the vol: name.
TEST_F(DomainManagerTest, VolumeDisksResolveToHostPaths) {
  const std::string path = volume("root");
  core::DomainSpec s = withDisk("web1", "vol:main/root");
  s.disks.push_back({"/srv/raw.img", "xvdb", "r", ""});
  s.on_crash = core::LifecycleAction::kRestart;
  auto op = done(domains_->create({s, false, false}, caller_));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  auto disks = hvDisks("web1");
  ASSERT_EQ(disks.size(), 2u);
  EXPECT_EQ(disks[0].target, path);
  EXPECT_EQ(disks[1].target, "/srv/raw.img");
  EXPECT_EQ(domains_->get("web1")->spec.disks[0].target, "vol:main/root");
  EXPECT_EQ(store_->listDomains()->at(0).spec.disks[0].target, "vol:main/root");

  ASSERT_TRUE(hv_->crashDomain(domains_->get("web1")->spec.uuid).ok());  // on_crash=restart
  EXPECT_EQ(hvDisks("web1").at(0).target, path);
  restart(kKeepDomains);  // adoption hands the hypervisor the path it would build a restart from
  EXPECT_EQ(stateOf("web1"), DomainState::kRunning);
  EXPECT_EQ(hvDisks("web1").at(0).target, path);
  done(domains_->destroy("web1", caller_));
  EXPECT_EQ(done(domains_->start("web1", false, caller_)).state, OperationState::kSucceeded);
  EXPECT_EQ(hvDisks("web1").at(0).target, path);
}

// A missing pool or volume refuses the create at once, naming the domain,
// the disk and where to look, and stores nothing; a definition alone may
// name a volume made later, and its start is refused the same way until then.
TEST_F(DomainManagerTest, MissingPoolOrVolumeRefused) {
  auto r = domains_->create({withDisk("web1", "vol:main/nope"), false, false}, caller_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("domain 'web1': disk xvda (vol:main/nope): pool 'main' has no volume 'nope'"),
            std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("`vm-volume list --pool main`"), std::string::npos) << r.status();
  r = domains_->create({withDisk("web1", "vol:other/x"), false, false}, caller_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("pool 'other' not found"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("`vm-volume pools`"), std::string::npos) << r.status();
  EXPECT_TRUE(store_->listDomains()->empty());
  EXPECT_TRUE(hv_->listDomains()->empty());

  done(domains_->create({withDisk("web1", "vol:main/later"), true, false}, caller_));
  auto st = domains_->start("web1", false, caller_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("pool 'main' has no volume 'later'"), std::string::npos) << st;
  volume("later");
  EXPECT_EQ(done(domains_->start("web1", false, caller_)).state, OperationState::kSucceeded);
}

// A read-only volume (a snapshot) is refused on a writable disk and taken on a read-only one.
TEST_F(DomainManagerTest, ReadOnlyVolumeOnlyReadOnly) {
  volume("root");
  ASSERT_TRUE(pool_->snapshot("root", "s1", {}).ok());
  auto r = domains_->create({withDisk("web1", "vol:main/root@s1"), false, false}, caller_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("disk xvda (vol:main/root@s1): the volume is read-only"), std::string::npos)
      << r.status();
  EXPECT_TRUE(store_->listDomains()->empty());
  auto op = done(domains_->create({withDisk("web1", "vol:main/root@s1", "r"), false, false}, caller_));
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(hvDisks("web1").at(0).target, pool_->get("root@s1")->path);
}

// A volume written by a running domain is given to no other domain; readers
// share; once the writer is gone, the other may start.
TEST_F(DomainManagerTest, VolumeOfAnotherRunningDomainRefused) {
  volume("root");
  done(domains_->create({withDisk("a", "vol:main/root"), false, false}, caller_));
  auto r = domains_->create({withDisk("b", "vol:main/root", "r"), false, false}, caller_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("domain 'b': disk xvda (vol:main/root): domain 'a' uses it (mode w)"),
            std::string::npos) << r.status();
  done(domains_->create({withDisk("b", "vol:main/root"), true, false}, caller_));
  EXPECT_EQ(domains_->start("b", false, caller_).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(usage_->users().at("vol:main/root"), "a");
  auto listed = storage_->list("main");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().used_by, "a");
  done(domains_->destroy("a", caller_));
  EXPECT_FALSE(usage_->users().contains("vol:main/root"));
  EXPECT_EQ(done(domains_->start("b", false, caller_)).state, OperationState::kSucceeded);
  done(domains_->destroy("b", caller_));

  volume("shared");
  EXPECT_EQ(done(domains_->create({withDisk("r1", "vol:main/shared", "r"), false, false}, caller_)).state,
            OperationState::kSucceeded);
  EXPECT_EQ(done(domains_->create({withDisk("r2", "vol:main/shared", "r"), false, false}, caller_)).state,
            OperationState::kSucceeded);
}

// --delete-volumes deletes the domain, then each volume its disks name, and
// never a host path.
TEST_F(DomainManagerTest, DeleteWithVolumes) {
  volume("root");
  volume("data");
  const std::string raw = tmp_.path() + "/raw.img";
  std::ofstream(raw) << "keep";
  core::DomainSpec s = withDisk("web1", "vol:main/root");
  s.disks.push_back({"vol:main/data", "xvdb", "w", ""});
  s.disks.push_back({raw, "xvdc", "w", ""});
  done(domains_->create({s, false, false}, caller_));
  auto op = done(domains_->remove("web1", true, true, caller_));
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(domains_->get("web1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pool_->get("root").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pool_->get("data").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(std::filesystem::exists(raw));
  // Without the flag the volumes stay.
  volume("kept");
  done(domains_->create({withDisk("web2", "vol:main/kept"), true, false}, caller_));
  done(domains_->remove("web2", false, false, caller_));
  EXPECT_TRUE(pool_->get("kept").ok());
}

// A volume that cannot be deleted (snapshots, clones, another domain's disk,
// a pool no longer configured) refuses the whole call at once: the domain
// keeps running, defined, with all its volumes.
TEST_F(DomainManagerTest, DeleteWithVolumesRefusedUpFront) {
  volume("root");
  volume("data");
  core::DomainSpec s = withDisk("web1", "vol:main/root");
  s.disks.push_back({"vol:main/data", "xvdb", "w", ""});
  done(domains_->create({s, false, false}, caller_));
  auto expectRefused = [&](const std::string& needle) {
    auto r = domains_->remove("web1", true, true, caller_);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << needle;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("nothing was deleted"), std::string::npos) << r.status();
    EXPECT_EQ(stateOf("web1"), DomainState::kRunning);
    EXPECT_TRUE(pool_->get("root").ok());
    EXPECT_TRUE(pool_->get("data").ok());
  };
  ASSERT_TRUE(pool_->snapshot("data", "s1", {}).ok());
  expectRefused("disk xvdb (vol:main/data): the volume has snapshots s1");
  ASSERT_TRUE(pool_->remove("data@s1").ok());
  ASSERT_TRUE(pool_->clone("data", "data2", 0, {}).ok());
  expectRefused("volumes data2 are cloned from it");
  ASSERT_TRUE(pool_->remove("data2").ok());
  done(domains_->create({withDisk("other", "vol:main/root"), true, false}, caller_));
  expectRefused("domain 'other' also has it as disk xvda");
  done(domains_->remove("other", false, false, caller_));
  EXPECT_EQ(done(domains_->remove("web1", true, true, caller_)).state, OperationState::kSucceeded);
}

// A volume whose deletion fails after the domain is gone is named in the
// operation's error; the domain is not brought back, and the other volumes go.
TEST_F(DomainManagerTest, VolumeDeleteFailureIsReported) {
  volume("root");
  done(domains_->create({withDisk("web1", "vol:main/root"), true, false}, caller_));
  pool_->failRemove(absl::UnavailableError("device busy"));
  auto op = done(domains_->remove("web1", false, true, caller_));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(op.status.message().find("domain 'web1' is deleted, but not its volumes vol:main/root (removing root: "
                                     "device busy)"),
            std::string::npos) << op.status;
  EXPECT_EQ(domains_->get("web1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->listDomains()->empty());
  EXPECT_TRUE(pool_->get("root").ok());
}

// createNow and removeNow do create's and delete's work in the calling
// thread without an operation of their own, with the same checks and undo.
TEST_F(DomainManagerTest, NowMethodsStartNoOperation) {
  volume("root");
  const size_t ops_before = ops_->list("", false, 100).size();
  std::vector<std::string> phases;
  DomainManager::Phases seen{[&](const std::string& n, uint32_t, const std::string&) { phases.push_back(n); }, {}};
  auto made = domains_->createNow({withDisk("web1", "vol:main/root"), false, false}, 1000, seen);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_FALSE(made->uuid.empty());
  EXPECT_EQ(stateOf("web1"), DomainState::kRunning);
  EXPECT_EQ(phases, (std::vector<std::string>{"define", "create", "finalize"}));
  EXPECT_EQ(usage_->userOf("vol:main/root"), "web1");
  EXPECT_EQ(domains_->createNow({spec("web1"), true, false}, 1000).status().code(), absl::StatusCode::kAlreadyExists);
  // A start that fails leaves no definition behind.
  EXPECT_EQ(domains_->createNow({withDisk("web2", "vol:main/root"), false, false}, 1000).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(domains_->get("web2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(domains_->removeNow("web1", true).ok());
  EXPECT_EQ(domains_->get("web1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pool_->get("root").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(usage_->users().empty());
  EXPECT_EQ(domains_->removeNow("web1", false).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ops_->list("", false, 100).size(), ops_before);
}

// The volumes a domain uses follow the hypervisor's word: an on_* restart
// keeps them in use, an end reported by the hypervisor frees them, and a
// domain taken back after a daemon restart uses them again.
TEST_F(DomainManagerTest, VolumeUseFollowsTheHypervisor) {
  volume("root");
  volume("data");
  core::DomainSpec s = withDisk("web1", "vol:main/root");
  s.on_crash = core::LifecycleAction::kRestart;
  done(domains_->create({s, false, false}, caller_));
  done(domains_->create({withDisk("web2", "vol:main/data"), false, false}, caller_));
  ASSERT_TRUE(hv_->crashDomain(domains_->get("web1")->spec.uuid).ok());  // on_crash=restart
  EXPECT_EQ(usage_->userOf("vol:main/root"), "web1");
  ASSERT_TRUE(hv_->crashDomain(domains_->get("web2")->spec.uuid).ok());  // on_crash=destroy
  EXPECT_FALSE(usage_->userOf("vol:main/data"));
  EXPECT_EQ(done(storage_->remove("main", "data", caller_)).state, OperationState::kSucceeded);
  restart(kKeepDomains);
  EXPECT_EQ(usage_->userOf("vol:main/root"), "web1");
  EXPECT_EQ(storage_->remove("main", "root", caller_).status().code(), absl::StatusCode::kFailedPrecondition);
}

// A running domain adopted at start whose pool left the config runs on and
// says so (view and load warnings); its on_* restart is refused with that
// reason, which is stored as its stop reason (kept across another restart)
// until it starts again.
TEST_F(DomainManagerTest, AdoptedWithPoolGoneReportedAndRebuildRefused) {
  volume("root");
  core::DomainSpec s = withDisk("web1", "vol:main/root");
  s.on_crash = core::LifecycleAction::kRestart;
  done(domains_->create({s, false, false}, caller_));
  pool_name_ = "other";
  restart(kKeepDomains);
  auto v = *domains_->get("web1");
  EXPECT_EQ(v.state, DomainState::kRunning);
  EXPECT_THAT(v.state_reason, ::testing::HasSubstr("pool 'main' not found"));
  EXPECT_THAT(v.state_reason, ::testing::HasSubstr("on_* restart will be refused"));
  ASSERT_EQ(domains_->loadWarnings().size(), 1u);
  EXPECT_THAT(domains_->loadWarnings()[0], ::testing::HasSubstr("domain 'web1'"));
  ASSERT_TRUE(hv_->crashDomain(v.spec.uuid).ok());  // on_crash=restart: the rebuild is refused
  v = *domains_->get("web1");
  EXPECT_EQ(v.state, DomainState::kStopped);
  EXPECT_THAT(v.state_reason, ::testing::HasSubstr("its on_* restart was refused"));
  EXPECT_THAT(v.state_reason, ::testing::HasSubstr("pool 'main' not found"));
  // The stop reason is stored: it survives another restart, and goes once the domain starts again.
  pool_name_ = "main";
  restart();
  EXPECT_THAT(domains_->get("web1")->state_reason, ::testing::HasSubstr("its on_* restart was refused"));
  EXPECT_THAT(store_->listDomains()->at(0).stop_reason, ::testing::HasSubstr("its on_* restart was refused"));
  done(domains_->start("web1", false, caller_));
  EXPECT_EQ(store_->listDomains()->at(0).stop_reason, "");
}

// A volume being deleted is neither named by a new definition nor started
// on, and a volume in use is not held for deletion: of a deletion and a
// define or start racing on one volume, one goes ahead.
TEST_F(DomainManagerTest, VolumeBeingDeletedNotDefinedNorStarted) {
  volume("root");
  done(domains_->create({withDisk("old", "vol:main/root"), true, false}, caller_));
  {
    auto hold = usage_->holdForDelete("vol:main/root", "deleting 'main/root'");
    ASSERT_TRUE(hold.ok()) << hold.status();
    auto op = done(domains_->create({withDisk("web1", "vol:main/root"), true, false}, caller_));
    EXPECT_EQ(op.state, OperationState::kFailed);
    EXPECT_EQ(op.status.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(op.status.message(), ::testing::HasSubstr("is being deleted"));
    EXPECT_FALSE(domains_->get("web1").ok());
    EXPECT_EQ(domains_->start("old", false, caller_).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  done(domains_->start("old", false, caller_));
  auto held = usage_->holdForDelete("vol:main/root", "deleting 'main/root'");
  ASSERT_FALSE(held.ok());
  EXPECT_THAT(held.status().message(), ::testing::HasSubstr("running domain 'old' uses it"));
}

// A golden image's base is attached only read-only, the refusal naming the
// image and what to do instead.
TEST_F(DomainManagerTest, ImageBaseAttachedReadOnlyOnly) {
  volume("golden");
  ASSERT_TRUE(pool_->setReadOnly("golden", true).ok());
  storage_->protectImageBase("main", "golden", "debian");
  auto r = domains_->create({withDisk("web1", "vol:main/golden"), false, false}, caller_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("the volume is the base of image 'debian'"));
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("vm-create --image debian"));
  EXPECT_EQ(done(domains_->create({withDisk("web1", "vol:main/golden", "r"), false, false}, caller_)).state,
            OperationState::kSucceeded);
  // Deleting the domain with its volumes is refused up front: the base goes only with its image.
  auto del = domains_->remove("web1", true, true, caller_);
  EXPECT_EQ(del.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(del.status().message(), ::testing::HasSubstr("base volume of image 'debian'"));
  EXPECT_TRUE(domains_->get("web1").ok());
  EXPECT_TRUE(pool_->get("golden").ok());
}

// A definition's version changes with each change of it and never comes
// back (not for a name defined again); list()'s `known` views carry the
// name and the current state but not the definition.
TEST_F(DomainManagerTest, VersionsFollowTheDefinition) {
  auto versionOf = [&](const std::string& name) { return domains_->get(name)->version; };
  done(domains_->create({spec("web1"), true, false}, caller_));
  const uint64_t defined = versionOf("web1");
  EXPECT_GT(defined, 0u);
  done(domains_->start("web1", false, caller_));
  const uint64_t started = versionOf("web1");  // running_expected is stored
  EXPECT_GT(started, defined);
  done(domains_->pause("web1", caller_));
  EXPECT_EQ(versionOf("web1"), started) << "the hypervisor's state is not the definition's";
  done(domains_->setResources("web1", {2, 0}, caller_));
  EXPECT_GT(versionOf("web1"), started);
  const uint64_t before_access = versionOf("web1");
  ASSERT_TRUE(domains_->changeAccess("web1", {std::string("uid:7"), {}, {}}).ok());
  EXPECT_GT(versionOf("web1"), before_access);

  std::vector<std::pair<std::string, uint64_t>> asked;
  auto views = domains_->list(false, [&](const std::string& name, uint64_t version) {
    asked.emplace_back(name, version);
    return true;
  });
  ASSERT_TRUE(views.ok()) << views.status();
  ASSERT_EQ(views->size(), 1u);
  EXPECT_EQ(asked, (std::vector<std::pair<std::string, uint64_t>>{{"web1", versionOf("web1")}}));
  const DomainView& known = views->front();
  EXPECT_EQ(known.spec.name, "web1");
  EXPECT_EQ(known.spec.uuid, "");
  EXPECT_EQ(known.owner, "");
  EXPECT_EQ(known.state, DomainState::kPaused);
  EXPECT_GE(known.live.domid, 0);

  const uint64_t last = versionOf("web1");
  done(domains_->remove("web1", true, false, caller_));
  done(domains_->create({spec("web1"), true, false}, caller_));
  EXPECT_GT(versionOf("web1"), last);
}

}  // namespace
}  // namespace xenctl::provision
