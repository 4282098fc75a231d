#include "lib/customize/customizer.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/random.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace xenctl::customize {
namespace {

constexpr size_t kRandomSeedBytes = 512;  // what systemd-random-seed itself saves
constexpr absl::Duration kKeygenTimeout = absl::Minutes(2);
constexpr uint32_t kFirstUserId = 1000;  // Debian's FIRST_UID / FIRST_GID
constexpr uint32_t kLastUserId = 59999;  // Debian's LAST_UID / LAST_GID

/// One planned write; nothing is written before every one is planned.
struct Op {
  enum Kind { kWrite, kMkdirs, kRemove, kOwn } kind;
  std::string what;  ///< the customization, for messages
  std::string path;
  std::string content;
  core::FileAttrs attrs;
};

std::vector<std::string> splitLines(std::string_view text) {
  std::vector<std::string> lines = absl::StrSplit(av(text), '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}
std::string joinLines(const std::vector<std::string>& lines) {
  return lines.empty() ? std::string() : absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}
std::string parentOf(std::string_view path) {
  size_t slash = path.find_last_of('/');
  return slash == 0 || slash == std::string_view::npos ? "/" : std::string(path.substr(0, slash));
}
std::optional<uint32_t> parseId(std::string_view s) {
  uint32_t v;
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(av(s), &v))
    return std::nullopt;
  return v;
}

/// A colon-separated account database (/etc/passwd, /etc/shadow, /etc/group,
/// /etc/gshadow) kept as its lines, so entries we do not touch are written
/// back byte for byte.
struct AccountDb {
  std::string path;
  bool present = false;
  core::FileAttrs attrs;
  std::vector<std::string> lines;
  bool changed = false;

  int find(std::string_view name) const {
    for (size_t i = 0; i < lines.size(); ++i)
      if (absl::StartsWith(lines[i], absl::StrCat(av(name), ":"))) return static_cast<int>(i);
    return -1;
  }
  std::vector<std::string> fields(int i) const { return absl::StrSplit(lines[i], ':'); }
  /// Field `n` of the entry `name` as a number; nullopt when either is missing.
  std::optional<uint32_t> idOf(std::string_view name, size_t n) const {
    int i = find(name);
    auto f = i >= 0 ? fields(i) : std::vector<std::string>{};
    return f.size() > n ? parseId(f[n]) : std::nullopt;
  }
  void set(int i, const std::vector<std::string>& f) {
    lines[i] = absl::StrJoin(f, ":");
    changed = true;
  }
  void add(const std::vector<std::string>& f) {
    lines.push_back(absl::StrJoin(f, ":"));
    changed = true;
  }
  /// Whether field `n` (2 = the uid of passwd, the gid of group) holds `id`.
  bool idUsed(size_t n, uint32_t id) const {
    for (size_t i = 0; i < lines.size(); ++i) {
      auto f = fields(static_cast<int>(i));
      if (f.size() > n && parseId(f[n]) == id) return true;
    }
    return false;
  }
  /// One past the highest id in field `n` within the range for users, so
  /// ids are never reused (as useradd does).
  uint32_t nextFreeId(size_t n) const {
    uint32_t next = kFirstUserId;
    for (size_t i = 0; i < lines.size(); ++i) {
      auto f = fields(static_cast<int>(i));
      auto id = f.size() > n ? parseId(f[n]) : std::nullopt;
      if (id && *id >= kFirstUserId && *id <= kLastUserId) next = std::max(next, *id + 1);
    }
    return next;
  }
};

/// Adds `member` to the comma-separated list in field `n`, once.
void addMember(std::vector<std::string>& f, size_t n, const std::string& member) {
  if (f.size() <= n) f.resize(n + 1);
  std::vector<std::string> members = absl::StrSplit(f[n], ',', absl::SkipEmpty());
  if (std::find(members.begin(), members.end(), member) == members.end()) members.push_back(member);
  f[n] = absl::StrJoin(members, ",");
}

Status validHostname(const std::string& name) {
  if (name.empty() || name.size() > 253)
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a host name: it must be 1 to 253 characters"));
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    bool ok = !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
              std::all_of(label.begin(), label.end(), [](char c) { return absl::ascii_isalnum(c) || c == '-'; });
    if (!ok)
      return absl::InvalidArgumentError(
          absl::StrCat("'", name, "' is not a host name (RFC 1123): each dot-separated label must be 1 to 63 ",
                       "letters, digits or '-', not starting or ending with '-'"));
  }
  return absl::OkStatus();
}

/// Debian's adduser rule for names (NAME_REGEX), with useradd's 32-character limit.
bool validUserName(const std::string& name) {
  if (name.empty() || name.size() > 32 || !(absl::ascii_islower(name[0]) || name[0] == '_')) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool last_dollar = c == '$' && i + 1 == name.size();
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-' || last_dollar)) return false;
  }
  return true;
}

/// A crypt(3) hash ("$id$salt$hash"), possibly locked with leading '!'s;
/// anything else could be a clear-text password and is refused.
bool validCryptHash(std::string_view h) {
  std::string_view s = h;
  while (!s.empty() && s.front() == '!') s.remove_prefix(1);
  if (s.size() < 4 || s.front() != '$' || std::count(s.begin(), s.end(), '$') < 2) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '$' || c == '.' || c == '/' || c == '=' || c == ',' || c == '-' || c == '+';
  });
}

