// The one error vocabulary of lib/: absl::Status and absl::StatusOr, whose
// codes are the RPC status codes. Only daemon/ maps them onto the wire.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include <string_view>

namespace xenctl {

using Status = absl::Status;
template <class T>
using Result = absl::StatusOr<T>;

/// Debian 12's abseil keeps its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW
/// is 0), so std::string_view must be bridged into absl::StrCat and friends.
inline absl::string_view av(std::string_view s) { return {s.data(), s.size()}; }

/// The Status of a failed system call: "<what>: <strerror(err)>", its code
/// chosen from `err` (ENOENT NOT_FOUND, EEXIST ALREADY_EXISTS, EACCES/EPERM
/// PERMISSION_DENIED, ENOSPC/EDQUOT RESOURCE_EXHAUSTED, EINVAL
/// INVALID_ARGUMENT, ENOTEMPTY/EBUSY FAILED_PRECONDITION, EAGAIN UNAVAILABLE,
/// ...: abseil's table, absl::ErrnoToStatusCode). `what` names the step and
/// the object ("creating /var/lib/xenctl/images/x.partial").
Status errnoStatus(int err, std::string_view what);

/// `st` with "<what>: " before its message: the step and object it failed
/// in. The code (and any payload) is kept; OK stays OK. A message that
/// already starts with "<what>: " is kept as it is.
Status annotate(const Status& st, std::string_view what);

}  // namespace xenctl

#define XENCTL_CONCAT_INNER_(a, b) a##b
#define XENCTL_CONCAT_(a, b) XENCTL_CONCAT_INNER_(a, b)

/// Returns the Status of `expr` from the enclosing function when it is not OK.
#define XENCTL_RETURN_IF_ERROR(expr)         \
  do {                                       \
    ::absl::Status xenctl_status_ = (expr);  \
    if (!xenctl_status_.ok()) return xenctl_status_; \
  } while (0)

/// `XENCTL_ASSIGN_OR_RETURN(auto x, f());` binds the value or returns the error.
#define XENCTL_ASSIGN_OR_RETURN(lhs, expr) \
  XENCTL_ASSIGN_OR_RETURN_IMPL_(XENCTL_CONCAT_(xenctl_result_, __LINE__), lhs, expr)
#define XENCTL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()
