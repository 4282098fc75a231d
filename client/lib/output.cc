#include "client/lib/output.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/lib/table.h"
#include "lib/core/domain.h"

namespace xenctl::client {
namespace {

using nlohmann::json;

std::string stateName(const Domain& d) {
  return d.state ? std::string(core::toString(*d.state)) : std::string("unknown");
}

bool present(const Domain& d) { return d.state && core::isPresent(*d.state); }

json timeOrNull(const std::optional<absl::Time>& t) { return t ? json(formatTime(*t)) : json(nullptr); }

std::string diskText(const core::DiskSpec& disk) {
  std::string s = absl::StrCat("target=", disk.target);
  if (!disk.vdev.empty()) absl::StrAppend(&s, ",vdev=", disk.vdev);
  if (!disk.mode.empty()) absl::StrAppend(&s, ",access=", disk.mode);
  if (!disk.format.empty()) absl::StrAppend(&s, ",format=", disk.format);
  return s;
}

std::string vifText(const core::VifSpec& vif) {
  std::vector<std::string> parts;
  if (!vif.bridge.empty()) parts.push_back("bridge=" + vif.bridge);
  if (!vif.mac.empty()) parts.push_back("mac=" + vif.mac);
  if (!vif.ip.empty()) parts.push_back("ip=" + vif.ip);
  return absl::StrJoin(parts, ",");
}

// "key: value" lines with the values in one column.
class Details {
 public:
  void add(std::string key, std::string value) { lines_.emplace_back(std::move(key), std::move(value)); }
  std::string render() const {
    size_t w = 0;
    for (const auto& [k, v] : lines_) w = std::max(w, k.size());
    std::string out;
    for (const auto& [k, v] : lines_) {
      std::string line = absl::StrCat(k, ":", std::string(w - k.size() + 1, ' '), v);
      while (!line.empty() && line.back() == ' ') line.pop_back();
      absl::StrAppend(&out, line, "\n");
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> lines_;
};

std::string ageOf(const std::optional<absl::Time>& t) { return t ? formatTime(*t) : "-"; }

}  // namespace

std::string formatTime(absl::Time t) { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone()); }

json toJson(const Domain& d) {
  const core::DomainSpec& s = d.spec;
  json disks = json::array();
  for (const auto& disk : s.disks)
    disks.push_back({{"target", disk.target}, {"vdev", disk.vdev}, {"mode", disk.mode}, {"format", disk.format}});
  json vifs = json::array();
  for (const auto& vif : s.vifs) vifs.push_back({{"bridge", vif.bridge}, {"mac", vif.mac}, {"ip", vif.ip}});
  return json{
      {"name", s.name},
      {"uuid", s.uuid},
      {"state", stateName(d)},
      {"state_reason", d.state_reason},
      {"domid", d.domid >= 0 ? json(d.domid) : json(nullptr)},
      {"type", std::string(core::toString(s.type))},
      {"vcpus", s.vcpus},
      {"maxvcpus", s.maxvcpus},
      {"vcpus_online", d.vcpus_online},
      {"memory_mib", s.memory_mib},
      {"maxmem_mib", s.maxmem_mib},
      {"memory_current_mib", d.memory_current_mib},
      {"cpu_time_seconds", d.cpu_time_seconds},
      {"kernel", s.kernel},
      {"ramdisk", s.ramdisk},
      {"cmdline", s.cmdline},
      {"bootloader", s.bootloader},
      {"bootloader_args", s.bootloader_args},
      {"disks", disks},
      {"vifs", vifs},
      {"on_poweroff", std::string(core::toString(s.on_poweroff))},
      {"on_reboot", std::string(core::toString(s.on_reboot))},
      {"on_crash", std::string(core::toString(s.on_crash))},
      {"foreign", d.foreign},
      {"created_at", timeOrNull(d.created_at)},
      {"owner_uid", d.owner_uid},
  };
}

json toJson(const std::vector<Domain>& ds) {
  json out = json::array();
  for (const auto& d : ds) out.push_back(toJson(d));
  return out;
}

json toJson(const Operation& op) {
  return json{
      {"id", op.id},
      {"kind", op.kind},
      {"target", op.target},
      {"request_id", op.request_id},
      {"state", std::string(core::toString(op.state))},
      {"phase", op.phase},
      {"percent", op.percent},
      {"bytes_done", op.bytes_done},
      {"bytes_total", op.bytes_total},
      {"message", op.message},
      {"created_at", timeOrNull(op.created_at)},
      {"updated_at", timeOrNull(op.updated_at)},
      {"finished_at", timeOrNull(op.finished_at)},
      {"status_code", op.status_code},
      {"status_message", op.status_message},
      {"caller_uid", op.caller_uid},
  };
}

json toJson(const std::vector<Operation>& ops) {
  json out = json::array();
  for (const auto& op : ops) out.push_back(toJson(op));
  return out;
}

json toJson(const PoolCapacity& p) {
  return json{{"name", p.name},
              {"driver", p.driver},
              {"size_bytes", p.size_bytes},
              {"used_bytes", p.used_bytes},
              {"metadata_percent", p.metadata_percent}};
}

json toJson(const std::vector<PoolCapacity>& ps) {
  json out = json::array();
  for (const auto& p : ps) out.push_back(toJson(p));
  return out;
}

json toJson(const Volume& v) {
  return json{{"pool", v.pool},
              {"name", v.name},
              {"size_bytes", v.size_bytes},
              {"used_bytes", v.used_bytes},
              {"origin", v.origin},
              {"read_only", v.read_only},
              {"snapshots", v.snapshots},
              {"used_by", v.used_by},
              {"path", v.path},
              {"created_at", timeOrNull(v.created_at)}};
}

json toJson(const std::vector<Volume>& vs) {
  json out = json::array();
  for (const auto& v : vs) out.push_back(toJson(v));
  return out;
}

std::string humanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"", "K", "M", "G", "T", "P", "E"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrCat(bytes);
  if (v == static_cast<double>(static_cast<uint64_t>(v)) || v >= 100)
    return absl::StrFormat("%.0f%s", v, kUnits[u]);
  return absl::StrFormat("%.1f%s", v, kUnits[u]);
}

std::string volumeTable(const std::vector<Volume>& vs) {
  using A = Table::Align;
  Table t({{"Pool"}, {"Name"}, {"Size", A::kRight}, {"Used", A::kRight}, {"Origin"}, {"RO"}, {"Snapshots"},
           {"Domain"}});
  for (const auto& v : vs)
    t.addRow({v.pool, v.name, humanBytes(v.size_bytes), humanBytes(v.used_bytes), v.origin.empty() ? "-" : v.origin,
              v.read_only ? "ro" : "rw", v.snapshots.empty() ? "-" : absl::StrJoin(v.snapshots, ","),
              v.used_by.empty() ? "-" : v.used_by});
  return t.render();
}

json toJson(const Image& i) {
  return json{{"name", i.name},
              {"uri", i.uri},
              {"sha256", i.sha256},
              {"signed_by", i.signed_by},
              {"format", i.format},
              {"base_volume", i.base_volume},
              {"size_bytes", i.size_bytes},
              {"clones", i.clones},
              {"imported_at", timeOrNull(i.imported_at)}};
}

json toJson(const std::vector<Image>& is) {
  json out = json::array();
  for (const auto& i : is) out.push_back(toJson(i));
  return out;
}

std::string imageTable(const std::vector<Image>& is) {
  using A = Table::Align;
  Table t({{"Name"}, {"Volume"}, {"Size", A::kRight}, {"Clones", A::kRight}, {"Signed by"}, {"SHA-256"}, {"URI"}});
  for (const auto& i : is)
    t.addRow({i.name, i.base_volume, humanBytes(i.size_bytes), std::to_string(i.clones),
              i.signed_by.empty() ? "-" : i.signed_by, i.sha256.substr(0, 12), i.uri});
  return t.render();
}

std::string poolTable(const std::vector<PoolCapacity>& ps) {
  using A = Table::Align;
  Table t({{"Pool"}, {"Driver"}, {"Size", A::kRight}, {"Used", A::kRight}, {"Free%", A::kRight}});
  for (const auto& p : ps) {
    const double free_pct =
        p.size_bytes ? 100.0 * static_cast<double>(p.size_bytes - p.used_bytes) / static_cast<double>(p.size_bytes) : 0;
    t.addRow({p.name, p.driver, humanBytes(p.size_bytes), humanBytes(p.used_bytes), absl::StrFormat("%.1f", free_pct)});
  }
  return t.render();
}

json toJson(const HostInfo& h) {
  json pools = toJson(h.pools);
  return json{
      {"hypervisor", h.hypervisor},
      {"hypervisor_version", h.hypervisor_version},
      {"hostname", h.hostname},
      {"cpus", h.cpus},
      {"memory_total_mib", h.memory_total_mib},
      {"memory_free_mib", h.memory_free_mib},
      {"domains_defined", h.domains_defined},
      {"domains_running", h.domains_running},
      {"pools", pools},
      {"daemon_version", h.daemon_version},
      {"operations_active", h.operations_active},
      {"operations_limit", h.operations_limit},
  };
}

std::string domainTable(const std::vector<Domain>& ds) {
  using A = Table::Align;
  Table t({{"Name"},
           {"ID", A::kRight},
           {"Mem", A::kRight},
           {"VCPUs", A::kRight},
           {"State"},
           {"Time(s)", A::kRight},
           {"UUID"}});
  for (const auto& d : ds) {
    // Like xl list: what the hypervisor reports while the domain is present,
    // the configured values while it is not.
    const bool live = present(d);
    std::string state = stateName(d);
    if (d.foreign) state += " (foreign)";
    t.addRow({d.spec.name, d.domid >= 0 ? absl::StrCat(d.domid) : "-",
              absl::StrCat(live ? d.memory_current_mib : d.spec.memory_mib),
              absl::StrCat(live ? d.vcpus_online : d.spec.vcpus), state,
              live ? absl::StrFormat("%.1f", d.cpu_time_seconds) : "-", d.spec.uuid});
  }
  return t.render();
}

std::string domainDetails(const Domain& d) {
  const core::DomainSpec& s = d.spec;
  Details out;
  out.add("name", s.name);
  out.add("uuid", s.uuid);
  out.add("state", stateName(d));
  if (!d.state_reason.empty()) out.add("state_reason", d.state_reason);
  out.add("domid", d.domid >= 0 ? absl::StrCat(d.domid) : "-");
  out.add("type", std::string(core::toString(s.type)));
  out.add("vcpus", absl::StrCat(s.vcpus));
  out.add("maxvcpus", absl::StrCat(s.maxvcpus));
  out.add("memory", absl::StrCat(s.memory_mib, " MiB"));
  out.add("maxmem", absl::StrCat(s.maxmem_mib, " MiB"));
  if (present(d)) {
    out.add("vcpus_online", absl::StrCat(d.vcpus_online));
    out.add("memory_current", absl::StrCat(d.memory_current_mib, " MiB"));
    out.add("cpu_time", absl::StrFormat("%.1f s", d.cpu_time_seconds));
  }
  if (!s.kernel.empty()) out.add("kernel", s.kernel);
  if (!s.ramdisk.empty()) out.add("ramdisk", s.ramdisk);
  if (!s.cmdline.empty()) out.add("cmdline", s.cmdline);
  if (!s.bootloader.empty()) out.add("bootloader", s.bootloader);
  if (!s.bootloader_args.empty()) out.add("bootloader_args", absl::StrJoin(s.bootloader_args, " "));
  for (const auto& disk : s.disks) out.add("disk", diskText(disk));
  for (const auto& vif : s.vifs) out.add("vif", vifText(vif));
  out.add("on_poweroff", std::string(core::toString(s.on_poweroff)));
  out.add("on_reboot", std::string(core::toString(s.on_reboot)));
  out.add("on_crash", std::string(core::toString(s.on_crash)));
  out.add("foreign", d.foreign ? "yes" : "no");
  out.add("created_at", ageOf(d.created_at));
  if (d.owner_uid >= 0) out.add("owner_uid", absl::StrCat(d.owner_uid));
  return out.render();
}

std::string operationTable(const std::vector<Operation>& ops) {
  using A = Table::Align;
  Table t({{"ID"}, {"Kind"}, {"Target"}, {"State"}, {"Phase"}, {"%", A::kRight}, {"Started"}, {"Result"}});
  for (const auto& op : ops) {
    std::string result = op.finished() ? (op.status_code == 0 ? std::string("ok") : op.status_message) : op.message;
    t.addRow({op.id, op.kind, op.target, std::string(toString(op.state)), op.phase, absl::StrCat(op.percent),
              ageOf(op.created_at), result});
  }
  return t.render();
}

std::string operationLine(const Operation& op) {
  std::string line = absl::StrCat(op.id, " ", op.kind, " ", op.target, ": ", av(toString(op.state)));
  if (!op.phase.empty()) absl::StrAppend(&line, ", ", op.phase);
  absl::StrAppend(&line, " ", op.percent, "%");
  if (op.bytes_total > 0)
    absl::StrAppend(&line, " (", op.bytes_done, "/", op.bytes_total, " bytes)");
  else if (op.bytes_done > 0)
    absl::StrAppend(&line, " (", op.bytes_done, " bytes)");
  if (op.finished() && op.status_code != 0)
    absl::StrAppend(&line, ": ", op.status_message);
  else if (!op.message.empty())
    absl::StrAppend(&line, ": ", op.message);
  return line;
}

std::string hostDetails(const HostInfo& h) {
  Details out;
  out.add("hypervisor", h.hypervisor);
  out.add("hypervisor_version", h.hypervisor_version);
  out.add("hostname", h.hostname);
  out.add("cpus", absl::StrCat(h.cpus));
  out.add("memory_total", absl::StrCat(h.memory_total_mib, " MiB"));
  out.add("memory_free", absl::StrCat(h.memory_free_mib, " MiB"));
  out.add("domains_defined", absl::StrCat(h.domains_defined));
  out.add("domains_running", absl::StrCat(h.domains_running));
  out.add("operations", absl::StrCat(h.operations_active, " active, limit ", h.operations_limit));
  out.add("daemon_version", h.daemon_version);
  for (const auto& p : h.pools) {
    std::string v =
        absl::StrCat(p.name, " (", p.driver, "): ", p.used_bytes >> 20, " of ", p.size_bytes >> 20, " MiB used");
    if (p.driver == "lvm-thin") absl::StrAppend(&v, absl::StrFormat(", metadata %.1f%%", p.metadata_percent));
    out.add("pool", v);
  }
  return out.render();
}

}  // namespace xenctl::client