struct IpAddress {
  int family = 0;  // AF_INET or AF_INET6
  std::string text;
};
std::optional<IpAddress> parseIp(std::string_view s) {
  std::string str(s);
  unsigned char buf[16];
  if (inet_pton(AF_INET, str.c_str(), buf) == 1) return IpAddress{AF_INET, str};
  if (inet_pton(AF_INET6, str.c_str(), buf) == 1) return IpAddress{AF_INET6, str};
  return std::nullopt;
}

struct Interface {
  std::string mac;      // lower case, with colons
  std::string mac_hex;  // without colons, for file names
  IpAddress address;
  int prefix = 0;
  std::optional<IpAddress> gateway;
  std::vector<IpAddress> dns;
  int vif = 0;
};

Result<Interface> parseInterface(const core::NetworkInterface& n, int position) {
  Interface i;
  i.mac = absl::AsciiStrToLower(n.mac);
  std::vector<absl::string_view> octets = absl::StrSplit(i.mac, ':');
  bool mac_ok = octets.size() == 6 && std::all_of(octets.begin(), octets.end(), [](absl::string_view o) {
                  return o.size() == 2 && absl::ascii_isxdigit(o[0]) && absl::ascii_isxdigit(o[1]);
                });
  if (!mac_ok)
    return absl::InvalidArgumentError(absl::StrCat("'", n.mac, "' is not a MAC address (like 00:16:3e:12:34:56)"));
  i.mac_hex = absl::StrReplaceAll(i.mac, {{":", ""}});
  std::pair<std::string, std::string> ap = absl::StrSplit(n.address, absl::MaxSplits('/', 1));
  auto ip = parseIp(ap.first);
  int max_prefix = ip && ip->family == AF_INET6 ? 128 : 32;
  if (!ip || !absl::SimpleAtoi(ap.second, &i.prefix) || i.prefix < 0 || i.prefix > max_prefix ||
      !std::all_of(ap.second.begin(), ap.second.end(), absl::ascii_isdigit) || ap.second.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("address '", n.address, "' is not an IP address with a prefix length (like 10.0.0.5/24)"));
  i.address = *ip;
  if (!n.gateway.empty()) {
    i.gateway = parseIp(n.gateway);
    if (!i.gateway || i.gateway->family != ip->family)
      return absl::InvalidArgumentError(
          absl::StrCat("gateway '", n.gateway, "' is not an IP address of the same family as ", n.address));
  }
  for (const auto& d : n.dns) {
    auto dip = parseIp(d);
    if (!dip) return absl::InvalidArgumentError(absl::StrCat("DNS server '", d, "' is not an IP address"));
    i.dns.push_back(*dip);
  }
  i.vif = n.vif_index >= 0 ? n.vif_index : position;
  return i;
}

/// A private directory on the host (mkdtemp: 0700), removed with its
/// contents when done, for ssh-keygen's output.
class HostTempDir {
 public:
  static Result<HostTempDir> create() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = absl::StrCat(base && *base ? base : "/tmp", "/xenctl-hostkeys-XXXXXX");
    if (!::mkdtemp(templ.data()))
      return errnoStatus(errno, absl::StrCat("making a private directory ", templ));
    return HostTempDir(std::move(templ));
  }
  HostTempDir(HostTempDir&& o) noexcept : path_(std::exchange(o.path_, "")) {}
  HostTempDir(const HostTempDir&) = delete;
  ~HostTempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit HostTempDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

Result<std::string> readHostFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return errnoStatus(errno, absl::StrCat("reading ", path));
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

Result<std::string> randomBytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::getrandom(out.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errnoStatus(errno, "getrandom");
    got += static_cast<size_t>(r);
  }
  return out;
}

/// Comments out the ifupdown stanzas (and auto/allow-* mentions) of the
/// interfaces in `names`; sets *sources_dir when the text sources
/// interfaces.d. Returns whether anything changed.
bool disableStanzas(std::vector<std::string>& lines, const std::set<std::string>& names, bool* sources_dir) {
  constexpr std::string_view kMark = "# disabled by xenctl: ";
  bool in_ours = false, changed = false;
  for (auto& line : lines) {
    std::vector<std::string> w = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (w.empty() || w[0][0] == '#') {
      if (in_ours && !w.empty()) {
        line = absl::StrCat(av(kMark), line);
        changed = true;
      }
      continue;
    }
    bool keyword = w[0] == "iface" || w[0] == "mapping" || w[0] == "auto" || absl::StartsWith(w[0], "allow-") ||
                   w[0] == "source" || w[0] == "source-directory" || w[0] == "rename" || w[0] == "no-auto-down" ||
                   w[0] == "no-scripts";
    if (keyword) in_ours = w[0] == "iface" && w.size() > 1 && names.count(w[1]);
    if (sources_dir && (w[0] == "source" || w[0] == "source-directory") && w.size() > 1 &&
        absl::StrContains(w[1], "interfaces.d"))
      *sources_dir = true;
    if (in_ours) {
      line = absl::StrCat(av(kMark), line);
      changed = true;
    } else if (w[0] == "auto" || absl::StartsWith(w[0], "allow-")) {
      std::vector<std::string> kept{w[0]};
      for (size_t k = 1; k < w.size(); ++k)
        if (!names.count(w[k])) kept.push_back(w[k]);
      if (kept.size() != w.size()) {
        line = kept.size() == 1 ? absl::StrCat(av(kMark), line) : absl::StrJoin(kept, " ");
        changed = true;
      }
    }
  }
  return changed;
}

