// /api/crud parsing and SQL building: shapes, quoting, coercion of SQLite values, rejections.
#include <gtest/gtest.h>

#include "powersync/gateway/crud.h"

using namespace powersync::gateway;
using json = nlohmann::json;

namespace {
TableInfo todos() {
  TableInfo t;
  t.qualified = quote_qualified("public.todos");
  t.columns = {{"id", {}}, {"description", {}}, {"completed", {}}, {"tags", {false, true}}, {"meta", {true, false}},
               {"we\"ird", {}}};
  return t;
}
CrudEntry entry(const std::string& op, json data) {
  CrudEntry e;
  e.op = op;
  e.table = "todos";
  e.id = "t1";
  e.data = std::move(data);
  return e;
}
}  // namespace

TEST(CrudParse, AcceptsSdkCrudEntryJson) {
  auto batch = parse_crud_batch(R"({"batch":[{"op_id":1,"op":"PUT","type":"todos","id":"t1","tx_id":3,"data":{"description":"x"}},
                                            {"op_id":2,"op":"DELETE","type":"todos","id":"t2"}]})");
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].data["description"], "x");
  EXPECT_EQ(batch[1].op, "DELETE");
  EXPECT_EQ(batch[1].index, 1u);
  EXPECT_TRUE(batch[1].data.empty());
}

TEST(CrudParse, RejectsBadBodiesNamingTheEntry) {
  for (const char* bad : {"", "[]", "{}", R"({"batch":{}})"}) EXPECT_THROW(parse_crud_batch(bad), CrudError) << bad;
  try {
    parse_crud_batch(R"({"batch":[{"op":"PUT","type":"t","id":"1"},{"op":"UPSERT","type":"t","id":"2"}]})");
    FAIL();
  } catch (const CrudError& e) {
    EXPECT_EQ(e.index, 1u);
    EXPECT_NE(e.message.find("UPSERT"), std::string::npos);
  }
  EXPECT_THROW(parse_crud_batch(R"({"batch":[{"op":"PUT","id":"1"}]})"), CrudError);
  EXPECT_THROW(parse_crud_batch(R"({"batch":[{"op":"PUT","type":"t","id":"1","data":[1]}]})"), CrudError);
}

TEST(CrudBuild, PutIsAnUpsertOfTheGivenColumns) {
  auto st = build_crud_statement(entry("PUT", {{"description", "milk"}, {"completed", 1}}), todos());
  ASSERT_TRUE(st);
  EXPECT_EQ(st->sql,
            "INSERT INTO \"public\".\"todos\" (\"id\", \"completed\", \"description\") SELECT r.\"id\", r.\"completed\", "
            "r.\"description\" FROM jsonb_populate_record(NULL::\"public\".\"todos\", $1::jsonb) AS r ON CONFLICT (\"id\") "
            "DO UPDATE SET \"completed\" = EXCLUDED.\"completed\", \"description\" = EXCLUDED.\"description\"");
  EXPECT_EQ(json::parse(st->row_json), (json{{"id", "t1"}, {"description", "milk"}, {"completed", 1}}));
}

TEST(CrudBuild, PutWithOnlyIdDoesNothingOnConflict) {
  auto st = build_crud_statement(entry("PUT", json::object()), todos());
  EXPECT_NE(st->sql.find("DO NOTHING"), std::string::npos);
}

TEST(CrudBuild, PatchUpdatesOnlyGivenColumns) {
  auto st = build_crud_statement(entry("PATCH", {{"completed", 0}}), todos());
  EXPECT_EQ(st->sql,
            "UPDATE \"public\".\"todos\" AS t SET \"completed\" = r.\"completed\" FROM "
            "jsonb_populate_record(NULL::\"public\".\"todos\", $1::jsonb) AS r WHERE t.\"id\" = r.\"id\"");
  EXPECT_FALSE(build_crud_statement(entry("PATCH", json::object()), todos()));
}

TEST(CrudBuild, DeleteByIdOnly) {
  auto st = build_crud_statement(entry("DELETE", json::object()), todos());
  EXPECT_EQ(st->sql,
            "DELETE FROM \"public\".\"todos\" AS t USING jsonb_populate_record(NULL::\"public\".\"todos\", $1::jsonb) AS r "
            "WHERE t.\"id\" = r.\"id\"");
  EXPECT_EQ(st->row_json, R"({"id":"t1"})");
}

TEST(CrudBuild, JsonAndArrayColumnsAreParsedFromSqliteText) {
  auto st = build_crud_statement(entry("PUT", {{"tags", "[\"a\",\"b\"]"}, {"meta", "{\"k\":1}"}, {"description", "[1]"}}), todos());
  auto row = json::parse(st->row_json);
  EXPECT_EQ(row["tags"], json::array({"a", "b"}));
  EXPECT_EQ(row["meta"]["k"], 1);
  EXPECT_EQ(row["description"], "[1]");  // text columns keep the text
  st = build_crud_statement(entry("PUT", {{"meta", "not json"}}), todos());
  EXPECT_EQ(json::parse(st->row_json)["meta"], "not json");  // left for Postgres to reject
}

TEST(CrudBuild, IdentifiersAreQuoted) {
  auto st = build_crud_statement(entry("PATCH", {{"we\"ird", 1}}), todos());
  EXPECT_NE(st->sql.find("\"we\"\"ird\" = r.\"we\"\"ird\""), std::string::npos);
  EXPECT_EQ(quote_qualified("s.t\"x"), "\"s\".\"t\"\"x\"");
}

TEST(CrudBuild, UnknownColumnIsRejectedWithEntryIndex) {
  auto e = entry("PUT", {{"description); DROP TABLE todos; --", 1}});
  e.index = 4;
  try {
    build_crud_statement(e, todos());
    FAIL();
  } catch (const CrudError& err) {
    EXPECT_EQ(err.index, 4u);
    EXPECT_NE(err.message.find("no column"), std::string::npos);
  }
}

TEST(CrudBuild, TableWithoutIdIsRejected) {
  TableInfo t;
  t.qualified = "\"x\"";
  t.columns = {{"name", {}}};
  EXPECT_THROW(build_crud_statement(entry("DELETE", json::object()), t), CrudError);
}

TEST(CrudAllowList, MatchesPlainAndQualifiedNames) {
  std::vector<std::string> allow{"lists", "public.todos", "app.items"};
  EXPECT_EQ(allowed_table("lists", allow), "lists");
  EXPECT_EQ(allowed_table("todos", allow), "public.todos");
  EXPECT_EQ(allowed_table("app.items", allow), "app.items");
  EXPECT_FALSE(allowed_table("items", allow));
  EXPECT_FALSE(allowed_table("secrets", allow));
  EXPECT_FALSE(allowed_table("lists\"; --", allow));
}
