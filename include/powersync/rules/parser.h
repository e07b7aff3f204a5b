// Recursive-descent parser for the sync-rules SQL subset (spec §4.2). Never throws on bad input:
// failures come back as a ParseError with the byte offset of the offending token.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "powersync/rules/ast.h"

namespace powersync::rules {

struct ParseError {
  std::string message;  // e.g. "JOIN is not supported in sync rules"
  size_t offset = 0;    // byte offset into the parsed text
};

struct SelectParseResult {
  std::unique_ptr<ast::SelectStatement> statement;  // set on success
  std::optional<ParseError> error;                   // set on failure
  bool ok() const { return statement != nullptr; }
};

struct ExpressionParseResult {
  ast::ExprPtr expr;
  std::optional<ParseError> error;
  bool ok() const { return expr != nullptr; }
};

// Parses one SELECT statement (an optional trailing `;` is allowed).
SelectParseResult parse_select(std::string_view sql);

// Parses one standalone expression, e.g. "upper('a') || 'b'" (tests and conformance cases).
ExpressionParseResult parse_expression(std::string_view sql);

// Maximum nesting depth of expressions; deeper input is rejected instead of exhausting the stack.
constexpr int kMaxExpressionDepth = 200;

}  // namespace powersync::rules
