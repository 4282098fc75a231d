#include "lib/xen/libxl_logger.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/xen/libxl_c.h"

namespace xenctl::xen {

namespace {
thread_local LibxlLogger::Capture* t_capture = nullptr;

LibxlLogLevel levelOf(int xtl) {
  if (xtl >= XTL_ERROR) return LibxlLogLevel::kError;
  if (xtl >= XTL_WARN) return LibxlLogLevel::kWarn;
  if (xtl >= XTL_PROGRESS) return LibxlLogLevel::kInfo;
  return LibxlLogLevel::kDebug;
}
}  // namespace

// xentoollog calls through the function pointers of the struct it is given,
// which must therefore be the first member (the C idiom for inheritance).
struct LibxlLogger::Adapter {
  xentoollog_logger vtable;
  LibxlLogger* owner;
};

LibxlLogger::LibxlLogger(Sink sink, LibxlLogLevel min_level)
    : adapter_(new Adapter{}), sink_(std::move(sink)), min_level_(min_level) {
  adapter_->owner = this;
  adapter_->vtable.vmessage = [](xentoollog_logger* lg, xentoollog_level level, int errnoval, const char* context,
                                 const char* format, va_list args) {
    va_list copy;
    va_copy(copy, args);
    const int n = std::vsnprintf(nullptr, 0, format, copy);
    va_end(copy);
    std::string text(n > 0 ? static_cast<size_t>(n) : 0, '\0');
    if (n > 0) std::vsnprintf(text.data(), text.size() + 1, format, args);
    reinterpret_cast<Adapter*>(lg)->owner->message(level, errnoval, context, std::move(text));
  };
  adapter_->vtable.progress = nullptr;
  // libxl never destroys the logger it was given; ~LibxlLogger does.
  adapter_->vtable.destroy = [](xentoollog_logger*) {};
}

LibxlLogger::~LibxlLogger() { delete adapter_; }

xentoollog_logger* LibxlLogger::get() { return &adapter_->vtable; }

void LibxlLogger::message(int xtl_level, int errnoval, const char* context, std::string text) {
  if (errnoval > 0) absl::StrAppend(&text, ": ", std::strerror(errnoval));
  const LibxlLogLevel level = levelOf(xtl_level);
  // A captured line reaches the caller in a Status, which is logged once
  // where it ends; the sink gets what no caller will see.
  if (level >= LibxlLogLevel::kWarn && t_capture) {
    t_capture->lines_.push_back(std::move(text));
    return;
  }
  if (sink_ && level >= min_level_) sink_(level, absl::StrCat(context ? context : "libxl", ": ", text));
}

LibxlLogger::Capture::Capture() : previous_(t_capture) { t_capture = this; }
LibxlLogger::Capture::~Capture() { t_capture = previous_; }
std::string LibxlLogger::Capture::text() const { return absl::StrJoin(lines_, "; "); }

}  // namespace xenctl::xen
