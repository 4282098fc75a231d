#include "lib/customize/container_parser.h"

#include <algorithm>
#include <array>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/image/uri.h"

namespace xenctl::customize {
namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }
bool isBlankLine(std::string_view s) { return std::all_of(s.begin(), s.end(), isSpace); }

// Debian's abseil has its own string_view, so splitting stays here.
std::vector<std::string_view> splitOn(std::string_view s, char sep, bool skip_empty) {
  std::vector<std::string_view> out;
  for (size_t start = 0;;) {
    size_t e = s.find(sep, start);
    std::string_view piece = s.substr(start, e == std::string_view::npos ? std::string_view::npos : e - start);
    if (!skip_empty || !isBlankLine(piece)) out.push_back(piece);
    if (e == std::string_view::npos) return out;
    start = e + 1;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Which kinds of location a slot takes.
enum class Allow {
  kAny,       // path, URI or volume: a tree
  kFile,      // path or URI: a file to read or write
  kLocal,     // path, file:// URI or volume: something made or filled here
};

// One word of an expression's body and where it starts in the file.
struct Token {
  size_t offset = 0;
  std::string_view word;
};

// How one keyword is written: positional words, options, inline text.
struct Shape {
  std::string_view keyword;
  std::vector<std::string_view> positionals;  // names, for messages
  size_t min_positionals = 0;
  std::vector<std::string_view> options;
  bool has_text = false;
  bool needs_archive = false;
};

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> kShapes = {
      {"create", {"DIR", "URI"}, 2, {}, false, false},
      {"image", {"TARGET", "SIZE", "LABEL"}, 3, {}, false, false},
      {"populate", {"image", "TARGET", "MOUNTPOINT", "URI"}, 4, {}, false, false},
      {"replace", {"PATH"}, 1, {"archive", "diff", "fork"}, true, true},
      {"copy", {"PATH"}, 1, {"archive", "source", "diff", "fork"}, false, true},
      {"patch", {"TARGET", "PATCH-URI", "STRIP", "OUT-URI"}, 2, {}, false, false},
      {"hostname", {"NAME"}, 1, {"archive"}, false, true},
      {"file", {"PATH", "MODE", "OWNER"}, 3, {"archive"}, true, true},
      {"ssh-key", {"USER"}, 1, {"archive"}, true, true},
      {"user", {"NAME", "HASH", "GROUPS"}, 3, {"archive"}, false, true},
      {"network", {"MAC", "ADDRESS"}, 2, {"archive", "gateway", "dns", "vif"}, false, true},
      {"user-data", {}, 0, {"archive"}, true, true},
      {"reset-identity", {}, 0, {"archive"}, false, true},
  };
  return kShapes;
}

const Shape* findShape(std::string_view keyword) {
  for (const Shape& s : shapes())
    if (s.keyword == keyword) return &s;
  return nullptr;
}

std::string knownKeywords() {
  std::vector<std::string> names;
  for (const Shape& s : shapes()) names.emplace_back(s.keyword);
  return absl::StrJoin(names, ", ");
}

// What one expression's body holds once its words are sorted out.
struct Parts {
  std::vector<Token> positionals;
  std::map<std::string_view, Token> options;  // option name -> its value
  std::optional<std::string> text;
  size_t text_offset = 0;
};

class Parser {
 public:
  Parser(std::string_view text, std::string_view file_name) : text_(text), file_(file_name) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text_.size(); ++i)
      if (text_[i] == '\n') line_starts_.push_back(i + 1);
  }

  Result<ContainerFile> run() {
    ContainerFile out;
    out.xl_config.reserve(text_.size());
    bool statement_start = true;  // where an xl statement (or an expression) may begin
    int depth = 0;                // xl list nesting
    size_t i = 0;
    while (i < text_.size()) {
      char c = text_[i];
      if (statement_start && depth == 0) {
        if (isSpace(c) && c != '\n') {
          out.xl_config += c;
          ++i;
          continue;
        }
        if (c == '[') {
          XENCTL_ASSIGN_OR_RETURN(size_t end, expression(i, out.statements));
          for (size_t k = i; k < end; ++k)
            if (text_[k] == '\n') out.xl_config += '\n';
          i = end;
          continue;
        }
        statement_start = false;
      }
      if (c == '\n') {
        out.xl_config += c;
        ++i;
        if (depth == 0) statement_start = true;
        continue;
      }
      if (c == '#') {  // a comment runs to the end of the line
        size_t e = text_.find('\n', i);
        if (e == std::string_view::npos) e = text_.size();
        out.xl_config.append(text_.substr(i, e - i));
        i = e;
        continue;
      }
      if (c == '"' || c == '\'') {  // an xl string: no brackets inside count
        size_t e = i + 1;
        while (e < text_.size() && text_[e] != c && text_[e] != '\n') ++e;
        if (e < text_.size() && text_[e] == c) ++e;
        out.xl_config.append(text_.substr(i, e - i));
        i = e;
        continue;
      }
      if (c == '[') ++depth;
      if (c == ']' && depth > 0) --depth;
      if (c == ';' && depth == 0) statement_start = true;
      out.xl_config += c;
      ++i;
    }
    return out;
  }

 private:
  Status error(size_t offset, std::string_view message) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    size_t column = offset - line_starts_[line - 1] + 1;
    return absl::InvalidArgumentError(absl::StrCat(av(file_), ":", line, ":", column, ": ", av(message)));
  }
  SourcePos pos(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    return {static_cast<int>(line), static_cast<int>(offset - line_starts_[line - 1] + 1)};
  }

  // The "] [end]" that closes an expression whose body starts at `from`:
  // the offset of its ']' and the offset just past "[end]".
  std::optional<std::pair<size_t, size_t>> closing(size_t from) const {
    for (size_t k = text_.find(']', from); k != std::string_view::npos; k = text_.find(']', k + 1)) {
      size_t j = k + 1;
      while (j < text_.size() && isSpace(text_[j])) ++j;
      if (text_.substr(j, 5) == "[end]") return std::make_pair(k, j + 5);
    }
    return std::nullopt;
  }

  // Parses the expression whose '[' is at `open`; appends it; returns the
  // offset just past its "[end]".
  Result<size_t> expression(size_t open, std::vector<Statement>& out) {
    size_t k = open + 1;
    while (k < text_.size() && isSpace(text_[k])) ++k;
    size_t kw_start = k;
    while (k < text_.size() && !isSpace(text_[k]) && text_[k] != ']' && text_[k] != '[') ++k;
    std::string_view keyword = text_.substr(kw_start, k - kw_start);
    if (keyword.empty())
      return error(open, absl::StrCat("'[' starts an expression but no keyword follows; expected one of: ",
                                      knownKeywords()));
    if (keyword == "end")
      return error(open, "'[end]' closes no expression: an expression is '[KEYWORD ...] [end]'");
    const Shape* shape = findShape(keyword);
    if (shape == nullptr)
      return error(kw_start, absl::StrCat("unknown expression '[", av(keyword), "]'; expected one of: ",
                                          knownKeywords()));
    auto close = closing(k);
    if (!close)
      return error(open, absl::StrCat("[", av(keyword), "] is not closed: expected '] [end]' after it"));
    XENCTL_ASSIGN_OR_RETURN(Parts parts, split(*shape, open, k, close->first));
    Statement st;
    st.keyword = std::string(keyword);
    st.pos = pos(open);
    XENCTL_ASSIGN_OR_RETURN(st.body, build(*shape, open, close->first, parts));
    out.push_back(std::move(st));
    return close->second;
  }

  // Sorts the words of the body [begin, end) into positionals, options and text.
  Result<Parts> split(const Shape& shape, size_t open, size_t begin, size_t end) const {
    std::vector<Token> tokens;
    for (size_t i = begin; i < end;) {
      while (i < end && isSpace(text_[i])) ++i;
      size_t s = i;
      while (i < end && !isSpace(text_[i])) ++i;
      if (i > s) tokens.push_back({s, text_.substr(s, i - s)});
    }
    auto isOption = [&](std::string_view w) {
      return std::find(shape.options.begin(), shape.options.end(), w) != shape.options.end();
    };
    Parts p;
    size_t t = 0;
    for (; t < tokens.size(); ++t) {
      const Token& tok = tokens[t];
      bool positionals_full = p.positionals.size() == shape.positionals.size();
      if (isOption(tok.word)) {
        if (t + 1 >= tokens.size())
          return error(tok.offset, absl::StrCat("[", av(shape.keyword), "] option '", av(tok.word),
                                                "' needs a value after it"));
        if (p.options.count(tok.word))
          return error(tok.offset, absl::StrCat("[", av(shape.keyword), "] option '", av(tok.word),
                                                "' is given twice"));
        p.options[tok.word] = tokens[++t];
        continue;
      }
      if (shape.has_text && positionals_full) break;
      if (positionals_full) {
        std::string usage;
        for (std::string_view n : shape.positionals) absl::StrAppend(&usage, usage.empty() ? "" : " ", av(n));
        for (std::string_view o : shape.options) absl::StrAppend(&usage, " [", av(o), " ...]");
        return error(tok.offset, absl::StrCat("[", av(shape.keyword), "] takes ", usage, "; unexpected '",
                                              av(tok.word), "'"));
      }
      p.positionals.push_back(tok);
    }
    if (p.positionals.size() < shape.min_positionals)
      return error(end, absl::StrCat("[", av(shape.keyword), "] needs ",
                                     av(shape.positionals[p.positionals.size()]), " before its ']'"));
    if (t < tokens.size()) {
      p.text_offset = tokens[t].offset;
      if (shape.needs_archive && !p.options.count("archive"))
        return error(p.text_offset,
                     absl::StrCat("[", av(shape.keyword), "] needs 'archive URI' before its text"));
      p.text = inlineText(begin, tokens[t].offset, end);
    }
    if (shape.needs_archive && !p.options.count("archive"))
      return error(open, absl::StrCat("[", av(shape.keyword), "] needs 'archive URI' (the tree it changes)"));
    return p;
  }

  // The inline text that starts with the word at `word` and ends at `end`
  // (the closing ']'): from its line's start when the word begins the line.
  std::string inlineText(size_t begin, size_t word, size_t end) const {
    size_t start = word;
    size_t nl = text_.rfind('\n', word == 0 ? 0 : word - 1);
    if (nl != std::string_view::npos && nl >= begin && isBlankLine(text_.substr(nl + 1, word - nl - 1)))
      start = nl + 1;
    std::vector<std::string_view> lines = splitOn(text_.substr(start, end - start), '\n', false);
    // The last piece is the closing ']''s own line: its trailing blanks are layout.
    std::string_view& last = lines.back();
    while (!last.empty() && isSpace(last.back())) last.remove_suffix(1);
    size_t first = 0, stop = lines.size();
    while (first < stop && isBlankLine(lines[first])) ++first;
    while (stop > first && isBlankLine(lines[stop - 1])) --stop;
    std::string out;
    for (size_t i = first; i < stop; ++i) {
      std::string_view l = lines[i];
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      absl::StrAppend(&out, av(l), "\n");
    }
    return out;
  }

  Result<Location> location(const Token& tok, Allow allow, std::string_view what) const {
    Location loc;
    loc.text = std::string(tok.word);
    if (tok.word == "root" && allow == Allow::kAny) {
      loc.kind = Location::Kind::kRoot;
      return loc;
    }
    if (core::isVolumeTarget(tok.word)) {
      if (allow == Allow::kFile)
        return error(tok.offset, absl::StrCat(av(what), " '", av(tok.word),
                                              "' must be a path or a URI (file, http, https, ftp), not a volume"));
      auto ref = core::parseVolumeTarget(tok.word);
      if (!ref.ok()) return error(tok.offset, absl::StrCat(av(what), ": ", ref.status().message()));
      loc.kind = Location::Kind::kVolume;
      loc.volume = *ref;
      return loc;
    }
    if (tok.word.find("://") != std::string_view::npos) {
      auto scheme = image::uriScheme(tok.word);
      if (!scheme.ok()) return error(tok.offset, absl::StrCat(av(what), ": ", scheme.status().message()));
      if (allow == Allow::kLocal && *scheme != "file")
        return error(tok.offset, absl::StrCat(av(what), " '", av(tok.word),
                                              "' must be on this host: a path, a file:// URI or vol:POOL/NAME"));
      loc.kind = Location::Kind::kUri;
      return loc;
    }
    if (tok.word.front() != '/')
      return error(tok.offset,
                   absl::StrCat(av(what), " '", av(tok.word),
                                "' is neither an absolute path, a URI (file, http, https, ftp) nor vol:POOL/NAME",
                                allow == Allow::kAny ? " (nor 'root', a new domain's root)" : ""));
    loc.kind = Location::Kind::kPath;
    return loc;
  }

  Result<std::string> absolutePath(const Token& tok, std::string_view what) const {
    if (tok.word.front() != '/')
      return error(tok.offset, absl::StrCat(av(what), " '", av(tok.word), "' must be an absolute path"));
    return std::string(tok.word);
  }

  Result<std::optional<Location>> option(const Parts& p, std::string_view name, Allow allow) const {
    auto it = p.options.find(name);
    if (it == p.options.end()) return std::optional<Location>();
    XENCTL_ASSIGN_OR_RETURN(Location l, location(it->second, allow, absl::StrCat("'", av(name), "'")));
    return std::optional<Location>(std::move(l));
  }

  Result<Location> archive(const Parts& p) const {
    XENCTL_ASSIGN_OR_RETURN(std::optional<Location> l, option(p, "archive", Allow::kAny));
    return *l;  // split() made sure it is there
  }

  Result<uint64_t> size(const Token& tok) const {
    std::string_view w = tok.word;
    size_t digits = 0;
    while (digits < w.size() && absl::ascii_isdigit(static_cast<unsigned char>(w[digits]))) ++digits;
    std::string_view unit = w.substr(digits);
    static constexpr std::array<std::pair<std::string_view, int>, 4> kUnits = {
        {{"K", 10}, {"M", 20}, {"G", 30}, {"T", 40}}};
    int shift = -1;
    for (auto [u, s] : kUnits)
      if (unit == u || unit == absl::StrCat(av(u), "B") || unit == absl::StrCat(av(u), "iB")) shift = s;
    uint64_t n = 0;
    if (digits == 0 || shift < 0 || !absl::SimpleAtoi(av(w.substr(0, digits)), &n) || n > (uint64_t{1} << (63 - shift)))
      return error(tok.offset, absl::StrCat("[image] SIZE '", av(w),
                                            "' is not a size: a number and K, M, G or T (50M, 50MB, 8GiB)"));
    uint64_t bytes = n << shift;
    if (Status s = core::validateVolumeSize(bytes); !s.ok())
      return error(tok.offset, absl::StrCat("[image] SIZE '", av(w), "': ", s.message()));
    return bytes;
  }

  Result<StatementBody> build(const Shape& shape, size_t open, size_t end, const Parts& p) const {
    std::string_view kw = shape.keyword;
    const auto& a = p.positionals;
    if (kw == "create") {
      CreateStmt s;
      XENCTL_ASSIGN_OR_RETURN(s.dir, absolutePath(a[0], "[create] DIR"));
      XENCTL_ASSIGN_OR_RETURN(s.uri, location(a[1], Allow::kFile, "[create] URI"));
      return s;
    }
    if (kw == "image") {
      ImageStmt s;
      XENCTL_ASSIGN_OR_RETURN(s.target, location(a[0], Allow::kLocal, "[image] TARGET"));
      XENCTL_ASSIGN_OR_RETURN(s.size_bytes, size(a[1]));
      if (a[2].word.size() > 16)
        return error(a[2].offset, absl::StrCat("[image] LABEL '", av(a[2].word),
                                               "' is longer than the 16 bytes an ext4 label holds"));
      s.label = std::string(a[2].word);
      return s;
    }
    if (kw == "populate") {
      if (a[0].word != "image")
        return error(a[0].offset, absl::StrCat("[populate] is written '[populate image TARGET MOUNTPOINT URI]'; "
                                               "expected 'image', found '",
                                               av(a[0].word), "'"));
      PopulateStmt s;
      XENCTL_ASSIGN_OR_RETURN(s.target, location(a[1], Allow::kLocal, "[populate] TARGET"));
      XENCTL_ASSIGN_OR_RETURN(s.mountpoint, absolutePath(a[2], "[populate] MOUNTPOINT"));
      XENCTL_ASSIGN_OR_RETURN(s.archive, location(a[3], Allow::kFile, "[populate] URI"));
      return s;
    }
    if (kw == "replace" || kw == "copy") {
      TreeOutputs outs;
      XENCTL_ASSIGN_OR_RETURN(outs.diff, option(p, "diff", Allow::kFile));
      XENCTL_ASSIGN_OR_RETURN(outs.fork, option(p, "fork", Allow::kFile));
      XENCTL_ASSIGN_OR_RETURN(std::string path, absolutePath(a[0], absl::StrCat("[", av(kw), "] PATH")));
      XENCTL_ASSIGN_OR_RETURN(Location arch, archive(p));
      if (kw == "replace") return ReplaceStmt{path, arch, p.text.value_or(""), outs};
      XENCTL_ASSIGN_OR_RETURN(std::optional<Location> source, option(p, "source", Allow::kFile));
      if (!source) return error(end, "[copy] needs 'source URI' (the file copied over PATH) before its ']'");
      return CopyStmt{path, arch, *source, outs};
    }
    if (kw == "patch") {
      PatchStmt s;
      XENCTL_ASSIGN_OR_RETURN(s.target, location(a[0], Allow::kAny, "[patch] TARGET"));
      XENCTL_ASSIGN_OR_RETURN(s.patch, location(a[1], Allow::kFile, "[patch] PATCH-URI"));
      size_t next = 2;
      if (a.size() > 2 && std::all_of(a[2].word.begin(), a[2].word.end(), absl::ascii_isdigit)) {
        if (!absl::SimpleAtoi(av(a[2].word), &s.strip) || s.strip > 64)
          return error(a[2].offset, absl::StrCat("[patch] STRIP '", av(a[2].word), "' is not a level from 0 to 64"));
        next = 3;
      }
      if (next < a.size()) {
        if (next + 1 < a.size())
          return error(a[next + 1].offset, absl::StrCat("[patch] takes TARGET PATCH-URI [STRIP] [OUT-URI]; unexpected '",
                                                        av(a[next + 1].word), "'"));
        XENCTL_ASSIGN_OR_RETURN(Location out, location(a[next], Allow::kFile, "[patch] OUT-URI"));
        s.out = std::move(out);
      }
      return s;
    }
    XENCTL_ASSIGN_OR_RETURN(Location arch, archive(p));
    if (kw == "hostname") {
      if (Status s = validHostname(a[0]); !s.ok()) return s;
      return HostnameStmt{arch, std::string(a[0].word)};
    }
    if (kw == "file") {
      FileStmt s{arch, {}};
      XENCTL_ASSIGN_OR_RETURN(s.file.path, absolutePath(a[0], "[file] PATH"));
      std::string_view m = a[1].word;
      if (m.size() > 4 || !std::all_of(m.begin(), m.end(), [](char c) { return c >= '0' && c <= '7'; }))
        return error(a[1].offset, absl::StrCat("[file] MODE '", av(m), "' is not an octal mode (0644, 600, 4755)"));
      s.file.mode = static_cast<uint32_t>(std::stoul(std::string(m), nullptr, 8));
      s.file.owner = a[2].word == "-" ? "" : std::string(a[2].word);
      s.file.content = p.text.value_or("");
      return s;
    }
    if (kw == "ssh-key") {
      SshKeyStmt s{arch, {}};
      XENCTL_ASSIGN_OR_RETURN(s.keys.user, userName(a[0], "[ssh-key] USER"));
      if (p.text) {
        size_t line_offset = p.text_offset;
        for (std::string_view line : splitOn(*p.text, '\n', true)) {
          std::string key(trim(line));
          if (splitOn(key, ' ', true).size() < 2)
            return error(line_offset, absl::StrCat("[ssh-key] '", key,
                                                   "' is not an OpenSSH public key line (TYPE BASE64 [COMMENT])"));
          s.keys.keys.push_back(std::move(key));
        }
      }
      if (s.keys.keys.empty()) return error(end, "[ssh-key] needs at least one key line before its ']'");
      return s;
    }
    if (kw == "user") {
      UserStmt s{arch, {}};
      XENCTL_ASSIGN_OR_RETURN(s.user.name, userName(a[0], "[user] NAME"));
      s.user.password_hash = a[1].word == "!" ? "" : std::string(a[1].word);
      if (s.user.password_hash.find(':') != std::string::npos)
        return error(a[1].offset, "[user] HASH must not hold ':' (it is a field of /etc/shadow)");
      if (a[2].word != "-")
        for (std::string_view g : splitOn(a[2].word, ',', true)) {
          XENCTL_ASSIGN_OR_RETURN(std::string group, userName({a[2].offset, g}, "[user] GROUPS entry"));
          s.user.groups.push_back(std::move(group));
        }
      return s;
    }
    if (kw == "network") {
      NetworkStmt s{arch, {}};
      std::string_view mac = a[0].word;
      bool mac_ok = mac.size() == 17;
      for (size_t i = 0; mac_ok && i < 17; ++i)
        mac_ok = (i % 3 == 2) ? mac[i] == ':' : absl::ascii_isxdigit(static_cast<unsigned char>(mac[i]));
      if (!mac_ok) return error(a[0].offset, absl::StrCat("[network] MAC '", av(mac), "' is not xx:xx:xx:xx:xx:xx"));
      s.nic.mac = std::string(mac);
      for (char& c : s.nic.mac) c = absl::ascii_tolower(static_cast<unsigned char>(c));
      std::string_view addr = a[1].word;
      size_t slash = addr.find('/');
      int prefix = 0;
      if (slash == std::string_view::npos || slash == 0 || !absl::SimpleAtoi(av(addr.substr(slash + 1)), &prefix) ||
          prefix < 0 || prefix > 128)
        return error(a[1].offset,
                     absl::StrCat("[network] ADDRESS '", av(addr), "' needs a prefix length (10.0.0.5/24)"));
      s.nic.address = std::string(addr);
      if (auto it = p.options.find("gateway"); it != p.options.end()) s.nic.gateway = std::string(it->second.word);
      if (auto it = p.options.find("vif"); it != p.options.end())
        if (!absl::SimpleAtoi(av(it->second.word), &s.nic.vif_index) || s.nic.vif_index < 0 || s.nic.vif_index > 255)
          return error(it->second.offset, absl::StrCat("[network] vif '", av(it->second.word),
                                                       "' is not a vif number (0 for the first vif of the domain)"));
      if (auto it = p.options.find("dns"); it != p.options.end())
        for (std::string_view d : splitOn(it->second.word, ',', true)) s.nic.dns.emplace_back(d);
      return s;
    }
    if (kw == "user-data") {
      if (!p.text) return error(end, "[user-data] needs its cloud-init user-data as text before its ']'");
      return UserDataStmt{arch, *p.text};
    }
    return ResetIdentityStmt{arch};  // the last shape
  }

  Status validHostname(const Token& tok) const {
    std::string_view h = tok.word;
    bool ok = !h.empty() && h.size() <= 253;
    for (std::string_view label : splitOn(h, '.', false)) {
      ok = ok && !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
           std::all_of(label.begin(), label.end(),
                       [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-'; });
    }
    if (!ok)
      return error(tok.offset, absl::StrCat("[hostname] '", av(h),
                                            "' is not a host name: labels of a-z 0-9 and '-', 1-63 each, split by '.'"));
    return absl::OkStatus();
  }

  Result<std::string> userName(const Token& tok, std::string_view what) const {
    std::string_view n = tok.word;
    bool ok = !n.empty() && n.size() <= 32 && (absl::ascii_islower(static_cast<unsigned char>(n[0])) || n[0] == '_') &&
              std::all_of(n.begin(), n.end(), [](char c) {
                return absl::ascii_islower(static_cast<unsigned char>(c)) ||
                       absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-';
              });
    if (!ok)
      return error(tok.offset,
                   absl::StrCat(av(what), " '", av(n), "' is not a user or group name ([a-z_][a-z0-9_-]*, at most 32)"));
    return std::string(n);
  }

  std::string_view text_;
  std::string_view file_;
  std::vector<size_t> line_starts_;
};

}  // namespace

