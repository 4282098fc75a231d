#pragma once

#include "lib/core/clock.h"

namespace xenctl::sys {

/// The wall clock.
class SystemClock final : public core::Clock {
 public:
  absl::Time now() const override { return absl::Now(); }
};

}  // namespace xenctl::sys
