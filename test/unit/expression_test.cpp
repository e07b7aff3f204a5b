// Unit tests of the expression compiler/evaluator API: name resolution and dependency
// classification per scope, compile errors with offsets, evaluation against rows, bucket
// parameters and requests, and the shared value helpers. (Function-by-function semantics are
// covered by the conformance cases in test/conformance/cases/sql_*.yaml.)
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "powersync/error.h"
#include "powersync/rules/expression.h"

namespace powersync::rules {
namespace {

ExpressionScope data_scope() {
  ExpressionScope s;
  s.row_qualifiers = {"lists", "l"};
  s.allow_bucket_parameters = true;
  return s;
}

ExpressionScope parameter_scope() {
  ExpressionScope s;
  s.row_qualifiers = {"users"};
  s.allow_request = true;
  return s;
}

ExpressionScope static_scope() {
  ExpressionScope s;
  s.allow_row_columns = false;
  s.allow_request = true;
  return s;
}

std::unique_ptr<Expression> compile_ok(const std::string& sql, const ExpressionScope& scope) {
  auto r = compile_expression_text(sql, scope);
  EXPECT_TRUE(r.ok()) << sql << ": " << (r.error ? r.error->message : "");
  return std::move(r.expression);
}

ParseError compile_error(const std::string& sql, const ExpressionScope& scope) {
  auto r = compile_expression_text(sql, scope);
  EXPECT_FALSE(r.ok()) << sql;
  return r.error.value_or(ParseError{"<compiled>", 0});
}

TEST(ExpressionDependencies, ClassifiesRowBucketRequestAndStatic) {
  auto e = compile_ok("upper(l.name) || owner_id", data_scope());
  EXPECT_TRUE(e->dependencies().row);
  EXPECT_FALSE(e->dependencies().request);
  EXPECT_EQ(e->dependencies().columns, (std::vector<std::string>{"name", "owner_id"}));

  // Bucket parameters may only be compared (=, IN), not used inside other expressions.
  EXPECT_EQ(compile_error("owner_id = bucket.user_id AND bucket.user_id IS NOT NULL", data_scope()).message,
            "Cannot use bucket parameters in expressions");
  e = compile_ok("owner_id = bucket.user_id AND lists.archived = 0", data_scope());
  EXPECT_TRUE(e->dependencies().bucket);
  EXPECT_EQ(e->dependencies().bucket_parameters, (std::vector<std::string>{"user_id"}));
  EXPECT_EQ(e->dependencies().columns, (std::vector<std::string>{"owner_id", "archived"}));

  e = compile_ok("users.id = request.user_id()", parameter_scope());
  EXPECT_TRUE(e->dependencies().row);
  EXPECT_TRUE(e->dependencies().request);
  EXPECT_FALSE(e->dependencies().client_parameters);

  e = compile_ok("request.parameter('p')", parameter_scope());
  EXPECT_TRUE(e->dependencies().client_parameters);
  e = compile_ok("user_parameters.p", parameter_scope());
  EXPECT_TRUE(e->dependencies().client_parameters);
  e = compile_ok("token_parameters.p", parameter_scope());
  EXPECT_FALSE(e->dependencies().client_parameters);

  e = compile_ok("upper('a') || 1", data_scope());
  EXPECT_TRUE(e->dependencies().is_static());
  EXPECT_EQ(e->evaluate({}).as_text(), "A1");
}

TEST(ExpressionCompile, RejectsNamesOutsideTheirScope) {
  auto err = compile_error("request.user_id()", data_scope());
  EXPECT_EQ(err.message, "request.user_id() is only available in parameter queries");
  err = compile_error("token_parameters.x", data_scope());
  EXPECT_NE(err.message.find("only available in parameter queries"), std::string::npos);
  err = compile_error("bucket.x", parameter_scope());
  EXPECT_NE(err.message.find("only available in data queries"), std::string::npos);
  err = compile_error("id", static_scope());
  EXPECT_NE(err.message.find("Undefined reference: id"), std::string::npos);
  err = compile_error("a = other.id", data_scope());
  EXPECT_EQ(err.message, "Undefined reference: other.id");
  EXPECT_EQ(err.offset, 4u);
}

TEST(ExpressionCompile, ErrorsCarryOffsets) {
  auto err = compile_error("lower(x) || nope(1)", data_scope());
  EXPECT_EQ(err.message, "Function 'nope' is not defined");
  EXPECT_EQ(err.offset, 12u);
  err = compile_error("1 + upper(1, 2)", data_scope());
  EXPECT_EQ(err.message, "Function 'upper' takes 1 argument, got 2");
  EXPECT_EQ(err.offset, 4u);
  err = compile_error("substring('a')", data_scope());
  EXPECT_EQ(err.message, "Function 'substring' takes 2 to 3 arguments, got 1");
  err = compile_error("upper(users.name) = lower(request.user_id() || users.id)", parameter_scope());
  EXPECT_EQ(err.message, "Cannot use table values and parameters in the same clauses");
  EXPECT_EQ(err.offset, 47u);  // the row operand mixed into a request expression
  err = compile_error("x = 1 AND (bucket.a = bucket.b)", data_scope());
  EXPECT_EQ(err.message, "Cannot have bucket parameters on both sides of = operator");
  EXPECT_EQ(err.offset, 20u);
  err = compile_error("upper(bucket.a) = x", data_scope());
  EXPECT_EQ(err.message, "Cannot use bucket parameters in expressions");
  EXPECT_EQ(err.offset, 6u);
  err = compile_error("x -> y", data_scope());
  EXPECT_EQ(err.offset, 5u);
  err = compile_error("a NOT IN '[1]'", data_scope());
  EXPECT_NE(err.message.find("NOT IN"), std::string::npos);
  err = compile_error("CAST(a AS varchar)", data_scope());
  EXPECT_EQ(err.message, "CAST not supported for 'varchar' (use text, numeric, integer, real or blob)");
  err = compile_error("a +", data_scope());  // parse errors come through compile_expression_text
  EXPECT_EQ(err.offset, 3u);
}

TEST(ExpressionEvaluate, RowColumnsByNameWhateverTheLayout) {
  auto e = compile_ok("name || ':' || id", data_scope());
  Row a = {{"id", Value::text("1")}, {"name", Value::text("x")}};
  Row b = {{"name", Value::text("y")}, {"other", Value::null()}, {"id", Value::integer(2)}};
  Row c = {{"id", Value::integer(3)}};
  EXPECT_EQ(e->evaluate({&a}).as_text(), "x:1");
  EXPECT_EQ(e->evaluate({&b}).as_text(), "y:2");
  EXPECT_EQ(e->evaluate({&a}).as_text(), "x:1");
  EXPECT_TRUE(e->evaluate({&c}).is_null());  // missing column is NULL, so the concatenation is NULL
}

TEST(ExpressionEvaluate, WhereTruthinessAndBucketParameters) {
  auto e = compile_ok("owner_id = bucket.user_id AND NOT archived", data_scope());
  Row row = {{"owner_id", Value::text("u1")}, {"archived", Value::integer(0)}};
  Row bucket = {{"user_id", Value::text("u1")}};
  Row other = {{"user_id", Value::text("u2")}};
  EXPECT_TRUE(e->evaluate_truthy({&row, nullptr, &bucket}));
  EXPECT_FALSE(e->evaluate_truthy({&row, nullptr, &other}));
  auto w = compile_ok("'12abc'", data_scope());
  EXPECT_TRUE(w->evaluate_truthy({}));
  EXPECT_FALSE(compile_ok("NULL", data_scope())->evaluate_truthy({}));
}

TEST(ExpressionEvaluate, RequestValues) {
  RequestContext request(nlohmann::json{{"sub", "u1"}, {"parameters", {{"org", "o1"}, {"user_id", "spoof"}}}},
                         nlohmann::json{{"project", "p1"}, {"n", 2.0}, {"list", {1, 2}}});
  EvalContext ctx{nullptr, &request, nullptr};
  EXPECT_EQ(compile_ok("request.user_id()", static_scope())->evaluate(ctx).as_text(), "u1");
  EXPECT_EQ(compile_ok("token_parameters.user_id", static_scope())->evaluate(ctx).as_text(), "u1");
  EXPECT_EQ(compile_ok("token_parameters.org", static_scope())->evaluate(ctx).as_text(), "o1");
  EXPECT_EQ(compile_ok("user_parameters.n", static_scope())->evaluate(ctx), Value::integer(2));
  EXPECT_EQ(compile_ok("user_parameters.list", static_scope())->evaluate(ctx).as_text(), "[1,2]");
  EXPECT_EQ(compile_ok("request.parameters() ->> 'project'", static_scope())->evaluate(ctx).as_text(), "p1");
  EXPECT_EQ(compile_ok("request.jwt() ->> 'parameters.org'", static_scope())->evaluate(ctx).as_text(), "o1");
  EXPECT_TRUE(compile_ok("request.parameter('nope')", static_scope())->evaluate(ctx).is_null());
  RequestContext anonymous;
  EXPECT_TRUE(compile_ok("request.user_id()", static_scope())->evaluate({nullptr, &anonymous}).is_null());
  EXPECT_EQ(anonymous.jwt_json(), "{}");
  // Evaluating request-dependent code without a request is a programming error, not a crash.
  EXPECT_THROW(compile_ok("request.user_id()", static_scope())->evaluate({}), Error);
}

TEST(ExpressionEvaluate, RuntimeErrorsAreInvalidInput) {
  auto e = compile_ok("x IN y", data_scope());
  Row row = {{"x", Value::text("a")}, {"y", Value::text("not json")}};
  try {
    e->evaluate({&row});
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_EQ(err.kind(), Error::Kind::InvalidInput);
    EXPECT_NE(std::string(err.what()).find("not a JSON array"), std::string::npos);
  }
  // A constant that fails is not folded at compile time: it fails at evaluation.
  auto bad = compile_ok("json_extract('{', '$.a')", data_scope());
  EXPECT_THROW(bad->evaluate({}), Error);
}

TEST(ExpressionEvaluate, DeeplyNestedJsonDoesNotCrash) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  Row row = {{"j", Value::text("{\"a\":" + deep + "}")}};
  auto e = compile_ok("j -> 'a'", data_scope());
  EXPECT_THROW(e->evaluate({&row}), Error);
  auto v = compile_ok("json_valid(j)", data_scope());
  EXPECT_NO_THROW(v->evaluate({&row}));
}

TEST(ValueHelpers, TruthinessComparisonAndCasts) {
  EXPECT_TRUE(is_truthy(Value::text(" 12x")));
  EXPECT_FALSE(is_truthy(Value::text("x12")));
  EXPECT_FALSE(is_truthy(Value::real(std::nan(""))));
  EXPECT_FALSE(is_truthy(Value::blob("1")));
  EXPECT_EQ(compare_values(Value::integer(1), Value::real(1.0)), 0);
  EXPECT_LT(compare_values(Value::integer(9007199254740992), Value::real(9007199254740993.0 + 2)), 0);
  EXPECT_GT(compare_values(Value::text(""), Value::integer(100)), 0);
  EXPECT_LT(compare_values(Value::text("z"), Value::blob("")), 0);
  EXPECT_THROW(compare_values(Value::blob("a"), Value::blob("a")), Error);
  EXPECT_EQ(cast_as_text(Value::real(314.0)), std::optional<std::string>("314"));
  EXPECT_EQ(cast_as_text(Value::integer(-5)), std::optional<std::string>("-5"));
  EXPECT_EQ(cast_as_text(Value::null()), std::nullopt);
  EXPECT_EQ(cast_value(Value::text("12.5x"), "numeric"), std::optional<Value>(Value::real(12.5)));
  EXPECT_EQ(cast_value(Value::text("x"), "int"), std::nullopt);
  EXPECT_STREQ(sqlite_type_name(Value::blob("")), "blob");
}

TEST(ValueHelpers, JsonArrayValuesAndJsonEach) {
  auto values = json_array_values(Value::text("[1, 2.5, \"a\", true, null, [1], {\"k\":1}]"));
  ASSERT_EQ(values.size(), 7u);
  EXPECT_EQ(values[0], Value::integer(1));
  EXPECT_EQ(values[1], Value::real(2.5));
  EXPECT_EQ(values[2], Value::text("a"));
  EXPECT_EQ(values[3], Value::integer(1));
  EXPECT_TRUE(values[4].is_null());
  EXPECT_EQ(values[5], Value::text("[1]"));
  EXPECT_EQ(values[6], Value::text("{\"k\":1}"));
  EXPECT_THROW(json_array_values(Value::text("{}")), Error);
  EXPECT_THROW(json_array_values(Value::integer(1)), Error);

  auto rows = json_each_rows(Value::text("[\"a\", 2, null, {\"x\":1}]"));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0][0].name, "key");
  EXPECT_EQ(rows[0][0].value, Value::integer(0));
  EXPECT_EQ(rows[0][1].value, Value::text("a"));
  EXPECT_EQ(rows[1][1].value, Value::real(2));           // plain JSON.parse: numbers are REAL
  EXPECT_EQ(rows[2][1].value, Value::text("null"));      // edition-1 JSON null
  EXPECT_EQ(rows[3][1].value, Value::text("{\"x\":1.0}"));
  rows = json_each_rows(Value::text("{\"b\":1,\"a\":\"x\"}"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0].value, Value::text("b"));
  EXPECT_EQ(rows[1][1].value, Value::text("x"));
  rows = json_each_rows(Value::text("\"s\""));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0][0].value.is_null());
  EXPECT_TRUE(json_each_rows(Value::null()).empty());
  EXPECT_THROW(json_each_rows(Value::text("[")), Error);
  EXPECT_THROW(json_each_rows(Value::integer(1)), Error);
}

}  // namespace
}  // namespace powersync::rules
