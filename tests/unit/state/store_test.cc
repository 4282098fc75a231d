#include "lib/state/store.h"

#include <sqlite3.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace xenctl::state {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("xenctl-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "state.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // Runs `sql` on the database file behind the store's back (to make an older schema).
  void execRaw(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }

  static core::OperationRecord operation(const std::string& id, core::OperationState state) {
    core::OperationRecord op;
    op.id = id;
    op.kind = "create-domain";
    op.target = "web1";
    op.state = state;
    return op;
  }
  static DomainRecord record(const std::string& name, const std::string& uuid) {
    DomainRecord r;
    r.spec.name = name;
    r.spec.uuid = uuid;
    r.spec.memory_mib = r.spec.maxmem_mib = 512;
    r.spec.vcpus = r.spec.maxvcpus = 1;
    r.spec.disks = {{"/dev/vg0/" + name, "xvda", "w", "phy"}};
    r.spec.vifs = {{"xenbr0", "00:16:3e:01:02:03", "10.0.0.2"}};
    r.spec.on_crash = core::LifecycleAction::kPreserve;
    r.created_at = r.updated_at = absl::FromUnixSeconds(1'800'000'000);
    r.owner_uid = 1000;
    return r;
  }

  std::filesystem::path dir_;
  std::string path_;
};

// A spec survives encode -> decode unchanged, every field (the xl config
// text it was read from too: starts rebuild the domain from it).
TEST_F(StoreTest, SpecCodecRoundTrip) {
  DomainRecord r = record("web1", "u1");
  r.spec.type = core::DomainType::kPv;
  r.spec.kernel = "/boot/vmlinuz";
  r.spec.cmdline = "console=hvc0";
  r.spec.bootloader_args = {"-q"};
  r.spec.xl_config_file = "/etc/xen/web.cfg";
  r.spec.xl_config_text = "name = 'web'\nkernel = '/boot/vmlinuz' # \"quoted\"\nvnc = 1\n";
  r.spec.on_watchdog = core::LifecycleAction::kCoredumpRestart;
  auto back = decodeSpec(encodeSpec(r.spec));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r.spec);
  EXPECT_EQ(decodeSpec("{not json").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(decodeSpec(R"({"name":"x"})").status().code(), absl::StatusCode::kDataLoss);
}

// A definition stored before on_watchdog was kept acts as it did then: its
// watchdog firing takes on_crash's action.
TEST_F(StoreTest, SpecWithoutOnWatchdogTakesOnCrash) {
  DomainRecord r = record("web1", "u1");
  nlohmann::json j = nlohmann::json::parse(encodeSpec(r.spec));
  ASSERT_TRUE(j.contains("on_watchdog"));
  j.erase("on_watchdog");
  auto back = decodeSpec(j.dump());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->on_watchdog, core::LifecycleAction::kPreserve);
}

// Definitions survive closing and reopening the database.
TEST_F(StoreTest, DomainsPersistAcrossReopen) {
  {
    auto s = Store::open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE((*s)->insertDomain(record("web1", "u1")).ok());
    ASSERT_TRUE((*s)->insertDomain(record("db1", "u2")).ok());
  }
  auto s = Store::open(path_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->schemaVersion(), Store::kSchemaVersion);
  auto all = (*s)->listDomains();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].spec.name, "db1");  // by name
  EXPECT_EQ((*all)[1].spec, record("web1", "u1").spec);
  EXPECT_EQ((*all)[1].owner_uid, 1000);
}

// A domain's owner and grants are stored, updated and read back.
TEST_F(StoreTest, OwnerAndGrantsPersist) {
  auto s = *Store::open(path_);
  DomainRecord r = record("web1", "u1");
  r.owner = "cert:CN=ci,O=example";
  ASSERT_TRUE(s->insertDomain(r).ok());
  EXPECT_EQ(s->listDomains()->at(0).owner, "cert:CN=ci,O=example");
  EXPECT_TRUE(s->listDomains()->at(0).grants.empty());
  r.owner = "uid:1001";
  r.grants = {"cert:CN=x", "uid:1002"};
  ASSERT_TRUE(s->updateDomain(r).ok());
  auto back = s->listDomains()->at(0);
  EXPECT_EQ(back.owner, "uid:1001");
  EXPECT_EQ(back.grants, (std::vector<std::string>{"cert:CN=x", "uid:1002"}));
}

