// Scalar functions of sync rules, edition 1 (`generateSqlFunctions` in the reference's
// sql_functions.ts): text, blob, JSON and type functions. Dates and geometry live in
// datetime.cpp and geometry.cpp.
#include "functions.h"

#include <cctype>
#include <cmath>
#include <cstring>

#include "json_support.h"
#include "powersync/error.h"
#include "powersync/rules/expression.h"
#include "sql_values.h"
#include "text_utils.h"

namespace powersync::rules::functions {
namespace {

using Args = const Value* const*;

Value fn_upper(Args a, size_t) {
  if (a[0]->is_null()) return Value::null();
  return Value::text(a[0]->is_text() ? text::to_upper(a[0]->as_text()) : text::to_upper(sql::to_text(*a[0])));
}

Value fn_lower(Args a, size_t) {
  if (a[0]->is_null()) return Value::null();
  return Value::text(a[0]->is_text() ? text::to_lower(a[0]->as_text()) : text::to_lower(sql::to_text(*a[0])));
}

// String.prototype.substring(start, end) over UTF-16 units: clamps to [0, len], swaps if reversed.
std::string js_substring(const std::string& s, double start, double end) {
  std::u16string u = text::to_utf16(s);
  double len = static_cast<double>(u.size());
  auto clamp = [len](double x) { return std::isnan(x) ? 0.0 : x < 0 ? 0.0 : x > len ? len : x; };
  double a = clamp(start), b = clamp(end);
  if (a > b) std::swap(a, b);
  return text::from_utf16(std::u16string_view(u).substr(static_cast<size_t>(a), static_cast<size_t>(b - a)));
}

// SQLite substr() semantics as the reference implements them: 1-based start, 0 is "before the
// first character", negative start counts from the end, negative length takes characters before.
Value fn_substring(Args a, size_t argc) {
  if (a[0]->is_null()) return Value::null();
  std::string s = sql::to_text(*a[0]);
  if (a[1]->is_null()) return Value::null();
  if (argc > 2 && a[2]->is_null()) return Value::null();
  double start = static_cast<double>(sql::to_integer(*a[1]).as_integer());
  double text_len = static_cast<double>(text::utf16_length(s));
  double length = argc > 2 ? static_cast<double>(sql::to_integer(*a[2]).as_integer()) : text_len + 1;
  double real_start;
  if (start < 0) {
    real_start = std::max(0.0, text_len + start);
  } else if (start == 0) {
    real_start = 0;
    length -= 1;
  } else {
    real_start = start - 1;
  }
  if (length < 0) return Value::text(js_substring(s, real_start + length, real_start));
  return Value::text(js_substring(s, real_start, real_start + length));
}

Value fn_hex(Args a, size_t) {
  if (a[0]->is_null()) return Value::text("");
  static const char kHex[] = "0123456789ABCDEF";
  std::string bytes = sql::to_blob_bytes(*a[0]);
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return Value::text(std::move(out));
}

Value fn_base64(Args a, size_t) {
  if (a[0]->is_null()) return Value::text("");
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes = sql::to_blob_bytes(*a[0]);
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(kAlphabet[(v >> (6 * k)) & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return Value::text(std::move(out));
}

Value fn_length(Args a, size_t) {
  const Value& v = *a[0];
  if (v.is_null()) return Value::null();
  if (v.is_blob()) return Value::integer(static_cast<int64_t>(v.as_blob().size()));
  if (v.is_text()) return Value::integer(static_cast<int64_t>(text::utf16_length(v.as_text())));
  return Value::integer(static_cast<int64_t>(sql::to_text(v).size()));
}

// The `uuid` package's validate(): RFC 9562 versions 1-8 with the RFC variant, plus nil and max.
bool valid_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  std::string lower = text::to_lower(s);
  if (lower == "00000000-0000-0000-0000-000000000000" || lower == "ffffffff-ffff-ffff-ffff-ffffffffffff") return true;
  char version = lower[14], variant = lower[19];
  return version >= '1' && version <= '8' && (variant == '8' || variant == '9' || variant == 'a' || variant == 'b');
}

Value fn_uuid_blob(Args a, size_t) {
  if (a[0]->is_null()) return Value::null();
  std::string s = sql::to_text(*a[0]);
  if (!valid_uuid(s)) throw invalid_input("Cannot call uuid_blob on a non UUID value");
  std::string bytes;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '-') {
      ++i;
      continue;
    }
    bytes.push_back(static_cast<char>(std::stoi(s.substr(i, 2), nullptr, 16)));
    i += 2;
  }
  return Value::blob(std::move(bytes));
}

Value fn_typeof(Args a, size_t) { return Value::text(sqlite_type_name(*a[0])); }

Value fn_ifnull(Args a, size_t) { return a[0]->is_null() ? *a[1] : *a[0]; }

Value fn_iif(Args a, size_t) { return is_truthy(*a[0]) ? *a[1] : *a[2]; }

Value fn_instr(Args a, size_t) {
  if (a[0]->is_null() || a[1]->is_null()) return Value::null();
  if (a[0]->is_blob() && a[1]->is_blob()) {
    size_t pos = a[0]->as_blob().find(a[1]->as_blob());
    return Value::integer(pos == std::string::npos ? 0 : static_cast<int64_t>(pos) + 1);
  }
  std::string haystack = sql::to_text(*a[0]), needle = sql::to_text(*a[1]);
  size_t pos = haystack.find(needle);
  if (pos == std::string::npos) return Value::integer(0);
  return Value::integer(static_cast<int64_t>(text::utf16_length(std::string_view(haystack).substr(0, pos))) + 1);
}

Value fn_json_extract(Args a, size_t) {
  if (a[0]->is_null() || a[1]->is_null()) return Value::null();
  std::string path = sql::to_text(*a[1]);
  return json_extract(*a[0], json::split_path(path, false), ExtractMode::JsonExtract, !path.empty() && path[0] == '$');
}

Value fn_json_array_length(Args a, size_t argc) {
  Value extracted;
  const Value* json = a[0];
  if (argc > 1 && !a[1]->is_null()) {
    extracted = fn_json_extract(a, 2);
    json = &extracted;
  }
  if (json->is_null()) return Value::null();
  json::Json parsed = json::parse_or_throw(sql::to_text(*json));
  return Value::integer(parsed.is_array() ? static_cast<int64_t>(parsed.size()) : 0);
}

Value fn_json_valid(Args a, size_t) {
  if (a[0]->is_null()) return Value::integer(0);
  json::Json parsed;
  return Value::integer(json::parse(sql::to_text(*a[0]), parsed) ? 1 : 0);
}

Value fn_json_keys(Args a, size_t) {
  if (a[0]->is_null()) return Value::null();
  json::Json parsed = json::parse_or_throw(sql::to_text(*a[0]));
  if (parsed.is_array()) throw invalid_input("Cannot call json_keys on an array");
  if (!parsed.is_object()) throw invalid_input("Cannot call json_keys on a scalar");
  json::Json keys = json::Json::array();
  for (const auto* m : json::ordered_members(parsed)) keys.push_back(m->first);
  return Value::text(json::stringify(keys));
}

// Sorted by name for binary search.
const FunctionDef kFunctions[] = {
    {"base64", 1, 1, fn_base64},
    {"datetime", 1, 3, datetime},
    {"hex", 1, 1, fn_hex},
    {"ifnull", 2, 2, fn_ifnull},
    {"iif", 3, 3, fn_iif},
    {"instr", 2, 2, fn_instr},
    {"json_array_length", 1, 2, fn_json_array_length},
    {"json_extract", 2, 2, fn_json_extract},
    {"json_keys", 1, 1, fn_json_keys},
    {"json_valid", 1, 1, fn_json_valid},
    {"length", 1, 1, fn_length},
    {"lower", 1, 1, fn_lower},
    {"st_asgeojson", 1, 1, st_asgeojson},
    {"st_astext", 1, 1, st_astext},
    {"st_x", 1, 1, st_x},
    {"st_y", 1, 1, st_y},
    {"substring", 2, 3, fn_substring},
    {"typeof", 1, 1, fn_typeof},
    {"unixepoch", 1, 3, unixepoch},
    {"upper", 1, 1, fn_upper},
    {"uuid_blob", 1, 1, fn_uuid_blob},
};

}  // namespace

const FunctionDef* find(std::string_view name) {
  for (const auto& f : kFunctions)
    if (name == f.name) return &f;
  return nullptr;
}

Value json_extract(const Value& source, const std::vector<std::string>& components, ExtractMode mode,
                   bool path_starts_with_dollar) {
  if (source.is_null()) return Value::null();
  json::Json root = json::parse_or_throw(sql::to_text(source));
  if (root.is_null()) return Value::null();
  if (mode == ExtractMode::JsonExtract && !path_starts_with_dollar) throw invalid_input("JSON path must start with $.");
  json::Json scratch;
  const json::Json* found = json::follow_path(root, components, scratch);
  if (mode == ExtractMode::Arrow) {
    if (found == nullptr || found->is_null()) return Value::null();
    return Value::text(json::stringify(*found));
  }
  if (found == nullptr) return Value::null();
  return json::to_value(*found, json::NullMode::LegacyText);
}

}  // namespace powersync::rules::functions