/// Plans every change of one request against one tree, then writes them.
class Plan {
 public:
  Plan(core::FileTree& tree, core::ProcessRunner& runner, const core::Customizations& c, std::string label)
      : tree_(tree), runner_(runner), c_(c), label_(std::move(label)) {}

  Status build() {
    XENCTL_RETURN_IF_ERROR(planUsers());
    if (c_.hostname) XENCTL_RETURN_IF_ERROR(planHostname());
    for (const auto& k : c_.ssh_keys) XENCTL_RETURN_IF_ERROR(planSshKeys(k));
    if (!c_.networks.empty()) XENCTL_RETURN_IF_ERROR(planNetworks());
    if (c_.cloud_init_user_data) XENCTL_RETURN_IF_ERROR(planCloudInit());
    // Files are checked before ssh-keygen runs but written last, so that
    // they win over anything else planned for the same path.
    size_t first_file_op = ops_.size();
    for (const auto& f : c_.files) XENCTL_RETURN_IF_ERROR(planFile(f));
    std::vector<Op> file_ops(std::make_move_iterator(ops_.begin() + first_file_op),
                             std::make_move_iterator(ops_.end()));
    ops_.resize(first_file_op);
    if (c_.reset_identity) XENCTL_RETURN_IF_ERROR(planIdentity());
    ops_.insert(ops_.end(), std::make_move_iterator(file_ops.begin()), std::make_move_iterator(file_ops.end()));
    return absl::OkStatus();
  }

  Status run() {
    for (const Op& op : ops_) {
      Status s;
      switch (op.kind) {
        case Op::kWrite: s = tree_.writeFile(op.path, op.content, op.attrs); break;
        case Op::kMkdirs: s = tree_.mkdirs(op.path, op.attrs); break;
        case Op::kRemove: s = tree_.remove(op.path, /*recursive=*/false); break;
        case Op::kOwn:
          s = tree_.chmod(op.path, op.attrs.mode);
          if (s.ok()) s = tree_.chown(op.path, op.attrs.uid, op.attrs.gid);
          break;
      }
      if (!s.ok()) return fail(op.what, s);
    }
    return absl::OkStatus();
  }

 private:
  Status fail(std::string_view what, const Status& s) const {
    return Status(s.code(), absl::StrCat("customizing '", label_, "': ", av(what), ": ", s.message()));
  }
  Status fail(std::string_view what, absl::StatusCode code, std::string_view msg) const {
    return fail(what, Status(code, av(msg)));
  }

  void write(std::string what, std::string path, std::string content, core::FileAttrs attrs) {
    planned_[path] = content;
    ops_.push_back({Op::kWrite, std::move(what), std::move(path), std::move(content), attrs});
  }
  void mkdirs(std::string what, std::string path, core::FileAttrs attrs) {
    ops_.push_back({Op::kMkdirs, std::move(what), std::move(path), "", attrs});
  }
  void own(std::string what, std::string path, core::FileAttrs attrs) {
    ops_.push_back({Op::kOwn, std::move(what), std::move(path), "", attrs});
  }
  void removeFile(std::string what, std::string path) {
    ops_.push_back({Op::kRemove, std::move(what), std::move(path), "", {}});
  }

  /// The content a file will have once the planned writes are done;
  /// nullopt when it is missing.
  Result<std::optional<std::string>> read(std::string_view what, const std::string& path) {
    if (auto it = planned_.find(path); it != planned_.end()) return std::optional<std::string>(it->second);
    auto r = tree_.readFile(path);
    if (absl::IsNotFound(r.status())) return std::optional<std::string>();
    if (!r.ok()) return fail(what, r.status());
    return std::optional<std::string>(*std::move(r));
  }
  /// The mode and owner of an existing file, kept when we rewrite it.
  core::FileAttrs attrsOr(const std::string& path, core::FileAttrs fallback) {
    auto st = tree_.stat(path);
    return st.ok() && st->type == core::FileType::kRegular ? core::FileAttrs{st->mode, st->uid, st->gid} : fallback;
  }
  bool exists(const std::string& path) { return tree_.stat(path).ok(); }
  bool isDirectory(const std::string& path) { return tree_.list(path).ok(); }

  Result<AccountDb*> db(std::string_view what, const std::string& path) {
    auto it = dbs_.find(path);
    if (it != dbs_.end()) return &it->second;
    AccountDb d;
    d.path = path;
    XENCTL_ASSIGN_OR_RETURN(auto text, read(what, path));
    d.present = text.has_value();
    if (text) d.lines = splitLines(*text);
    return &dbs_.emplace(path, std::move(d)).first->second;
  }
  Result<AccountDb*> passwd(std::string_view what) {
    XENCTL_ASSIGN_OR_RETURN(AccountDb * d, db(what, "/etc/passwd"));
    if (!d->present)
      return fail(what, absl::StatusCode::kFailedPrecondition, "the image has no /etc/passwd");
    return d;
  }

