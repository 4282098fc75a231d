// One page of a list answer, for the list calls that page by key
// (ListVolumes, ListImages): their items after the request's page_token,
// in key order, as many as fit in `max_bytes`, and the token that continues
// after them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/repeated_ptr_field.h>

namespace xenctl::daemon {

/// What one more element adds to a list answer beyond its own size: its tag
/// and length.
inline constexpr size_t kListElementOverhead = 16;

/// Moves the items of `keyed` (the caller keeps only those after the
/// request's page_token) into `out` in key order while their sizes add up to
/// at most `max_bytes` (always at least one, so a page always moves on), and
/// returns the next_page_token: the key of the last one moved when more
/// follow, "" when none do.
template <class Proto>
std::string fillPage(std::vector<std::pair<std::string, Proto>> keyed, google::protobuf::RepeatedPtrField<Proto>* out,
                     size_t max_bytes) {
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t bytes = 0;
  for (size_t i = 0; i < keyed.size(); ++i) {
    const size_t n = keyed[i].second.ByteSizeLong() + kListElementOverhead;
    if (bytes + n > max_bytes && i > 0) return keyed[i - 1].first;
    bytes += n;
    *out->Add() = std::move(keyed[i].second);
  }
  return "";
}

}  // namespace xenctl::daemon
