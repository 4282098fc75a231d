#include "lib/storage/lvm.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace xenctl::storage {
namespace {

using json = nlohmann::json;

// lvs/vgs print the report's values as strings in 2.03 ("json"), as numbers in
// "json_std" (2.03.17+); "" means "not applicable".
std::string str(const json& row, const char* key) {
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

Result<uint64_t> bytes(const json& row, const char* key) {
  const std::string s = str(row, key);
  if (s.empty()) return uint64_t{0};
  uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v))
    return absl::InvalidArgumentError(
        absl::StrCat("lvm report: ", key, " is \"", s, "\", not a whole number of bytes (--units b --nosuffix)"));
  return v;
}

Result<double> percent(const json& row, const char* key) {
  const std::string s = str(row, key);
  if (s.empty()) return -1.0;
  double v = 0;
  if (!absl::SimpleAtod(s, &v)) return absl::InvalidArgumentError(absl::StrCat("lvm report: ", key, " is \"", s, "\""));
  return v;
}

// {"report": [{"lv": [...]}]}: the rows of `section` across the report's items.
Result<std::vector<json>> rows(std::string_view text, const char* section) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return absl::InvalidArgumentError(
        absl::StrCat("lvm report is not JSON: \"", av(text.substr(0, 200)), text.size() > 200 ? "..." : "", "\""));
  auto report = doc.find("report");
  if (report == doc.end() || !report->is_array())
    return absl::InvalidArgumentError("lvm report has no \"report\" array");
  std::vector<json> out;
  for (const auto& item : *report) {
    auto sec = item.find(section);
    if (sec == item.end()) continue;
    if (!sec->is_array()) return absl::InvalidArgumentError(absl::StrCat("lvm report: \"", section, "\" is not an array"));
    for (const auto& r : *sec) {
      if (!r.is_object()) return absl::InvalidArgumentError(absl::StrCat("lvm report: a \"", section, "\" row is not an object"));
      out.push_back(r);
    }
  }
  return out;
}

std::vector<std::string> reportCommand(std::string_view tool, std::string_view fields, const std::string& vg) {
  return {std::string(tool), "--reportformat", "json", "--units", "b", "--nosuffix", "--config",
          "report {time_format=\"%s\"}", "-o", std::string(fields), vg};
}

}  // namespace

std::string LvRow::tag(std::string_view key) const {
  const std::string prefix = absl::StrCat(av(key), "=");
  for (const auto& t : tags)
    if (absl::StartsWith(t, prefix)) return t.substr(prefix.size());
  return "";
}

Result<std::vector<LvRow>> parseLvsReport(std::string_view text) {
  XENCTL_ASSIGN_OR_RETURN(auto lvs, rows(text, "lv"));
  std::vector<LvRow> out;
  out.reserve(lvs.size());
  for (const auto& r : lvs) {
    LvRow lv;
    lv.name = str(r, "lv_name");
    if (lv.name.empty()) return absl::InvalidArgumentError("lvm report: an lv row has no lv_name");
    lv.vg = str(r, "vg_name");
    lv.attr = str(r, "lv_attr");
    lv.segtype = str(r, "segtype");
    lv.origin = str(r, "origin");
    lv.pool_lv = str(r, "pool_lv");
    XENCTL_ASSIGN_OR_RETURN(lv.size, bytes(r, "lv_size"));
    XENCTL_ASSIGN_OR_RETURN(lv.origin_size, bytes(r, "origin_size"));
    XENCTL_ASSIGN_OR_RETURN(lv.data_percent, percent(r, "data_percent"));
    XENCTL_ASSIGN_OR_RETURN(lv.metadata_percent, percent(r, "metadata_percent"));
    for (absl::string_view t : absl::StrSplit(str(r, "lv_tags"), ',', absl::SkipEmpty())) lv.tags.emplace_back(t);
    const std::string time = str(r, "lv_time");
    int64_t secs = 0;
    if (!time.empty()) {
      if (!absl::SimpleAtoi(time, &secs))
        return absl::InvalidArgumentError(
            absl::StrCat("lvm report: lv_time of ", lv.name, " is \"", time, "\", not seconds (report/time_format=\"%s\")"));
      lv.time = absl::FromUnixSeconds(secs);
    }
    out.push_back(std::move(lv));
  }
  return out;
}

Result<VgRow> parseVgsReport(std::string_view text, const std::string& vg) {
  XENCTL_ASSIGN_OR_RETURN(auto vgs, rows(text, "vg"));
  for (const auto& r : vgs) {
    if (str(r, "vg_name") != vg) continue;
    VgRow row;
    row.name = vg;
    XENCTL_ASSIGN_OR_RETURN(row.size, bytes(r, "vg_size"));
    XENCTL_ASSIGN_OR_RETURN(row.free, bytes(r, "vg_free"));
    XENCTL_ASSIGN_OR_RETURN(row.extent_size, bytes(r, "vg_extent_size"));
    return row;
  }
  return absl::NotFoundError(absl::StrCat("volume group '", vg, "' is not in the vgs report"));
}

Result<std::vector<std::string>> parsePvsReport(std::string_view text, const std::string& vg) {
  XENCTL_ASSIGN_OR_RETURN(auto pvs, rows(text, "pv"));
  std::vector<std::string> out;
  for (const auto& r : pvs) {
    if (str(r, "vg_name") != vg) continue;
    XENCTL_ASSIGN_OR_RETURN(uint64_t mdas, bytes(r, "pv_mda_count"));
    if (mdas > 0 && !str(r, "pv_name").empty()) out.push_back(str(r, "pv_name"));
  }
  return out;
}