  /// "USER[:GROUP]" → uid, gid, by the image's own databases.
  Result<std::pair<uint32_t, uint32_t>> resolveOwner(std::string_view what, const std::string& owner) {
    if (owner.empty()) return std::make_pair(0u, 0u);
    std::pair<std::string, std::string> ug = absl::StrSplit(owner, absl::MaxSplits(':', 1));
    bool has_group = owner.find(':') != std::string::npos;
    XENCTL_ASSIGN_OR_RETURN(AccountDb * pw, passwd(what));
    uint32_t uid, gid;
    std::optional<uint32_t> user_gid;
    if (auto n = parseId(ug.first)) {
      uid = *n;
      for (size_t i = 0; i < pw->lines.size(); ++i) {
        auto f = pw->fields(static_cast<int>(i));
        if (f.size() > 3 && parseId(f[2]) == uid) user_gid = parseId(f[3]);
      }
    } else {
      auto u = pw->idOf(ug.first, 2);
      if (!u)
        return fail(what, absl::StatusCode::kNotFound,
                    absl::StrCat("owner '", owner, "': no user '", ug.first, "' in the image's /etc/passwd"));
      uid = *u;
      user_gid = pw->idOf(ug.first, 3);
    }
    if (!has_group) return std::make_pair(uid, user_gid.value_or(uid));
    if (auto n = parseId(ug.second)) return std::make_pair(uid, *n);
    XENCTL_ASSIGN_OR_RETURN(AccountDb * gr, db(what, "/etc/group"));
    auto g = gr->idOf(ug.second, 2);
    if (!g)
      return fail(what, absl::StatusCode::kNotFound,
                  absl::StrCat("owner '", owner, "': no group '", ug.second, "' in the image's /etc/group"));
    gid = *g;
    return std::make_pair(uid, gid);
  }

  Status planUsers() {
    for (const auto& u : c_.users) {
      std::string what = absl::StrCat("user '", u.name, "'");
      if (!validUserName(u.name))
        return fail(what, absl::StatusCode::kInvalidArgument,
                    "not a valid user name: lower-case letters, digits, '_' and '-', starting with a letter or "
                    "'_', at most 32 characters");
      if (!u.password_hash.empty() && !validCryptHash(u.password_hash))
        return fail(what, absl::StatusCode::kInvalidArgument,
                    "password_hash is not a crypt(3) hash (\"$id$salt$hash\", as `mkpasswd -m yescrypt` or "
                    "`openssl passwd -6` print); clear-text passwords are refused");
      XENCTL_ASSIGN_OR_RETURN(AccountDb * pw, passwd(what));
      XENCTL_ASSIGN_OR_RETURN(AccountDb * gr, db(what, "/etc/group"));
      XENCTL_ASSIGN_OR_RETURN(AccountDb * sh, db(what, "/etc/shadow"));
      XENCTL_ASSIGN_OR_RETURN(AccountDb * gs, db(what, "/etc/gshadow"));
      if (!gr->present) return fail(what, absl::StatusCode::kFailedPrecondition, "the image has no /etc/group");
      for (const auto& g : u.groups)
        if (gr->find(g) < 0)
          return fail(what, absl::StatusCode::kNotFound,
                      absl::StrCat("group '", g, "' does not exist in the image's /etc/group; ",
                                   "name an existing group or add it to the image"));

      if (pw->find(u.name) < 0) {
        if (gr->find(u.name) >= 0)
          return fail(what, absl::StatusCode::kFailedPrecondition,
                      absl::StrCat("the image has a group '", u.name, "' but no such user; ",
                                   "choose another name or add the user to the image"));
        uint32_t uid = pw->nextFreeId(2);
        if (uid > kLastUserId)
          return fail(what, absl::StatusCode::kResourceExhausted, "no free uid left below 60000");
        uint32_t gid = gr->idUsed(2, uid) ? gr->nextFreeId(2) : uid;
        std::string shell = exists("/bin/bash") ? "/bin/bash" : "/bin/sh";
        std::string home = absl::StrCat("/home/", u.name);
        pw->add({u.name, "x", absl::StrCat(uid), absl::StrCat(gid), "", home, shell});
        gr->add({u.name, "x", absl::StrCat(gid), ""});
        if (gs->present) gs->add({u.name, "!", "", ""});
        // A directory already there is left as it is, as useradd -m does.
        mkdirs(what, "/home", {0755, 0, 0});
        mkdirs(what, home, {0755, uid, gid});
      }
      // An empty lastchg field turns password aging off: no wall clock needed.
      int si = sh->find(u.name);
      if (si < 0) {
        sh->add({u.name, u.password_hash.empty() ? "!" : u.password_hash, "", "0", "99999", "7", "", "", ""});
      } else if (!u.password_hash.empty()) {
        auto f = sh->fields(si);
        f[1] = u.password_hash;
        sh->set(si, f);
      }
      for (const auto& g : u.groups) {
        int gi = gr->find(g);
        auto f = gr->fields(gi);
        addMember(f, 3, u.name);
        gr->set(gi, f);
        if (int gsi = gs->find(g); gsi >= 0) {
          auto gf = gs->fields(gsi);
          addMember(gf, 3, u.name);
          gs->set(gsi, gf);
        }
      }
    }
    // Debian's modes: passwd and group 0644 root, shadow and gshadow 0640 root:shadow.
    uint32_t shadow_gid = 0;
    if (auto it = dbs_.find("/etc/group"); it != dbs_.end())
      shadow_gid = it->second.idOf("shadow", 2).value_or(0);
    for (auto& [path, d] : dbs_) {
      if (!d.changed) continue;
      bool secret = absl::EndsWith(path, "shadow");
      core::FileAttrs fallback{secret ? 0640u : 0644u, 0, secret ? shadow_gid : 0};
      write("users", path, joinLines(d.lines), attrsOr(path, fallback));
    }
    return absl::OkStatus();
  }

