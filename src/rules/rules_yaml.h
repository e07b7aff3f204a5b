// Reads the sync rules YAML document (edition 1) into bucket definitions and query texts that keep
// their source position, reporting structural problems as RuleIssues with YAML line/column.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "powersync/rules/sync_rules.h"

namespace powersync::rules::detail {

// Where a YAML scalar's text starts in the document and how it was written, so an offset inside
// the scalar's value can be mapped back to a line/column of the document.
struct ScalarLocation {
  size_t pos = 0;  // byte offset of the scalar token (quote, block indicator or first char)
  int line = 1;    // 1-based
  int col = 1;     // 1-based
};

struct QuerySource {
  std::string sql;
  ScalarLocation location;
};

struct DefinitionSource {
  std::string name;
  ScalarLocation location;  // of the definition's key
  std::optional<int> priority;
  bool accept_potentially_dangerous_queries = false;
  bool has_parameters = false;
  std::vector<QuerySource> parameters;
  std::vector<QuerySource> data;
};

struct EventSource {
  std::string name;
  ScalarLocation location;
  std::vector<QuerySource> payloads;
};

struct RulesSource {
  std::vector<DefinitionSource> definitions;
  std::vector<EventSource> events;
};

// Parses the document; structural issues are appended to `issues` (never throws on bad input).
RulesSource load_rules_yaml(std::string_view yaml, std::vector<RuleIssue>& issues);

// Maps a byte offset inside a scalar's (parsed) value to a 1-based line/column of the document.
// Handles plain, quoted and block scalars approximately (escapes, folding, indentation).
void locate_in_scalar(std::string_view yaml, const ScalarLocation& where, std::string_view value, size_t offset,
                      int& line, int& col);

}  // namespace powersync::rules::detail
