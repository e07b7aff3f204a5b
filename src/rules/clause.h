// WHERE-clause compilation of sync rules queries (spec §4.3, §4.4): splits a condition into row-side
// and request/bucket-side parts and turns equalities and IN between them into "parameter matches"
// that, for a row, yield the parameter assignments under which the condition holds.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "powersync/rules/ast.h"
#include "powersync/rules/expression.h"
#include "powersync/rules/sync_rules.h"

namespace powersync::rules::detail {

// A problem found while compiling a query, at a byte offset of its SQL text.
struct QueryIssue {
  RuleIssue::Severity severity = RuleIssue::Severity::Error;
  std::string message;
  size_t offset = 0;
};

enum class QueryKind { Data, ParameterTable, ParameterStatic, ParameterTableValued };

// What a compiled (sub)expression depends on. Static values count as both row and parameter values.
enum class ClauseKind { Static, Row, Param, Match, Error };

// A request-side (parameter queries) or bucket-side (data queries) value a match compares against.
struct InputParameter {
  std::string key;                   // canonical text, e.g. "bucket.org_id", "request.user_id()"
  bool expands = false;              // `row_value IN request_array`: one lookup per array element
  bool as_boolean = false;           // a bare request condition: lookup value is its truthiness 1/0
  std::shared_ptr<Expression> value; // evaluated on the request (parameter queries)
  const ast::Expr* node = nullptr;   // for authentication analysis
};

// One way the condition holds: values for input parameter keys.
using Assignment = std::vector<std::pair<std::string, Value>>;

struct MatchNode {
  enum class Kind { RowFilter, ParamTrue, Equals, ParamInRowArray, RowInParamArray, And, Or };
  Kind kind = Kind::RowFilter;
  std::shared_ptr<Expression> row;  // row-side expression (RowFilter, Equals, ...InRowArray, RowIn...)
  std::string key;                  // input parameter key of the leaf
  std::unique_ptr<MatchNode> left, right;
};

struct Clause {
  ClauseKind kind = ClauseKind::Error;
  std::shared_ptr<Expression> expr;  // Static / Row / Param
  const ast::Expr* node = nullptr;   // Static / Row / Param: the source node
  std::string key;                   // Param / Static: canonical text
  // Match:
  std::unique_ptr<MatchNode> match;
  std::vector<InputParameter> inputs;
  bool unbounded = false;
  bool has_error = false;
};

// Compiles clauses for one query; issues go to `issues`.
class ClauseCompiler {
 public:
  ClauseCompiler(QueryKind kind, ExpressionScope scope, std::vector<QueryIssue>& issues)
      : kind_(kind), scope_(std::move(scope)), issues_(issues) {}

  Clause compile(const ast::Expr& e);
  // A WHERE clause (null = no WHERE, always true) as a Match clause.
  Clause compile_where(const ast::Expr* where);
  // Any clause as a match (row conditions filter, bare request conditions become `= TRUE` lookups).
  Clause to_match(Clause c);

  void error(std::string message, size_t offset) {
    issues_.push_back(QueryIssue{RuleIssue::Severity::Error, std::move(message), offset});
  }
  const ExpressionScope& scope() const { return scope_; }
  bool is_parameter_query() const { return kind_ != QueryKind::Data; }

 private:
  Clause compile_whole(const ast::Expr& e);
  Clause compile_and_or(const ast::Expr& e);
  Clause compile_equals(const ast::Expr& e);
  Clause compile_in(const ast::Expr& e);
  Clause combine_and(Clause a, Clause b, size_t offset);
  Clause combine_or(Clause a, Clause b, size_t offset);
  Clause error_clause(std::string message, size_t offset);
  InputParameter input_for(const Clause& param, bool expands);

  QueryKind kind_;
  ExpressionScope scope_;
  std::vector<QueryIssue>& issues_;
};

// Evaluates a Match clause on a row: every assignment under which the condition holds. Throws
// powersync::Error for run-time errors (e.g. IN over a value that is not a JSON array).
std::vector<Assignment> filter_row(const MatchNode& match, const EvalContext& ctx);

// Value of `key` in an assignment; nullptr when absent.
const Value* assigned(const Assignment& a, const std::string& key);

// Whether an expression reads authenticated request data (request.user_id(), request.jwt(),
// token_parameters.*) or client-controlled data (request.parameters(), request.parameter(),
// user_parameters.*).
bool reads_authenticated(const ast::Expr& e);
bool reads_client_parameters(const ast::Expr& e);
// For the "potentially dangerous" rule: does the match's request side use authenticated data
// (both sides of an OR must)?
bool match_authenticated(const MatchNode& match, const std::vector<InputParameter>& inputs);

// Warnings for unquoted identifiers spelled with upper case (folded to lower case).
void check_identifier_case(const ast::Expr& e, std::string_view sql, std::vector<QueryIssue>& issues);
void check_identifier_case(const ast::Identifier& id, std::string_view sql, std::vector<QueryIssue>& issues);

}  // namespace powersync::rules::detail
