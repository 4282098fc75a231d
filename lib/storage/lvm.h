// lvm2 as the LVM pools use it: commands run through a ProcessRunner with a
// deadline each (LvmShells in the daemon: long-lived `lvm` shells), reports
// read as JSON (`--reportformat json`, never the human tables), failures
// turned into Status codes, and one lock per volume group.
//
// Why not liblvm2cmd: Debian 12 ships liblvm2cmd2.03, but lvm2_run() takes
// one command line (the same parsing), prints its report through a
// process-wide log callback rather than returning it, is not thread-safe and
// keeps state across calls in the calling process (a crash in LVM is a crash
// of xenctld). The lvm shell gives the same warm process outside ours.
// Measured in the lab (docs/lab.md): a report costs 0.40 s as a tool and
// 0.08 s through lvm2_run; a thin `lvcreate -s` 1.14 s against 0.61 s.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "lib/core/process_runner.h"
#include "lib/core/status.h"

namespace xenctl::storage {

/// One logical volume, a row of `lvs --reportformat json` (fields: kLvFields).
struct LvRow {
  std::string name, vg, attr, segtype, origin, pool_lv;
  uint64_t size = 0;            ///< lv_size: the virtual size; a classic snapshot's COW store
  uint64_t origin_size = 0;     ///< a classic snapshot's origin's size
  double data_percent = -1;     ///< thin LV / pool data use, classic snapshot COW use; -1: not reported
  double metadata_percent = -1; ///< thin pools
  std::vector<std::string> tags;
  absl::Time time = absl::UnixEpoch();

  // lv_attr, documented in lvs(8): [0] type, [1] permissions, [4] state, [5] open, [9] skip activation.
  char attrAt(size_t i) const { return i < attr.size() ? attr[i] : '-'; }
  bool thinVolume() const { return attrAt(0) == 'V'; }
  bool thinPool() const { return attrAt(0) == 't'; }
  /// A classic (COW) snapshot, valid or not, merging or not.
  bool classicSnapshot() const { return attrAt(0) == 's' || attrAt(0) == 'S'; }
  bool readOnly() const { return attrAt(1) == 'r' || attrAt(1) == 'R'; }
  bool active() const { return attrAt(4) == 'a'; }
  /// A classic snapshot that overflowed its COW store: its content is lost.
  bool invalidSnapshot() const { return attrAt(4) == 'I' || attrAt(0) == 'S'; }
  bool open() const { return attrAt(5) == 'o'; }
  bool skipActivation() const { return attrAt(9) == 'k'; }
  /// The value of the tag "KEY=VALUE", or "" when there is none.
  std::string tag(std::string_view key) const;
};

/// One volume group, a row of `vgs --reportformat json` (fields: kVgFields).
struct VgRow {
  std::string name;
  uint64_t size = 0, free = 0, extent_size = 0;
};

/// The fields asked of lvs and vgs, in the names the JSON report uses.
inline constexpr std::string_view kLvFields =
    "lv_name,vg_name,lv_attr,lv_size,segtype,origin,origin_size,pool_lv,data_percent,metadata_percent,lv_tags,lv_time";
inline constexpr std::string_view kVgFields = "vg_name,vg_size,vg_free,vg_extent_size";

/// Parses the output of `lvs --reportformat json --units b --nosuffix
/// -o kLvFields` with lv_time as seconds since the epoch. lvm2 2.03 gives every
/// value as a string ("" when not applicable); numbers are taken too.
/// INVALID_ARGUMENT (naming what is wrong) for anything else.
Result<std::vector<LvRow>> parseLvsReport(std::string_view json);
/// The same for `vgs`; NOT_FOUND when `vg` is not in it.
Result<VgRow> parseVgsReport(std::string_view json, const std::string& vg);

/// The PVs of `vg` that hold a metadata area, from `pvs --reportformat json
/// -o pv_name,vg_name,pv_mda_count` (pvsCommand).
Result<std::vector<std::string>> parsePvsReport(std::string_view json, const std::string& vg);

/// Command lines, pure so that tests can check them.
std::vector<std::string> lvsCommand(const std::string& vg);
std::vector<std::string> vgsCommand(const std::string& vg);
std::vector<std::string> pvsCommand();

/// What the pools on one volume group share: its lock and its last report.
///
/// The lock: commands that change a VG's metadata take it exclusively (lvm2
/// would serialize them anyway, on its own file lock, but our
/// check-then-change sequences — a guard rail, then lvcreate — must not
/// interleave); reports take it shared and run in parallel.
///
/// The last report: a call usually reads the VG more than once in a row (the
/// API's checks, then the change's own), and calls come in bursts (a fleet
/// cloned from one golden image). So a report is reused for up to
/// `max_idle` while nothing was changed through the lock since, or only
/// changes whose outcome the pool wrote back into it (amend: a clone, a
/// delete), each of which keeps it for another `max_idle`; however busy,
/// the VG is read again once the report is `max_age` old. A change made
/// outside xenctld meanwhile is seen by then, and lvm2 itself refuses a
/// change that conflicts with it (a name taken, an LV gone, space gone).
class VolumeGroups {
 public:
  explicit VolumeGroups(absl::Duration max_idle = absl::Seconds(1), absl::Duration max_age = absl::Seconds(10))
      : max_idle_(max_idle), max_age_(max_age) {}

