#include "daemon/config.h"

#include <grp.h>
#include <pwd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/core/domain.h"
#include "lib/core/volume.h"

namespace xenctl::daemon {
namespace {

std::string where(const std::string& path, const toml::source_region& r) {
  return absl::StrCat(path, ":", r.begin.line);
}

// The steps of loadConfig: one per section, each naming the file and line
// of what it refuses.
class ConfigReader {
 public:
  explicit ConfigReader(const std::string& path) : path_(path) {}

  Result<toml::table> parse() const {
    try {
      return toml::parse_file(path_);
    } catch (const toml::parse_error& err) {
      if (!err.source().path)  // not even opened
        return absl::InvalidArgumentError(absl::StrCat("config ", path_, ": ", av(err.description())));
      return absl::InvalidArgumentError(absl::StrCat("config ", where(path_, err.source()), ":",
                                                     err.source().begin.column, ": ", av(err.description())));
    }
  }

  Status checkSections(const toml::table& root) const {
    for (auto&& [key, node] : root)
      if (key.str() != "daemon" && key.str() != "test-hypervisor" && key.str() != "pool" && key.str() != "images" &&
          key.str() != "access" && key.str() != "security")
        return absl::InvalidArgumentError(
            absl::StrCat("config ", where(path_, node.source()), ": unknown section '", av(key.str()),
                         "'; known: [daemon], [test-hypervisor], [[pool]], [images], [access], [security]"));
    return absl::OkStatus();
  }

  Status readDaemon(const toml::table& d, Config& c) const {
    const std::set<std::string> known = {"listen",         "state_dir",  "hypervisor",
                                         "max_operations", "log_level",  "tls",
                                         "max_operations_per_caller",   "max_streams_per_caller",
                                         "max_request_size", "max_queued_operations"};
    for (auto&& [key, node] : d) {
      const std::string k(key.str());
      if (!known.count(k))
        return absl::InvalidArgumentError(absl::StrCat(
            "config ", where(path_, node.source()), ": unknown key '", k,
            "' in [daemon]; known: listen, state_dir, hypervisor, max_operations, max_operations_per_caller, "
            "max_queued_operations, max_streams_per_caller, max_request_size, log_level, [daemon.tls]"));
      if (k == "listen") {
        XENCTL_RETURN_IF_ERROR(readListen(node, c));
      } else if (k == "tls") {
        if (!node.is_table()) return badType(node, k, "a table ([daemon.tls])");
        XENCTL_RETURN_IF_ERROR(readTls(*node.as_table(), c.tls));
      } else if (k == "max_streams_per_caller") {
        // A stream costs no thread (gRPC's callback API), only its buffers.
        auto v = node.value<int64_t>();
        if (!v || *v < 1 || *v > 100000) return badType(node, k, "a whole number from 1 to 100000");
        c.max_streams_per_caller = static_cast<uint32_t>(*v);
      } else if (k == "max_operations" || k == "max_operations_per_caller" || k == "max_queued_operations") {
        auto v = node.value<int64_t>();
        if (!v || *v < 1 || *v > 1024) return badType(node, k, "a whole number from 1 to 1024");
        (k == "max_operations"              ? c.max_operations
         : k == "max_operations_per_caller" ? c.max_operations_per_caller
                                            : c.max_queued_operations) = static_cast<uint32_t>(*v);
      } else if (k == "max_request_size") {
        XENCTL_ASSIGN_OR_RETURN(c.max_request_bytes, size(node, k, "a size from \"64K\" to \"1G\"", 64 << 10,
                                                          uint64_t{1} << 30));
      } else {
        auto v = node.value<std::string>();
        if (!v) return badType(node, k, "a string");
        (k == "state_dir" ? c.state_dir : k == "hypervisor" ? c.hypervisor : c.log_level) = *v;
      }
    }
    return absl::OkStatus();
  }

  Status readTestHypervisor(const toml::table& t, Config& c) const {
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      auto v = node.value<int64_t>();
      if (k != "cpus" && k != "memory_mib")
        return absl::InvalidArgumentError(absl::StrCat("config ", where(path_, node.source()), ": unknown key '", k,
                                                       "' in [test-hypervisor]; known: cpus, memory_mib"));
      if (!v || *v < 1) return badType(node, k, "a positive whole number");
      if (k == "cpus")
        c.test_cpus = static_cast<uint32_t>(*v);
      else
        c.test_memory_mib = static_cast<uint64_t>(*v);
    }
    return absl::OkStatus();
  }

