#include "lib/state/store.h"

#include <sqlite3.h>

#include <unordered_map>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace xenctl::state {
namespace {

using nlohmann::json;

// The journal's columns and key, as schema 4 made them (schema 7 keeps them).
#define XENCTL_JOURNAL_COLUMNS                                                                              \
  "op_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, step TEXT NOT NULL, record TEXT NOT NULL, " \
  "done INTEGER NOT NULL, PRIMARY KEY(op_id, seq)"

// Each entry moves the schema from version i to i+1. Append only.
const char* const kMigrations[] = {
    // 0 -> 1
    R"sql(
    CREATE TABLE domains (
      name TEXT PRIMARY KEY,
      uuid TEXT NOT NULL UNIQUE,
      spec TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      owner_uid INTEGER NOT NULL,
      running_expected INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE operations (
      id TEXT PRIMARY KEY,
      kind TEXT NOT NULL,
      target TEXT NOT NULL,
      request_id TEXT NOT NULL,
      state TEXT NOT NULL,
      phase TEXT NOT NULL,
      percent INTEGER NOT NULL,
      message TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      finished_at INTEGER,
      status_code INTEGER NOT NULL,
      status_message TEXT NOT NULL,
      caller_uid INTEGER NOT NULL
    );
    CREATE INDEX operations_by_time ON operations(created_at);
    )sql",
    // 1 -> 2: the golden image catalog.
    R"sql(
    CREATE TABLE images (
      name TEXT PRIMARY KEY,
      uri TEXT NOT NULL,
      sha256 TEXT NOT NULL,
      signed_by TEXT NOT NULL,
      kind TEXT NOT NULL,
      pool TEXT NOT NULL,
      volume TEXT NOT NULL,
      size_bytes INTEGER NOT NULL,
      imported_at INTEGER NOT NULL
    );
    CREATE INDEX images_by_sha256 ON images(sha256);
    )sql",
    // 2 -> 3: domains' owners as identities (not only uids) and their grants.
    R"sql(
    ALTER TABLE domains ADD COLUMN owner TEXT NOT NULL DEFAULT '';
    ALTER TABLE domains ADD COLUMN grants TEXT NOT NULL DEFAULT '[]';
    UPDATE domains SET owner = 'uid:' || owner_uid WHERE owner_uid >= 0;
    )sql",
    // 3 -> 4: the journal of multi-step operations (JournalStep).
    "CREATE TABLE journal (" XENCTL_JOURNAL_COLUMNS ");",
    // 4 -> 5: why each domain last stopped (DomainRecord::stop_reason), kept across restarts.
    R"sql(
    ALTER TABLE domains ADD COLUMN stop_reason TEXT NOT NULL DEFAULT '';
    )sql",
    // 5 -> 6: a request_id belongs to its caller and its request
    // (OperationRecord::caller_key, request_digest).
    R"sql(
    ALTER TABLE operations ADD COLUMN caller_key TEXT NOT NULL DEFAULT '';
    ALTER TABLE operations ADD COLUMN request_digest TEXT NOT NULL DEFAULT '';
    UPDATE operations SET caller_key = 'uid:' || caller_uid WHERE caller_uid >= 0;
    )sql",
    // 6 -> 7: the journal keyed by its primary key alone (WITHOUT ROWID): a
    // step written or cleared changes one b-tree, not a table and its index
    // (two write-ahead log pages less per journaled operation).
    "CREATE TABLE journal_keyed (" XENCTL_JOURNAL_COLUMNS ") WITHOUT ROWID;"
    R"sql(
    INSERT INTO journal_keyed SELECT op_id, seq, kind, step, record, done FROM journal;
    DROP TABLE journal;
    ALTER TABLE journal_keyed RENAME TO journal;
    )sql",
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion);
#undef XENCTL_JOURNAL_COLUMNS

int64_t toMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time fromMicros(int64_t us) { return absl::FromUnixMicros(us); }

}  // namespace

// Statements prepared once and kept for the life of the connection, by
// their text: parsing one costs as much as a small write.
struct StatementCache {
  std::unordered_map<std::string, sqlite3_stmt*> by_sql;
  ~StatementCache() {
    for (auto& [sql, st] : by_sql) sqlite3_finalize(st);
  }
};

