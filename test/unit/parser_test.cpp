// Unit tests of the sync-rules SQL lexer/parser: accepted shapes, precedence, error messages and
// offsets, and robustness against hostile input.
#include <gtest/gtest.h>

#include <string>

#include "powersync/rules/parser.h"

namespace powersync::rules {
namespace {

std::string parsed(const std::string& expr) {
  auto r = parse_expression(expr);
  if (!r.ok()) return "error: " + r.error->message + " @" + std::to_string(r.error->offset);
  return ast::to_sql(*r.expr);
}

ParseError select_error(const std::string& sql) {
  auto r = parse_select(sql);
  EXPECT_FALSE(r.ok()) << sql;
  return r.error.value_or(ParseError{"<no error>", 0});
}

TEST(Parser, SimpleSelectWithAliasAndWhere) {
  auto r = parse_select("SELECT id, name AS n, upper(x) y FROM lists WHERE owner_id = bucket.user_id");
  ASSERT_TRUE(r.ok()) << r.error->message;
  const auto& s = *r.statement;
  ASSERT_EQ(s.columns.size(), 3u);
  EXPECT_EQ(s.columns[0].expr->name.name, "id");
  EXPECT_FALSE(s.columns[0].alias);
  EXPECT_EQ(s.columns[1].alias->name, "n");
  EXPECT_EQ(s.columns[2].alias->name, "y");
  EXPECT_EQ(s.columns[2].expr->kind, ast::ExprKind::Function);
  ASSERT_TRUE(s.from);
  EXPECT_EQ(s.from->name.name, "lists");
  EXPECT_FALSE(s.from->schema);
  EXPECT_EQ(ast::to_sql(*s.where), "(owner_id = bucket.user_id)");
  EXPECT_EQ(s.where->operands[1]->qualifier->name, "bucket");
  EXPECT_EQ(s.where->offset, 59u);  // the "=" token
}

TEST(Parser, StarAndQualifiedStar) {
  auto r = parse_select("select *, t.* , id from t");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.statement->columns[0].kind, ast::SelectItem::Kind::Star);
  EXPECT_EQ(r.statement->columns[1].kind, ast::SelectItem::Kind::QualifiedStar);
  EXPECT_EQ(r.statement->columns[1].qualifier->name, "t");
}

TEST(Parser, SchemaQualifiedQuotedTableWithAlias) {
  auto r = parse_select("SELECT * FROM \"default.Public\".\"Todos\" AS td");
  ASSERT_TRUE(r.ok());
  const auto& from = *r.statement->from;
  EXPECT_EQ(from.schema->name, "default.Public");
  EXPECT_TRUE(from.schema->quoted);
  EXPECT_EQ(from.name.name, "Todos");
  EXPECT_EQ(from.alias->name, "td");
  EXPECT_EQ(from.offset, 14u);
}

TEST(Parser, IdentifiersFoldToLowerCaseAndRememberUpperCase) {
  auto r = parse_select("SELECT OwnerId FROM Lists");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.statement->columns[0].expr->name.name, "ownerid");
  EXPECT_TRUE(r.statement->columns[0].expr->name.had_upper_case);
  EXPECT_TRUE(r.statement->from->name.had_upper_case);
  auto q = parse_select("SELECT \"OwnerId\" FROM lists");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q.statement->columns[0].expr->name.name, "OwnerId");
  EXPECT_FALSE(q.statement->columns[0].expr->name.had_upper_case);
  EXPECT_FALSE(q.statement->from->name.had_upper_case);
}

TEST(Parser, TableValuedFunction) {
  auto r = parse_select("SELECT value AS p FROM json_each(request.jwt() -> 'ids') AS ids");
  ASSERT_TRUE(r.ok()) << r.error->message;
  const auto& from = *r.statement->from;
  ASSERT_TRUE(from.is_function());
  EXPECT_EQ(from.name.name, "json_each");
  EXPECT_EQ(ast::to_sql(*from.function), "json_each((request.jwt() -> 'ids'))");
  EXPECT_EQ(from.alias->name, "ids");
}

TEST(Parser, StaticSelectWithoutFrom) {
  auto r = parse_select("SELECT request.user_id() as user_id WHERE token_parameters.is_admin");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.statement->from);
  EXPECT_EQ(r.statement->columns[0].expr->qualifier->name, "request");
  EXPECT_EQ(r.statement->where->kind, ast::ExprKind::Column);
}

