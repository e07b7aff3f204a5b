// Unit tests of the sync rules YAML/query layer: issue positions, JSON input conversion, table
// patterns and the SyncRules API surface used by replication and the gateway.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "powersync/error.h"
#include "powersync/protocol/json_writer.h"
#include "powersync/rules/sync_rules.h"

namespace rules = powersync::rules;

namespace {

std::vector<rules::RuleIssue> issues_of(const std::string& yaml, std::unique_ptr<rules::SyncRules>* out = nullptr) {
  std::vector<rules::RuleIssue> issues;
  auto parsed = rules::SyncRules::parse(yaml, rules::ParseOptions{}, issues);
  if (out) *out = std::move(parsed);
  return issues;
}

const rules::RuleIssue& only_error(const std::vector<rules::RuleIssue>& issues) {
  static rules::RuleIssue none;
  for (const auto& i : issues)
    if (i.severity == rules::RuleIssue::Severity::Error) return i;
  ADD_FAILURE() << "no error issue";
  return none;
}

}  // namespace

TEST(RuleIssuePosition, PlainScalarPointsAtTheToken) {
  auto issues = issues_of("bucket_definitions:\n  b:\n    data:\n      - SELECT * FROM t LIMIT 1\n");
  const auto& e = only_error(issues);
  EXPECT_EQ(e.line, 4);
  EXPECT_EQ(e.col, 25);  // "LIMIT"
  EXPECT_EQ(e.query, "SELECT * FROM t LIMIT 1");
}

TEST(RuleIssuePosition, LiteralBlockScalarCountsLinesInsideTheQuery) {
  auto issues = issues_of(
      "bucket_definitions:\n  b:\n    data:\n      - |\n        SELECT *\n        FROM t\n        GROUP BY id\n");
  const auto& e = only_error(issues);
  EXPECT_EQ(e.line, 7);
  EXPECT_EQ(e.col, 9);
}

TEST(RuleIssuePosition, FoldedBlockScalar) {
  auto issues = issues_of("bucket_definitions:\n  b:\n    data:\n      - >\n        SELECT *\n        FROM t ORDER BY id\n");
  const auto& e = only_error(issues);
  EXPECT_EQ(e.line, 6);
  EXPECT_EQ(e.col, 16);
}

TEST(RuleIssuePosition, SingleQuotedScalarSkipsTheQuoteAndDoubledQuotes) {
  auto issues = issues_of("bucket_definitions:\n  b:\n    data:\n      - 'SELECT ''a'' AS x, id FROM t LIMIT 2'\n");
  const auto& e = only_error(issues);
  EXPECT_EQ(e.line, 4);
  EXPECT_EQ(e.col, 39);
}

TEST(RuleIssuePosition, DoubleQuotedScalarWithEscapes) {
  auto issues = issues_of("bucket_definitions:\n  b:\n    data:\n      - \"SELECT \\\"Id\\\" AS id FROM t LIMIT 2\"\n");
  const auto& e = only_error(issues);
  EXPECT_EQ(e.line, 4);
  EXPECT_EQ(e.col, 37);
}

TEST(RuleIssuePosition, YamlSyntaxErrorHasAPosition) {
  auto issues = issues_of("bucket_definitions:\n  b: [unclosed\n");
  const auto& e = only_error(issues);
  EXPECT_NE(e.message.find("YAML syntax error"), std::string::npos);
  EXPECT_GT(e.line, 0);
}

TEST(RuleIssuePosition, StructuralErrorsPointAtTheirKey) {
  auto issues = issues_of("bucket_definitions:\n  b:\n    data: []\n    colour: red\n");
  const auto& e = only_error(issues);
  EXPECT_EQ(e.line, 4);
  EXPECT_EQ(e.col, 5);
  EXPECT_NE(e.message.find("colour"), std::string::npos);
  EXPECT_TRUE(e.query.empty());
}

TEST(RulesLoader, MissingDataIsAnError) {
  auto issues = issues_of("bucket_definitions:\n  b:\n    parameters: SELECT 1 AS x\n");
  EXPECT_NE(only_error(issues).message.find("'data'"), std::string::npos);
}