namespace {

// A cached prepared statement in use: reset, bindings cleared, when it goes.
class Stmt {
 public:
  Stmt(sqlite3* db, StatementCache& cache, const char* sql) : db_(db) {
    auto [it, fresh] = cache.by_sql.try_emplace(sql, nullptr);
    if (fresh) {
      rc_ = sqlite3_prepare_v2(db, sql, -1, &it->second, nullptr);
      if (rc_ != SQLITE_OK) {
        sqlite3_finalize(it->second);
        cache.by_sql.erase(it);
        return;
      }
    }
    st_ = it->second;
    rc_ = SQLITE_OK;
  }
  ~Stmt() {
    if (!st_) return;
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Stmt& bindNull(int i) {
    sqlite3_bind_null(st_, i);
    return *this;
  }
  /// SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return rc_ = st_ ? sqlite3_step(st_) : rc_; }
  std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
    return p ? std::string(p, sqlite3_column_bytes(st_, col)) : std::string();
  }
  int64_t integer(int col) const { return sqlite3_column_int64(st_, col); }
  bool isNull(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
  Status error(const std::string& what) const {
    const int code = rc_ & 0xff;
    std::string msg = absl::StrCat(what, ": ", sqlite3_errmsg(db_));
    if (code == SQLITE_CONSTRAINT) return absl::AlreadyExistsError(msg);
    if (code == SQLITE_FULL) return absl::ResourceExhaustedError(msg + "; free space in the state directory");
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return absl::UnavailableError(msg);
    return absl::InternalError(msg);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

Status expectDone(Stmt& st, const std::string& what) {
  if (!st.ok()) return st.error(what);
  if (st.step() != SQLITE_DONE) return st.error(what);
  return absl::OkStatus();
}

}  // namespace

std::string encodeSpec(const core::DomainSpec& s) {
  json disks = json::array(), vifs = json::array();
  for (const auto& d : s.disks)
    disks.push_back({{"target", d.target}, {"vdev", d.vdev}, {"mode", d.mode}, {"format", d.format}});
  for (const auto& v : s.vifs) vifs.push_back({{"bridge", v.bridge}, {"mac", v.mac}, {"ip", v.ip}});
  json j = {{"name", s.name},
            {"uuid", s.uuid},
            {"type", core::toString(s.type)},
            {"kernel", s.kernel},
            {"ramdisk", s.ramdisk},
            {"cmdline", s.cmdline},
            {"bootloader", s.bootloader},
            {"bootloader_args", s.bootloader_args},
            {"memory", s.memory_mib},
            {"maxmem", s.maxmem_mib},
            {"vcpus", s.vcpus},
            {"maxvcpus", s.maxvcpus},
            {"disks", disks},
            {"vifs", vifs},
            {"on_poweroff", core::toString(s.on_poweroff)},
            {"on_reboot", core::toString(s.on_reboot)},
            {"on_crash", core::toString(s.on_crash)},
            {"on_watchdog", core::toString(s.on_watchdog)}};
  // An xl config's text is kept with its spec: starts rebuild from it.
  if (!s.xl_config_text.empty()) j["xl_config"] = {{"file", s.xl_config_file}, {"text", s.xl_config_text}};
  return j.dump();
}

Result<core::DomainSpec> decodeSpec(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::DataLossError("stored domain spec is not a JSON object");
  core::DomainSpec s;
  try {
    s.name = j.at("name").get<std::string>();
    s.uuid = j.at("uuid").get<std::string>();
    XENCTL_ASSIGN_OR_RETURN(s.type, core::parseDomainType(j.at("type").get<std::string>()));
    s.kernel = j.value("kernel", "");
    s.ramdisk = j.value("ramdisk", "");
    s.cmdline = j.value("cmdline", "");
    s.bootloader = j.value("bootloader", "");
    s.bootloader_args = j.value("bootloader_args", std::vector<std::string>{});
    s.memory_mib = j.at("memory").get<uint64_t>();
    s.maxmem_mib = j.at("maxmem").get<uint64_t>();
    s.vcpus = j.at("vcpus").get<uint32_t>();
    s.maxvcpus = j.at("maxvcpus").get<uint32_t>();
    for (const auto& d : j.value("disks", json::array()))
      s.disks.push_back({d.at("target"), d.at("vdev"), d.at("mode"), d.value("format", "")});
    for (const auto& v : j.value("vifs", json::array())) s.vifs.push_back({v.at("bridge"), v.at("mac"), v.at("ip")});
    XENCTL_ASSIGN_OR_RETURN(s.on_poweroff, core::parseLifecycleAction(j.at("on_poweroff").get<std::string>()));
    XENCTL_ASSIGN_OR_RETURN(s.on_reboot, core::parseLifecycleAction(j.at("on_reboot").get<std::string>()));
    XENCTL_ASSIGN_OR_RETURN(s.on_crash, core::parseLifecycleAction(j.at("on_crash").get<std::string>()));
    // Stored before on_watchdog was kept, a watchdog firing was a crash.
    XENCTL_ASSIGN_OR_RETURN(s.on_watchdog, core::parseLifecycleAction(j.value(
                                               "on_watchdog", std::string(core::toString(s.on_crash)))));
    if (j.contains("xl_config")) {
      s.xl_config_file = j.at("xl_config").value("file", "");
      s.xl_config_text = j.at("xl_config").at("text").get<std::string>();
    }
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("stored domain spec is malformed: ", e.what()));
  }
  return s;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::FailedPreconditionError(
        absl::StrCat("opening state database ", path, ": ", msg, "; check --state-dir and its permissions"));
  }
  std::unique_ptr<Store> store(new Store(db));
  store->path_ = path;
  sqlite3_busy_timeout(db, 5000);
  XENCTL_RETURN_IF_ERROR(store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"));
  XENCTL_RETURN_IF_ERROR(annotate(store->migrate(), absl::StrCat("state database ", path)));
  return store;
}

Store::Store(sqlite3* db) : db_(db), stmts_(std::make_unique<StatementCache>()) {}

Store::~Store() {
  stmts_.reset();  // finalized before the connection closes
  if (sync_db_) sqlite3_close(sync_db_);
  sqlite3_close(db_);
}

Status Store::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite: ", msg));
  }
  return absl::OkStatus();
}

