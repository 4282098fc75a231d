#include "lib/provision/caller_slots.h"

#include <gtest/gtest.h>

#include <optional>

namespace xenctl::provision {
namespace {

// One caller holds at most max slots (the error names the caller, the limit and the setting); a freed slot can be
// taken again; other callers are not affected.
TEST(CallerSlots, BoundsEachCaller) {
  CallerSlots slots(2, "streams", "[daemon] max_streams_per_caller");
  auto a = slots.acquire("uid:1000");
  auto b = slots.acquire("uid:1000");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = slots.acquire("uid:1000");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(c.status().message(),
            "caller uid:1000 has 2 streams open, the limit per caller is 2 ([daemon] max_streams_per_caller); "
            "close one first");
  EXPECT_TRUE(slots.acquire("uid:0").ok());
  EXPECT_EQ(slots.held("uid:0"), 0u) << "a slot is given back when it is destroyed";
  {
    std::optional<CallerSlots::Slot> gone(*std::move(a));
  }
  EXPECT_EQ(slots.held("uid:1000"), 1u);
  EXPECT_TRUE(slots.acquire("uid:1000").ok());
}

}  // namespace
}  // namespace xenctl::provision
