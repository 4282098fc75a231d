// The durable store: SQLite in WAL mode under the state directory, with a
// versioned schema migrated forward on open. It keeps what must survive a
// daemon restart: domain definitions, the image catalog and the history of
// operations. Every write survives a crash of xenctld (kill -9) once its
// call returns; a power cut can lose the writes after the last synced one
// (Durability), a suffix and never a write from the middle, which sync()
// bounds to about a second.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lib/core/domain.h"
#include "lib/core/operation.h"
#include "lib/core/status.h"

struct sqlite3;

namespace xenctl::state {

struct StatementCache;

/// A domain as xenctld defined it.
struct DomainRecord {
  core::DomainSpec spec;
  absl::Time created_at = absl::UnixEpoch();
  absl::Time updated_at = absl::UnixEpoch();
  int64_t owner_uid = -1;
  /// Who owns it (core::principal: "uid:1000", "cert:CN=ci"): its creator,
  /// or whom an admin gave it to; "" for none (only admins act on it).
  std::string owner;
  /// Identities granted operator rights on it by its owner or an admin, sorted.
  std::vector<std::string> grants;
  /// True from the moment xenctld starts the domain until it sees it stop;
  /// a domain missing from the hypervisor with this set has vanished.
  bool running_expected = false;
  /// Why it last stopped, as the hypervisor reported it ("destroyed outside
  /// xenctld ...", "restart failed: ..."); "" when there is nothing to say
  /// or it has started since. Kept so that a restart of xenctld does not
  /// lose it.
  std::string stop_reason;
};

/// A golden image in the catalog: where it came from, what vouched for it,
/// and the base volume that holds it.
struct ImageRecord {
  std::string name;
  std::string uri;
  std::string sha256;     ///< lower-case hex of the fetched bytes
  std::string signed_by;  ///< minisign key id, "" when unsigned
  std::string kind;       ///< "archive" or "raw-ext"
  std::string pool, volume;
  uint64_t size_bytes = 0;
  absl::Time imported_at = absl::UnixEpoch();
};

/// One step of a multi-step operation, written ahead of its work (the
/// journal): recovery at start reads what each interrupted operation had
/// begun and what undoing or finishing it needs.
struct JournalStep {
  std::string op_id;
  int64_t seq = 0;     ///< the step's place in its operation, from 0
  std::string kind;    ///< the operation's kind ("create-domain", ...)
  std::string step;    ///< "clone", "define", ...
  /// What the step's undo (or its completion) needs: plain strings, e.g.
  /// "pool" -> "default", "volume" -> "web1-root".
  std::map<std::string, std::string> record;
  bool done = false;   ///< false: begun (maybe partly done); true: completed
};

class Store {
 public:
  /// Opens (creating) the database at `path`, or an in-memory one for
  /// ":memory:", and migrates its schema to kSchemaVersion.
  /// FAILED_PRECONDITION when the file has a newer schema than this build knows.
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  static constexpr int kSchemaVersion = 7;
  int schemaVersion();

  /// ALREADY_EXISTS when the name or uuid is taken.
  Status insertDomain(const DomainRecord& rec);
  /// NOT_FOUND when no domain has that name. Writes the spec, times,
  /// running_expected, owner, grants and stop_reason.
  Status updateDomain(const DomainRecord& rec);
  Status deleteDomain(const std::string& name);
  Result<std::vector<DomainRecord>> listDomains();

  /// Inserts or replaces the operation with this id.
  Status putOperation(const core::OperationRecord& op);
  /// Newest first, at most `limit`.
  Result<std::vector<core::OperationRecord>> listOperations(size_t limit);
  /// Deletes finished operations beyond the newest `keep`.
  Status pruneOperations(size_t keep);

  /// How far a write must have gone when the call returns. Every write
  /// survives a crash of the process (kill -9) once it returns: SQLite has
  /// handed it to the kernel. kSynced also survives a power cut: the
  /// write-ahead log is fsynced before the call returns, and with it every
  /// write before it. A kCommitted write reaches the disk at the next synced
  /// write or sync(), in order: a power cut loses a suffix of them, never a
  /// write from the middle.
  enum class Durability { kCommitted, kSynced };

  /// Writes (or rewrites, by op_id and seq) a journal step, and with it
  /// `op` when given (the operation's first record in the store, so that a
  /// restart finds the operation the journal names), in one transaction.
  /// kSynced is for a step that changes what outlives a power cut (volumes,
  /// files): its entry must be on disk before the change.
  Status putJournalStep(const JournalStep& step, Durability durability = Durability::kSynced,
                        const core::OperationRecord* op = nullptr);
  /// Every journaled step, by operation, in step order.
  Result<std::vector<JournalStep>> listJournal();
  /// Forgets an operation's journal (it has finished, or been recovered).
  Status clearJournal(const std::string& op_id);
  /// A domain's row as an operation leaves it: `rec` written (its row must
  /// exist), or the row of `name` deleted when `rec` is empty (none is fine).
  struct DomainChange {
    std::string name;
    std::optional<DomainRecord> rec;
  };
  /// Stores a finished operation and forgets its journal, in one
  /// transaction, with `also` when given (the definition change the
  /// operation's work left to its end: one commit instead of two).
  Status finishOperation(const core::OperationRecord& op, const std::optional<DomainChange>& also = std::nullopt);
  /// Makes every write so far survive a power cut (a checkpoint of the
  /// write-ahead log, which fsyncs it). A no-op when nothing was written
  /// since the last sync. The operation registry calls it each second.
  Status sync();

  /// ALREADY_EXISTS when the name is taken.
  Status insertImage(const ImageRecord& rec);
  /// NOT_FOUND when there is no such image.
  Status deleteImage(const std::string& name);
  /// By name.
  Result<std::vector<ImageRecord>> listImages();

 private:
  explicit Store(sqlite3* db);
  Status exec(const std::string& sql);
  Status migrate();
  Status putOperationLocked(const core::OperationRecord& op);
  Status updateDomainLocked(const DomainRecord& rec);
  Status deleteDomainLocked(const std::string& name);
  Status clearJournalLocked(const std::string& op_id);
  /// Runs `body` in one transaction (BEGIN IMMEDIATE ... COMMIT, rolled back
  /// when it fails), synced per `durability`. Holds mu_.
  Status transaction(Durability durability, const std::function<Status()>& body);

  std::mutex mu_;
  sqlite3* db_;
  std::unique_ptr<StatementCache> stmts_;
  std::string path_;
  std::mutex sync_mu_;             // sync(): the members below
  sqlite3* sync_db_ = nullptr;     // sync()'s own connection, opened at its first need
  int64_t synced_changes_ = 0;     // db_'s sqlite3_total_changes64 at the last sync()
};

/// The spec as stored: JSON with xl's key names. Exposed for tests.
std::string encodeSpec(const core::DomainSpec& spec);
Result<core::DomainSpec> decodeSpec(const std::string& json);

}  // namespace xenctl::state