Result<ContainerFile> parseContainer(std::string_view text, std::string_view file_name) {
  return Parser(text, file_name).run();
}

std::optional<Location> statementTarget(const Statement& s) {
  return std::visit(
      [](const auto& b) -> std::optional<Location> {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, CreateStmt>) return std::nullopt;
        else if constexpr (std::is_same_v<T, ImageStmt> || std::is_same_v<T, PopulateStmt> ||
                           std::is_same_v<T, PatchStmt>)
          return b.target;
        else
          return b.archive;
      },
      s.body);
}

namespace {

Status statementError(std::string_view file_name, const Statement& s, std::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(av(file_name), ":", s.pos.line, ":", s.pos.column, ": [", s.keyword, "] ", av(message)));
}

}  // namespace

Status checkForNewRoot(const ContainerFile& file, std::string_view file_name, const core::VolumeRef& root) {
  for (const Statement& s : file.statements) {
    const StatementBody& b = s.body;
    if (std::holds_alternative<CreateStmt>(b) || std::holds_alternative<ImageStmt>(b) ||
        std::holds_alternative<PopulateStmt>(b))
      return statementError(file_name, s,
                            "makes an archive or a volume besides the new domain's root, which a CreateDomain does "
                            "not undo; run it with `vm-container` first");
    std::optional<Location> target = statementTarget(s);
    const bool is_root = target->kind == Location::Kind::kRoot ||
                         (target->kind == Location::Kind::kVolume && target->volume == root);
    if (!is_root)
      return statementError(file_name, s,
                            absl::StrCat("changes '", target->text, "'; a CreateDomain's container text changes "
                                         "only the new root: write 'root' (or ", root.target(), ") there"));
    const TreeOutputs* outs = nullptr;
    if (auto* r = std::get_if<ReplaceStmt>(&b)) outs = &r->outputs;
    if (auto* c = std::get_if<CopyStmt>(&b)) outs = &c->outputs;
    auto* p = std::get_if<PatchStmt>(&b);
    if ((outs && (outs->diff || outs->fork)) || (p && p->out))
      return statementError(file_name, s,
                            "stores a diff or a fork, which a CreateDomain that fails later could not take back; "
                            "drop the option here, or run the file with `vm-container`");
  }
  return absl::OkStatus();
}

Status checkNoNewRoot(const ContainerFile& file, std::string_view file_name) {
  for (const Statement& s : file.statements)
    if (std::optional<Location> target = statementTarget(s); target && target->kind == Location::Kind::kRoot)
      return statementError(file_name, s,
                            "names 'root', the root of a domain being created, which only a CreateDomain's "
                            "container text has (`vm-create --image IMAGE --container FILE`); give an image "
                            "file's path or vol:POOL/NAME here");
  return absl::OkStatus();
}

}  // namespace xenctl::customize