TEST(RulesLoader, DuplicateDefinitionNames) {
  auto issues = issues_of("bucket_definitions:\n  b:\n    data: []\n  b:\n    data: []\n");
  EXPECT_NE(only_error(issues).message.find("Duplicate"), std::string::npos);
}

TEST(RulesLoader, DeepNestingIsRejectedNotRecursed) {
  std::string yaml = "bucket_definitions: " + std::string(100000, '[');
  auto issues = issues_of(yaml);
  EXPECT_NE(only_error(issues).message.find("nesting"), std::string::npos);
}

TEST(RulesLoader, GarbageNeverThrows) {
  const char* inputs[] = {"", "\x01\x02", "- - -", "bucket_definitions: 5", "bucket_definitions:\n  b: 5",
                          "bucket_definitions:\n  b:\n    data: [[1]]", "{", "bucket_definitions:\n  b:\n    data:\n      - SELECT (((("};
  for (const char* in : inputs) {
    std::unique_ptr<rules::SyncRules> parsed;
    EXPECT_NO_THROW(issues_of(in, &parsed)) << in;
    EXPECT_EQ(parsed, nullptr) << in;
  }
}

TEST(SyncRulesApi, SourceTablesAndTableRoles) {
  std::unique_ptr<rules::SyncRules> parsed;
  auto issues = issues_of(
      "bucket_definitions:\n"
      "  by_org:\n"
      "    parameters: SELECT org_id FROM memberships WHERE user_id = request.user_id()\n"
      "    data:\n"
      "      - SELECT * FROM docs WHERE docs.org_id = bucket.org_id\n"
      "      - SELECT * FROM app.\"todos_%\" AS todos WHERE todos.org_id = bucket.org_id\n",
      &parsed);
  ASSERT_TRUE(parsed) << (issues.empty() ? "" : issues[0].message);
  ASSERT_EQ(parsed->source_tables().size(), 3u);
  EXPECT_TRUE(parsed->is_data_table({"public", "docs"}));
  EXPECT_FALSE(parsed->is_parameter_table({"public", "docs"}));
  EXPECT_TRUE(parsed->is_parameter_table({"public", "memberships"}));
  EXPECT_TRUE(parsed->is_data_table({"app", "todos_2024"}));
  EXPECT_FALSE(parsed->is_data_table({"public", "todos_2024"}));
}

TEST(SyncRulesApi, VersionedBucketPrefixAndResolveDynamic) {
  std::vector<rules::RuleIssue> issues;
  rules::ParseOptions options;
  options.bucket_prefix = "3#";
  auto parsed = rules::SyncRules::parse(
      "bucket_definitions:\n  by_org:\n    priority: 2\n"
      "    parameters: SELECT org_id FROM memberships WHERE user_id = request.user_id()\n    data: []\n",
      options, issues);
  ASSERT_TRUE(parsed);
  rules::RequestParameters request;
  request.token_claims = {{"sub", "u1"}};
  rules::RequestBuckets buckets = parsed->request_buckets(request);
  ASSERT_EQ(buckets.dynamic.size(), 1u);
  EXPECT_EQ(buckets.dynamic[0].priority, 2);
  ASSERT_EQ(buckets.dynamic[0].lookups.size(), 1u);
  EXPECT_EQ(buckets.dynamic[0].lookups[0], R"(["by_org","1","u1"])");
  auto resolved = parsed->resolve_dynamic(request, buckets.dynamic[0],
                                          {R"({"org_id":"o1"})", "[]", "not json", R"({"org_id":"o1"})", R"({"org_id":2})"});
  ASSERT_EQ(resolved.size(), 2u);
  EXPECT_EQ(resolved[0].bucket, R"(3#by_org["o1"])");
  EXPECT_EQ(resolved[0].priority, 2);
  EXPECT_EQ(resolved[0].definition, "by_org");
  EXPECT_EQ(resolved[1].bucket, R"(3#by_org[2])");
  rules::DynamicBucketQuery bogus = buckets.dynamic[0];
  bogus.query_index = 7;
  EXPECT_TRUE(parsed->resolve_dynamic(request, bogus, {R"({"org_id":"o1"})"}).empty());
}

