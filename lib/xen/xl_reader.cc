#include "lib/xen/xl_reader.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "lib/xen/xl_config.h"

namespace xenctl::xen::xlread {

ReportStream::ReportStream() : f_(open_memstream(&buf_, &size_)) {}

ReportStream::~ReportStream() {
  if (f_) std::fclose(f_);
  std::free(buf_);
}

std::vector<std::string> ReportStream::takeLines() {
  std::fflush(f_);
  std::string text(buf_ + taken_, size_ - taken_);
  taken_ = size_;
  return absl::StrSplit(text, '\n', absl::SkipWhitespace());
}

std::string ReportStream::take() {
  std::vector<std::string> lines;
  for (const std::string& line : takeLines()) {
    std::string l = absl::StrReplaceAll(line, {{"warning:  ", ""}, {"warning: ", ""}});
    absl::StripAsciiWhitespace(&l);
    if (!l.empty()) lines.push_back(std::move(l));
  }
  return absl::StrJoin(lines, "; ");
}

namespace {

// What to do about a syntax error, from libxlutil's words for it.
const char* syntaxHint(const SyntaxError& e, absl::string_view said) {
  if (e.lexical && said == "lexical error") {
    if (!e.near.empty() && (e.near[0] == '\'' || e.near[0] == '"'))
      return "a string ends on its line with the quote it starts with";
    return "outside quotes xl reads lower-case keys, numbers, = += , ; [ ] and # comments; quote other text";
  }
  if (absl::StartsWith(said, "can't add")) return "+= adds a string to a string, a list to a list";
  if (absl::EndsWith(said, "expecting += or '='")) return "a setting is KEY = VALUE";
  if (absl::EndsWith(said, "expecting STRING or NUMBER or '['"))
    return "a value is a number, a 'string' or a [ list ]";
  if (absl::EndsWith(said, "expecting ']'")) return "list items are separated by commas and the list ends with ]";
  if (absl::EndsWith(said, "expecting $end")) return "one setting a line, or settings separated by ;";
  if (absl::StrContains(said, "expecting $end or IDENT")) return "a setting starts with its key";
  return "";
}

// libxlutil's report of a syntax error, with the column it leaves out (and
// the right line where it names the one before, for an error at a newline)
// and what to do; each of its lines is matched with the errors
// locateSyntaxErrors found. When they do not agree, its lines are kept as
// they are.
std::string syntaxReport(std::string_view text, const std::string& file, const std::vector<std::string>& lines) {
  const std::vector<SyntaxError> found = locateSyntaxErrors(text);
  std::vector<std::string> out, located;
  bool python = false;
  size_t next = 0;
  bool agree = true;
  for (const std::string& line : lines) {
    if (absl::StrContains(line, "contains Python code")) python = true;
    if (absl::StartsWith(line, "warning:")) continue;
    out.push_back(line);
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, absl::StrCat(file, ":"))) {
      agree = false;
      continue;
    }
    size_t digits = 0;
    while (digits < rest.size() && absl::ascii_isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
    const int reported = digits ? std::atoi(std::string(rest.substr(0, digits)).c_str()) : -1;
    rest.remove_prefix(digits);
    if (!absl::ConsumePrefix(&rest, ": config parsing error near ") || next >= found.size() ||
        found[next].reported_line != reported) {
      agree = false;
      continue;
    }
    const SyntaxError& e = found[next++];
    const std::string quoted = e.near == "<newline>" ? "<newline>: " : absl::StrCat("`", e.near, "': ");
    if (!absl::ConsumePrefix(&rest, quoted) && !(e.at_end && absl::ConsumePrefix(&rest, ": "))) {
      agree = false;
      continue;
    }
    const std::string where =
        e.at_end ? std::string("at the end of the file") : absl::StrCat("near ", quoted.substr(0, quoted.size() - 2));
    std::string msg = absl::StrCat(file, ":", e.line, ":", e.column, ": config parsing error ", where, ": ", rest);
    if (const char* hint = syntaxHint(e, rest); *hint) absl::StrAppend(&msg, " (", hint, ")");
    located.push_back(std::move(msg));
  }
  if (agree && next == found.size() && !located.empty()) out = std::move(located);
  if (python)
    out.push_back("the file looks like Python, which xl no longer reads (see "
                  "https://wiki.xen.org/wiki/PythonInXlConfig)");
  return absl::StrJoin(out, "; ");
}

}  // namespace

