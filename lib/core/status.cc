#include "lib/core/status.h"

#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace xenctl {

Status errnoStatus(int err, std::string_view what) {
  return Status(absl::ErrnoToStatusCode(err), absl::StrCat(av(what), ": ", std::strerror(err)));
}

Status annotate(const Status& st, std::string_view what) {
  if (st.ok()) return st;
  // A callee that named the same step already ("creating domain 'web1': ...",
  // as the hypervisor adapters do) is not named twice.
  if (absl::StartsWith(st.message(), absl::StrCat(av(what), ": "))) return st;
  Status out(st.code(), absl::StrCat(av(what), ": ", st.message()));
  st.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace xenctl
