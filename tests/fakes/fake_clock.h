#pragma once

#include <atomic>

#include "lib/core/clock.h"

namespace xenctl::fakes {

/// A clock that moves only when told to.
class FakeClock final : public core::Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(absl::ToUnixNanos(start)) {}
  absl::Time now() const override { return absl::FromUnixNanos(now_.load()); }
  void advance(absl::Duration d) { now_ += absl::ToInt64Nanoseconds(d); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace xenctl::fakes