// libxlutil has no call that lists the settings it read, so the names are
// found here, in text that libxlutil has already accepted. Its lexer
// (libxlu_cfg_l.l) makes this small: names are [a-z][._0-9a-z]*, values are
// quoted strings ('...' or "...", backslash escapes, no newlines), numbers
// [0-9][0-9a-fx]* or lists of those, comments run from # to the end of the
// line, and its grammar allows a name nowhere but before = or +=. So every
// name token outside strings and comments is a setting. Parsed::parse
// cross-checks each with libxlutil, so a disagreement shows as an error.
std::vector<Setting> scanSettings(std::string_view text) {
  std::vector<Setting> out;
  int line = 1;
  auto isName = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_'; };
  auto isNumber = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == 'x'; };
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (c == '\'' || c == '"') {
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\') ++i;
        if (i < text.size() && text[i] == '\n') ++line;
      }
      ++i;
    } else if (c >= 'a' && c <= 'z') {
      size_t start = i;
      while (i < text.size() && isName(text[i])) ++i;
      out.push_back({std::string(text.substr(start, i - start)), line});
    } else if (c >= '0' && c <= '9') {
      while (i < text.size() && isNumber(text[i])) ++i;
    } else {
      ++i;
    }
  }
  return out;
}

Result<std::unique_ptr<Parsed>> Parsed::parse(std::string_view text, std::string_view file_name) {
  const std::string file = file_name.empty() ? std::string("(unnamed)") : std::string(file_name);
  if (text.size() > kMaxXlConfigBytes)
    return absl::InvalidArgumentError(absl::StrCat("xl config ", file, " is ", text.size(),
                                                   " bytes; xenctld reads at most ", kMaxXlConfigBytes,
                                                   " (is it an xl config file?)"));
  // libxlutil's lexer asserts (aborting the daemon) on a NUL inside a quoted
  // string, and no xl.cfg(5) value may hold one: a NUL anywhere is refused.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos)
    return absl::InvalidArgumentError(absl::StrCat(
        "xl config ", file, ":", 1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(nul), '\n'),
        ": holds a NUL byte (at offset ", nul, "); an xl config is text (is it an xl config file?)"));
  std::unique_ptr<Parsed> p(new Parsed());
  p->file_ = file;
  p->report_ = std::make_unique<ReportStream>();
  if (!p->report_->get())
    return absl::ResourceExhaustedError("reading an xl config: no memory for libxlutil's report");
  p->cfg_ = xlu_cfg_init(p->report_->get(), file.c_str());
  if (!p->cfg_) return absl::ResourceExhaustedError("reading an xl config: libxlutil is out of memory");
  if (int e = xlu_cfg_readdata(p->cfg_, text.data(), static_cast<int>(text.size())); e != 0) {
    std::string said = syntaxReport(text, file, p->report_->takeLines());
    if (said.empty()) said = absl::StrCat(file, ": ", std::strerror(e));
    return absl::InvalidArgumentError(absl::StrCat("xl config ", said, "; see xl.cfg(5) for the syntax"));
  }
  p->settings_ = scanSettings(text);
  for (const Setting& s : p->settings_) {
    if (xlu_cfg_get_list(p->cfg_, s.name.c_str(), nullptr, nullptr, 1) == ESRCH)
      return absl::InternalError(absl::StrCat("xl config ", file, ":", s.line, ": found '", s.name,
                                              "' where libxlutil found no setting; this is a bug in xenctld's "
                                              "reader, please report it with the file"));
    p->lines_[s.name] = s.line;  // the last one wins, as in libxlutil
  }
  return p;
}