TEST(Parser, Precedence) {
  EXPECT_EQ(parsed("1 + 2 * 3"), "(1 + (2 * 3))");
  EXPECT_EQ(parsed("1 - 2 - 3"), "((1 - 2) - 3)");
  EXPECT_EQ(parsed("a = 1 OR b = 2 AND c = 3"), "((a = 1) OR ((b = 2) AND (c = 3)))");
  EXPECT_EQ(parsed("NOT a = b"), "(NOT (a = b))");
  EXPECT_EQ(parsed("a -> 'b' ->> 'c' = 'd'"), "(((a -> 'b') ->> 'c') = 'd')");
  EXPECT_EQ(parsed("a || b = c"), "((a || b) = c)");
  EXPECT_EQ(parsed("a + 1 || b"), "((a + 1) || b)");
  EXPECT_EQ(parsed("x IN y AND z"), "((x IN y) AND z)");
  EXPECT_EQ(parsed("a = b IS NULL"), "((a = b) IS NULL)");
  EXPECT_EQ(parsed("a IS NOT NULL"), "(a IS NOT NULL)");
  EXPECT_EQ(parsed("-a::int"), "(-CAST(a AS int))");
  EXPECT_EQ(parsed("-2 * 3"), "((-2) * 3)");
  EXPECT_EQ(parsed("(1 + 2) * 3"), "((1 + 2) * 3)");
  EXPECT_EQ(parsed("CAST(x AS TEXT)"), "CAST(x AS text)");
  EXPECT_EQ(parsed("x::double precision"), "CAST(x AS double precision)");
  EXPECT_EQ(parsed("a NOT IN b"), "(a NOT IN b)");
  EXPECT_EQ(parsed("a IN (request.jwt() -> 'x')"), "(a IN (request.jwt() -> 'x'))");
}

TEST(Parser, Literals) {
  auto r = parse_expression("9223372036854775807");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.expr->literal_kind, ast::LiteralKind::Integer);
  EXPECT_EQ(r.expr->integer_value, INT64_MAX);
  r = parse_expression("9223372036854775808");
  EXPECT_EQ(r.expr->literal_kind, ast::LiteralKind::Real);
  r = parse_expression("1.5e3");
  EXPECT_EQ(r.expr->literal_kind, ast::LiteralKind::Real);
  EXPECT_DOUBLE_EQ(r.expr->real_value, 1500);
  r = parse_expression(".5");
  EXPECT_DOUBLE_EQ(r.expr->real_value, 0.5);
  r = parse_expression("'it''s'");
  EXPECT_EQ(r.expr->text_value, "it's");
  EXPECT_EQ(parsed("TRUE AND false OR NULL"), "((TRUE AND FALSE) OR NULL)");
  EXPECT_EQ(parsed("'a' -- comment\n || /* c */ 'b'"), "('a' || 'b')");
}

TEST(Parser, UnsupportedClausesHavePreciseErrors) {
  auto e = select_error("SELECT * FROM a JOIN b ON a.id = b.id");
  EXPECT_EQ(e.message, "JOIN is not supported in sync rules");
  EXPECT_EQ(e.offset, 16u);
  e = select_error("SELECT * FROM a LEFT JOIN b ON true");
  EXPECT_EQ(e.message, "JOIN is not supported in sync rules");
  EXPECT_EQ(e.offset, 16u);
  e = select_error("SELECT * FROM a, b");
  EXPECT_NE(e.message.find("Multiple tables"), std::string::npos);
  EXPECT_EQ(e.offset, 15u);
  e = select_error("SELECT * FROM a WHERE x = 1 GROUP BY x");
  EXPECT_EQ(e.message, "GROUP BY is not supported in sync rules");
  EXPECT_EQ(e.offset, 28u);
  EXPECT_EQ(select_error("SELECT * FROM a ORDER BY x").message, "ORDER BY is not supported in sync rules");
  EXPECT_EQ(select_error("SELECT * FROM a LIMIT 1").message, "LIMIT is not supported in sync rules");
  EXPECT_EQ(select_error("SELECT * FROM a OFFSET 1").message, "OFFSET is not supported in sync rules");
  EXPECT_EQ(select_error("SELECT * FROM a HAVING 1").message, "HAVING is not supported in sync rules");
  EXPECT_EQ(select_error("SELECT * FROM a FOR UPDATE").message, "FOR is not supported in sync rules");
  EXPECT_EQ(select_error("SELECT DISTINCT id FROM a").message, "DISTINCT is not supported in sync rules");
  EXPECT_EQ(select_error("SELECT * FROM a UNION SELECT * FROM b").message,
            "UNION, INTERSECT and EXCEPT are not supported in sync rules");
  e = select_error("SELECT * FROM a WHERE id IN (SELECT id FROM b)");
  EXPECT_EQ(e.message, "Subqueries are not supported in sync rules");
  EXPECT_EQ(e.offset, 29u);
  EXPECT_EQ(select_error("SELECT * FROM (SELECT 1)").message, "Subqueries are not supported in sync rules");
  e = select_error("SELECT CASE WHEN a THEN 1 END AS x FROM t");
  EXPECT_EQ(e.message, "CASE is not supported in sync rules (edition 1)");
  EXPECT_EQ(e.offset, 7u);
  EXPECT_EQ(select_error("WITH x AS (SELECT 1) SELECT * FROM x").offset, 0u);
  EXPECT_NE(select_error("SELECT * FROM t WHERE a IN ('x', 'y')").message.find("list of values"), std::string::npos);
  EXPECT_NE(select_error("SELECT * FROM t WHERE a LIKE 'x%'").message.find("LIKE"), std::string::npos);
  EXPECT_NE(select_error("SELECT * FROM t WHERE a BETWEEN 1 AND 2").message.find("BETWEEN"), std::string::npos);
  EXPECT_NE(select_error("SELECT count(*) FROM t").message.find("aggregates"), std::string::npos);
  EXPECT_NE(select_error("SELECT * FROM t WHERE a % 2 = 0").message.find("%"), std::string::npos);
}

