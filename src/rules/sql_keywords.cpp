// Keyword tables of the sync-rules SQL subset (see sql_keywords.h).
#include "sql_keywords.h"

namespace powersync::rules {

const std::unordered_set<std::string>& reserved_words() {
  static const std::unordered_set<std::string> words = {
      "select", "from",   "where",  "as",     "and",    "or",      "not",   "in",    "is",     "null",
      "true",   "false",  "cast",   "join",   "inner",  "left",    "right", "full",  "outer",  "cross",
      "natural", "on",    "using",  "group",  "order",  "by",      "limit", "offset", "having", "distinct",
      "union",  "intersect", "except", "for", "case",   "when",    "then",  "else",  "end",    "like",
      "ilike",  "between", "exists", "with",  "all",    "window",  "fetch", "returning", "into", "lateral"};
  return words;
}

const char* unsupported_clause(const std::string& word) {
  if (word == "join" || word == "inner" || word == "left" || word == "right" || word == "full" ||
      word == "cross" || word == "natural" || word == "lateral")
    return "JOIN is not supported in sync rules (must SELECT from a single table)";
  if (word == "group") return "GROUP BY is not supported in sync rules";
  if (word == "order") return "ORDER BY is not supported in sync rules";
  if (word == "limit") return "LIMIT is not supported in sync rules";
  if (word == "offset") return "OFFSET is not supported in sync rules";
  if (word == "having") return "HAVING is not supported in sync rules";
  if (word == "for") return "FOR is not supported in sync rules";
  if (word == "fetch") return "FETCH is not supported in sync rules";
  if (word == "window") return "WINDOW is not supported in sync rules";
  if (word == "union" || word == "intersect" || word == "except")
    return "UNION, INTERSECT and EXCEPT are not supported in sync rules";
  if (word == "into") return "SELECT INTO is not supported in sync rules";
  if (word == "returning") return "RETURNING is not supported in sync rules";
  return nullptr;
}

}  // namespace powersync::rules