  Status planHostname() {
    const std::string& name = *c_.hostname;
    const std::string what = "hostname";
    if (Status s = validHostname(name); !s.ok()) return fail(what, s);
    write(what, "/etc/hostname", name + "\n", attrsOr("/etc/hostname", {0644, 0, 0}));

    std::string short_name = name.substr(0, name.find('.'));
    std::string entry = short_name == name ? absl::StrCat("127.0.1.1\t", name)
                                           : absl::StrCat("127.0.1.1\t", name, " ", short_name);
    XENCTL_ASSIGN_OR_RETURN(auto hosts, read(what, "/etc/hosts"));
    std::vector<std::string> lines = splitLines(hosts.value_or("127.0.0.1\tlocalhost\n"));
    std::vector<std::string> out;
    bool placed = false;
    for (const auto& line : lines) {
      std::vector<absl::string_view> words = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      if (!words.empty() && words[0] == "127.0.1.1") {
        if (!placed) out.push_back(entry);  // later duplicates go
        placed = true;
        continue;
      }
      out.push_back(line);
    }
    if (!placed) {
      auto after = std::find_if(out.begin(), out.end(), [](const std::string& l) {
        return absl::StartsWith(absl::StripLeadingAsciiWhitespace(l), "127.0.0.1");
      });
      out.insert(after == out.end() ? out.end() : after + 1, entry);
    }
    write(what, "/etc/hosts", joinLines(out), attrsOr("/etc/hosts", {0644, 0, 0}));
    return absl::OkStatus();
  }

  Status planSshKeys(const core::SshKeysCustomization& k) {
    std::string user = k.user.empty() ? "root" : k.user;
    std::string what = absl::StrCat("ssh key for user '", user, "'");
    for (const auto& key : k.keys)
      if (absl::StripAsciiWhitespace(key).empty() || key.find_first_of("\n\r", 0) != std::string::npos ||
          key.find('\0') != std::string::npos)
        return fail(what, absl::StatusCode::kInvalidArgument,
                    "each key must be one non-empty line of authorized_keys (\"ssh-ed25519 AAAA… comment\")");
    XENCTL_ASSIGN_OR_RETURN(AccountDb * pw, passwd(what));
    int i = pw->find(user);
    auto f = i >= 0 ? pw->fields(i) : std::vector<std::string>{};
    auto uid = f.size() > 5 ? parseId(f[2]) : std::nullopt;
    auto gid = f.size() > 5 ? parseId(f[3]) : std::nullopt;
    if (!uid || !gid) return fail(what, absl::StatusCode::kNotFound, "no such user in the image's /etc/passwd");
    const std::string& home = f[5];
    if (home.empty() || home[0] != '/' || home == "/")
      return fail(what, absl::StatusCode::kFailedPrecondition,
                  absl::StrCat("the home directory '", home, "' in the image's /etc/passwd is not usable"));
    if (auto l = tree_.list(home); !l.ok() && !absl::IsNotFound(l.status())) return fail(what, l.status());
    // A root forked from a used domain may hold links its users planted: never
    // chown through a link (~/.ssh -> /root/.ssh), never copy a link's target
    // (authorized_keys -> /etc/shadow) into the user's file.
    for (const std::string& p : {home, home + "/.ssh"})
      if (auto st = tree_.stat(p); st.ok() && st->type == core::FileType::kSymlink)
        return fail(what, absl::StatusCode::kFailedPrecondition,
                    absl::StrCat(p, " is a symbolic link; refusing to follow it (make it a directory)"));

    std::string dir = home + "/.ssh";
    std::string path = dir + "/authorized_keys";
    std::optional<std::string> existing;
    if (auto st = tree_.stat(path); planned_.count(path) || (st.ok() && st->type != core::FileType::kSymlink)) {
      XENCTL_ASSIGN_OR_RETURN(existing, read(what, path));
    }
    std::vector<std::string> lines = splitLines(existing.value_or(""));
    std::set<std::string> have;
    for (const auto& l : lines) have.insert(std::string(absl::StripAsciiWhitespace(l)));
    for (const auto& key : k.keys) {
      std::string line(absl::StripAsciiWhitespace(key));
      if (have.insert(line).second) lines.push_back(line);
    }
    core::FileAttrs user_dir{0700, *uid, *gid};
    mkdirs(what, parentOf(home), {0755, 0, 0});
    mkdirs(what, home, {0755, *uid, *gid});
    mkdirs(what, dir, user_dir);
    own(what, dir, user_dir);
    write(what, path, joinLines(lines), {0600, *uid, *gid});
    return absl::OkStatus();
  }