  Status readImages(const toml::table& t, ImagesConfig& images) const {
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      if (k == "trusted_keys") {
        XENCTL_ASSIGN_OR_RETURN(images.trusted_keys, strings(node, k, kKeyFiles));
      } else if (k == "source") {
        const toml::array* arr = node.as_array();
        if (!arr || !arr->is_array_of_tables())
          return badType(node, "source", "an array of tables ([[images.source]])");
        images.sources.clear();
        for (const auto& el : *arr) {
          XENCTL_ASSIGN_OR_RETURN(ImageSourceConfig sc, readImageSource(el));
          images.sources.push_back(std::move(sc));
        }
      } else if (k == "ca_file") {
        auto v = node.value<std::string>();
        if (!v) return badType(node, k, "a string");
        images.ca_file = *v;
      } else if (k == "allow_setid") {
        auto v = node.value<bool>();
        if (!v) return badType(node, k, "true or false");
        images.allow_setid = *v;
      } else if (k == "allow_devices") {
        if (auto b = node.value<bool>()) {
          images.allow_devices = *b ? DeviceNodes::kAll : DeviceNodes::kNone;
        } else if (node.value<std::string>() == "standard") {
          images.allow_devices = DeviceNodes::kStandard;
        } else {
          return badType(node, k, "true, false or \"standard\"");
        }
      } else if (k == "max_download_size") {
        if (node.value<int64_t>() == 0) {
          images.max_download_bytes = 0;
        } else {
          XENCTL_ASSIGN_OR_RETURN(images.max_download_bytes,
                                  size(node, k, "a size such as \"16G\", or 0 for no limit", 1 << 20, UINT64_MAX));
        }
      } else if (k == "fetch_timeout" || k == "fetch_stall_timeout") {
        auto v = node.value<int64_t>();
        const bool stall = k == "fetch_stall_timeout";
        if (!v || *v < (stall ? 1 : 0) || *v > 7 * 86400)
          return badType(node, k, stall ? "seconds from 1 to 604800" : "seconds from 0 (no limit) to 604800");
        (stall ? images.fetch_stall_timeout_seconds : images.fetch_timeout_seconds) = static_cast<uint32_t>(*v);
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "config ", where(path_, node.source()), ": unknown key '", k,
            "' in [images]; known: trusted_keys, source, ca_file, allow_setid, allow_devices, max_download_size, "
            "fetch_timeout, fetch_stall_timeout"));
      }
    }
    return absl::OkStatus();
  }

  Status readSecurity(const toml::table& t, SecurityConfig& sec) const {
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      if (k == "allowed_paths") {
        XENCTL_ASSIGN_OR_RETURN(sec.allowed_paths, strings(node, k, "an array of absolute directories"));
        for (const auto& p : sec.allowed_paths)
          if (p.empty() || p.front() != '/' || p.find("/../") != std::string::npos || absl::EndsWith(p, "/.."))
            return badType(node, k, "an array of absolute directories (without '..')");
      } else if (k == "bootloaders") {
        XENCTL_ASSIGN_OR_RETURN(sec.bootloaders, strings(node, k, "an array of strings"));
      } else {
        return absl::InvalidArgumentError(absl::StrCat("config ", where(path_, node.source()), ": unknown key '", k,
                                                       "' in [security]; known: allowed_paths, bootloaders"));
      }
    }
    return absl::OkStatus();
  }

  // [access]: role = ["user:NAME", "uid:N", "group:NAME", "gid:N", "cert:SUBJECT", ...].
  Status readAccess(const toml::table& t, std::vector<core::RoleBinding>& out) const {
    constexpr std::string_view kForms =
        "an array of \"user:NAME\", \"uid:N\", \"group:NAME\", \"gid:N\" or \"cert:SUBJECT\" strings";
    out.clear();
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      auto role = core::parseRole(k);
      if (!role.ok() || *role == core::Role::kNone)
        return absl::InvalidArgumentError(absl::StrCat("config ", where(path_, node.source()), ": unknown key '", k,
                                                       "' in [access]; known: admin, operator, viewer"));
      const toml::array* arr = node.as_array();
      if (!arr) return badType(node, k, kForms);
      for (const auto& el : *arr) {
        auto v = el.value<std::string>();
        if (!v) return badType(el, k, kForms);
        auto b = binding(*v, *role);
        if (!b.ok())
          return absl::InvalidArgumentError(
              absl::StrCat("config ", where(path_, el.source()), ": in [access] ", k, ": ", b.status().message()));
        out.push_back(*std::move(b));
      }
    }
    return absl::OkStatus();
  }

  Status readPools(const toml::node& pools, std::vector<PoolConfig>& out) const {
    const toml::array* arr = pools.as_array();
    if (!arr || !arr->is_array_of_tables()) return badType(pools, "pool", "an array of tables ([[pool]])");
    out.clear();
    for (const auto& el : *arr) {
      XENCTL_ASSIGN_OR_RETURN(PoolConfig pc, readPool(*el.as_table()));
      out.push_back(std::move(pc));
    }
    return absl::OkStatus();
  }

 private:
  static constexpr std::string_view kKeyFiles = "an array of strings (minisign public key files)";

  Status badType(const toml::node& n, std::string_view key, std::string_view want) const {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", where(path_, n.source()), ": '", av(key), "' must be ", av(want)));
  }

  // A size written as "512M", "2G" ... (core::parseSizeMib), in bytes, within [min, max].
  Result<uint64_t> size(const toml::node& node, std::string_view k, std::string_view want, uint64_t min,
                        uint64_t max) const {
    auto v = node.value<std::string>();
    Result<uint64_t> mib = v ? core::parseSizeMib(*v) : absl::InvalidArgumentError("not a string");
    if (!mib.ok() && v && absl::EndsWithIgnoreCase(*v, "K")) {
      // Below a MiB: whole KiB.
      uint64_t kib = 0;
      if (absl::SimpleAtoi(av(std::string_view(*v).substr(0, v->size() - 1)), &kib) && kib <= (UINT64_MAX >> 10)) {
        if (kib << 10 >= min && kib << 10 <= max) return kib << 10;
      }
    }
    if (!mib.ok() || *mib > (max >> 20) || (*mib << 20) < min) return badType(node, k, want);
    return *mib << 20;
  }

  Result<std::vector<std::string>> strings(const toml::node& node, std::string_view k, std::string_view want) const {
    const toml::array* arr = node.as_array();
    if (!arr) return badType(node, k, want);
    std::vector<std::string> out;
    for (const auto& el : *arr) {
      if (!el.is_string()) return badType(el, k, want);
      out.push_back(std::string(*el.value<std::string_view>()));
    }
    return out;
  }

  // [daemon] listen: each entry an address, or { address = "tcp:...", insecure = true }.
  Status readListen(const toml::node& node, Config& c) const {
    static constexpr std::string_view kWant =
        "an array of addresses (\"unix:PATH\", \"tcp:HOST:PORT\") or { address = \"tcp:HOST:PORT\", insecure = true }";
    const toml::array* arr = node.as_array();
    if (!arr) return badType(node, "listen", kWant);
    c.listen.clear();
    c.insecure_listen.clear();
    for (const auto& el : *arr) {
      if (auto address = el.value<std::string>()) {
        c.listen.push_back(*address);
        continue;
      }
      const toml::table* t = el.as_table();
      if (!t) return badType(el, "listen", kWant);
      std::optional<std::string> address;
      bool insecure = false;
      for (auto&& [key, value] : *t) {
        if (key.str() == "address" && value.is_string()) {
          address = value.value<std::string>();
        } else if (key.str() == "insecure" && value.is_boolean()) {
          insecure = *value.value<bool>();
        } else {
          return badType(value, "listen", kWant);
        }
      }
      if (!address) return badType(el, "listen", kWant);
      if (insecure && !absl::StartsWith(*address, "tcp:"))
        return absl::InvalidArgumentError(absl::StrCat("config ", where(path_, el.source()), ": listen address '",
                                                       *address, "': insecure = true applies to tcp: listeners only"));
      c.listen.push_back(*address);
      if (insecure) c.insecure_listen.push_back(*address);
    }
    return absl::OkStatus();
  }

  Status readTls(const toml::table& t, TlsConfig& tls) const {
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      if (k != "cert" && k != "key" && k != "client_ca")
        return absl::InvalidArgumentError(absl::StrCat("config ", where(path_, node.source()), ": unknown key '", k,
                                                       "' in [daemon.tls]; known: cert, key, client_ca"));
      auto v = node.value<std::string>();
      if (!v || v->empty()) return badType(node, k, "a file name (PEM)");
      (k == "cert" ? tls.cert : k == "key" ? tls.key : tls.client_ca) = *v;
    }
    return absl::OkStatus();
  }

  // One [access] entry, its user or group name looked up now (NSS).
  static Result<core::RoleBinding> binding(const std::string& entry, core::Role role) {
    using Kind = core::RoleBinding::Kind;
    const auto colon = entry.find(':');
    const std::string kind = entry.substr(0, colon), value = colon == std::string::npos ? "" : entry.substr(colon + 1);
    if (value.empty())
      return absl::InvalidArgumentError(absl::StrCat(
          "'", entry, "' is not user:NAME, uid:N, group:NAME, gid:N or cert:SUBJECT"));
    if (kind == "cert") return core::RoleBinding{Kind::kSubject, -1, value, role};
    if (kind == "uid" || kind == "gid") {
      int64_t id;
      if (!absl::SimpleAtoi(value, &id) || id < 0 || value.find_first_not_of("0123456789") != std::string::npos)
        return absl::InvalidArgumentError(absl::StrCat("'", entry, "': ", kind, " must be a number"));
      return core::RoleBinding{kind == "uid" ? Kind::kUid : Kind::kGid, id, "", role};
    }
    if (kind == "user") {
      const passwd* pw = ::getpwnam(value.c_str());
      if (!pw) return absl::InvalidArgumentError(absl::StrCat("'", entry, "': there is no user '", value, "'"));
      return core::RoleBinding{Kind::kUid, static_cast<int64_t>(pw->pw_uid), "", role};
    }
    if (kind == "group") {
      const group* gr = ::getgrnam(value.c_str());
      if (!gr) return absl::InvalidArgumentError(absl::StrCat("'", entry, "': there is no group '", value, "'"));
      return core::RoleBinding{Kind::kGid, static_cast<int64_t>(gr->gr_gid), "", role};
    }
    return absl::InvalidArgumentError(
        absl::StrCat("'", entry, "' is not user:NAME, uid:N, group:NAME, gid:N or cert:SUBJECT"));
  }

  Result<ImageSourceConfig> readImageSource(const toml::node& el) const {
    ImageSourceConfig sc;
    sc.where = where(path_, el.source());
    for (auto&& [skey, snode] : *el.as_table()) {
      const std::string sk(skey.str());
      if (sk == "prefix" || sk == "policy") {
        auto v = snode.value<std::string>();
        if (!v) return badType(snode, sk, "a string");
        if (sk == "policy" && *v != "signed" && *v != "digest" && *v != "none")
          return badType(snode, sk, "\"signed\", \"digest\" or \"none\"");
        (sk == "prefix" ? sc.prefix : sc.policy) = *v;
      } else if (sk == "trusted_keys") {
        XENCTL_ASSIGN_OR_RETURN(sc.trusted_keys, strings(snode, sk, kKeyFiles));
      } else if (sk == "allow_unsigned_requests") {
        auto v = snode.value<bool>();
        if (!v) return badType(snode, sk, "true or false");
        sc.allow_unsigned_requests = *v;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "config ", where(path_, snode.source()), ": unknown key '", sk,
            "' in an [[images.source]]; known: prefix, policy, trusted_keys, allow_unsigned_requests"));
      }
    }
    if (sc.prefix.empty())
      return absl::InvalidArgumentError(absl::StrCat(
          "config ", sc.where, ": an [[images.source]] needs a prefix, e.g. \"https://images.example/\""));
    return sc;
  }

  Result<PoolConfig> readPool(const toml::table& t) const {
    // The keys each driver takes; any other is an error naming its line.
    static const std::map<std::string, std::set<std::string>> kKeys = {
        {"dir", {"name", "driver", "path"}},
        {"lvm-thin", {"name", "driver", "vg", "thinpool", "max_overcommit", "data_watermark", "metadata_watermark"}},
        {"lvm-snapshot", {"name", "driver", "vg", "snapshot_size", "snapshot_percent", "snapshot_watermark"}},
    };
    PoolConfig pc;
    if (const toml::node* d = t.get("driver")) {
      auto v = d->value<std::string>();
      if (!v) return badType(*d, "driver", "a string");
      pc.driver = *v;
    }
    auto keys = kKeys.find(pc.driver);
    if (keys == kKeys.end())
      return absl::InvalidArgumentError(absl::StrCat("config ", where(path_, t.get("driver")->source()),
                                                     ": driver \"", pc.driver,
                                                     "\" is unknown; use \"dir\", \"lvm-thin\" or \"lvm-snapshot\""));
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      if (!keys->second.count(k))
        return absl::InvalidArgumentError(absl::StrCat("config ", where(path_, node.source()), ": unknown key '", k,
                                                       "' in a [[pool]] with driver \"", pc.driver,
                                                       "\"; known: ", absl::StrJoin(keys->second, ", ")));
      if (k != "driver") XENCTL_RETURN_IF_ERROR(readPoolKey(k, node, pc));
    }
    const bool dir = pc.driver == "dir", thin = pc.driver == "lvm-thin";
    if (pc.name.empty() || (dir && pc.path.empty()) || (!dir && pc.vg.empty()) || (thin && pc.thinpool.empty()))
      return absl::InvalidArgumentError(absl::StrCat(
          "config ", where(path_, t.source()), ": a [[pool]] with driver \"", pc.driver, "\" needs ",
          dir ? "a name and a path" : thin ? "a name, a vg and a thinpool" : "a name and a vg"));
    return pc;
  }

  // One key of a [[pool]] other than its driver, known to the driver.
  Status readPoolKey(const std::string& k, const toml::node& node, PoolConfig& pc) const {
    if (k == "max_overcommit" || k == "data_watermark" || k == "metadata_watermark" || k == "snapshot_percent" ||
        k == "snapshot_watermark") {
      auto v = node.value<double>();  // integers too
      const bool ratio = k == "max_overcommit";
      if (!v || *v <= 0 || (!ratio && *v > 100))
        return badType(node, k, ratio ? "a positive number" : "a percentage above 0, at most 100");
      (k == "max_overcommit"       ? pc.max_overcommit
       : k == "data_watermark"     ? pc.data_watermark
       : k == "metadata_watermark" ? pc.metadata_watermark
       : k == "snapshot_percent"   ? pc.snapshot_percent
                                   : pc.snapshot_watermark) = *v;
    } else if (k == "snapshot_size") {
      auto v = node.value<std::string>();
      Result<uint64_t> mib = v ? core::parseSizeMib(*v) : absl::InvalidArgumentError("not a string");
      if (!mib.ok() || *mib == 0) return badType(node, k, "a size such as \"512M\" or \"2G\"");
      pc.snapshot_size_mib = *mib;
    } else {
      auto v = node.value<std::string>();
      if (!v) return badType(node, k, "a string");
      (k == "name" ? pc.name : k == "path" ? pc.path : k == "vg" ? pc.vg : pc.thinpool) = *v;
    }
    return absl::OkStatus();
  }

  const std::string& path_;
};

}  // namespace

