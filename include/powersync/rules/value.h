// The SQLite-like value model of sync rules (spec §4.5): NULL, INTEGER (64-bit), REAL, TEXT, BLOB,
// and rows as ordered lists of named values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace powersync::rules {

struct Blob {
  std::string bytes;  // raw bytes
  bool operator==(const Blob& o) const { return bytes == o.bytes; }
};

enum class ValueType { Null = 0, Integer = 1, Real = 2, Text = 3, Blob = 4 };

class Value {
 public:
  Value() = default;
  static Value null() { return Value(); }
  static Value integer(int64_t v) { Value r; r.v_ = v; return r; }
  static Value real(double v) { Value r; r.v_ = v; return r; }
  static Value text(std::string v) { Value r; r.v_ = std::move(v); return r; }
  static Value blob(std::string bytes) { Value r; r.v_ = Blob{std::move(bytes)}; return r; }

  ValueType type() const { return static_cast<ValueType>(v_.index()); }
  bool is_null() const { return v_.index() == 0; }
  bool is_integer() const { return v_.index() == 1; }
  bool is_real() const { return v_.index() == 2; }
  bool is_text() const { return v_.index() == 3; }
  bool is_blob() const { return v_.index() == 4; }
  bool is_numeric() const { return is_integer() || is_real(); }

  int64_t as_integer() const { return std::get<int64_t>(v_); }
  double as_real() const { return std::get<double>(v_); }
  const std::string& as_text() const { return std::get<std::string>(v_); }
  const std::string& as_blob() const { return std::get<Blob>(v_).bytes; }

  bool operator==(const Value& o) const { return v_ == o.v_; }
  bool operator!=(const Value& o) const { return !(v_ == o.v_); }

 private:
  std::variant<std::monostate, int64_t, double, std::string, Blob> v_;
};

struct Column {
  std::string name;
  Value value;
};

// A source or output row: columns in their order (output JSON keeps this order).
using Row = std::vector<Column>;

// Returns the column's value, or nullptr when the row has no such column.
inline const Value* find_column(const Row& row, std::string_view name) {
  for (const auto& c : row)
    if (c.name == name) return &c.value;
  return nullptr;
}

}  // namespace powersync::rules
