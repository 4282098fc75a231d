#include "client/lib/table.h"

#include <algorithm>

namespace xenctl::client {
namespace {

// Display width: count UTF-8 code points, not bytes.
size_t width(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

}  // namespace

std::string Table::render() const {
  std::vector<size_t> widths(columns_.size());
  for (size_t i = 0; i < columns_.size(); ++i) widths[i] = width(columns_[i].title);
  for (const auto& row : rows_)
    for (size_t i = 0; i < columns_.size() && i < row.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));

  std::string out;
  auto emit = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < columns_.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      const std::string pad(widths[i] - width(cell), ' ');
      if (i > 0) line += "  ";
      line += columns_[i].align == Align::kRight ? pad + cell : cell + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  std::vector<std::string> header;
  for (const auto& c : columns_) header.push_back(c.title);
  emit(header);
  for (const auto& row : rows_) emit(row);
  return out;
}

}  // namespace xenctl::client