Result<Config> loadConfig(const std::string& path, Config c) {
  ConfigReader reader(path);
  XENCTL_ASSIGN_OR_RETURN(toml::table root, reader.parse());
  XENCTL_RETURN_IF_ERROR(reader.checkSections(root));
  if (toml::table* d = root["daemon"].as_table()) XENCTL_RETURN_IF_ERROR(reader.readDaemon(*d, c));
  if (toml::table* t = root["test-hypervisor"].as_table()) XENCTL_RETURN_IF_ERROR(reader.readTestHypervisor(*t, c));
  if (toml::table* t = root["images"].as_table()) XENCTL_RETURN_IF_ERROR(reader.readImages(*t, c.images));
  if (toml::node* pools = root.get("pool")) XENCTL_RETURN_IF_ERROR(reader.readPools(*pools, c.pools));
  if (toml::table* t = root["access"].as_table()) XENCTL_RETURN_IF_ERROR(reader.readAccess(*t, c.access));
  if (toml::table* t = root["security"].as_table()) XENCTL_RETURN_IF_ERROR(reader.readSecurity(*t, c.security));
  return c;
}

std::vector<PoolConfig> effectivePools(const Config& c) {
  if (!c.pools.empty()) return c.pools;
  PoolConfig dir;
  dir.name = "default";
  dir.path = c.state_dir + "/volumes";
  return {dir};
}