int Store::schemaVersion() {
  std::lock_guard lock(mu_);
  Stmt st(db_, *stmts_, "PRAGMA user_version");
  return st.step() == SQLITE_ROW ? static_cast<int>(st.integer(0)) : -1;
}

Status Store::migrate() {
  int version;
  {
    Stmt st(db_, *stmts_, "PRAGMA user_version");
    if (st.step() != SQLITE_ROW) return st.error("reading schema version");
    version = static_cast<int>(st.integer(0));
  }
  if (version > kSchemaVersion)
    return absl::FailedPreconditionError(absl::StrCat("schema version ", version, " is newer than this xenctld (",
                                                      kSchemaVersion, "); run a newer xenctld"));
  for (int v = version; v < kSchemaVersion; ++v) {
    // One transaction per step: a crash leaves the schema at a known version.
    XENCTL_RETURN_IF_ERROR(exec(absl::StrCat("BEGIN IMMEDIATE; ", kMigrations[v], "; PRAGMA user_version = ", v + 1,
                                             "; COMMIT;")));
  }
  return absl::OkStatus();
}

Status Store::insertDomain(const DomainRecord& r) {
  std::lock_guard lock(mu_);
  Stmt st(db_, *stmts_,
          "INSERT INTO domains(name, uuid, spec, created_at, updated_at, owner_uid, running_expected, owner, grants, "
          "stop_reason) VALUES(?,?,?,?,?,?,?,?,?,?)");
  st.bind(1, r.spec.name).bind(2, r.spec.uuid).bind(3, encodeSpec(r.spec)).bind(4, toMicros(r.created_at));
  st.bind(5, toMicros(r.updated_at)).bind(6, r.owner_uid).bind(7, int64_t{r.running_expected});
  st.bind(8, r.owner).bind(9, json(r.grants).dump()).bind(10, r.stop_reason);
  Status s = expectDone(st, absl::StrCat("storing domain '", r.spec.name, "'"));
  if (absl::IsAlreadyExists(s))
    return absl::AlreadyExistsError(absl::StrCat("domain '", r.spec.name, "' already exists"));
  return s;
}

Status Store::updateDomain(const DomainRecord& r) {
  std::lock_guard lock(mu_);
  return updateDomainLocked(r);
}

Status Store::updateDomainLocked(const DomainRecord& r) {
  Stmt st(db_, *stmts_,
          "UPDATE domains SET spec=?, updated_at=?, running_expected=?, owner=?, grants=?, stop_reason=? WHERE name=?");
  st.bind(1, encodeSpec(r.spec)).bind(2, toMicros(r.updated_at)).bind(3, int64_t{r.running_expected});
  st.bind(4, r.owner).bind(5, json(r.grants).dump()).bind(6, r.stop_reason).bind(7, r.spec.name);
  XENCTL_RETURN_IF_ERROR(expectDone(st, absl::StrCat("updating domain '", r.spec.name, "'")));
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("domain '", r.spec.name, "' not found"));
  return absl::OkStatus();
}