Parsed::~Parsed() {
  if (cfg_) xlu_cfg_destroy(cfg_);
}

int Parsed::lineOf(const std::string& key) const {
  auto it = lines_.find(key);
  return it == lines_.end() ? 0 : it->second;
}

Status Parsed::bad(const std::string& key, std::string_view why) const {
  const int line = key.empty() ? 0 : lineOf(key);
  return absl::InvalidArgumentError(line ? absl::StrCat("xl config ", file_, ":", line, ": ", av(why))
                                         : absl::StrCat("xl config ", file_, ": ", av(why)));
}

Status Parsed::badFromReport(const std::string& key, std::string_view accepts) {
  std::string said = takeReport();
  if (said.empty()) return bad(key, accepts);
  if (said.find(absl::StrCat("`", key, "'")) == std::string::npos) said = absl::StrCat(key, ": ", said);
  return bad(key, absl::StrCat(said, "; ", av(accepts)));
}

std::string Parsed::takeReport() {
  std::string said = report_->take();
  const std::string file = absl::StrCat(file_, ":");
  if (!absl::StartsWith(said, file)) return said;
  size_t i = file.size();
  while (i < said.size() && absl::ascii_isdigit(static_cast<unsigned char>(said[i]))) ++i;
  if (i > file.size() && i < said.size() && said[i] == ':') ++i;
  while (i < said.size() && said[i] == ' ') ++i;
  return said.substr(i);
}

Result<std::optional<std::string>> Parsed::string(const char* key, std::string_view accepts) {
  const char* v = nullptr;
  int e = xlu_cfg_get_string(cfg_, key, &v, 0);
  if (e == ESRCH) return std::nullopt;
  if (e)
    return badFromReport(key, accepts.empty() ? absl::StrCat(key, " takes one value ('...' or a number), not a list")
                                              : absl::StrCat(key, " takes ", av(accepts), ", not a list"));
  return std::string(v);
}

std::string numberRange(long min, long max) {
  if (min == LONG_MIN && max == LONG_MAX) return "a whole number";
  if (max == LONG_MAX) return absl::StrCat("a whole number from ", min, " up");
  return absl::StrCat("a whole number from ", min, " to ", max);
}

Result<std::optional<long>> Parsed::number(const char* key, long min, long max) {
  long v = 0;
  int e = xlu_cfg_get_bounded_long(cfg_, key, min, max, &v, 0);
  if (e == ESRCH) return std::nullopt;
  if (e) return badFromReport(key, absl::StrCat(key, " takes ", numberRange(min, max), valueAsGiven(key)));
  return v;
}

std::string Parsed::valueAsGiven(const char* key) const {
  const char* v = nullptr;
  if (xlu_cfg_get_string(cfg_, key, &v, 1) != 0) return ", not a list";
  return absl::StrCat(", not '", v, "'");
}

Result<std::optional<std::vector<std::string>>> Parsed::list(const char* key, bool string_too) {
  XLU_ConfigList* l = nullptr;
  int n = 0;
  int e = xlu_cfg_get_list(cfg_, key, &l, &n, string_too ? 1 : 0);
  if (e == ESRCH) return std::nullopt;
  if (e == EINVAL && string_too) {
    XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> s, string(key));
    return std::vector<std::string>(absl::StrSplit(*s, absl::ByAnyChar(" \t\n"), absl::SkipEmpty()));
  }
  if (e) return badFromReport(key, absl::StrCat(key, " takes a list: ", key, " = [ '...', ... ]"));
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const char* item = xlu_cfg_get_listitem(l, i);
    if (!item) return bad(key, absl::StrCat(key, " entry ", i, " is a list; it must be a string"));
    out.emplace_back(item);
  }
  return out;
}

bool Parsed::isList(const char* key) const { return xlu_cfg_get_list(cfg_, key, nullptr, nullptr, 1) == 0; }

}  // namespace xenctl::xen::xlread
