// The scalar SQL functions of sync rules (spec §4.5, `generateSqlFunctions` of the reference) and
// JSON extraction shared with the -> / ->> operators. Internal to src/rules.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "powersync/rules/value.h"

namespace powersync::rules::functions {

// Arguments are passed as pointers so callers can hand out row values without copying.
using ScalarFn = Value (*)(const Value* const* args, size_t argc);

struct FunctionDef {
  const char* name;
  int min_args;
  int max_args;
  ScalarFn fn;
};

// nullptr when no such function exists.
const FunctionDef* find(std::string_view name);

enum class ExtractMode { Arrow, Arrow2, JsonExtract };
// jsonExtract of the reference: `json` cast to text and parsed; `components` from json::split_path.
// json_extract() additionally requires a path starting with '$' (checked after the NULL checks).
Value json_extract(const Value& json, const std::vector<std::string>& components, ExtractMode mode,
                   bool path_starts_with_dollar = true);

// Date functions (datetime.cpp) and geometry functions (geometry.cpp).
Value unixepoch(const Value* const* args, size_t argc);
Value datetime(const Value* const* args, size_t argc);
Value st_asgeojson(const Value* const* args, size_t argc);
Value st_astext(const Value* const* args, size_t argc);
Value st_x(const Value* const* args, size_t argc);
Value st_y(const Value* const* args, size_t argc);

}  // namespace powersync::rules::functions