// A version-2 database's domains get their owner from owner_uid when migrated.
TEST_F(StoreTest, MigrationGivesOldDomainsTheirCreatorAsOwner) {
  {
    auto s = *Store::open(path_);
    ASSERT_TRUE(s->insertDomain(record("web1", "u1")).ok());
  }
  // Back to what version 2 had: no owner, no grants (and no journal, no stop reasons).
  execRaw("ALTER TABLE domains DROP COLUMN owner; ALTER TABLE domains DROP COLUMN grants; "
          "ALTER TABLE domains DROP COLUMN stop_reason; DROP TABLE journal; "
          "ALTER TABLE operations DROP COLUMN caller_key; ALTER TABLE operations DROP COLUMN request_digest; "
          "PRAGMA user_version = 2;");
  auto s = *Store::open(path_);
  EXPECT_EQ(s->schemaVersion(), Store::kSchemaVersion);
  auto all = *s->listDomains();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].owner, "uid:1000");
  EXPECT_TRUE(all[0].grants.empty());
}

// A domain's stop reason is stored and read back; a version-4 database
// (without the column) is migrated, its domains having none.
TEST_F(StoreTest, StopReasonKeptAndMigrated) {
  {
    auto s = *Store::open(path_);
    DomainRecord r = record("web1", "u1");
    r.stop_reason = "destroyed outside xenctld";
    ASSERT_TRUE(s->insertDomain(r).ok());
    ASSERT_TRUE(s->insertDomain(record("web2", "u2")).ok());
    EXPECT_EQ(s->listDomains()->at(0).stop_reason, "destroyed outside xenctld");
    r.stop_reason = "restart failed: no pool";
    ASSERT_TRUE(s->updateDomain(r).ok());
  }
  EXPECT_EQ((*Store::open(path_))->listDomains()->at(0).stop_reason, "restart failed: no pool");
  execRaw("ALTER TABLE domains DROP COLUMN stop_reason; ALTER TABLE operations DROP COLUMN caller_key; "
          "ALTER TABLE operations DROP COLUMN request_digest; PRAGMA user_version = 4;");
  auto s = *Store::open(path_);
  EXPECT_EQ(s->schemaVersion(), Store::kSchemaVersion);
  auto all = *s->listDomains();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].stop_reason, "");
  EXPECT_EQ(all[1].stop_reason, "");
}

// Operations stored before schema 6 keep their request_id as their uid's
// (caller_key "uid:N"), with no digest of the request.
TEST_F(StoreTest, MigrationGivesOldOperationsTheirCallerKey) {
  {
    auto s = *Store::open(path_);
    core::OperationRecord op;
    op.id = "op-0000000000000001";
    op.kind = "create-domain";
    op.request_id = "r1";
    op.caller_uid = 1000;
    op.caller_key = "uid:1000";
    op.request_digest = "abc";
    ASSERT_TRUE(s->putOperation(op).ok());
  }
  execRaw("ALTER TABLE operations DROP COLUMN caller_key; ALTER TABLE operations DROP COLUMN request_digest; "
          "PRAGMA user_version = 5;");
  auto s = *Store::open(path_);
  EXPECT_EQ(s->schemaVersion(), Store::kSchemaVersion);
  auto ops = *s->listOperations(10);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].caller_key, "uid:1000");
  EXPECT_EQ(ops[0].request_digest, "");
  EXPECT_EQ(ops[0].request_id, "r1");
}

