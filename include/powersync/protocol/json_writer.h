// JSON encoding of sync values exactly as the reference service produces it (spec §4.6, §4.10):
// JavaScript JSON.stringify string escaping and number formatting, row JSON (`data` of PUT ops,
// hashed into checksums) and bucket ids (`name["p1",2]`).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "powersync/rules/value.h"

namespace powersync::protocol {

// Appends `s` as a JSON string literal with JSON.stringify escaping: \" \\ \b \f \n \r \t, other
// control characters as \u00xx; everything else (non-ASCII UTF-8 included) verbatim.
void append_json_string(std::string& out, std::string_view s);
// Position of the first byte of `s` at or after `from` that append_json_string escapes (s.size() if none).
size_t next_escape(std::string_view s, size_t from);
// True for the bytes append_json_string escapes: control characters, '"' and '\\'.
inline bool byte_needs_escape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }
// True when one of the 8 bytes of `x` is escaped by append_json_string (a control character, '"'
// or '\\'): lets callers check text word by word while copying it.
inline bool word_needs_escape(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  const uint64_t control = (x - 0x20 * kOnes) & ~x & kHigh;  // some byte < 0x20
  const uint64_t q = x ^ (0x22 * kOnes), b = x ^ (0x5C * kOnes);
  return ((control | ((q - kOnes) & ~q) | ((b - kOnes) & ~b)) & kHigh) != 0;
}

// JavaScript Number.prototype.toString(): shortest round-trip digits, `1e+21`, `1.5e-7`, `-0` -> `0`,
// `NaN`, `Infinity`, `-Infinity`. Used for REAL -> TEXT casts.
std::string js_number_to_string(double v);
void append_js_number(std::string& out, double v);

// How a REAL is written inside JSON.
enum class RealFormat {
  RowJson,   // integral values keep their type: 314 -> `314.0` (JSONBig.stringify)
  Plain,     // like JSON.stringify: 1.0 -> `1` (bucket ids, lookups)
};

// Appends one value as JSON: NULL -> null, INTEGER exact digits, REAL per `format` (NaN/Infinity ->
// null, as they are not representable in JSON), TEXT as a string. BLOBs are not JSON values: they
// are written as null; callers that must drop them (rows) check first.
void append_json_value(std::string& out, const rules::Value& v, RealFormat format);

// Row JSON (`data` of a PUT op): `{"col":value,...}` in column order, no whitespace, BLOB columns
// dropped, integral REALs as `x.0`.
std::string encode_row_json(const rules::Row& row);

// JSON array of bucket parameter values: `["u1",2,1.5]` (REAL 1.0 -> `1`, so it equals INTEGER 1).
std::string serialize_bucket_parameters(const std::vector<rules::Value>& values);

// Full bucket id: prefix (e.g. "1#" or "") + definition name + serialized parameters.
std::string bucket_id(std::string_view prefix, std::string_view name, const std::vector<rules::Value>& values);

}  // namespace powersync::protocol
