// Operation vocabulary: a long task's record, shared by the registry that
// runs operations and the store that keeps their history.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "lib/core/status.h"

namespace xenctl::core {

enum class OperationState { kPending, kRunning, kSucceeded, kFailed, kCancelled };

std::string_view toString(OperationState s);
Result<OperationState> parseOperationState(std::string_view s);
inline bool isFinished(OperationState s) { return s >= OperationState::kSucceeded; }

struct OperationRecord {
  std::string id;          ///< "op-" + 16 hex digits
  std::string kind;        ///< "create-domain" ...
  std::string target;      ///< the object worked on
  std::string request_id;  ///< the client's idempotency key, or empty
  OperationState state = OperationState::kPending;
  std::string phase;
  uint32_t percent = 0;
  uint64_t bytes_done = 0, bytes_total = 0;
  std::string message;
  absl::Time created_at = absl::UnixEpoch();
  absl::Time updated_at = absl::UnixEpoch();
  absl::Time finished_at = absl::InfinitePast();  ///< InfinitePast until finished
  Status status;                                  ///< final status once finished
  int64_t caller_uid = -1;
  /// Who started it (provision::Caller::key(): "uid:1000", "cert:CN=ci"):
  /// its request_id is that caller's, not anyone else's.
  std::string caller_key;
  /// What was asked, as a digest of the request (method and fields, not its
  /// request_id): a repeat of the request_id must ask the same. "" = unknown
  /// (then kind and target are compared).
  std::string request_digest;
  /// While PENDING in the queue for a worker: 1 for the next to run. 0 otherwise.
  uint32_t queue_position = 0;
  /// Bumped on every change; watchers wait for it to move.
  uint64_t version = 0;
};

}  // namespace xenctl::core