TEST(SyncRulesApi, EvaluationErrorsAreReportedPerQuery) {
  std::unique_ptr<rules::SyncRules> parsed;
  issues_of(
      "bucket_definitions:\n  tags:\n    parameters: SELECT request.user_id() AS t\n    data:\n"
      "      - SELECT * FROM posts WHERE bucket.t IN posts.tags\n"
      "  all:\n    data:\n      - SELECT * FROM posts\n",
      &parsed);
  ASSERT_TRUE(parsed);
  rules::RowEvaluation r = parsed->evaluate_row({"public", "posts"}, rules::row_from_json_text(R"({"id":"p","tags":"x"})"));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("tags"), std::string::npos);
  ASSERT_EQ(r.rows.size(), 1u);  // the other definition still produced its row
  EXPECT_EQ(r.rows[0].bucket, "all[]");
}

TEST(TablePattern, ExactAndWildcardMatching) {
  rules::TablePattern exact{"public", "todos"};
  EXPECT_TRUE(exact.matches("public", "todos"));
  EXPECT_FALSE(exact.matches("public", "todos2"));
  EXPECT_FALSE(exact.matches("other", "todos"));
  rules::TablePattern wild{"public", "todos_%"};
  EXPECT_TRUE(wild.matches("public", "todos_"));
  EXPECT_TRUE(wild.matches("public", "todos_1"));
  EXPECT_FALSE(wild.matches("public", "todo"));
  rules::TablePattern schema_wild{"tenant_%", "todos"};
  EXPECT_TRUE(schema_wild.matches("tenant_a", "todos"));
  EXPECT_FALSE(schema_wild.matches("public", "todos"));
}

TEST(ValueFromJson, TypesFollowTheSqlApiRules) {
  EXPECT_EQ(rules::value_from_json(nlohmann::json::parse("12")), rules::Value::integer(12));
  EXPECT_EQ(rules::value_from_json(nlohmann::json::parse("-9223372036854775808")),
            rules::Value::integer(INT64_MIN));
  EXPECT_TRUE(rules::value_from_json(nlohmann::json::parse("18446744073709551615")).is_real());
  EXPECT_EQ(rules::value_from_json(nlohmann::json::parse("1.0")), rules::Value::real(1.0));
  EXPECT_EQ(rules::value_from_json(nlohmann::json::parse("1e2")), rules::Value::real(100));
  EXPECT_EQ(rules::value_from_json(nlohmann::json::parse("true")), rules::Value::integer(1));
  EXPECT_EQ(rules::value_from_json(nlohmann::json::parse("false")), rules::Value::integer(0));
  EXPECT_TRUE(rules::value_from_json(nlohmann::json::parse("null")).is_null());
  EXPECT_EQ(rules::value_from_json(nlohmann::json::parse("\"x\"")), rules::Value::text("x"));
  EXPECT_EQ(rules::value_from_json(nlohmann::json::parse("[1, {\"a\": 2}]")), rules::Value::text("[1,{\"a\":2}]"));
}

TEST(RowFromJsonText, KeepsKeyOrder) {
  rules::Row row = rules::row_from_json_text(R"({"z":1,"a":"x","m":null})");
  ASSERT_EQ(row.size(), 3u);
  EXPECT_EQ(row[0].name, "z");
  EXPECT_EQ(row[1].name, "a");
  EXPECT_EQ(row[2].name, "m");
  EXPECT_TRUE(row[2].value.is_null());
}

TEST(RowFromJsonText, RejectsNonObjects) {
  EXPECT_THROW(rules::row_from_json_text("[1]"), powersync::Error);
  EXPECT_THROW(rules::row_from_json_text("{"), powersync::Error);
  EXPECT_THROW(rules::row_from_json_text(""), powersync::Error);
  try {
    rules::row_from_json_text("5");
  } catch (const powersync::Error& e) {
    EXPECT_EQ(e.kind(), powersync::Error::Kind::InvalidInput);
  }
}