namespace {

// Remote callers get mutual TLS, unless the operator wrote insecure = true
// for that listener.
Status validateTls(const Config& c) {
  std::vector<std::string> missing;
  if (c.tls.cert.empty()) missing.push_back("cert");
  if (c.tls.key.empty()) missing.push_back("key");
  if (c.tls.client_ca.empty()) missing.push_back("client_ca");
  if (c.tls.configured() && !missing.empty())
    return absl::InvalidArgumentError(absl::StrCat("[daemon.tls] needs cert, key and client_ca together; missing: ",
                                                   absl::StrJoin(missing, ", ")));
  for (const auto& l : c.listen) {
    if (!absl::StartsWith(l, "tcp:") || c.tls.configured() ||
        std::find(c.insecure_listen.begin(), c.insecure_listen.end(), l) != c.insecure_listen.end())
      continue;
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", l, "' needs mutual TLS: set [daemon.tls] cert, key and client_ca; or write { ",
                     "address = \"", l, "\", insecure = true } in [daemon] listen to serve it in plaintext ",
                     "(anyone who can reach it then controls this host)"));
  }
  return absl::OkStatus();
}

}  // namespace

Status validateConfig(const Config& c) {
  if (c.hypervisor != "test" && c.hypervisor != "libxl")
    return absl::InvalidArgumentError(
        absl::StrCat("hypervisor '", c.hypervisor, "' is unknown; use \"libxl\" (real Xen) or \"test\" (in memory)"));
  if (c.listen.empty()) return absl::InvalidArgumentError("nothing to listen on; give --listen unix:PATH");
  for (const auto& l : c.listen)
    if (!absl::StartsWith(l, "unix:/") && !absl::StartsWith(l, "tcp:"))
      return absl::InvalidArgumentError(
          absl::StrCat("listen address '", l, "' is not unix:/ABSOLUTE/PATH or tcp:HOST:PORT"));
  XENCTL_RETURN_IF_ERROR(validateTls(c));
  if (c.state_dir.empty()) return absl::InvalidArgumentError("state_dir is empty; give --state-dir DIR");
  static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error"};
  if (!levels.count(c.log_level))
    return absl::InvalidArgumentError(
        absl::StrCat("log_level '", c.log_level, "' is unknown; use trace, debug, info, warn or error"));
  std::set<std::string> pool_names;
  for (const auto& p : c.pools) {
    if (Status st = core::validateVolumeName(p.name, "pool"); !st.ok()) return st;
    if (!pool_names.insert(p.name).second)
      return absl::InvalidArgumentError(absl::StrCat("pool '", p.name, "' is declared twice"));
    if (p.driver == "lvm-thin" || p.driver == "lvm-snapshot") {
      if (p.vg.empty()) return absl::InvalidArgumentError(absl::StrCat("pool '", p.name, "': it needs a vg"));
      if (p.driver == "lvm-thin" && p.thinpool.empty())
        return absl::InvalidArgumentError(absl::StrCat("pool '", p.name, "': it needs a thinpool"));
      continue;
    }
    if (p.driver != "dir")
      return absl::InvalidArgumentError(absl::StrCat("pool '", p.name, "': driver \"", p.driver,
                                                     "\" is unknown; use \"dir\", \"lvm-thin\" or \"lvm-snapshot\""));
    if (p.path.empty() || p.path[0] != '/')
      return absl::InvalidArgumentError(absl::StrCat("pool '", p.name, "': path '", p.path, "' is not absolute"));
  }
  return absl::OkStatus();
}

}  // namespace xenctl::daemon
