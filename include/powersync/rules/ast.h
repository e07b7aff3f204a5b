// Syntax tree of the sync-rules SQL subset (spec §4.2): one SELECT statement with a single FROM
// source and expressions. Every node keeps the byte offset of its first token in the query text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace powersync::rules::ast {

// A name as written: unquoted names are folded to lower case; `had_upper_case` records that the
// source spelled an unquoted name with upper-case letters (the validator warns: use "Name").
struct Identifier {
  std::string name;
  bool quoted = false;
  bool had_upper_case = false;
  size_t offset = 0;
};

enum class ExprKind {
  Literal,   // literal_kind + value fields
  Column,    // [qualifier.]name, e.g. `id`, `users.id`, `bucket.user_id`, `token_parameters.x`
  Function,  // [qualifier.]name(args...), e.g. `upper(x)`, `request.user_id()`
  Unary,     // unary_op operand[0]
  Binary,    // operand[0] binary_op operand[1]
  IsNull,    // operand[0] IS [NOT] NULL (negated = IS NOT NULL)
  Cast,      // CAST(operand[0] AS cast_type) or operand[0]::cast_type
};

enum class LiteralKind { Integer, Real, Text, True, False, Null };

enum class UnaryOp { Not, Negate, Plus };

enum class BinaryOp {
  Eq,         // =
  NotEq,      // != or <>
  Lt, Gt, LtEq, GtEq,
  And, Or,
  Add, Sub, Mul, Div,
  Concat,     // ||
  JsonArrow,  // ->
  JsonArrow2, // ->>
  In,         // a IN b   (b: an expression, legacy: JSON-array text)
  NotIn,      // a NOT IN b  (parsed so the validator can reject it with a clear message)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::Literal;
  size_t offset = 0;  // byte offset of the node's first character (operators: of the operator token)
  int height = 1;     // nesting height of this subtree; the parser keeps it <= kMaxExpressionDepth

  // Literal
  LiteralKind literal_kind = LiteralKind::Null;
  int64_t integer_value = 0;
  double real_value = 0;
  std::string text_value;  // Text literal contents (unescaped); for numbers the source spelling

  // Column / Function: qualifier is empty when absent.
  std::optional<Identifier> qualifier;
  Identifier name;

  // Unary / Binary / IsNull / Cast / Function arguments.
  std::vector<ExprPtr> operands;
  UnaryOp unary_op = UnaryOp::Not;
  BinaryOp binary_op = BinaryOp::Eq;
  bool negated = false;     // IsNull: IS NOT NULL
  std::string cast_type;    // Cast: lower-case type name, e.g. "text", "integer"
  bool cast_is_double_colon = false;
};

struct SelectItem {
  enum class Kind { Star, QualifiedStar, Expression };
  Kind kind = Kind::Expression;
  size_t offset = 0;
  std::optional<Identifier> qualifier;  // QualifiedStar: `table` in `table.*`
  ExprPtr expr;                         // Expression
  std::optional<Identifier> alias;      // `expr AS alias` or `expr alias`
};

// The FROM source: a table (`table`, `schema.table`, `"tag.schema".table`) or a table-valued
// function call such as `json_each(expr)`, each with an optional alias.
struct TableRef {
  size_t offset = 0;
  std::optional<Identifier> schema;
  Identifier name;          // table name, or function name for a table-valued function
  ExprPtr function;         // set for a table-valued function call (ExprKind::Function)
  std::optional<Identifier> alias;
  bool is_function() const { return function != nullptr; }
};

struct SelectStatement {
  size_t offset = 0;
  std::vector<SelectItem> columns;
  std::optional<TableRef> from;
  ExprPtr where;  // null when there is no WHERE
};

// Helpers for readable tests and error messages.
const char* binary_op_symbol(BinaryOp op);  // "=", "->>", "IN", ...
// Renders an expression back to SQL-like text (normalised: lower-case names, minimal spacing).
std::string to_sql(const Expr& expr);

}  // namespace powersync::rules::ast
