// JSON encoding of sync values, byte-compatible with the reference service (see json_writer.h).
#include "powersync/protocol/json_writer.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace powersync::protocol {

namespace {

void append_escaped(std::string& out, unsigned char c) {
  static const char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default:
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
  }
}

}  // namespace

// Position of the first byte needing an escape at or after `i` (s.size() if none). Scans eight
// bytes at a time: most strings have nothing to escape.
namespace {
inline bool any_escape(uint64_t x) { return word_needs_escape(x); }

#if defined(__SSE2__)
// 16 bytes at a time (SSE2 is part of the x86-64 baseline). Returns the first escape position in
// [i, s.size()), s.size() if none; s.size() - i must be at least 16. The last block overlaps bytes
// already found clean, so the first flagged byte in it is still the first escape at or after `i`.
size_t next_escape_sse2(std::string_view s, size_t i) {
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), max_control = _mm_set1_epi8(0x1f);
  auto escapes = [&](size_t at) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + at));
    const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(x, max_control), x);  // unsigned x <= 0x1f
    return _mm_movemask_epi8(_mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash))));
  };
  for (; i + 16 <= s.size(); i += 16)
    if (int mask = escapes(i)) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  if (i == s.size()) return i;
  const size_t last = s.size() - 16;
  int mask = escapes(last);
  return mask ? last + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask))) : s.size();
}
#endif
}  // namespace

size_t next_escape(std::string_view s, size_t i) {
#if defined(__SSE2__)
  if (i < s.size() && s.size() - i >= 16) return next_escape_sse2(s, i);
#endif
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t x;
    std::memcpy(&x, s.data() + i, 8);
    if (any_escape(x)) break;
  }
  if (i + 8 > s.size() && i < s.size()) {  // no word was dirty; a tail of 1-7 bytes is left
    uint64_t x;
    if (s.size() >= 8) {  // the last 8 bytes (overlapping clean ones) as one word
      std::memcpy(&x, s.data() + s.size() - 8, 8);
    } else if (s.size() - i >= 4) {  // 4-7 bytes: two overlapping 4-byte loads
      uint32_t lo, hi;
      std::memcpy(&lo, s.data() + i, 4);
      std::memcpy(&hi, s.data() + s.size() - 4, 4);
      x = lo | static_cast<uint64_t>(hi) << 32;
    } else {
      x = 0x6161616161616161ull;  // 'a' padding
      for (size_t k = i; k < s.size(); ++k) x = (x << 8) | static_cast<unsigned char>(s[k]);
    }
    if (!any_escape(x)) return s.size();
  }
  for (; i < s.size(); ++i)
    if (byte_needs_escape(static_cast<unsigned char>(s[i]))) return i;
  return s.size();
}

void append_json_string(std::string& out, std::string_view s) {
  size_t i = next_escape(s, 0);
  out.push_back('"');
  if (i == s.size()) {  // the common case: one copy, no reserve (a call, not inlined) needed
    out.append(s.data(), s.size());
    out.push_back('"');
    return;
  }
  size_t run_start = 0;
  for (; i < s.size(); i = next_escape(s, i + 1)) {
    out.append(s.data() + run_start, i - run_start);
    append_escaped(out, static_cast<unsigned char>(s[i]));
    run_start = i + 1;
  }
  out.append(s.data() + run_start, s.size() - run_start);
  out.push_back('"');
}

namespace {

// Fast path of append_js_number for non-integral values with at most 3 decimals below 1e6 (money,
// ratings, ...): finds m with m / 10^k == v for the smallest k. The candidate parses back to v
// (the division is correctly rounded), and below 1e6 a double's rounding interval (< 1e-9 wide)
// holds at most one number with k <= 3 decimals, so it is the shortest round-trip text JS prints.
bool append_short_decimal(std::string& out, double v) {
  const double a = std::fabs(v);
  if (!(a < 1e6)) return false;
  static const double kScale[] = {10.0, 100.0, 1000.0};
  for (int k = 1; k <= 3; ++k) {
    const double m = std::nearbyint(a * kScale[k - 1]);
    if (m / kScale[k - 1] != a) continue;
    auto scaled = static_cast<int64_t>(m);
    if (scaled % 10 == 0) return false;  // would have matched a smaller k: leave it to the general path
    int64_t unit = k == 1 ? 10 : k == 2 ? 100 : 1000;
    char buf[40];
    char* p = buf;
    if (v < 0) *p++ = '-';
    p = std::to_chars(p, buf + sizeof buf, scaled / unit).ptr;
    *p++ = '.';
    int64_t frac = scaled % unit;
    for (int64_t d = unit / 10; d > 0; d /= 10) *p++ = static_cast<char>('0' + (frac / d) % 10);
    out.append(buf, p);
    return true;
  }
  return false;
}

}  // namespace

