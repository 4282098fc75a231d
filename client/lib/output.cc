#include "client/lib/output.h"

#include <google/protobuf/util/json_util.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/lib/client.h"
#include "client/lib/table.h"
#include "lib/core/domain.h"
#include "proto/convert/convert.h"

namespace xenctl::client {
namespace {

// A domain in core's terms, for the tables: its spec (xl's names for types
// and actions) and state.
struct DomainView {
  core::DomainSpec spec;
  std::optional<core::DomainState> state;  ///< nullopt: UNSPECIFIED (a daemon bug) or newer than this build

  explicit DomainView(const v1::Domain& d) : state(protoconv::fromProto(d.state())) {
    // A spec this build cannot read (a newer daemon's enum values) still shows its name and uuid.
    if (Result<core::DomainSpec> s = protoconv::fromProto(d.spec()); s.ok()) {
      spec = *std::move(s);
    } else {
      spec.name = d.spec().name();
      spec.uuid = d.spec().uuid();
    }
    // Foreign domains carry no maxima; show the current values.
    if (spec.maxmem_mib == 0) spec.maxmem_mib = spec.memory_mib;
    if (spec.maxvcpus == 0) spec.maxvcpus = spec.vcpus;
  }
  std::string stateName() const { return state ? std::string(core::toString(*state)) : std::string("unknown"); }
  bool present() const { return state && core::isPresent(*state); }
};

std::string operationStateName(const v1::Operation& op) {
  std::optional<core::OperationState> s = protoconv::fromProto(op.state());
  return s ? std::string(core::toString(*s)) : std::string("unknown");
}

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

std::string ageOf(const google::protobuf::Timestamp& t) {
  std::optional<absl::Time> time = protoconv::fromProto(t);
  return time ? formatTime(*time) : "-";
}

}  // namespace

nlohmann::ordered_json toJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  // The printer fails only for an Any of an unknown type; the API has none.
  if (!google::protobuf::util::MessageToJsonString(m, &text, options).ok()) return nullptr;
  return nlohmann::ordered_json::parse(text);
}

std::string formatTime(absl::Time t) { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone()); }

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

std::string volumeTable(const Repeated<v1::Volume>& vs) {
  using A = Table::Align;
  Table t({{"Pool"}, {"Name"}, {"Size", A::kRight}, {"Used", A::kRight}, {"Origin"}, {"RO"}, {"Snapshots"},
           {"Domain"}});
  for (const v1::Volume& v : vs)
    t.addRow({v.pool(), v.name(), humanBytes(v.size_bytes()), humanBytes(v.used_bytes()),
              v.origin().empty() ? "-" : v.origin(), v.read_only() ? "ro" : "rw",
              v.snapshots().empty() ? "-" : absl::StrJoin(v.snapshots(), ","),
              v.used_by().empty() ? "-" : v.used_by()});
  return t.render();
}

std::string imageTable(const Repeated<v1::Image>& is) {
  using A = Table::Align;
  Table t({{"Name"}, {"Volume"}, {"Size", A::kRight}, {"Clones", A::kRight}, {"Signed by"}, {"SHA-256"}, {"URI"}});
  for (const v1::Image& i : is)
    t.addRow({i.name(), i.base_volume(), humanBytes(i.size_bytes()), std::to_string(i.clones()),
              i.signed_by().empty() ? "-" : i.signed_by(), i.sha256().substr(0, 12), i.uri()});
  return t.render();
}

std::string poolTable(const Repeated<v1::PoolCapacity>& ps) {
  using A = Table::Align;
  Table t({{"Pool"}, {"Driver"}, {"Size", A::kRight}, {"Used", A::kRight}, {"Free%", A::kRight}});
  for (const v1::PoolCapacity& p : ps) {
    const auto size = static_cast<double>(p.size_bytes());
    const double free_pct = size > 0 ? 100.0 * (size - static_cast<double>(p.used_bytes())) / size : 0;
    t.addRow({p.name(), p.driver(), humanBytes(p.size_bytes()), humanBytes(p.used_bytes()),
              absl::StrFormat("%.1f", free_pct)});
  }
  return t.render();
}

std::string domainTable(const Repeated<v1::Domain>& ds) {
  using A = Table::Align;
  Table t({{"Name"},
           {"ID", A::kRight},
           {"Mem", A::kRight},
           {"VCPUs", A::kRight},
           {"State"},
           {"Time(s)", A::kRight},
           {"UUID"}});
  for (const v1::Domain& d : ds) {
    const DomainView v(d);
    // Like xl list: what the hypervisor reports while the domain is present,
    // the configured values while it is not.
    const bool live = v.present();
    std::string state = v.stateName();
    if (d.foreign()) state += " (foreign)";
    t.addRow({v.spec.name, d.domid() >= 0 ? absl::StrCat(d.domid()) : "-",
              absl::StrCat(live ? d.memory_mib() : v.spec.memory_mib),
              absl::StrCat(live ? d.vcpus_online() : v.spec.vcpus), state, live ? absl::StrFormat("%.1f", d.cpu_time_seconds()) : "-", v.spec.uuid});
  }
  return t.render();
}

