#include "lib/sys/journal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "lib/sys/user_groups.h"

namespace xenctl::sys {
namespace {

// Audit records go to the journal only while stderr is the stream
// JOURNAL_STREAM names: a child that inherited the variable with another
// stderr logs lines instead.
TEST(Journal, StderrIsJournalOnlyForTheNamedStream) {
  const char* saved = std::getenv("JOURNAL_STREAM");
  const std::string keep = saved ? saved : "";
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderrIsJournal());
  struct stat st;
  ASSERT_EQ(::fstat(2, &st), 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(stderrIsJournal());
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str(), 1);
  EXPECT_FALSE(stderrIsJournal());
  ::setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(stderrIsJournal());
  if (saved)
    ::setenv("JOURNAL_STREAM", keep.c_str(), 1);
  else
    ::unsetenv("JOURNAL_STREAM");
}

// A uid's groups come from the user database with its primary gid; a uid
// without an entry has its gid alone.
TEST(UserGroups, FromTheUserDatabase) {
  std::vector<int64_t> root = groupsOfUser(0, 0);
  EXPECT_FALSE(root.empty());
  EXPECT_EQ(root.front(), 0);
  EXPECT_EQ(groupsOfUser(3999999, 3999998), std::vector<int64_t>{3999998});
}

}  // namespace
}  // namespace xenctl::sys
