#include "lib/core/operation.h"

#include "lib/core/enum_names.h"

namespace xenctl::core {

namespace {
constexpr NameTable<OperationState, 5> kStateNames{{{OperationState::kPending, "pending"},
                                                    {OperationState::kRunning, "running"},
                                                    {OperationState::kSucceeded, "succeeded"},
                                                    {OperationState::kFailed, "failed"},
                                                    {OperationState::kCancelled, "cancelled"}}};
}  // namespace

std::string_view toString(OperationState s) { return nameOf(kStateNames, s); }
Result<OperationState> parseOperationState(std::string_view s) {
  return valueOf(kStateNames, "operation state", s);
}

}  // namespace xenctl::core
