// SQLite-like value semantics of the reference service (sqliteBool.ts, cast.ts, compare and doMath
// in sql_functions.ts): truthiness, casts, comparison and arithmetic.
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "powersync/error.h"
#include "powersync/protocol/json_writer.h"
#include "powersync/rules/expression.h"
#include "sql_values.h"
#include "text_utils.h"

namespace powersync::rules {
namespace {

bool is_js_space(unsigned char c) { return c == ' ' || (c >= 0x09 && c <= 0x0D); }

size_t skip_space(std::string_view s, size_t i = 0) {
  while (i < s.size() && is_js_space(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

// Accumulates decimal digits into an int64, saturating (the reference uses unbounded BigInt).
int64_t saturating_digits(std::string_view digits, bool negative) {
  uint64_t v = 0;
  const uint64_t limit = negative ? 9223372036854775808ull : 9223372036854775807ull;
  for (char c : digits) {
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (limit - d) / 10) return negative ? INT64_MIN : INT64_MAX;
    v = v * 10 + d;
  }
  if (negative) return v == 9223372036854775808ull ? INT64_MIN : -static_cast<int64_t>(v);
  return static_cast<int64_t>(v);
}

bool digits_fit_int64(std::string_view digits, bool negative) {
  int64_t v = saturating_digits(digits, negative);
  if (v != INT64_MIN && v != INT64_MAX) return true;
  // Exact limits are representable; anything saturated is not.
  std::string_view trimmed = digits.substr(std::min(digits.find_first_not_of('0'), digits.size()));
  return negative ? trimmed == "9223372036854775808" : trimmed == "9223372036854775807";
}

// parseNumeric of cast.ts: /^\s*([+-]?)(?:(\d+)(\.\d*)?|\.(\d+))(e[+-]?\d+)?/i
Value parse_numeric(std::string_view s) {
  size_t i = skip_space(s);
  size_t start = i;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  size_t int_start = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  size_t int_end = i;
  bool is_real = false;
  if (int_end > int_start) {
    if (i < s.size() && s[i] == '.') {
      is_real = true;
      ++i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    }
  } else {
    if (!(i + 1 < s.size() && s[i] == '.' && std::isdigit(static_cast<unsigned char>(s[i + 1]))))
      return Value::integer(0);
    is_real = true;
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      is_real = true;
      i = j;
    }
  }
  if (is_real) return Value::real(std::strtod(std::string(s.substr(start, i - start)).c_str(), nullptr));
  std::string_view digits = s.substr(int_start, int_end - int_start);
  if (!digits_fit_int64(digits, negative)) return Value::real(std::strtod(std::string(s.substr(start, i - start)).c_str(), nullptr));
  return Value::integer(saturating_digits(digits, negative));
}

// parseBigInt of cast.ts: /^\s*([+-]?)(\d+)/, else 0.
int64_t parse_integer_prefix(std::string_view s) {
  size_t i = skip_space(s);
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  size_t start = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  return saturating_digits(s.substr(start, i - start), negative);
}

// JS parseInt(text) != 0 (NaN counts as false), as used by sqliteBool for TEXT.
bool text_truthy(std::string_view s) {
  size_t i = skip_space(s);
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i + 1 < s.size() && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    i += 2;
    for (; i < s.size() && std::isxdigit(static_cast<unsigned char>(s[i])); ++i)
      if (s[i] != '0') return true;
    return false;
  }
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i)
    if (s[i] != '0') return true;
  return false;
}

int type_rank(const Value& v) {
  switch (v.type()) {
    case ValueType::Null: return 0;
    case ValueType::Integer:
    case ValueType::Real: return 1;
    case ValueType::Text: return 2;
    case ValueType::Blob: return 3;
  }
  return 0;
}

// Exact comparison of an integer with a double; NaN compares as "less" (JS: neither == nor >).
int compare_int_real(int64_t i, double d) {
  if (std::isnan(d)) return -1;
  if (d >= 9223372036854775808.0) return -1;
  if (d < -9223372036854775808.0) return 1;
  int64_t t = static_cast<int64_t>(d);
  if (i != t) return i < t ? -1 : 1;
  double frac = d - static_cast<double>(t);
  return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

}  // namespace

bool is_truthy(const Value& v) {
  switch (v.type()) {
    case ValueType::Null: return false;
    case ValueType::Integer: return v.as_integer() != 0;
    case ValueType::Real: return v.as_real() != 0 && !std::isnan(v.as_real());
    case ValueType::Text: return text_truthy(v.as_text());
    case ValueType::Blob: return false;
  }
  return false;
}

int compare_values(const Value& a, const Value& b) {
  if (a.is_integer() && b.is_integer()) {
    return a.as_integer() == b.as_integer() ? 0 : a.as_integer() > b.as_integer() ? 1 : -1;
  }
  if (a.is_real() && b.is_real()) {
    double x = a.as_real(), y = b.as_real();
    return x == y ? 0 : x > y ? 1 : -1;
  }
  if (a.is_integer() && b.is_real()) return compare_int_real(a.as_integer(), b.as_real());
  if (a.is_real() && b.is_integer()) {
    if (std::isnan(a.as_real())) return -1;
    return -compare_int_real(b.as_integer(), a.as_real());
  }
  if (a.is_text() && b.is_text()) return text::compare_utf16(a.as_text(), b.as_text());
  if (a.is_blob() && b.is_blob()) throw invalid_input("Comparing blobs is not supported currently");
  int diff = type_rank(a) - type_rank(b);
  return diff < 0 ? -1 : diff > 0 ? 1 : 0;
}

std::optional<std::string> cast_as_text(const Value& v) {
  if (v.is_null()) return std::nullopt;
  return sql::to_text(v);
}

std::optional<Value> cast_value(const Value& v, std::string_view type) {
  if (type != "text" && type != "numeric" && type != "integer" && type != "real" && type != "blob")
    return std::nullopt;
  if (v.is_null()) return Value::null();
  if (type == "text") return Value::text(sql::to_text(v));
  if (type == "numeric") return sql::to_numeric(v);
  if (type == "integer") return sql::to_integer(v);
  if (type == "real") return sql::to_real(v);
  return Value::blob(sql::to_blob_bytes(v));
}

const char* sqlite_type_name(const Value& v) {
  switch (v.type()) {
    case ValueType::Null: return "null";
    case ValueType::Integer: return "integer";
    case ValueType::Real: return "real";
    case ValueType::Text: return "text";
    case ValueType::Blob: return "blob";
  }
  return "null";
}

namespace sql {

std::string to_text(const Value& v) {
  switch (v.type()) {
    case ValueType::Null: return std::string();
    case ValueType::Integer: return std::to_string(v.as_integer());
    case ValueType::Real: return protocol::js_number_to_string(v.as_real());
    case ValueType::Text: return v.as_text();
    case ValueType::Blob: return text::decode_lossy(v.as_blob());
  }
  return std::string();
}

std::string to_blob_bytes(const Value& v) {
  if (v.is_blob()) return v.as_blob();
  return to_text(v);
}

Value to_numeric(const Value& v) {
  switch (v.type()) {
    case ValueType::Integer:
    case ValueType::Real: return v;
    case ValueType::Text: return parse_numeric(v.as_text());
    case ValueType::Blob: return parse_numeric(text::decode_lossy(v.as_blob()));
    default: return Value::integer(0);
  }
}

double parse_float_prefix(std::string_view s) {
  size_t i = skip_space(s);
  size_t start = i;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (s.substr(i, 8) == "Infinity") {
    bool neg = s[start] == '-';
    return neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  size_t digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  }
  if (digits == 0) return std::numeric_limits<double>::quiet_NaN();
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      i = j;
    }
  }
  return std::strtod(std::string(s.substr(start, i - start)).c_str(), nullptr);
}