// Schema 7 keys the journal by (op_id, seq) alone: a journal written before
// it is read back whole after the migration, and steps upsert as before.
TEST_F(StoreTest, MigrationKeepsTheJournal) {
  {
    auto s = *Store::open(path_);
    core::OperationRecord op;
    op.id = "op-1";
    ASSERT_TRUE(s->putJournalStep({"op-1", 0, "create-domain", "define", {{"domain", "web1"}}, false},
                                  Store::Durability::kCommitted, &op)
                    .ok());
    ASSERT_TRUE(s->putJournalStep({"op-1", 1, "create-domain", "start", {}, true}).ok());
  }
  // The journal as schema 6 had it: a rowid table with its key as an index.
  execRaw("CREATE TABLE j6 (op_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, step TEXT NOT NULL, "
          "record TEXT NOT NULL, done INTEGER NOT NULL, PRIMARY KEY(op_id, seq)); "
          "INSERT INTO j6 SELECT * FROM journal; DROP TABLE journal; ALTER TABLE j6 RENAME TO journal; "
          "PRAGMA user_version = 6;");
  auto s = *Store::open(path_);
  EXPECT_EQ(s->schemaVersion(), Store::kSchemaVersion);
  auto steps = *s->listJournal();
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].step, "define");
  EXPECT_EQ(steps[0].record.at("domain"), "web1");
  EXPECT_FALSE(steps[0].done);
  EXPECT_TRUE(steps[1].done);
  ASSERT_TRUE(s->putJournalStep({"op-1", 0, "create-domain", "define", {{"domain", "web1"}}, true}).ok());
  EXPECT_TRUE((*s->listJournal())[0].done);
  ASSERT_TRUE(s->clearJournal("op-1").ok());
  EXPECT_TRUE(s->listJournal()->empty());
}

// A taken name or uuid is ALREADY_EXISTS and changes nothing.
TEST_F(StoreTest, DuplicatesRefused) {
  auto s = *Store::open(":memory:");
  ASSERT_TRUE(s->insertDomain(record("web1", "u1")).ok());
  EXPECT_EQ(s->insertDomain(record("web1", "u9")).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s->insertDomain(record("web2", "u1")).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s->listDomains()->size(), 1u);
}

// Update and delete of an unknown name are NOT_FOUND; known ones change.
TEST_F(StoreTest, UpdateAndDelete) {
  auto s = *Store::open(":memory:");
  DomainRecord r = record("web1", "u1");
  EXPECT_EQ(s->updateDomain(r).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(s->insertDomain(r).ok());
  r.spec.vcpus = 4;
  r.running_expected = true;
  ASSERT_TRUE(s->updateDomain(r).ok());
  auto got = s->listDomains();
  EXPECT_EQ((*got)[0].spec.vcpus, 4u);
  EXPECT_TRUE((*got)[0].running_expected);
  ASSERT_TRUE(s->deleteDomain("web1").ok());
  EXPECT_EQ(s->deleteDomain("web1").code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(s->listDomains()->empty());
}

// A database from a newer xenctld is refused, not downgraded.
TEST_F(StoreTest, NewerSchemaRefused) {
  { ASSERT_TRUE(Store::open(path_).ok()); }
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = Store::open(path_);
  ASSERT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("newer"), absl::string_view::npos);
}

// The database runs in WAL mode.
TEST_F(StoreTest, WalMode) {
  { ASSERT_TRUE(Store::open(path_).ok()); }
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// Operations: upsert by id, newest first, finished ones pruned beyond the bound.
TEST_F(StoreTest, OperationsHistory) {
  auto s = *Store::open(":memory:");
  for (int i = 0; i < 5; ++i) {
    core::OperationRecord op;
    op.id = "op-" + std::to_string(i);
    op.kind = "create-domain";
    op.target = "web" + std::to_string(i);
    op.created_at = op.updated_at = absl::FromUnixSeconds(1000 + i);
    op.state = i == 4 ? core::OperationState::kRunning : core::OperationState::kFailed;
    op.status = i == 4 ? absl::OkStatus() : absl::NotFoundError("gone");
    op.finished_at = op.created_at;
    ASSERT_TRUE(s->putOperation(op).ok());
  }
  auto ops = *s->listOperations(10);
  ASSERT_EQ(ops.size(), 5u);
  EXPECT_EQ(ops[0].id, "op-4");
  EXPECT_EQ(ops[0].state, core::OperationState::kRunning);
  EXPECT_EQ(ops[1].status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ops[1].status.message(), "gone");
  ASSERT_TRUE(s->pruneOperations(2).ok());
  ops = *s->listOperations(10);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[1].id, "op-3");
  // Started in the same microsecond: the larger id is the newer, as listOperations orders them.
  for (const char* id : {"op-5a", "op-5b", "op-5c"}) {
    core::OperationRecord op = ops[1];
    op.id = id;
    op.created_at = absl::FromUnixSeconds(2000);
    ASSERT_TRUE(s->putOperation(op).ok());
  }
  ASSERT_TRUE(s->pruneOperations(2).ok());
  ops = *s->listOperations(10);
  ASSERT_EQ(ops.size(), 3u);  // the running one is kept beyond the bound
  EXPECT_EQ(ops[0].id, "op-5c");
  EXPECT_EQ(ops[1].id, "op-5b");
  EXPECT_EQ(ops[2].id, "op-4");
  ASSERT_TRUE(s->pruneOperations(0).ok());
  ops = *s->listOperations(10);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].id, "op-4");
}

