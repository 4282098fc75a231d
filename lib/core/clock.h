// The Clock port. Real: sys::SystemClock. Tests: FakeClock.
#pragma once

#include "absl/time/time.h"

namespace xenctl::core {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time now() const = 0;
};

}  // namespace xenctl::core