Value to_real(const Value& v) {
  switch (v.type()) {
    case ValueType::Integer: return Value::real(static_cast<double>(v.as_integer()));
    case ValueType::Real: return v;
    case ValueType::Text:
    case ValueType::Blob: {
      double d = parse_float_prefix(v.is_text() ? v.as_text() : text::decode_lossy(v.as_blob()));
      return Value::real(std::isnan(d) ? 0.0 : d);
    }
    default: return Value::real(0.0);
  }
}

Value to_integer(const Value& v) {
  switch (v.type()) {
    case ValueType::Integer: return v;
    case ValueType::Real: {
      double d = std::floor(v.as_real());  // the reference floors (BigInt(Math.floor(x)))
      if (std::isnan(d) || std::isinf(d)) throw invalid_input("Cannot convert " + to_text(v) + " to an integer");
      if (d >= 9223372036854775808.0) return Value::integer(INT64_MAX);
      if (d < -9223372036854775808.0) return Value::integer(INT64_MIN);
      return Value::integer(static_cast<int64_t>(d));
    }
    case ValueType::Text: return Value::integer(parse_integer_prefix(v.as_text()));
    case ValueType::Blob: return Value::integer(parse_integer_prefix(text::decode_lossy(v.as_blob())));
    default: return Value::integer(0);
  }
}

Value arithmetic(ArithOp op, const Value& a, const Value& b) {
  if (a.is_null() || b.is_null()) return Value::null();
  Value na = to_numeric(a), nb = to_numeric(b);
  if (op == ArithOp::Div && ((nb.is_integer() && nb.as_integer() == 0) || (nb.is_real() && nb.as_real() == 0)))
    return Value::null();
  if (na.is_integer() && nb.is_integer()) {
    int64_t x = na.as_integer(), y = nb.as_integer(), r = 0;
    bool overflow = false;
    switch (op) {
      case ArithOp::Add: overflow = __builtin_add_overflow(x, y, &r); break;
      case ArithOp::Sub: overflow = __builtin_sub_overflow(x, y, &r); break;
      case ArithOp::Mul: overflow = __builtin_mul_overflow(x, y, &r); break;
      case ArithOp::Div:
        if (x == INT64_MIN && y == -1) overflow = true;
        else r = x / y;  // truncates toward zero, like BigInt division
        break;
    }
    if (!overflow) return Value::integer(r);
    // Beyond 64 bits the reference keeps an exact BigInt; the closest we can offer is a REAL.
  }
  double x = na.is_integer() ? static_cast<double>(na.as_integer()) : na.as_real();
  double y = nb.is_integer() ? static_cast<double>(nb.as_integer()) : nb.as_real();
  switch (op) {
    case ArithOp::Add: return Value::real(x + y);
    case ArithOp::Sub: return Value::real(x - y);
    case ArithOp::Mul: return Value::real(x * y);
    case ArithOp::Div: return Value::real(x / y);
  }
  return Value::null();
}

}  // namespace sql
}  // namespace powersync::rules