Status Store::deleteDomain(const std::string& name) {
  std::lock_guard lock(mu_);
  return deleteDomainLocked(name);
}

Status Store::deleteDomainLocked(const std::string& name) {
  Stmt st(db_, *stmts_, "DELETE FROM domains WHERE name=?");
  st.bind(1, name);
  XENCTL_RETURN_IF_ERROR(expectDone(st, absl::StrCat("deleting domain '", name, "'")));
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("domain '", name, "' not found"));
  return absl::OkStatus();
}

Result<std::vector<DomainRecord>> Store::listDomains() {
  std::lock_guard lock(mu_);
  Stmt st(db_, *stmts_,
          "SELECT spec, created_at, updated_at, owner_uid, running_expected, owner, grants, stop_reason FROM domains "
          "ORDER BY name");
  std::vector<DomainRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    DomainRecord r;
    XENCTL_ASSIGN_OR_RETURN(r.spec, decodeSpec(st.text(0)));
    r.created_at = fromMicros(st.integer(1));
    r.updated_at = fromMicros(st.integer(2));
    r.owner_uid = st.integer(3);
    r.running_expected = st.integer(4) != 0;
    r.owner = st.text(5);
    json grants = json::parse(st.text(6), nullptr, /*allow_exceptions=*/false);
    if (!grants.is_array())
      return absl::DataLossError(absl::StrCat("stored grants of domain '", r.spec.name, "' are not a JSON array"));
    for (const auto& g : grants)
      if (g.is_string()) r.grants.push_back(g.get<std::string>());
    r.stop_reason = st.text(7);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return st.error("listing domains");
  return out;
}

Status Store::putOperation(const core::OperationRecord& op) {
  std::lock_guard lock(mu_);
  return putOperationLocked(op);
}

Status Store::putOperationLocked(const core::OperationRecord& op) {
  Stmt st(db_, *stmts_,
          // An upsert changes the row where it is: OR REPLACE deleted it and
          // inserted it again under a new rowid, rewriting the table's and
          // both indexes' pages at each save of a running operation.
          "INSERT INTO operations(id, kind, target, request_id, state, phase, percent, message, "
          "created_at, updated_at, finished_at, status_code, status_message, caller_uid, caller_key, request_digest) "
          "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, "
          "target=excluded.target, request_id=excluded.request_id, state=excluded.state, phase=excluded.phase, "
          "percent=excluded.percent, message=excluded.message, created_at=excluded.created_at, "
          "updated_at=excluded.updated_at, finished_at=excluded.finished_at, status_code=excluded.status_code, "
          "status_message=excluded.status_message, caller_uid=excluded.caller_uid, caller_key=excluded.caller_key, "
          "request_digest=excluded.request_digest");
  st.bind(1, op.id).bind(2, op.kind).bind(3, op.target).bind(4, op.request_id);
  st.bind(5, std::string(core::toString(op.state))).bind(6, op.phase).bind(7, int64_t{op.percent});
  st.bind(8, op.message).bind(9, toMicros(op.created_at)).bind(10, toMicros(op.updated_at));
  if (core::isFinished(op.state))
    st.bind(11, toMicros(op.finished_at));
  else
    st.bindNull(11);
  st.bind(12, static_cast<int64_t>(op.status.code())).bind(13, std::string(op.status.message()));
  st.bind(14, op.caller_uid).bind(15, op.caller_key).bind(16, op.request_digest);
  return expectDone(st, absl::StrCat("storing operation ", op.id));
}

Status Store::transaction(Durability durability, const std::function<Status()>& body) {
  std::lock_guard lock(mu_);
  // FULL makes this commit fsync the write-ahead log (and with it every
  // commit before it); NORMAL, the default, leaves that to sync().
  const bool synced = durability == Durability::kSynced;
  auto run = [&](const char* sql) {
    Stmt st(db_, *stmts_, sql);
    return expectDone(st, sql);
  };
  if (synced) XENCTL_RETURN_IF_ERROR(run("PRAGMA synchronous=FULL"));
  Status st = run("BEGIN IMMEDIATE");
  if (st.ok()) {
    st = body();
    st = st.ok() ? run("COMMIT") : st;
    if (!st.ok()) (void)run("ROLLBACK");
  }
  if (synced) {
    Status back = run("PRAGMA synchronous=NORMAL");
    if (st.ok()) st = back;
  }
  return st;
}

