#include "lib/storage/name_holds.h"

#include <gtest/gtest.h>

#include <optional>

namespace xenctl::storage {
namespace {

std::string who(const std::string& n) { return "volume '" + n + "'"; }

// A name held exclusively refuses every other hold of it, naming it; a shared
// name takes any number of shared holders but no exclusive one; names come
// free when their hold goes.
TEST(NameHolds, ExclusiveAndShared) {
  NameHolds holds;
  std::optional<Result<NameHolds::Hold>> clone1(holds.hold("root1", "base", who));
  ASSERT_TRUE(clone1->ok());
  EXPECT_TRUE(holds.hold("root2", "base", who).ok());  // the base is shared

  auto again = holds.hold("root1", "", who);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("volume 'root1' is busy"), std::string::npos) << again.status();
  EXPECT_EQ(holds.hold("base", "", who).status().code(), absl::StatusCode::kFailedPrecondition);  // read from
  EXPECT_EQ(holds.hold("x", "root1", who).status().code(), absl::StatusCode::kFailedPrecondition);

  clone1.reset();
  EXPECT_TRUE(holds.hold("root1", "", who).ok());
  EXPECT_TRUE(holds.hold("base", "", who).ok());
}

}  // namespace
}  // namespace xenctl::storage