  std::shared_mutex& lockOf(const std::string& vg);
  /// The report of `vg`, when it may still stand for the VG at `now`.
  std::optional<std::vector<LvRow>> recentReport(const std::string& vg, absl::Time now);
  void remember(const std::string& vg, std::vector<LvRow> rows, absl::Time taken);
  /// `vg` is about to change (or changed): no report taken before counts.
  void changing(const std::string& vg);
  /// After a change whose outcome the caller knows exactly (the LV it made
  /// or removed): `rows` stand for the VG again, as of `now`, and as old as
  /// the report they were derived from.
  void amend(const std::string& vg, std::vector<LvRow> rows, absl::Time now);

 private:
  struct Group {
    std::shared_mutex lock;
    std::optional<std::vector<LvRow>> rows;
    absl::Time taken, touched;  // read from LVM; last remembered or amended
  };
  Group& of(const std::string& vg);

  const absl::Duration max_idle_, max_age_;
  std::mutex mu_;  // guards groups_ and every Group's rows and taken
  std::map<std::string, std::unique_ptr<Group>> groups_;
};

/// Runs lvm2 commands through `lvm` and other tools through `tools`.
/// Thread-safe (it holds no state of its own).
class Lvm {
 public:
  Lvm(std::shared_ptr<core::ProcessRunner> lvm, std::shared_ptr<core::ProcessRunner> tools, absl::Duration timeout)
      : lvm_(std::move(lvm)), tools_(std::move(tools)), timeout_(timeout) {}

  /// Every LV of `vg` (hidden ones left out).
  Result<std::vector<LvRow>> lvs(const std::string& vg) const;
  Result<VgRow> vgs(const std::string& vg) const;
  /// The PVs of `vg` that hold a metadata area (parsePvsReport).
  Result<std::vector<std::string>> pvs(const std::string& vg) const;
  /// Runs a changing command (lvcreate, lvremove ...). A failure is a Status
  /// with lvm's message and a code read from it (statusFromLvm).
  Status run(const std::vector<std::string>& argv) const;
  /// Runs any tool (mkfs.ext4, resize2fs ...) under `timeout`; exit codes up
  /// to `ok_exit` count as success.
  Status runTool(const std::vector<std::string>& argv, absl::Duration timeout, int ok_exit = 0) const;

 private:
  Result<core::ProcessResult> exec(const std::vector<std::string>& argv, absl::Duration timeout) const;

  std::shared_ptr<core::ProcessRunner> lvm_, tools_;
  absl::Duration timeout_;
};

/// The Status for a failed lvm2 command: its messages read for a code
/// (ALREADY_EXISTS, NOT_FOUND, RESOURCE_EXHAUSTED, FAILED_PRECONDITION for
/// an LV in use, else UNKNOWN) and kept in the message with the command.
Status statusFromLvm(const std::vector<std::string>& argv, int exit_code, std::string_view output);

}  // namespace xenctl::storage
