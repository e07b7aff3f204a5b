// Keyword tables of the sync-rules SQL subset: reserved words, and the valid-SQL clauses that sync
// rules reject (with the message to show). Internal to src/rules.
#pragma once

#include <string>
#include <unordered_set>

namespace powersync::rules {

// Words that end an expression or select item: never taken as an implicit alias or column name.
const std::unordered_set<std::string>& reserved_words();

// The user-facing message for a clause keyword sync rules do not support (JOIN, GROUP, LIMIT...),
// or nullptr when `word` starts no such clause.
const char* unsupported_clause(const std::string& word);

}  // namespace powersync::rules
