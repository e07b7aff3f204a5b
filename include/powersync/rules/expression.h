// Compiled sync-rules expressions (spec §4.5, edition 1): compile an ast::Expr once (names resolved,
// functions bound, constant JSON paths pre-split), classify what it reads (row columns, bucket.*
// parameters, request values) and evaluate it quickly against a row and/or a request.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "powersync/rules/ast.h"
#include "powersync/rules/parser.h"
#include "powersync/rules/value.h"

namespace powersync::rules {

// Request-side values of one sync request, converted once: `request.user_id()` (JWT `sub`),
// `request.jwt()` / `request.parameters()` (JSON text), `request.parameter('k')`,
// `token_parameters.<k>` (JWT claim `parameters.<k>`, `user_id` = sub) and `user_parameters.<k>`.
class RequestContext {
 public:
  RequestContext();  // no claims, no parameters
  RequestContext(const nlohmann::json& token_claims, const nlohmann::json& client_parameters);
  // Same from JSON object texts, keeping their key order (request.jwt() / request.parameters()
  // text then matches the reference byte for byte). Throws powersync::Error for non-object text.
  static RequestContext from_json_text(std::string_view token_claims_json, std::string_view client_parameters_json);
  ~RequestContext();
  RequestContext(RequestContext&&) noexcept;
  RequestContext& operator=(RequestContext&&) noexcept;

  const Value& user_id() const;
  const std::string& jwt_json() const;
  const std::string& parameters_json() const;
  Value token_parameter(std::string_view name) const;  // NULL when absent
  Value user_parameter(std::string_view name) const;   // NULL when absent
  Value parameter(const Value& path) const;            // request.parameter(path): fixed ->> semantics

 private:
  void init(nlohmann::ordered_json token_claims, nlohmann::ordered_json client_parameters);
  struct Data;
  std::unique_ptr<Data> data_;
};

// Where the names an expression may use come from.
struct ExpressionScope {
  // Qualifiers naming the source row, e.g. {"lists"} or {"lists", "l"} (alias), {"json_each"}.
  // Unqualified column names are row columns when allow_row_columns is set.
  std::vector<std::string> row_qualifiers;
  bool allow_row_columns = true;
  bool allow_bucket_parameters = false;  // data queries: bucket.<name>
  bool allow_request = false;            // parameter queries: request.*(), token_parameters.*, user_parameters.*
};

// What an expression reads. An expression with none of row/bucket/request is static (constant).
struct ExpressionDependencies {
  bool row = false;
  bool bucket = false;
  bool request = false;
  // request.parameters(), request.parameter() or user_parameters.*: client-controlled values
  // (used for the "potentially dangerous query" warning).
  bool client_parameters = false;
  std::vector<std::string> columns;            // distinct row column names, in first-use order
  std::vector<std::string> bucket_parameters;  // distinct bucket.<name> names, in first-use order
  bool is_static() const { return !row && !bucket && !request; }
};

// Inputs to one evaluation. Only what the expression's dependencies need must be set; a missing
// row column evaluates to NULL.
struct EvalContext {
  const Row* row = nullptr;
  const RequestContext* request = nullptr;
  const Row* bucket_parameters = nullptr;  // bucket.<name> -> column <name>
};

namespace detail {
struct Node;
}

class Expression {
 public:
  ~Expression();
  Expression(Expression&&) noexcept;
  Expression& operator=(Expression&&) noexcept;

  // Evaluates to a value. Throws powersync::Error (InvalidInput) for run-time errors of the
  // reference semantics, e.g. IN against a value that is not a JSON array, invalid JSON text.
  Value evaluate(const EvalContext& ctx) const;
  // Same without copying the result: it is `scratch`, a value of ctx's rows or a constant of this
  // expression, valid while those live and `scratch` is unchanged.
  const Value& evaluate_ref(const EvalContext& ctx, Value& scratch) const;
  // SQLite truthiness of the result (WHERE clauses): NULL -> false.
  bool evaluate_truthy(const EvalContext& ctx) const;

  const ExpressionDependencies& dependencies() const { return deps_; }
  size_t offset() const { return offset_; }
  const std::string& source() const { return source_; }  // normalised SQL text, for messages

 private:
  friend struct ExpressionCompiler;
  Expression();
  std::unique_ptr<detail::Node> root_;
  ExpressionDependencies deps_;
  size_t offset_ = 0;
  std::string source_;
};

struct CompileResult {
  std::unique_ptr<Expression> expression;  // set on success
  std::optional<ParseError> error;         // unknown function, wrong arity, name not allowed here, ...
  bool ok() const { return expression != nullptr; }
};

// Compiles an expression. Errors carry the byte offset of the offending node in the query text.
// Function calls mixing row values and request values are rejected (spec §4.5).
CompileResult compile_expression(const ast::Expr& expr, const ExpressionScope& scope);

// Parses and compiles a standalone expression (tests, conformance cases).
CompileResult compile_expression_text(std::string_view sql, const ExpressionScope& scope);

// ---- value helpers shared with the query layer (SQLite / reference-service semantics) ----

// Truthiness: NULL -> false, numbers -> != 0, TEXT -> leading integer parse != 0, BLOB -> false.
bool is_truthy(const Value& v);
// Comparison used by = < > etc. (both non-NULL): numbers numerically, TEXT by UTF-16 code units,
// otherwise by type rank NULL < numeric < TEXT < BLOB. Throws when comparing two BLOBs.
int compare_values(const Value& a, const Value& b);
// CAST(v AS TEXT): NULL -> nullopt; REAL uses JavaScript number formatting (1.0 -> "1").
std::optional<std::string> cast_as_text(const Value& v);
// CAST(v AS type) for type in text|numeric|integer|real|blob; returns nullopt for other types.
std::optional<Value> cast_value(const Value& v, std::string_view type);
// "null", "integer", "real", "text" or "blob".
const char* sqlite_type_name(const Value& v);

// Parses JSON-array text into sync values (IN semantics: integers -> INTEGER, other numbers ->
// REAL, booleans -> 1/0, strings -> TEXT, null -> NULL, nested -> JSON text). Throws
// powersync::Error (InvalidInput) when `json` is not TEXT holding a JSON array.
std::vector<Value> json_array_values(const Value& json);

// json_each(json) rows, each {key, value}: arrays give key = index (INTEGER), objects key = member
// name (TEXT), scalars one row with key NULL. NULL input gives no rows. Legacy value conversion
// (JSON null -> TEXT 'null'). Throws powersync::Error for non-text or invalid JSON.
std::vector<Row> json_each_rows(const Value& json);

}  // namespace powersync::rules