// The image catalog survives a reopen; a taken name is ALREADY_EXISTS; delete of a missing one NOT_FOUND.
TEST_F(StoreTest, ImageCatalog) {
  ImageRecord r;
  r.name = "debian-12";
  r.uri = "https://images.example/debian-12.tar.zst";
  r.sha256 = std::string(64, 'a');
  r.signed_by = "53DB1FFA3519811B";
  r.kind = "archive";
  r.pool = "default";
  r.volume = "debian-12";
  r.size_bytes = 1 << 30;
  r.imported_at = absl::FromUnixSeconds(1'800'000'000);
  {
    auto s = Store::open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE((*s)->insertImage(r).ok());
    EXPECT_EQ((*s)->insertImage(r).code(), absl::StatusCode::kAlreadyExists);
  }
  auto s = *Store::open(path_);
  auto all = s->listImages();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].uri, r.uri);
  EXPECT_EQ((*all)[0].signed_by, r.signed_by);
  EXPECT_EQ((*all)[0].size_bytes, r.size_bytes);
  EXPECT_EQ((*all)[0].imported_at, r.imported_at);
  EXPECT_TRUE(s->deleteImage("debian-12").ok());
  EXPECT_EQ(s->deleteImage("debian-12").code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(s->listImages()->empty());
}

// Journal steps survive a reopen in step order; a step is rewritten by (op, seq); clear forgets one operation's.
TEST_F(StoreTest, Journal) {
  {
    auto s = *Store::open(path_);
    ASSERT_TRUE(s->putJournalStep({"op-b", 0, "import-image", "stage", {{"dir", "/tmp/x"}}, true}).ok());
    ASSERT_TRUE(s->putJournalStep({"op-a", 1, "create-domain", "define", {{"domain", "web1"}}, false}).ok());
    ASSERT_TRUE(s->putJournalStep({"op-a", 0, "create-domain", "clone", {{"pool", "main"}}, false}).ok());
    ASSERT_TRUE(
        s->putJournalStep({"op-a", 0, "create-domain", "clone", {{"pool", "main"}, {"volume", "web1-root"}}, true})
            .ok());
  }
  auto s = *Store::open(path_);
  auto all = s->listJournal();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].op_id, "op-a");
  EXPECT_EQ((*all)[0].step, "clone");
  EXPECT_TRUE((*all)[0].done);
  EXPECT_EQ((*all)[0].record.at("volume"), "web1-root");
  EXPECT_EQ((*all)[1].step, "define");
  EXPECT_FALSE((*all)[1].done);
  EXPECT_EQ((*all)[2].kind, "import-image");
  ASSERT_TRUE(s->clearJournal("op-a").ok());
  all = s->listJournal();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].op_id, "op-b");
}