std::string domainDetails(const v1::Domain& d) {
  const DomainView v(d);
  const core::DomainSpec& s = v.spec;
  Details out;
  out.add("name", s.name);
  out.add("uuid", s.uuid);
  out.add("state", v.stateName());
  if (!d.state_reason().empty()) out.add("state_reason", d.state_reason());
  out.add("domid", d.domid() >= 0 ? absl::StrCat(d.domid()) : "-");
  out.add("type", std::string(core::toString(s.type)));
  out.add("vcpus", absl::StrCat(s.vcpus));
  out.add("maxvcpus", absl::StrCat(s.maxvcpus));
  out.add("memory", absl::StrCat(s.memory_mib, " MiB"));
  out.add("maxmem", absl::StrCat(s.maxmem_mib, " MiB"));
  if (v.present()) {
    out.add("vcpus_online", absl::StrCat(d.vcpus_online()));
    out.add("memory_current", absl::StrCat(d.memory_mib(), " MiB"));
    out.add("cpu_time", absl::StrFormat("%.1f s", d.cpu_time_seconds()));
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
  out.add("on_watchdog", std::string(core::toString(s.on_watchdog)));
  out.add("foreign", d.foreign() ? "yes" : "no");
  out.add("created_at", ageOf(d.created_at()));
  if (d.owner_uid() >= 0) out.add("owner_uid", absl::StrCat(d.owner_uid()));
  if (!d.owner().empty()) out.add("owner", d.owner());
  if (d.grants_size() > 0) out.add("grants", absl::StrJoin(d.grants(), ", "));
  return out.render();
}

std::string operationTable(const Repeated<v1::Operation>& ops) {
  using A = Table::Align;
  Table t({{"ID"}, {"Kind"}, {"Target"}, {"State"}, {"Phase"}, {"%", A::kRight}, {"Started"}, {"Result"}});
  for (const v1::Operation& op : ops) {
    std::string result =
        isFinished(op) ? (op.status_code() == 0 ? std::string("ok") : op.status_message()) : op.message();
    t.addRow({op.id(), op.kind(), op.target(), operationStateName(op), op.phase(), absl::StrCat(op.percent()),
              ageOf(op.created_at()), result});
  }
  return t.render();
}

std::string operationLine(const v1::Operation& op) {
  std::string line = absl::StrCat(op.id(), " ", op.kind(), " ", op.target(), ": ", operationStateName(op));
  if (!op.phase().empty()) absl::StrAppend(&line, ", ", op.phase());
  absl::StrAppend(&line, " ", op.percent(), "%");
  if (op.bytes_total() > 0)
    absl::StrAppend(&line, " (", op.bytes_done(), "/", op.bytes_total(), " bytes)");
  else if (op.bytes_done() > 0)
    absl::StrAppend(&line, " (", op.bytes_done(), " bytes)");
  if (isFinished(op) && op.status_code() != 0)
    absl::StrAppend(&line, ": ", op.status_message());
  else if (!op.message().empty())
    absl::StrAppend(&line, ": ", op.message());
  return line;
}

std::string hostDetails(const v1::HostInfo& h) {
  Details out;
  out.add("hypervisor", h.hypervisor());
  out.add("hypervisor_version", h.hypervisor_version());
  out.add("hostname", h.hostname());
  out.add("cpus", absl::StrCat(h.cpus()));
  out.add("memory_total", absl::StrCat(h.memory_total_mib(), " MiB"));
  out.add("memory_free", absl::StrCat(h.memory_free_mib(), " MiB"));
  out.add("domains_defined", absl::StrCat(h.domains_defined()));
  out.add("domains_running", absl::StrCat(h.domains_running()));
  out.add("operations", absl::StrCat(h.operations_active(), " active, limit ", h.operations_limit()));
  out.add("daemon_version", h.daemon_version());
  for (const v1::PoolCapacity& p : h.pools()) {
    std::string v = absl::StrCat(p.name(), " (", p.driver(), "): ", p.used_bytes() >> 20, " of ", p.size_bytes() >> 20,
                                 " MiB used");
    if (p.driver() == "lvm-thin") absl::StrAppend(&v, absl::StrFormat(", metadata %.1f%%", p.metadata_percent()));
    out.add("pool", v);
  }
  return out.render();
}

}  // namespace xenctl::client
