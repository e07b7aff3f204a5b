// Conformance runner helpers: typed sync values, rows and JSON written as YAML in case files
// (format: test/conformance/README.md).
#pragma once

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <string>

#include "powersync/rules/sync_rules.h"
#include "powersync/rules/value.h"

namespace conformance {

// A YAML scalar/mapping/sequence as a sync value (README "Typed values"). Throws std::runtime_error.
powersync::rules::Value typed_value(const YAML::Node& node);
// A mapping of column names to typed values, in document order.
powersync::rules::Row typed_row(const YAML::Node& node);
// YAML as JSON (plain scalars typed by the YAML core schema, quoted scalars are strings).
nlohmann::json to_json(const YAML::Node& node);
// Human-readable form for failure messages, e.g. `INTEGER 3`, `TEXT "a"`, `NULL`.
std::string describe(const powersync::rules::Value& v);
// Type and value equality (REAL compared exactly; NaN equals NaN).
bool same_value(const powersync::rules::Value& a, const powersync::rules::Value& b);
// "t" -> public.t, "s.t" -> s.t
powersync::rules::SourceTable source_table(const std::string& text);

}  // namespace conformance
