// LibxlLogger: libxl's own log (xentoollog) captured, so that libxl's
// explanation of a failure ("failed to find kernel ...") goes into the
// Status the failing call returns instead of only into a log file.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

struct xentoollog_logger;

namespace xenctl::xen {

enum class LibxlLogLevel { kDebug, kInfo, kWarn, kError };

class LibxlLogger {
 public:
  /// Receives the lines at `min_level` and above that no Capture took, from
  /// whichever thread libxl logs on, prefixed with libxl's context ("libxl: ",
  /// "xencall: "). May be empty.
  using Sink = std::function<void(LibxlLogLevel, std::string_view)>;

  explicit LibxlLogger(Sink sink = nullptr, LibxlLogLevel min_level = LibxlLogLevel::kInfo);
  ~LibxlLogger();
  LibxlLogger(const LibxlLogger&) = delete;
  LibxlLogger& operator=(const LibxlLogger&) = delete;

  /// The logger to hand to libxl_ctx_alloc; owned by this object, which must
  /// outlive the libxl_ctx.
  xentoollog_logger* get();

  /// While a Capture lives, warnings and errors that libxl logs on this thread
  /// are kept in it. libxl logs a synchronous call's failure on the calling
  /// thread, so a Capture around the call holds that call's explanation.
  /// Captures nest; the innermost receives.
  class Capture {
   public:
    Capture();
    ~Capture();
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;
    /// The captured lines in the order logged, joined by "; "; empty if none.
    std::string text() const;
    const std::vector<std::string>& lines() const { return lines_; }

   private:
    friend class LibxlLogger;
    std::vector<std::string> lines_;
    Capture* previous_;
  };

 private:
  struct Adapter;  // a xentoollog_logger whose callbacks reach this object
  void message(int xtl_level, int errnoval, const char* context, std::string text);

  Adapter* adapter_;
  Sink sink_;
  LibxlLogLevel min_level_;
};

}  // namespace xenctl::xen
