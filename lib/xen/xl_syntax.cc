// Where libxlutil's syntax errors are. libxlutil (xl's parser) names the
// line of a syntax error and the text near it, never the column, and for an
// error at the end of a line it names the line before (its lexer counts the
// newline first). This file follows libxlutil's lexer (libxlu_cfg_l.l), its
// bison grammar (libxlu_cfg_y.y, with its `error NEWLINE` recovery) and its
// error reporting (libxlu_cfg.c) closely enough to say, for each message
// libxlutil prints, which token it is about: ReadXlConfig's tests check that
// both agree on tens of thousands of mutated configs.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lib/xen/xl_reader.h"

namespace xenctl::xen::xlread {
namespace {

enum class Tok { kIdent, kNumber, kString, kComma, kOpen, kClose, kAdd, kEq, kSemi, kNewline, kEnd };

struct Token {
  Tok kind;
  size_t begin, end;  // its text (yytext), [begin, end)
  int loc_line;       // its yylloc.first_line, as libxlutil's lexer sets it
};

bool isIdentChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_'; }
bool isNumberChar(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == 'x'; }
bool isBlank(char c) { return c == ' ' || c == '\t'; }

class Locator {
 public:
  explicit Locator(std::string_view text) : t_(text) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < t_.size(); ++i)
      if (t_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<SyntaxError> run();

 private:
  Token lex();
  // A string token's escapes, as xlu__cfgl_dequote reads them: false for
  // the ones it refuses.
  bool escapesOk(size_t begin, size_t end) const;
  // xlu__cfg_yyerror: a message unless an earlier lexical error was on this
  // line or a later one.
  void report(int loc_line, size_t begin, size_t end, size_t at, bool lexical);
  void lexicalError(size_t begin, size_t end, size_t at) {
    report(lineno_, begin, end, at, true);
    lexerr_line_ = lineno_;
  }

  std::string_view t_;
  std::vector<size_t> line_starts_;
  size_t pos_ = 0;
  int lineno_ = 1;         // flex's yylineno
  int lexerr_line_ = -1;   // ctx->lexerrlineno
  bool err_ = false;       // ctx->err: after it, strings are not dequoted nor settings stored
  int last_loc_line_ = 0;  // yylloc, which the end of the input leaves as it was
  std::vector<SyntaxError> out_;
};

void Locator::report(int loc_line, size_t begin, size_t end, size_t at, bool lexical) {
  int line = loc_line;
  if (line <= lexerr_line_) return;
  size_t len = end - begin;
  bool newline = false;
  if (len > 0 && t_[begin + len - 1] == '\n') {
    --len;
    --line;
    newline = len == 0;
  }
  while (len > 0 && isBlank(t_[begin + len - 1])) --len;
  err_ = true;
  SyntaxError e;
  e.reported_line = line;
  e.near = newline ? "<newline>" : std::string(t_.substr(begin, len));
  size_t l = 0;
  while (l + 1 < line_starts_.size() && line_starts_[l + 1] <= at) ++l;
  e.line = static_cast<int>(l) + 1;
  e.column = static_cast<int>(at - line_starts_[l]) + 1;
  e.at_end = at >= t_.size();
  e.lexical = lexical;
  out_.push_back(std::move(e));
}

bool Locator::escapesOk(size_t begin, size_t end) const {
  if (err_) return true;  // dequote does nothing once an error is set
  const size_t last = end - 1;  // the closing quote
  for (size_t p = begin + 1; p < last;) {
    if (t_[p++] != '\\') continue;
    const char nc = t_[p++];
    if (nc == '"' || nc == '\'' || nc == '\\' || nc == 'a' || nc == 'b' || nc == 'f' || nc == 'n' || nc == 'r' ||
        nc == 't' || nc == 'v')
      continue;
    // \x: libxlutil 4.17 skips a character more and then wants more than
    // two hex digits out of two: every \x is refused.
    if (nc == 'x') return false;
    if (nc < '0' || nc > '7') return false;
    // An octal escape: strtoul(base 10) over the next three characters must
    // take more than one of them.
    std::string num(t_.substr(p, std::min<size_t>(3, last - p)));
    size_t q = 0;
    while (q < num.size() && (num[q] == ' ' || (num[q] >= '\t' && num[q] <= '\r'))) ++q;
    if (q < num.size() && (num[q] == '+' || num[q] == '-')) ++q;
    const size_t digits_from = q;
    while (q < num.size() && num[q] >= '0' && num[q] <= '9') ++q;
    const size_t taken = q > digits_from ? q : 0;
    if (taken <= 1) return false;
    p += taken;
  }
  return true;
}

Token Locator::lex() {
  const size_t n = t_.size();
  for (;;) {
    if (pos_ >= n) return {Tok::kEnd, n, n, last_loc_line_};
    const size_t i = pos_;
    const char c = t_[i];
    auto got = [&](Tok k, size_t end) {
      pos_ = end;
      last_loc_line_ = lineno_;
      return Token{k, i, end, lineno_};
    };
    if (c >= 'a' && c <= 'z') {
      size_t j = i + 1;
      while (j < n && isIdentChar(t_[j])) ++j;
      return got(Tok::kIdent, j);
    }
    if (c >= '0' && c <= '9') {
      size_t j = i + 1;
      while (j < n && isNumberChar(t_[j])) ++j;
      return got(Tok::kNumber, j);
    }
    if (isBlank(c)) {
      ++pos_;
      continue;
    }
    if (c == ',') return got(Tok::kComma, i + 1);
    if (c == '[') return got(Tok::kOpen, i + 1);
    if (c == ']') return got(Tok::kClose, i + 1);
    if (c == '+' && i + 1 < n && t_[i + 1] == '=') return got(Tok::kAdd, i + 2);
    if (c == '=') return got(Tok::kEq, i + 1);
    if (c == ';') return got(Tok::kSemi, i + 1);
    size_t nl = std::string_view::npos;
    if (c == '\n') nl = i;
    if (c == '#') nl = t_.find('\n', i);
    if (nl != std::string_view::npos) {
      pos_ = nl + 1;
      ++lineno_;
      last_loc_line_ = lineno_ - 1;
      return {Tok::kNewline, i, nl + 1, lineno_ - 1};
    }
    if (c == '\'' || c == '"') {
      size_t j = i + 1;
      bool closed = false;
      while (j < n && t_[j] != '\n') {
        if (t_[j] == c) {
          closed = true;
          break;
        }
        if (t_[j] == '\\') {
          if (j + 1 >= n || t_[j + 1] == '\n') break;
          j += 2;
        } else {
          ++j;
        }
      }
      if (closed) {
        Token tok = got(Tok::kString, j + 1);
        if (!escapesOk(i, j + 1)) lexicalError(i, j + 1, i);
        return tok;
      }
    }
    // Any other character: libxlutil's lexer gathers it with the blank-free
    // text after it (or the one blank or newline after it) and calls that a
    // lexical error, unless the input ends right after it.
    size_t j = i + 1;
    if (j >= n) return {Tok::kEnd, i, n, last_loc_line_};  // which keeps it as its text
    if (t_[j] == '\n') {
      pos_ = j + 1;
      ++lineno_;
      lexicalError(i, j + 1, i);
      last_loc_line_ = lineno_;
      return {Tok::kNewline, i, j + 1, lineno_};
    }
    if (isBlank(t_[j])) {
      ++j;
    } else {
      while (j < n && t_[j] != '\n' && !isBlank(t_[j])) ++j;
    }
    pos_ = j;
    lexicalError(i, j, i);
  }
}

std::vector<SyntaxError> Locator::run() {
  // The parser's states: a statement's start, after its key, after = or
  // +=, after its value; inside a list: after [, after an item, after a
  // comma; and `error`, skipping to the end of the line after an error.
  enum class S { kStart, kKey, kValue, kDone, kListStart, kListItem, kListComma, kError };
  S s = S::kStart;
  int depth = 0;              // lists open
  int errstatus = 0;          // bison's yyerrstatus
  std::string key;            // the setting being read, and its value's kind (list or not)
  bool add = false, value_is_list = false;
  size_t value_last = 0, value_last_end = 0;  // the value's last token
  std::vector<std::pair<std::string, bool>> stored;  // settings stored so far: name, is a list
  auto store = [&] {
    if (err_) return;
    if (add) {
      for (auto it = stored.rbegin(); it != stored.rend(); ++it)
        if (it->first == key) {
          if (it->second != value_is_list) lexicalError(value_last, value_last_end, value_last);
          break;
        }
      if (err_) return;
    }
    stored.emplace_back(key, value_is_list);
  };
  auto valueDone = [&](const Token& tok) {
    value_last = tok.begin;
    value_last_end = tok.end;
    if (depth == 0) {
      store();
      s = S::kDone;
    } else {
      s = S::kListItem;
    }
  };
  Token tok = lex();
  for (;;) {
    bool ok = true;
    bool accept = false;
    bool abort_after = false;  // the error is found after the file was reduced: no recovery
    switch (s) {
      case S::kStart:
        if (tok.kind == Tok::kIdent) {
          key = std::string(t_.substr(tok.begin, tok.end - tok.begin));
          s = S::kKey;
        } else if (tok.kind == Tok::kEnd) {
          accept = true;
        } else if (tok.kind != Tok::kNewline && tok.kind != Tok::kSemi) {
          ok = false;
        }
        break;
      case S::kKey:
        if (tok.kind == Tok::kEq || tok.kind == Tok::kAdd) {
          add = tok.kind == Tok::kAdd;
          s = S::kValue;
        } else {
          ok = false;
        }
        break;
      case S::kValue:
      case S::kListStart:
      case S::kListComma:
        if (tok.kind == Tok::kString || tok.kind == Tok::kNumber) {
          if (s == S::kValue) value_is_list = false;
          valueDone(tok);
        } else if (tok.kind == Tok::kOpen) {
          if (s == S::kValue) value_is_list = true;
          ++depth;
          s = S::kListStart;
        } else if (s != S::kValue && tok.kind == Tok::kNewline) {
        } else if (s != S::kValue && tok.kind == Tok::kClose) {
          --depth;
          valueDone(tok);
        } else {
          ok = false;
        }
        break;
      case S::kListItem:
        if (tok.kind == Tok::kComma) {
          s = S::kListComma;
        } else if (tok.kind == Tok::kClose) {
          --depth;
          valueDone(tok);
        } else if (tok.kind != Tok::kNewline) {
          ok = false;
        }
        break;
      case S::kDone:
        if (tok.kind == Tok::kNewline || tok.kind == Tok::kSemi) {
          s = S::kStart;
        } else if (tok.kind == Tok::kEnd) {
          accept = true;
        } else {
          ok = false;
          abort_after = true;
        }
        break;
      case S::kError:
        if (tok.kind == Tok::kNewline) {
          s = S::kStart;
        } else {
          ok = false;
        }
        break;
    }
    if (accept) break;
    if (ok) {
      if (errstatus) --errstatus;
      tok = lex();
      continue;
    }
    if (errstatus == 0) report(tok.loc_line, tok.begin, tok.end, tok.begin, false);
    if (abort_after) break;
    if (errstatus == 3) {
      if (tok.kind == Tok::kEnd) break;
      tok = lex();  // discarded
    }
    errstatus = 3;
    depth = 0;
    s = S::kError;
  }
  return std::move(out_);
}

}  // namespace

std::vector<SyntaxError> locateSyntaxErrors(std::string_view text) { return Locator(text).run(); }

}  // namespace xenctl::xen::xlread