TEST(Parser, SyntaxErrorsPointAtTheToken) {
  auto e = select_error("SELECT id FROM");
  EXPECT_EQ(e.offset, 14u);
  EXPECT_NE(e.message.find("table name"), std::string::npos);
  e = select_error("SELECT id, FROM t");
  EXPECT_EQ(e.offset, 11u);
  e = select_error("SELECT 'abc FROM t");
  EXPECT_EQ(e.message, "Unterminated string literal");
  EXPECT_EQ(e.offset, 7u);
  e = select_error("SELECT (a + 1 FROM t");
  EXPECT_EQ(e.offset, 14u);
  e = select_error("SELECT a FROM t WHERE");
  EXPECT_EQ(e.message, "Expected an expression, found end of query");
  e = select_error("SELECT a FROM t WHERE a = $1");
  EXPECT_EQ(e.offset, 26u);
  e = select_error("DELETE FROM t");
  EXPECT_EQ(e.message, "Expected SELECT, found 'delete'");
  e = select_error("");
  EXPECT_EQ(e.message, "Expected a SELECT statement, found nothing");
  e = select_error("SELECT a FROM t; SELECT b FROM t");
  EXPECT_EQ(e.message, "Only one statement per query is allowed");
  EXPECT_TRUE(parse_select("SELECT a FROM t;").ok());
  EXPECT_EQ(select_error("SELECT a.b.c FROM t").message, "Names have at most two parts (table.column)");
  EXPECT_EQ(select_error("SELECT x IS TRUE FROM t").offset, 12u);
}

TEST(Parser, HostileInputIsRejectedWithoutCrashing) {
  std::string deep(100000, '(');
  EXPECT_EQ(parse_expression(deep).error->message, "Expression is nested too deeply");
  std::string nots;
  for (int i = 0; i < 50000; ++i) nots += "NOT ";
  EXPECT_EQ(parse_expression(nots + "1").error->message, "Expression is nested too deeply");
  std::string minus(100000, '-');  // also a comment, so make it unary minus with spaces
  std::string neg;
  for (int i = 0; i < 50000; ++i) neg += "- ";
  EXPECT_FALSE(parse_expression(neg + "1").ok());
  std::string chain = "1";
  for (int i = 0; i < 100000; ++i) chain += "+1";
  EXPECT_EQ(parse_expression(chain).error->message, "Expression is nested too deeply");
  std::string casts = "1";
  for (int i = 0; i < 100000; ++i) casts += "::int";
  EXPECT_FALSE(parse_expression(casts).ok());
  std::string fns;
  for (int i = 0; i < 10000; ++i) fns += "f(";
  EXPECT_FALSE(parse_expression(fns).ok());
  std::string binary("\0\xff\x01'", 4);
  EXPECT_FALSE(parse_select(binary).ok());
  EXPECT_FALSE(parse_select("SELECT \"").ok());
  EXPECT_FALSE(parse_select("SELECT /* x").ok());
  // Moderately deep input within the limit still parses.
  std::string ok_chain = "1";
  for (int i = 0; i < 150; ++i) ok_chain += " + 1";
  EXPECT_TRUE(parse_expression(ok_chain).ok());
}

}  // namespace
}  // namespace powersync::rules