// A journal step carries its operation's first record in the same write: both are there, or neither.
TEST_F(StoreTest, JournalStepWithItsOperation) {
  auto s = *Store::open(path_);
  const core::OperationRecord op = operation("op-c", core::OperationState::kRunning);
  ASSERT_TRUE(s->putJournalStep({"op-c", 0, "create-domain", "define", {{"domain", "web1"}}, false},
                                Store::Durability::kCommitted, &op)
                  .ok());
  auto ops = *s->listOperations(10);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].id, "op-c");
  EXPECT_EQ(ops[0].state, core::OperationState::kRunning);
  ASSERT_EQ(s->listJournal()->size(), 1u);
  // A step that fails to go in (its table is gone) takes its operation's record with it.
  execRaw("DROP TABLE journal");
  core::OperationRecord other = op;
  other.id = "op-d";
  EXPECT_FALSE(s->putJournalStep({"op-d", 0, "create-domain", "define", {}, false}, Store::Durability::kSynced, &other)
                   .ok());
  EXPECT_EQ(s->listOperations(10)->size(), 1u);
}

// Finishing an operation stores its end and forgets its journal, in one write.
TEST_F(StoreTest, FinishOperationClearsItsJournal) {
  auto s = *Store::open(path_);
  ASSERT_TRUE(s->putJournalStep({"op-e", 0, "delete-domain", "delete", {{"domain", "web1"}}, true}).ok());
  ASSERT_TRUE(s->putJournalStep({"op-f", 0, "delete-domain", "delete", {{"domain", "web2"}}, false}).ok());
  core::OperationRecord op = operation("op-e", core::OperationState::kSucceeded);
  op.finished_at = absl::FromUnixSeconds(1'800'000'000);
  ASSERT_TRUE(s->finishOperation(op).ok());
  auto ops = *s->listOperations(10);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].state, core::OperationState::kSucceeded);
  auto journal = *s->listJournal();
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(journal[0].op_id, "op-f");
}

// sync() puts every write so far in the database file itself (the log is
// checkpointed, and fsynced first): a copy of the file alone has them.
TEST_F(StoreTest, SyncCheckpointsTheLog) {
  auto s = *Store::open(path_);
  ASSERT_TRUE(s->insertDomain(record("web1", "11111111-2222-3333-4444-555555555555")).ok());
  ASSERT_TRUE(s->sync().ok());
  ASSERT_TRUE(s->sync().ok());  // nothing new: a no-op
  const std::string copy = (dir_ / "copy.db").string();
  std::filesystem::copy_file(path_, copy);
  auto c = *Store::open(copy);
  auto domains = *c->listDomains();
  ASSERT_EQ(domains.size(), 1u);
  EXPECT_EQ(domains[0].spec.name, "web1");
}

// A version-1 database (before the catalog) is migrated forward, its domains kept.
TEST_F(StoreTest, MigratesVersionOne) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE domains (name TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, spec TEXT NOT NULL, "
                           "created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, owner_uid INTEGER NOT NULL, "
                           "running_expected INTEGER NOT NULL DEFAULT 0); "
                           "CREATE TABLE operations (id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, "
                           "request_id TEXT NOT NULL, state TEXT NOT NULL, phase TEXT NOT NULL, percent INTEGER NOT "
                           "NULL, message TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
                           "finished_at INTEGER, status_code INTEGER NOT NULL, status_message TEXT NOT NULL, "
                           "caller_uid INTEGER NOT NULL); PRAGMA user_version = 1;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto s = *Store::open(path_);
    ASSERT_TRUE(s->insertDomain(record("web1", "u1")).ok());
  }
  auto s = *Store::open(path_);
  EXPECT_EQ(s->schemaVersion(), Store::kSchemaVersion);
  EXPECT_EQ(s->listDomains()->size(), 1u);
  EXPECT_TRUE(s->listImages()->empty());
}

}  // namespace
}  // namespace xenctl::state