Status Store::sync() {
  int64_t changes;
  {
    std::lock_guard lock(mu_);
    changes = sqlite3_total_changes64(db_);
  }
  std::lock_guard lock(sync_mu_);
  if (changes == synced_changes_ || path_ == ":memory:") return absl::OkStatus();
  // On a connection of its own: writers go on while the disk syncs (a
  // checkpoint only takes SQLite's checkpoint lock). It fsyncs the log
  // before it copies it into the database, then the database, and covers
  // every commit made before it began.
  if (!sync_db_) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close(db);
      return absl::InternalError(absl::StrCat("opening the state database to sync it: ", msg));
    }
    sqlite3_busy_timeout(db, 5000);
    // A connection knows the database is in WAL mode once it has read it.
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) != SQLITE_OK) {
      std::string msg = sqlite3_errmsg(db);
      sqlite3_close(db);
      return absl::InternalError(absl::StrCat("opening the state database to sync it: ", msg));
    }
    sync_db_ = db;
  }
  int log = 0, done = 0;
  if (sqlite3_wal_checkpoint_v2(sync_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done) != SQLITE_OK)
    return absl::InternalError(absl::StrCat("syncing the state database: ", sqlite3_errmsg(sync_db_)));
  synced_changes_ = changes;
  return absl::OkStatus();
}

Result<std::vector<core::OperationRecord>> Store::listOperations(size_t limit) {
  std::lock_guard lock(mu_);
  Stmt st(db_, *stmts_,
          "SELECT id, kind, target, request_id, state, phase, percent, message, created_at, updated_at, "
          "finished_at, status_code, status_message, caller_uid, caller_key, request_digest FROM operations "
          "ORDER BY created_at DESC, id DESC LIMIT ?");
  st.bind(1, static_cast<int64_t>(limit));
  std::vector<core::OperationRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    core::OperationRecord op;
    op.id = st.text(0);
    op.kind = st.text(1);
    op.target = st.text(2);
    op.request_id = st.text(3);
    XENCTL_ASSIGN_OR_RETURN(op.state, core::parseOperationState(st.text(4)));
    op.phase = st.text(5);
    op.percent = static_cast<uint32_t>(st.integer(6));
    op.message = st.text(7);
    op.created_at = fromMicros(st.integer(8));
    op.updated_at = fromMicros(st.integer(9));
    if (!st.isNull(10)) op.finished_at = fromMicros(st.integer(10));
    op.status = Status(static_cast<absl::StatusCode>(st.integer(11)), st.text(12));
    op.caller_uid = st.integer(13);
    op.caller_key = st.text(14);
    op.request_digest = st.text(15);
    out.push_back(std::move(op));
  }
  if (rc != SQLITE_DONE) return st.error("listing operations");
  return out;
}

Status Store::pruneOperations(size_t keep) {
  std::lock_guard lock(mu_);
  // The newest kept one, found through operations_by_time; the delete then
  // reads only the rows older than it (a NOT IN over the newest `keep`
  // scanned and sorted the whole table at each prune).
  int64_t created_at;
  std::string id;
  {
    Stmt last(db_, *stmts_, "SELECT created_at, id FROM operations ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?");
    if (keep == 0) {
      created_at = INT64_MAX;
    } else {
      last.bind(1, static_cast<int64_t>(keep - 1));
      const int rc = last.step();
      if (rc == SQLITE_DONE) return absl::OkStatus();  // no more than `keep`
      if (rc != SQLITE_ROW) return last.error("pruning operations");
      created_at = last.integer(0);
      id = last.text(1);
    }
  }
  Stmt st(db_, *stmts_,
          "DELETE FROM operations WHERE finished_at IS NOT NULL AND (created_at < ?1 OR (created_at = ?1 AND id < ?2))");
  st.bind(1, created_at).bind(2, id);
  return expectDone(st, "pruning operations");
}

