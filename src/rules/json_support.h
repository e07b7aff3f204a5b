// JSON as the reference service sees it (JSONBig): parse with integers kept exact, stringify with
// JavaScript key order and number formatting, JS property access for paths, and JSON -> sync value
// conversion. Internal to src/rules.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "powersync/rules/value.h"

namespace powersync::rules::json {

using Json = nlohmann::ordered_json;
using Member = Json::object_t::value_type;  // (key, value) pair of an object

// Parses JSON text; returns false (out unspecified) when the text is not valid JSON. Like JSONBig,
// duplicate object keys make the text invalid unless reject_duplicate_keys is false (JSON.parse).
bool parse(std::string_view text, Json& out, bool reject_duplicate_keys = true);
// Parses or throws powersync::Error(InvalidInput) "Invalid JSON text".
Json parse_or_throw(std::string_view text);

// JSONBig.stringify: compact, object keys in JavaScript order (array-index keys first, ascending),
// integers as digits, other numbers via Number#toString with `.0` added to integral values.
void stringify(const Json& j, std::string& out);
std::string stringify(const Json& j);

// Object members in JavaScript enumeration order.
std::vector<const Member*> ordered_members(const Json& object);

// How a JSON null becomes a sync value: edition-1 `->>`/json_extract/json_each give the TEXT
// 'null'; the fixed behaviour (request.parameter(), IN arrays) gives NULL.
enum class NullMode { LegacyText, SqlNull };
// jsonValueToSqlite: booleans 1/0, integers INTEGER, other numbers REAL, strings TEXT,
// arrays/objects JSON text, null per `mode`.
Value to_value(const Json& j, NullMode mode);

// One step of a JS property access `value[key]`. Returns false for `undefined`. `scratch` holds
// values that do not exist in `value` itself (string characters, array/string length).
bool member(const Json& value, const std::string& key, Json& scratch, const Json*& result);

// Splits a JSON path the way the reference does. legacy: a path not starting with `$` is split on
// `.` too; fixed: such a path is one key. A path starting with `$` drops its first component.
std::vector<std::string> split_path(std::string_view path, bool fixed);

// Follows `components` from `root` like the reference's loop: stops (keeping the JSON null) when it
// reaches null, returns nullptr when a step is undefined. `scratch` must outlive the result.
const Json* follow_path(const Json& root, const std::vector<std::string>& components, Json& scratch);

}  // namespace powersync::rules::json
