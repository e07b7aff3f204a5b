// unixepoch() and datetime() with the reference's semantics: text is parsed like JavaScript's
// `new Date(...)` (no time zone => UTC), numbers are Julian day numbers unless the 'unixepoch'
// modifier is given; 'subsec' adds milliseconds. Invalid input gives NULL.
#include <cctype>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "functions.h"
#include "sql_values.h"

namespace powersync::rules::functions {
namespace {

constexpr double kMsPerDay = 86400000.0;
constexpr double kMaxTimeMs = 8.64e15;  // ECMAScript TimeClip range

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civil_from_days(int64_t z, int64_t& y, int& m, int& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = yoe + era * 400 + (m <= 2);
}

std::optional<double> time_clip(double ms) {
  if (!std::isfinite(ms) || std::fabs(ms) > kMaxTimeMs) return std::nullopt;
  return std::trunc(ms) + 0.0;  // + 0.0 turns -0 into 0
}

class DateText {
 public:
  explicit DateText(std::string_view s) : s_(s) {}

  // ISO-8601-like text as V8 accepts it: YYYY[-MM[-DD]] or ±YYYYYY..., then optional
  // [T| ]HH:MM[:SS[.fff]] and an optional zone Z | ±HH:MM | ±HHMM.
  std::optional<double> parse() {
    int64_t year;
    int month = 1, day = 1, hour = 0, minute = 0, second = 0, millis = 0;
    int64_t offset_minutes = 0;
    if (!parse_year(year)) return std::nullopt;
    if (eat('-')) {
      if (!digits(2, month) || month < 1 || month > 12) return std::nullopt;
      // V8 accepts any day up to 31 and rolls over (2023-02-30 is March 2nd).
      if (eat('-') && (!digits(2, day) || day < 1 || day > 31)) return std::nullopt;
    }
    if (peek() == 'T' || peek() == 't' || peek() == ' ') {
      ++pos_;
      if (!digits(2, hour) || !eat(':') || !digits(2, minute)) return std::nullopt;
      if (eat(':')) {
        if (!digits(2, second)) return std::nullopt;
        if (eat('.') && !fraction(millis)) return std::nullopt;
      }
      if (hour > 24 || minute > 59 || second > 59) return std::nullopt;
      if (hour == 24 && (minute || second || millis)) return std::nullopt;
    }
    if (peek() == 'Z' || peek() == 'z') {
      ++pos_;
    } else if (peek() == '+' || peek() == '-') {
      int sign = s_[pos_++] == '-' ? -1 : 1;
      int oh, om;
      if (!digits(2, oh)) return std::nullopt;
      eat(':');
      if (!digits(2, om) || oh > 23 || om > 59) return std::nullopt;
      offset_minutes = sign * (oh * 60 + om);
    }
    if (pos_ != s_.size()) return std::nullopt;
    double days = static_cast<double>(days_from_civil(year, month, day));
    double ms = days * kMsPerDay + ((hour * 60.0 + minute) * 60.0 + second) * 1000.0 + millis -
                static_cast<double>(offset_minutes) * 60000.0;
    return time_clip(ms);
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  bool digits(int n, int& out) {
    out = 0;
    for (int i = 0; i < n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return false;
      out = out * 10 + (s_[pos_++] - '0');
    }
    return true;
  }
  bool parse_year(int64_t& year) {
    int sign = 1;
    int count = 4;
    if (peek() == '+' || peek() == '-') {
      sign = s_[pos_++] == '-' ? -1 : 1;
      count = 6;
    }
    int64_t y = 0;
    for (int i = 0; i < count; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return false;
      y = y * 10 + (s_[pos_++] - '0');
    }
    if (sign < 0 && y == 0) return false;  // -000000 is not allowed
    year = sign * y;
    return true;
  }
  bool fraction(int& millis) {  // milliseconds from the first three digits; the rest is ignored
    int n = 0;
    millis = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      if (n < 3) millis = millis * 10 + (s_[pos_] - '0');
      ++n;
      ++pos_;
    }
    if (n == 0) return false;
    for (int i = n; i < 3; ++i) millis *= 10;
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

std::optional<double> julian_to_ms(double julian_day) { return time_clip((julian_day - 2440587.5) * kMsPerDay); }

bool is_julian_text(std::string_view s) {  // /^\d+(\.\d*)?$/
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  }
  return i == s.size();
}

bool has_time_zone(std::string_view s) {  // /[Zz]|[+\-]\d{2}:\d{2}$/
  if (s.find_first_of("Zz") != std::string_view::npos) return true;
  if (s.size() < 6) return false;
  std::string_view t = s.substr(s.size() - 6);
  return (t[0] == '+' || t[0] == '-') && std::isdigit(static_cast<unsigned char>(t[1])) &&
         std::isdigit(static_cast<unsigned char>(t[2])) && t[3] == ':' && std::isdigit(static_cast<unsigned char>(t[4])) &&
         std::isdigit(static_cast<unsigned char>(t[5]));
}

struct DateFlags {
  bool unixepoch = false;
  bool subsecond = false;
};

// The modifier arguments: none, 'unixepoch' [, 'subsec'|'subsecond'], or 'subsec'|'subsecond'.
bool parse_flags(const Value* const* args, size_t argc, DateFlags& flags) {
  auto is = [](const Value* v, const char* s) { return v->is_text() && v->as_text() == s; };
  const Value* spec = argc > 1 ? args[1] : nullptr;
  const Value* spec2 = argc > 2 ? args[2] : nullptr;
  if (spec == nullptr || spec->is_null()) return true;
  if (is(spec, "unixepoch")) {
    flags.unixepoch = true;
    if (spec2 == nullptr || spec2->is_null()) return true;
    if (is(spec2, "subsec") || is(spec2, "subsecond")) {
      flags.subsecond = true;
      return true;
    }
    return false;
  }
  if (is(spec, "subsec") || is(spec, "subsecond")) {
    flags.subsecond = true;
    return true;
  }
  return false;
}

std::optional<double> to_epoch_ms(const Value& v, const DateFlags& flags) {
  if (v.is_text()) {
    const std::string& s = v.as_text();
    if (has_time_zone(s)) return DateText(s).parse();
    if (is_julian_text(s)) return julian_to_ms(sql::parse_float_prefix(s));
    std::string with_zone = s + "Z";
    return DateText(with_zone).parse();
  }
  if (v.is_integer() || v.is_real()) {
    double x = v.is_integer() ? static_cast<double>(v.as_integer()) : v.as_real();
    if (flags.unixepoch) return time_clip(x * 1000.0);
    return julian_to_ms(x);
  }
  return std::nullopt;
}

std::optional<double> epoch_of_args(const Value* const* args, size_t argc, DateFlags& flags) {
  if (argc == 0 || args[0]->is_null()) return std::nullopt;
  if (!parse_flags(args, argc, flags)) return std::nullopt;
  return to_epoch_ms(*args[0], flags);
}

}  // namespace

Value unixepoch(const Value* const* args, size_t argc) {
  DateFlags flags;
  auto ms = epoch_of_args(args, argc, flags);
  if (!ms) return Value::null();
  if (flags.subsecond) return Value::real(*ms / 1000.0);
  return Value::integer(static_cast<int64_t>(std::floor(*ms / 1000.0)));
}

// Date#toISOString, then the reference's edits: 'T' -> ' ', "-0..." year -> "-...", and the
// fraction kept only with 'subsec'.
Value datetime(const Value* const* args, size_t argc) {
  DateFlags flags;
  auto ms = epoch_of_args(args, argc, flags);
  if (!ms) return Value::null();
  int64_t total = static_cast<int64_t>(*ms);
  int64_t days = total >= 0 ? total / 86400000 : -((-total + 86399999) / 86400000);
  int64_t in_day = total - days * 86400000;
  int64_t year;
  int month, day;
  civil_from_days(days, year, month, day);
  char date[32];
  if (year >= 0 && year <= 9999) std::snprintf(date, sizeof date, "%04lld", static_cast<long long>(year));
  else if (year < 0) std::snprintf(date, sizeof date, "-%lld", static_cast<long long>(-year));
  else std::snprintf(date, sizeof date, "+%06lld", static_cast<long long>(year));
  char out[96];
  int h = static_cast<int>(in_day / 3600000), mi = static_cast<int>(in_day / 60000 % 60);
  int sec = static_cast<int>(in_day / 1000 % 60), milli = static_cast<int>(in_day % 1000);
  if (flags.subsecond)
    std::snprintf(out, sizeof out, "%s-%02d-%02d %02d:%02d:%02d.%03d", date, month, day, h, mi, sec, milli);
  else
    std::snprintf(out, sizeof out, "%s-%02d-%02d %02d:%02d:%02d", date, month, day, h, mi, sec);
  return Value::text(out);
}

}  // namespace powersync::rules::functions
