// A plain-text table with aligned columns, as `xl list` prints them.
#pragma once

#include <string>
#include <vector>

namespace xenctl::client {

class Table {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string title;
    Align align = Align::kLeft;
  };

  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  /// `cells` has one entry per column.
  void addRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  /// Header and rows, columns two spaces apart, no trailing blanks.
  std::string render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace xenctl::client