// Number::toString (ECMAScript Number.prototype.toString with radix 10): the shortest digits that
// round-trip, laid out in plain or exponential notation depending on the decimal exponent.
void append_js_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v < 0 ? "-Infinity" : "Infinity";
    return;
  }
  if (v == 0) {
    out.push_back('0');  // also -0
    return;
  }
  if (std::fabs(v) < 9e15 && v == std::trunc(v)) {  // integral and exact: plain digits, as JS prints them
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
    out.append(buf, res.ptr);
    return;
  }
  if (append_short_decimal(out, v)) return;
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // e.g. "-1.2345e+02"
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  size_t e_pos = sci.find('e');
  std::string digits;
  for (size_t i = 0; i < e_pos; ++i)
    if (sci[i] != '.') digits.push_back(sci[i]);
  int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  int k = static_cast<int>(digits.size());
  int n = exponent + 1;  // value = 0.d1d2...dk * 10^n
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, 0, static_cast<size_t>(n));
    out.push_back('.');
    out.append(digits, static_cast<size_t>(n), std::string::npos);
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out += digits;
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    out.push_back('e');
    out.push_back(n - 1 >= 0 ? '+' : '-');
    out += std::to_string(std::abs(n - 1));
  }
}

std::string js_number_to_string(double v) {
  std::string out;
  append_js_number(out, v);
  return out;
}

namespace {

void append_real(std::string& out, double v, RealFormat format) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  size_t start = out.size();
  append_js_number(out, v);
  if (format == RealFormat::RowJson) {
    // JSONBig keeps REAL-ness of integral values: the text has only digits (and a sign).
    bool integral = true;
    for (size_t i = start; i < out.size(); ++i)
      if (!(out[i] >= '0' && out[i] <= '9') && out[i] != '-') integral = false;
    if (integral) out += ".0";
  }
}

}  // namespace

void append_json_value(std::string& out, const rules::Value& v, RealFormat format) {
  switch (v.type()) {
    case rules::ValueType::Null: out += "null"; break;
    case rules::ValueType::Integer: {
      char buf[24];
      auto res = std::to_chars(buf, buf + sizeof buf, v.as_integer());
      out.append(buf, res.ptr);
      break;
    }
    case rules::ValueType::Real: append_real(out, v.as_real(), format); break;
    case rules::ValueType::Text: append_json_string(out, v.as_text()); break;
    case rules::ValueType::Blob: out += "null"; break;
  }
}

std::string encode_row_json(const rules::Row& row) {
  size_t estimate = 2;
  for (const auto& col : row) estimate += col.name.size() + 6 + (col.value.is_text() ? col.value.as_text().size() : 20);
  std::string out;
  out.reserve(estimate);
  out.push_back('{');
  bool first = true;
  for (const auto& col : row) {
    if (col.value.is_blob()) continue;
    if (!first) out.push_back(',');
    first = false;
    append_json_string(out, col.name);
    out.push_back(':');
    append_json_value(out, col.value, RealFormat::RowJson);
  }
  out.push_back('}');
  return out;
}

std::string serialize_bucket_parameters(const std::vector<rules::Value>& values) {
  std::string out;
  out.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    append_json_value(out, values[i], RealFormat::Plain);
  }
  out.push_back(']');
  return out;
}

std::string bucket_id(std::string_view prefix, std::string_view name, const std::vector<rules::Value>& values) {
  std::string out;
  out.reserve(prefix.size() + name.size() + 16);
  out.append(prefix);
  out.append(name);
  out += serialize_bucket_parameters(values);
  return out;
}

}  // namespace powersync::protocol