std::vector<std::string> pvsCommand() {
  return {"pvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "pv_name,vg_name,pv_mda_count"};
}

std::vector<std::string> lvsCommand(const std::string& vg) { return reportCommand("lvs", kLvFields, vg); }
std::vector<std::string> vgsCommand(const std::string& vg) { return reportCommand("vgs", kVgFields, vg); }

VolumeGroups::Group& VolumeGroups::of(const std::string& vg) {
  auto& g = groups_[vg];
  if (!g) g = std::make_unique<Group>();
  return *g;
}

std::shared_mutex& VolumeGroups::lockOf(const std::string& vg) {
  std::lock_guard lock(mu_);
  return of(vg).lock;
}

std::optional<std::vector<LvRow>> VolumeGroups::recentReport(const std::string& vg, absl::Time now) {
  std::lock_guard lock(mu_);
  Group& g = of(vg);
  if (!g.rows || now < g.taken || now - g.touched >= max_idle_ || now - g.taken >= max_age_) return std::nullopt;
  return g.rows;
}

void VolumeGroups::remember(const std::string& vg, std::vector<LvRow> rows, absl::Time taken) {
  std::lock_guard lock(mu_);
  Group& g = of(vg);
  g.rows = std::move(rows);
  g.taken = g.touched = taken;
}

void VolumeGroups::changing(const std::string& vg) {
  std::lock_guard lock(mu_);
  of(vg).rows.reset();
}

void VolumeGroups::amend(const std::string& vg, std::vector<LvRow> rows, absl::Time now) {
  std::lock_guard lock(mu_);
  Group& g = of(vg);
  g.rows = std::move(rows);
  g.touched = now;
}

Status statusFromLvm(const std::vector<std::string>& argv, int exit_code, std::string_view output) {
  std::string out(absl::StripAsciiWhitespace(av(output)));
  if (out.size() > 2000) out = "..." + out.substr(out.size() - 2000);
  std::string msg = absl::StrCat("`", absl::StrJoin(argv, " "), "` exited with ", exit_code, ": ", out);
  const std::string lower = absl::AsciiStrToLower(out);
  if (absl::StrContains(lower, "already exists")) return absl::AlreadyExistsError(msg);
  if (absl::StrContains(lower, "insufficient free space") || absl::StrContains(lower, "insufficient suitable") ||
      absl::StrContains(lower, "not enough free"))
    return absl::ResourceExhaustedError(msg);
  if (absl::StrContains(lower, "in use") || absl::StrContains(lower, " is open") ||
      absl::StrContains(lower, "only while inactive") || absl::StrContains(lower, "is used by"))
    return absl::FailedPreconditionError(msg);
  if (absl::StrContains(lower, "not found") || absl::StrContains(lower, "failed to find"))
    return absl::NotFoundError(msg);
  return absl::UnknownError(msg);
}

Result<core::ProcessResult> Lvm::exec(const std::vector<std::string>& argv, absl::Duration timeout) const {
  auto r = lvm_->run(argv, timeout);
  if (absl::IsNotFound(r.status()))
    return absl::FailedPreconditionError(
        absl::StrCat(r.status().message(), "; LVM pools need the lvm2 tools (apt-get install lvm2)"));
  return r;
}

Result<std::vector<LvRow>> Lvm::lvs(const std::string& vg) const {
  const auto argv = lvsCommand(vg);
  XENCTL_ASSIGN_OR_RETURN(core::ProcessResult r, exec(argv, timeout_));
  if (r.exit_code != 0) return statusFromLvm(argv, r.exit_code, r.output);
  if (r.stdout_truncated) return absl::ResourceExhaustedError(absl::StrCat("`lvs ", vg, "` printed more than 32 MiB"));
  auto rows = parseLvsReport(r.stdout_text);
  if (!rows.ok()) return annotate(rows.status(), absl::StrCat("reading `lvs ", vg, "`"));
  return rows;
}

Result<VgRow> Lvm::vgs(const std::string& vg) const {
  const auto argv = vgsCommand(vg);
  XENCTL_ASSIGN_OR_RETURN(core::ProcessResult r, exec(argv, timeout_));
  if (r.exit_code != 0) return statusFromLvm(argv, r.exit_code, r.output);
  return parseVgsReport(r.stdout_text, vg);
}

Result<std::vector<std::string>> Lvm::pvs(const std::string& vg) const {
  const auto argv = pvsCommand();
  XENCTL_ASSIGN_OR_RETURN(core::ProcessResult r, exec(argv, timeout_));
  if (r.exit_code != 0) return statusFromLvm(argv, r.exit_code, r.output);
  return parsePvsReport(r.stdout_text, vg);
}

Status Lvm::run(const std::vector<std::string>& argv) const {
  XENCTL_ASSIGN_OR_RETURN(core::ProcessResult r, exec(argv, timeout_));
  if (r.exit_code == 0) return absl::OkStatus();
  return statusFromLvm(argv, r.exit_code, r.output);
}

Status Lvm::runTool(const std::vector<std::string>& argv, absl::Duration timeout, int ok_exit) const {
  XENCTL_ASSIGN_OR_RETURN(core::ProcessResult r, tools_->run(argv, timeout));
  if (r.exit_code == 0 || r.exit_code <= ok_exit) return absl::OkStatus();
  std::string out(absl::StripTrailingAsciiWhitespace(r.output));
  if (out.size() > 2000) out = "..." + out.substr(out.size() - 2000);
  return absl::UnknownError(absl::StrCat("`", absl::StrJoin(argv, " "), "` exited with ", r.exit_code, ": ", out));
}

}  // namespace xenctl::storage