// Column positions are remembered per query from the last row: rows of other layouts (reordered,
// missing or extra columns, names and values needing escapes) must give the same outputs anyway.
TEST(SyncRulesApi, RowsOfChangingLayoutsEvaluateTheSame) {
  std::vector<rules::RuleIssue> issues;
  auto sync_rules = rules::SyncRules::parse(
      "bucket_definitions:\n  by_owner:\n    parameters: SELECT request.user_id() AS o\n    data:\n"
      "      - SELECT id, title, n FROM t WHERE owner = bucket.o\n"
      "      - SELECT *, upper(title) AS title FROM t WHERE owner = bucket.o\n",
      rules::ParseOptions{"1#", "public"}, issues);
  ASSERT_TRUE(sync_rules) << issues.size();
  const rules::SourceTable t{"public", "t"};
  auto text = [](const char* s) { return rules::Value::text(s); };
  auto eval = [&](const rules::Row& row) {
    std::vector<std::string> out;
    for (const auto& r : sync_rules->evaluate_row(t, row).rows) out.push_back(r.bucket + " " + r.id + " " + r.data);
    return out;
  };
  using V = std::vector<std::string>;
  const rules::Row a{{"id", text("1")}, {"owner", text("u1")}, {"title", text("x")}, {"n", rules::Value::integer(2)}};
  EXPECT_EQ(eval(a), (V{"1#by_owner[\"u1\"] 1 {\"id\":\"1\",\"title\":\"x\",\"n\":2}",
                        "1#by_owner[\"u1\"] 1 {\"id\":\"1\",\"owner\":\"u1\",\"title\":\"X\",\"n\":2}"}));
  const rules::Row b{{"n", rules::Value::real(2)}, {"title", text("q\"t")}, {"owner", text("u\\2")}, {"id", text("2")}};
  EXPECT_EQ(eval(b), (V{"1#by_owner[\"u\\\\2\"] 2 {\"id\":\"2\",\"title\":\"q\\\"t\",\"n\":2.0}",
                        "1#by_owner[\"u\\\\2\"] 2 {\"n\":2.0,\"title\":\"Q\\\"T\",\"owner\":\"u\\\\2\",\"id\":\"2\"}"}));
  const rules::Row c{{"id", text("3")}, {"owner", text("u1")}, {"a\nb", text("v")}};  // no title, no n
  EXPECT_EQ(eval(c), (V{"1#by_owner[\"u1\"] 3 {\"id\":\"3\"}",
                        "1#by_owner[\"u1\"] 3 {\"id\":\"3\",\"owner\":\"u1\",\"a\\nb\":\"v\",\"title\":null}"}));
  EXPECT_EQ(eval(a), eval(a));
}

// The one-pass copy-and-check JSON writing of rows and bucket ids equals the general encoders on
// texts of every length with and without bytes needing escapes anywhere.
TEST(SyncRulesApi, RowJsonAndBucketIdsMatchTheGeneralEncoders) {
  std::vector<rules::RuleIssue> issues;
  auto sync_rules = rules::SyncRules::parse(
      "bucket_definitions:\n  by_v:\n    parameters: SELECT request.user_id() AS v\n    data:\n"
      "      - SELECT * FROM t WHERE v = bucket.v\n",
      rules::ParseOptions{"1#", "public"}, issues);
  ASSERT_TRUE(sync_rules);
  uint32_t seed = 7;
  auto next = [&seed]() { return seed = seed * 1103515245u + 12345u; };
  const char interesting[] = {'a', 'b', ' ', '"', '\\', '\n', '\x01', '\x7f', '\xc3', '\xa9', 'z'};
  auto text = [&](size_t len, bool clean) {
    std::string s;
    for (size_t i = 0; i < len; ++i) s.push_back(clean ? static_cast<char>('a' + next() % 26) : interesting[(next() >> 8) % sizeof interesting]);
    return s;
  };
  for (int round = 0; round < 600; ++round) {
    const bool clean = round % 3 != 0;
    rules::Row row{{"id", rules::Value::text(text(round % 20, true))},
                   {text(round % 41, clean), rules::Value::text(text((round * 7) % 43, clean))},
                   {"v", rules::Value::text(text((round * 3) % 37, clean))}};
    if (row[1].name == "id" || row[1].name == "v" || (!row[1].name.empty() && row[1].name[0] == '_')) continue;
    auto result = sync_rules->evaluate_row(rules::SourceTable{"public", "t"}, row);
    ASSERT_EQ(result.rows.size(), 1u) << round;
    EXPECT_EQ(result.rows[0].data, powersync::protocol::encode_row_json(row)) << round;
    EXPECT_EQ(result.rows[0].bucket, powersync::protocol::bucket_id("1#", "by_v", {row[2].value})) << round;
  }
}