  enum class NetSystem { kNetworkd, kIfupdown };

  Result<NetSystem> detectNetSystem(std::string_view what) {
    bool networkd_enabled = false;
    if (auto units = tree_.list("/etc/systemd/system"); units.ok())
      for (const auto& d : *units)
        if (absl::EndsWith(d, ".wants") && exists(absl::StrCat("/etc/systemd/system/", d, "/systemd-networkd.service")))
          networkd_enabled = true;
    if (networkd_enabled) return NetSystem::kNetworkd;
    if (exists("/etc/network/interfaces")) return NetSystem::kIfupdown;
    if (isDirectory("/etc/systemd/network") || exists("/lib/systemd/system/systemd-networkd.service") ||
        exists("/usr/lib/systemd/system/systemd-networkd.service"))
      return NetSystem::kNetworkd;
    return fail(what, absl::StatusCode::kFailedPrecondition,
                "the image has neither systemd-networkd (/etc/systemd/network, systemd-networkd.service) nor "
                "ifupdown (/etc/network/interfaces); configure the network with cloud-init user-data or a file");
  }

  Status planNetworks() {
    std::vector<Interface> ifs;
    std::set<std::string> macs;
    for (size_t i = 0; i < c_.networks.size(); ++i) {
      std::string what = absl::StrCat("network for ", c_.networks[i].mac);
      auto parsed = parseInterface(c_.networks[i], static_cast<int>(i));
      if (!parsed.ok()) return fail(what, parsed.status());
      if (!macs.insert(parsed->mac).second)
        return fail(what, absl::StatusCode::kInvalidArgument, "the MAC address is given twice");
      ifs.push_back(*std::move(parsed));
    }
    XENCTL_ASSIGN_OR_RETURN(NetSystem sys, detectNetSystem(absl::StrCat("network for ", ifs[0].mac)));
    if (sys == NetSystem::kNetworkd) {
      for (const auto& i : ifs) {
        std::string what = absl::StrCat("network for ", i.mac);
        std::string text = absl::StrCat("# Written by xenctl for the vif with MAC ", i.mac, ".\n[Match]\nMACAddress=",
                                        i.mac, "\n\n[Network]\nAddress=", i.address.text, "/", i.prefix, "\n");
        if (i.gateway) absl::StrAppend(&text, "Gateway=", i.gateway->text, "\n");
        for (const auto& d : i.dns) absl::StrAppend(&text, "DNS=", d.text, "\n");
        mkdirs(what, "/etc/systemd/network", {0755, 0, 0});
        write(what, absl::StrCat("/etc/systemd/network/10-xenctl-", i.mac_hex, ".network"), text, {0644, 0, 0});
      }
      return absl::OkStatus();
    }
    return planIfupdown(ifs);
  }

  Status planIfupdown(const std::vector<Interface>& ifs) {
    std::set<std::string> names;
    for (const auto& i : ifs) {
      std::string what = absl::StrCat("network for ", i.mac);
      std::string family = i.address.family == AF_INET6 ? "inet6" : "inet";
      std::string text = absl::StrCat(
          "# Written by xenctl for the vif with MAC ", i.mac, " (vif ", i.vif, ").\n",
          "# ifupdown matches interfaces by name: systemd-udev names Xen vif N \"enXN\", the kernel\n",
          "# (net.ifnames=0) \"ethN\"; only the one that appears is brought up.\n");
      for (std::string name : {absl::StrCat("enX", i.vif), absl::StrCat("eth", i.vif)}) {
        names.insert(name);
        absl::StrAppend(&text, "\nallow-hotplug ", name, "\niface ", name, " ", family, " static\n", "    address ",
                        i.address.text, "/", i.prefix, "\n");
        if (i.gateway) absl::StrAppend(&text, "    gateway ", i.gateway->text, "\n");
        if (!i.dns.empty())
          absl::StrAppend(&text, "    dns-nameservers ",
                          absl::StrJoin(i.dns, " ", [](std::string* o, const IpAddress& a) { o->append(a.text); }),
                          "\n");
      }
      mkdirs(what, "/etc/network/interfaces.d", {0755, 0, 0});
      write(what, absl::StrCat("/etc/network/interfaces.d/xenctl-", i.mac_hex), text, {0644, 0, 0});
    }
    // The image's own stanzas for these names would configure them twice.
    const std::string what = "network: /etc/network/interfaces";
    XENCTL_ASSIGN_OR_RETURN(auto main_text, read(what, "/etc/network/interfaces"));
    std::vector<std::string> lines = splitLines(main_text.value_or(""));
    bool sources_dir = false;
    bool changed = disableStanzas(lines, names, &sources_dir);
    if (!sources_dir) {
      lines.push_back("source /etc/network/interfaces.d/*");
      changed = true;
    }
    if (changed)
      write(what, "/etc/network/interfaces", joinLines(lines), attrsOr("/etc/network/interfaces", {0644, 0, 0}));
    if (auto others = tree_.list("/etc/network/interfaces.d"); others.ok()) {
      for (const auto& name : *others) {
        std::string path = "/etc/network/interfaces.d/" + name;
        auto st = tree_.stat(path);
        if (absl::StartsWith(name, "xenctl-") || !st.ok() || st->type != core::FileType::kRegular) continue;
        std::string file_what = "network: " + path;
        XENCTL_ASSIGN_OR_RETURN(auto text, read(file_what, path));
        std::vector<std::string> file_lines = splitLines(text.value_or(""));
        if (disableStanzas(file_lines, names, nullptr))
          write(file_what, path, joinLines(file_lines), attrsOr(path, {0644, 0, 0}));
      }
    }
    return absl::OkStatus();
  }

