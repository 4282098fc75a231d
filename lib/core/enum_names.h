// One name table per enum keeps toString and parse in step.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/core/status.h"

namespace xenctl::core {

template <class E, size_t N>
using NameTable = std::array<std::pair<E, std::string_view>, N>;

template <class E, size_t N>
std::string_view nameOf(const NameTable<E, N>& table, E value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return "unknown";
}

/// INVALID_ARGUMENT naming `what` and the allowed values when `text` is none of them.
template <class E, size_t N>
Result<E> valueOf(const NameTable<E, N>& table, std::string_view what, std::string_view text) {
  for (const auto& [v, name] : table)
    if (name == text) return v;
  std::string allowed;
  for (const auto& [v, name] : table) absl::StrAppend(&allowed, allowed.empty() ? "" : ", ", av(name));
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ", av(what), " '", av(text), "': expected one of ", allowed));
}

}  // namespace xenctl::core
