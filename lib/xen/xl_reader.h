// Internal to lib/xen: an xl config text parsed by libxlutil, with the
// settings it holds (name and line) and typed getters whose refusals name
// the file, the line and the key. Shared by the DomainSpec reader
// (xl_config.cc) and the libxl_domain_config builder (xl_domain_config.cc),
// so both read a file the same way.
#pragma once

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/xen/libxl_c.h"

namespace xenctl::xen::xlread {

// libxlutil writes what it has to say to a stdio stream; an in-memory one
// turns that into text for the Status. It must outlive the XLU_Config.
class ReportStream {
 public:
  ReportStream();
  ~ReportStream();
  ReportStream(const ReportStream&) = delete;
  ReportStream& operator=(const ReportStream&) = delete;
  FILE* get() const { return f_; }
  // What libxlutil wrote since the last take(), as one line: its lines
  // joined with "; ", without the "warning:" labels (here every warning
  // refuses the config).
  std::string take();
  // The same, one entry a line, labels kept.
  std::vector<std::string> takeLines();

 private:
  char* buf_ = nullptr;
  size_t size_ = 0;
  size_t taken_ = 0;
  FILE* f_;
};

// One setting as it appears in the text: its name and line.
struct Setting {
  std::string name;
  int line;
};

// "a whole number from MIN to MAX" (from MIN up; unbounded).
std::string numberRange(long min, long max);

// Every setting of `text`, which libxlutil has accepted, in order.
std::vector<Setting> scanSettings(std::string_view text);

// A syntax error libxlutil reports, located: libxlutil names the line
// (`reported_line`; the line before, for an error at a newline) and the text
// near it; `line` and `column` (1-based, in bytes) are where that text is.
struct SyntaxError {
  int line = 0;
  int column = 0;
  int reported_line = 0;
  std::string near;     // as libxlutil prints it: the text, or "<newline>"
  bool at_end = false;  // at the end of the text
  bool lexical = false;  // a lexical error (libxlutil's lexer), not the grammar's
};

// The syntax errors libxlutil reports for `text`, in its order (xl_syntax.cc).
std::vector<SyntaxError> locateSyntaxErrors(std::string_view text);

// A parsed config: the text went through xlu_cfg_readdata. Everything the
// getters say wrong names the file and the key's line.
class Parsed {
 public:
  // INVALID_ARGUMENT for a text over kMaxXlConfigBytes, with a NUL byte or
  // with a syntax error: libxlutil's message for each, with the file, the
  // line and the column (which locateSyntaxErrors adds) and what xl expects
  // there.
  static Result<std::unique_ptr<Parsed>> parse(std::string_view text, std::string_view file_name);
  ~Parsed();
  Parsed(const Parsed&) = delete;
  Parsed& operator=(const Parsed&) = delete;

  XLU_Config* cfg() const { return cfg_; }
  const std::string& file() const { return file_; }
  const std::vector<Setting>& settings() const { return settings_; }
  bool has(const std::string& key) const { return lines_.count(key) != 0; }
  int lineOf(const std::string& key) const;

  // "xl config FILE:LINE: WHY" (without the line when `key` is empty or absent).
  Status bad(const std::string& key, std::string_view why) const;
  // libxlutil's latest message about `key` (the key named when it does not
  // name it), then `accepts`: what the key takes ("KEY takes ...").
  Status badFromReport(const std::string& key, std::string_view accepts);
  // libxlutil's latest message without its leading "FILE:LINE: ".
  std::string takeReport();

  // Typed getters: nullopt when the key is absent; a refusal naming the key
  // and what it takes when its value has another form. `accepts`: what a
  // string key takes ("pv, pvh or hvm"), for the message.
  Result<std::optional<std::string>> string(const char* key, std::string_view accepts = {});
  Result<std::optional<long>> number(const char* key, long min, long max);
  // A list of strings. `string_too`: a single string is split at blanks
  // (bootloader_args, as xl still takes it).
  Result<std::optional<std::vector<std::string>>> list(const char* key, bool string_too = false);
  // The value's form without a warning: a list, or a single value (string or number).
  bool isList(const char* key) const;
  // ", not 'VALUE'" (", not a list"), for a message about a wrong value.
  std::string valueAsGiven(const char* key) const;

 private:
  Parsed() = default;
  std::unique_ptr<ReportStream> report_;
  XLU_Config* cfg_ = nullptr;
  std::string file_;
  std::vector<Setting> settings_;
  std::map<std::string, int> lines_;
};

}  // namespace xenctl::xen::xlread