  Status planCloudInit() {
    const std::string what = "cloud-init seed";
    const std::string& id = c_.instance_id;
    if (id.empty() || !std::all_of(id.begin(), id.end(), [](char ch) {
          return absl::ascii_isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
        }))
      return fail(what, absl::StatusCode::kInvalidArgument,
                  absl::StrCat("instance id '", id, "' must be the domain's uuid (letters, digits, '-', '_', '.')"));
    if (c_.hostname)
      if (Status s = validHostname(*c_.hostname); !s.ok()) return fail(what, s);
    const std::string dir = "/var/lib/cloud/seed/nocloud";
    std::string meta = absl::StrCat("instance-id: ", id, "\n");
    if (c_.hostname) absl::StrAppend(&meta, "local-hostname: ", *c_.hostname, "\n");
    mkdirs(what, dir, {0755, 0, 0});
    write(what, dir + "/meta-data", meta, {0644, 0, 0});
    write(what, dir + "/user-data", *c_.cloud_init_user_data, {0600, 0, 0});
    if (c_.networks.empty()) {
      // A network-config left in the golden image would configure this clone.
      if (exists(dir + "/network-config")) removeFile(what, dir + "/network-config");
      return absl::OkStatus();
    }
    // Version 2, one entry per MAC; no set-name, so the guest keeps its names.
    std::string net = "version: 2\nethernets:\n";
    for (size_t n = 0; n < c_.networks.size(); ++n) {
      auto i = parseInterface(c_.networks[n], static_cast<int>(n));
      if (!i.ok()) return fail(what, i.status());
      absl::StrAppend(&net, "  xenctl", n, ":\n    match:\n      macaddress: \"", i->mac, "\"\n    addresses:\n      - \"",
                      i->address.text, "/", i->prefix, "\"\n");
      if (i->gateway)
        absl::StrAppend(&net, "    ", i->gateway->family == AF_INET6 ? "gateway6" : "gateway4", ": \"",
                        i->gateway->text, "\"\n");
      if (!i->dns.empty()) {
        absl::StrAppend(&net, "    nameservers:\n      addresses:\n");
        for (const auto& d : i->dns) absl::StrAppend(&net, "        - \"", d.text, "\"\n");
      }
    }
    write(what, dir + "/network-config", net, {0600, 0, 0});
    return absl::OkStatus();
  }

  Status planIdentity() {
    const std::string what = "identity reset";
    // Empty, not "uninitialized": see customizer.h.
    write(what, "/etc/machine-id", "", attrsOr("/etc/machine-id", {0444, 0, 0}));
    if (auto st = tree_.stat("/var/lib/dbus/machine-id"); st.ok() && st->type == core::FileType::kRegular)
      removeFile(what, "/var/lib/dbus/machine-id");
    XENCTL_RETURN_IF_ERROR(planHostKeys());
    if (isDirectory("/var/lib/systemd")) {
      auto seed = randomBytes(kRandomSeedBytes);
      if (!seed.ok()) return fail(what, seed.status());
      write(what, "/var/lib/systemd/random-seed", *seed, {0600, 0, 0});
    }
    if (exists("/etc/udev/rules.d/70-persistent-net.rules"))
      removeFile(what, "/etc/udev/rules.d/70-persistent-net.rules");
    return absl::OkStatus();
  }

