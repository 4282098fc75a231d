#pragma once

#include <cstdint>
#include <string>

namespace xenctl::provision {

/// Who asks, and the idempotency key of the request.
struct Caller {
  std::string request_id;
  int64_t uid = -1;
};

}  // namespace xenctl::provision
