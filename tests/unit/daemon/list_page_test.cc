// One page of a list answer (ListVolumes, ListImages): key order, the byte
// cap, and the token that continues after it.
#include "daemon/list_page.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "xenctl/v1/volume.pb.h"

namespace xenctl::daemon {
namespace {

// The volumes named `names`, each with a path of `path_bytes`, keyed by name,
// that come after `token` (as the handlers keep them).
std::vector<std::pair<std::string, v1::Volume>> after(const std::vector<std::string>& names, size_t path_bytes,
                                                      const std::string& token) {
  std::vector<std::pair<std::string, v1::Volume>> out;
  for (const std::string& n : names) {
    if (n <= token) continue;
    v1::Volume v;
    v.set_name(n);
    v.set_path(std::string(path_bytes, 'p'));
    out.emplace_back(n, std::move(v));
  }
  return out;
}

// Pages of at most the cap, in key order, each continuing after the last,
// give every item once; the last page's token is "".
TEST(FillPage, PagesCoverEveryItemOnceInKeyOrder) {
  const std::vector<std::string> names = {"d", "a", "c", "e", "b", "g", "f"};
  const size_t one = after({"x"}, 100, "")[0].second.ByteSizeLong() + kListElementOverhead;
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    google::protobuf::RepeatedPtrField<v1::Volume> page;
    token = fillPage(after(names, 100, token), &page, 3 * one);
    EXPECT_LE(page.size(), 3);
    for (const v1::Volume& v : page) seen.push_back(v.name());
    if (!token.empty()) {
      EXPECT_EQ(token, page.rbegin()->name());
    }
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g"}));
  EXPECT_EQ(pages, 3);
}

// An item larger than the cap still makes a page of its own, so the list moves on.
TEST(FillPage, AnItemOverTheCapIsAPageOfItsOwn) {
  google::protobuf::RepeatedPtrField<v1::Volume> page;
  EXPECT_EQ(fillPage(after({"a", "b"}, 1000, ""), &page, 10), "a");
  ASSERT_EQ(page.size(), 1);
  EXPECT_EQ(page[0].name(), "a");
}

// Everything fits: one page, no token; nothing left: an empty page, no token.
TEST(FillPage, LastPageHasNoToken) {
  google::protobuf::RepeatedPtrField<v1::Volume> page;
  EXPECT_EQ(fillPage(after({"b", "a"}, 10, ""), &page, 1 << 20), "");
  EXPECT_EQ(page.size(), 2);
  google::protobuf::RepeatedPtrField<v1::Volume> none;
  EXPECT_EQ(fillPage(after({"a"}, 10, "a"), &none, 1 << 20), "");
  EXPECT_EQ(none.size(), 0);
}

}  // namespace
}  // namespace xenctl::daemon