  Status planHostKeys() {
    const std::string what = "ssh host keys";
    std::vector<std::string> types;
    if (auto names = tree_.list("/etc/ssh"); names.ok()) {
      for (const auto& n : *names) {
        absl::string_view type = n;
        if (!absl::ConsumePrefix(&type, "ssh_host_") || !absl::ConsumeSuffix(&type, "_key") || type.empty() ||
            !std::all_of(type.begin(), type.end(), [](char ch) { return absl::ascii_isalnum(ch); }))
          continue;
        auto st = tree_.stat("/etc/ssh/" + n);
        if (st.ok() && st->type == core::FileType::kRegular) types.emplace_back(type);
      }
    }
    if (types.empty()) return absl::OkStatus();

    std::string host = c_.hostname.value_or("");
    if (host.empty()) {
      XENCTL_ASSIGN_OR_RETURN(auto current, read(what, "/etc/hostname"));
      host = std::string(absl::StripAsciiWhitespace(current.value_or("")));
    }
    if (host.empty() || !validHostname(host).ok()) host = "localhost";
    auto tmp = HostTempDir::create();
    if (!tmp.ok()) return fail(what, tmp.status());
    for (const auto& type : types) {
      std::string key = absl::StrCat(tmp->path(), "/ssh_host_", type, "_key");
      auto r = runner_.run({"ssh-keygen", "-q", "-t", type, "-N", "", "-C", "root@" + host, "-f", key}, kKeygenTimeout);
      if (!r.ok())
        return fail(what, r.status().code(),
                    absl::StrCat("running ssh-keygen -t ", type, " on the host (is openssh-client installed?): ",
                                 r.status().message()));
      if (r->exit_code != 0)
        return fail(what, absl::StatusCode::kFailedPrecondition,
                    absl::StrCat("ssh-keygen -t ", type, " exited with ", r->exit_code, ": ",
                                 absl::StripAsciiWhitespace(r->output)));
      auto priv = readHostFile(key);
      auto pub = readHostFile(key + ".pub");
      if (!priv.ok() || !pub.ok())
        return fail(what, !priv.ok() ? priv.status() : pub.status());
      // Debian's openssh-server: private keys 0600 root:root, public ones 0644.
      write(what, absl::StrCat("/etc/ssh/ssh_host_", type, "_key"), *priv, {0600, 0, 0});
      write(what, absl::StrCat("/etc/ssh/ssh_host_", type, "_key.pub"), *pub, {0644, 0, 0});
    }
    return absl::OkStatus();
  }

  Status planFile(const core::FileCustomization& f) {
    std::string what = absl::StrCat("file ", f.path);
    if (f.path.empty() || f.path[0] != '/' || f.path == "/" || f.path.find('\0') != std::string::npos)
      return fail(what, absl::StatusCode::kInvalidArgument, "the path must be absolute inside the guest (\"/etc/motd\")");
    std::vector<std::string> parts = absl::StrSplit(f.path, '/', absl::SkipEmpty());
    if (parts.empty() || parts.back() == "." || parts.back() == "..")
      return fail(what, absl::StatusCode::kInvalidArgument, "the path must name a file");
    if (f.mode > 07777)
      return fail(what, absl::StatusCode::kInvalidArgument,
                  absl::StrFormat("mode %o has bits beyond 07777", f.mode));
    XENCTL_ASSIGN_OR_RETURN(auto owner, resolveOwner(what, f.owner));
    // Refuse now what would fail half-way: a parent that is a file, a target that is a directory.
    std::string prefix;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      prefix += "/" + parts[i];
      auto l = tree_.list(prefix);
      if (absl::IsNotFound(l.status())) break;
      if (!l.ok()) return fail(what, l.status());
    }
    if (auto st = tree_.stat(f.path); st.ok() && st->type == core::FileType::kDirectory)
      return fail(what, absl::StatusCode::kFailedPrecondition, absl::StrCat(f.path, " is a directory in the image"));
    mkdirs(what, parentOf(f.path), {0755, 0, 0});
    write(what, f.path, f.content, {f.mode, owner.first, owner.second});
    return absl::OkStatus();
  }

  core::FileTree& tree_;
  core::ProcessRunner& runner_;
  const core::Customizations& c_;
  std::string label_;
  std::vector<Op> ops_;
  std::map<std::string, std::string> planned_;  ///< path → content it will have
  std::map<std::string, AccountDb> dbs_;
};

std::string labelOf(const core::Customizations& c, const std::string& fallback) {
  if (!c.domain_name.empty()) return c.domain_name;
  if (c.hostname && !c.hostname->empty()) return *c.hostname;
  return fallback;
}

Status applyLabelled(core::FileTree& tree, core::ProcessRunner& runner, const core::Customizations& c,
                     std::string label) {
  Plan plan(tree, runner, c, std::move(label));
  XENCTL_RETURN_IF_ERROR(plan.build());
  return plan.run();
}

}  // namespace

Customizer::Customizer(core::ProcessRunner& runner, core::FileTreeOpener opener)
    : runner_(runner), opener_(std::move(opener)) {}

Status Customizer::apply(core::FileTree& tree, const core::Customizations& c) {
  return applyLabelled(tree, runner_, c, labelOf(c, "the root file system"));
}

Status Customizer::applyToDevice(const std::string& device_path, const core::Customizations& c) {
  std::string label = labelOf(c, device_path);
  if (c.empty()) return absl::OkStatus();
  auto tree = opener_(device_path, /*writable=*/true);
  if (!tree.ok())
    return Status(tree.status().code(), absl::StrCat("customizing '", label, "': opening ", device_path, ": ",
                                                     tree.status().message()));
  Status applied = applyLabelled(**tree, runner_, c, label);
  Status closed = (*tree)->close();
  if (!applied.ok()) return applied;
  if (!closed.ok())
    return Status(closed.code(),
                  absl::StrCat("customizing '", label, "': closing ", device_path, ": ", closed.message()));
  return absl::OkStatus();
}

}  // namespace xenctl::customize