Status Store::putJournalStep(const JournalStep& j, Durability durability, const core::OperationRecord* op) {
  // A step that changes what outlives a power cut (a volume) must find its
  // entry on disk after one; others need only outlive a crash of xenctld.
  return transaction(durability, [&]() -> Status {
    if (op) XENCTL_RETURN_IF_ERROR(putOperationLocked(*op));
    Stmt st(db_, *stmts_,
            "INSERT INTO journal(op_id, seq, kind, step, record, done) VALUES(?,?,?,?,?,?) "
            "ON CONFLICT(op_id, seq) DO UPDATE SET step=excluded.step, record=excluded.record, done=excluded.done");
    st.bind(1, j.op_id).bind(2, j.seq).bind(3, j.kind).bind(4, j.step).bind(5, json(j.record).dump());
    st.bind(6, int64_t{j.done});
    return expectDone(st, absl::StrCat("journaling step ", j.step, " of operation ", j.op_id));
  });
}

Result<std::vector<JournalStep>> Store::listJournal() {
  std::lock_guard lock(mu_);
  Stmt st(db_, *stmts_, "SELECT op_id, seq, kind, step, record, done FROM journal ORDER BY op_id, seq");
  std::vector<JournalStep> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    JournalStep j;
    j.op_id = st.text(0);
    j.seq = st.integer(1);
    j.kind = st.text(2);
    j.step = st.text(3);
    json rec = json::parse(st.text(4), nullptr, /*allow_exceptions=*/false);
    if (!rec.is_object())
      return absl::DataLossError(absl::StrCat("journal step ", j.step, " of operation ", j.op_id,
                                              " is not a JSON object"));
    for (const auto& [k, v] : rec.items())
      if (v.is_string()) j.record[k] = v.get<std::string>();
    j.done = st.integer(5) != 0;
    out.push_back(std::move(j));
  }
  if (rc != SQLITE_DONE) return st.error("listing the journal");
  return out;
}

Status Store::clearJournal(const std::string& op_id) {
  std::lock_guard lock(mu_);
  return clearJournalLocked(op_id);
}

Status Store::clearJournalLocked(const std::string& op_id) {
  Stmt st(db_, *stmts_, "DELETE FROM journal WHERE op_id=?");
  st.bind(1, op_id);
  return expectDone(st, absl::StrCat("clearing the journal of operation ", op_id));
}

Status Store::finishOperation(const core::OperationRecord& op, const std::optional<DomainChange>& also) {
  return transaction(Durability::kCommitted, [&]() -> Status {
    if (also && also->rec) XENCTL_RETURN_IF_ERROR(updateDomainLocked(*also->rec));
    if (also && !also->rec) {
      Status st = deleteDomainLocked(also->name);
      if (!st.ok() && !absl::IsNotFound(st)) return st;
    }
    XENCTL_RETURN_IF_ERROR(putOperationLocked(op));
    return clearJournalLocked(op.id);
  });
}

Status Store::insertImage(const ImageRecord& r) {
  std::lock_guard lock(mu_);
  Stmt st(db_, *stmts_,
          "INSERT INTO images(name, uri, sha256, signed_by, kind, pool, volume, size_bytes, imported_at) "
          "VALUES(?,?,?,?,?,?,?,?,?)");
  st.bind(1, r.name).bind(2, r.uri).bind(3, r.sha256).bind(4, r.signed_by).bind(5, r.kind).bind(6, r.pool);
  st.bind(7, r.volume).bind(8, static_cast<int64_t>(r.size_bytes)).bind(9, toMicros(r.imported_at));
  Status s = expectDone(st, absl::StrCat("storing image '", r.name, "'"));
  if (absl::IsAlreadyExists(s)) return absl::AlreadyExistsError(absl::StrCat("image '", r.name, "' already exists"));
  return s;
}

Status Store::deleteImage(const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt st(db_, *stmts_, "DELETE FROM images WHERE name=?");
  st.bind(1, name);
  XENCTL_RETURN_IF_ERROR(expectDone(st, absl::StrCat("deleting image '", name, "'")));
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("image '", name, "' not found"));
  return absl::OkStatus();
}

Result<std::vector<ImageRecord>> Store::listImages() {
  std::lock_guard lock(mu_);
  Stmt st(db_, *stmts_,
          "SELECT name, uri, sha256, signed_by, kind, pool, volume, size_bytes, imported_at FROM images "
          "ORDER BY name");
  std::vector<ImageRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    ImageRecord r;
    r.name = st.text(0);
    r.uri = st.text(1);
    r.sha256 = st.text(2);
    r.signed_by = st.text(3);
    r.kind = st.text(4);
    r.pool = st.text(5);
    r.volume = st.text(6);
    r.size_bytes = static_cast<uint64_t>(st.integer(7));
    r.imported_at = fromMicros(st.integer(8));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return st.error("listing images");
  return out;
}

}  // namespace xenctl::state
