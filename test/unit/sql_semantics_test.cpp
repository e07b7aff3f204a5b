// Table-driven unit tests: every scalar function and every operator of the edition-1 expression
// language, a few representative results each, written as "<type>:<value>" for readability.
// (The conformance cases in test/conformance/cases/sql_*.yaml go into far more detail.)
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "powersync/error.h"
#include "powersync/protocol/json_writer.h"
#include "powersync/rules/expression.h"

namespace powersync::rules {
namespace {

struct Case {
  const char* expr;
  const char* expected;  // "integer:3", "real:1.5", "text:abc", "blob:HEX", "null", "error:<substring>"
};

std::string render(const Value& v) {
  switch (v.type()) {
    case ValueType::Null: return "null";
    case ValueType::Integer: return "integer:" + std::to_string(v.as_integer());
    case ValueType::Real: return "real:" + protocol::js_number_to_string(v.as_real());
    case ValueType::Text: return "text:" + v.as_text();
    case ValueType::Blob: {
      static const char kHex[] = "0123456789ABCDEF";
      std::string out = "blob:";
      for (unsigned char c : v.as_blob()) out += {kHex[c >> 4], kHex[c & 15]};
      return out;
    }
  }
  return "?";
}

std::string run(const char* sql) {
  ExpressionScope scope;
  auto compiled = compile_expression_text(sql, scope);
  if (!compiled.ok()) return "error:" + compiled.error->message;
  try {
    return render(compiled.expression->evaluate({}));
  } catch (const Error& e) {
    return std::string("error:") + e.what();
  }
}

void check_all(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    std::string got = run(c.expr);
    std::string want = c.expected;
    if (want.rfind("error:", 0) == 0) {
      EXPECT_EQ(got.rfind("error:", 0), 0u) << c.expr << " gave " << got;
      EXPECT_NE(got.find(want.substr(6)), std::string::npos) << c.expr << " gave " << got;
    } else {
      EXPECT_EQ(got, want) << c.expr;
    }
  }
}

TEST(SqlFunctions, TextFunctions) {
  check_all({
      {"upper('aBc')", "text:ABC"},
      {"upper(NULL)", "null"},
      {"upper(1.5)", "text:1.5"},
      {"lower('ÀB')", "text:àb"},
      {"lower(NULL)", "null"},
      {"substring('abcde', 2, 3)", "text:bcd"},
      {"substring('abcde', 0, 2)", "text:a"},
      {"substring('abcde', -2)", "text:de"},
      {"substring('abcde', 5, -2)", "text:cd"},
      {"substring('abcde', 2, NULL)", "null"},
      {"length('abc')", "integer:3"},
      {"length(CAST('é' AS blob))", "integer:2"},
      {"length(NULL)", "null"},
      {"instr('hello world', 'o')", "integer:5"},
      {"instr('abc', '')", "integer:1"},
      {"instr('abc', NULL)", "null"},
  });
}

TEST(SqlFunctions, BlobAndTypeFunctions) {
  check_all({
      {"hex('abC')", "text:616243"},
      {"hex(NULL)", "text:"},
      {"hex(123.4)", "text:3132332E34"},
      {"base64('abc')", "text:YWJj"},
      {"base64(NULL)", "text:"},
      {"base64(123.4)", "text:MTIzLjQ="},
      {"uuid_blob('550e8400-e29b-41d4-a716-446655440000')", "blob:550E8400E29B41D4A716446655440000"},
      {"uuid_blob(NULL)", "null"},
      {"uuid_blob('nope')", "error:non UUID"},
      {"typeof(1)", "text:integer"},
      {"typeof(1.0)", "text:real"},
      {"typeof('')", "text:text"},
      {"typeof(NULL)", "text:null"},
      {"typeof(CAST(1 AS blob))", "text:blob"},
      {"ifnull(NULL, 2)", "integer:2"},
      {"ifnull(1, 2)", "integer:1"},
      {"iif('1a', 'y', 'n')", "text:y"},
      {"iif('a', 'y', 'n')", "text:n"},
      {"iif(NULL, 'y', 'n')", "text:n"},
  });
}

TEST(SqlFunctions, JsonFunctions) {
  check_all({
      {"json_extract('{\"a\":{\"b\":1}}', '$.a.b')", "integer:1"},
      {"json_extract('{\"a\":1.0}', '$.a')", "real:1"},
      {"json_extract('{\"a\":null}', '$.a')", "text:null"},
      {"json_extract('{\"a\":true}', '$')", "text:{\"a\":true}"},
      {"json_extract('{}', '$.a')", "null"},
      {"json_extract('{\"a\":1}', 'a')", "error:must start with $"},
      {"json_extract('{', '$.a')", "error:Invalid JSON"},
      {"json_array_length('[1,2,3]')", "integer:3"},
      {"json_array_length('{\"a\":[1]}', '$.a')", "integer:1"},
      {"json_array_length('{}')", "integer:0"},
      {"json_valid('[1]')", "integer:1"},
      {"json_valid('[1')", "integer:0"},
      {"json_valid(NULL)", "integer:0"},
      {"json_keys('{\"b\":1,\"1\":2}')", "text:[\"1\",\"b\"]"},
      {"json_keys('[1]')", "error:array"},
  });
}

TEST(SqlFunctions, DateFunctions) {
  check_all({
      {"unixepoch('2023-06-28 14:12')", "integer:1687961520"},
      {"unixepoch('2023-06-28T16:12+02:00')", "integer:1687961520"},
      {"unixepoch('2023-06-28 14:12:00.999', 'subsec')", "real:1687961520.999"},
      {"unixepoch('2023')", "integer:-210691972800"},
      {"unixepoch('bad')", "null"},
      {"datetime('2023-06-28T14:12:00.999Z')", "text:2023-06-28 14:12:00"},
      {"datetime(1687961520.567, 'unixepoch', 'subsec')", "text:2023-06-28 14:12:00.567"},
      {"datetime(2023.123)", "text:-4707-06-08 14:57:07"},
      {"datetime('2023-06-28', 'auto')", "null"},
  });
}

TEST(SqlFunctions, GeometryFunctions) {
  const std::string point = "'0101000000029a081b9ede4340d7a3703d0a3f5ac0'";
  EXPECT_EQ(run(("st_astext(" + point + ")").c_str()), "text:POINT(39.7392 -104.985)");
  EXPECT_EQ(run(("st_asgeojson(" + point + ")").c_str()), "text:{\"type\":\"Point\",\"coordinates\":[39.7392,-104.985]}");
  EXPECT_EQ(run(("st_x(" + point + ")").c_str()), "real:39.7392");
  EXPECT_EQ(run(("st_y(" + point + ")").c_str()), "real:-104.985");
  EXPECT_EQ(run("st_x(NULL)"), "null");
  EXPECT_EQ(run("st_astext('0102000000')").rfind("error:", 0), 0u);
  // MULTIPOINT((1 2),(3 4)) and a GEOMETRYCOLLECTION(POINT(1 2)).
  EXPECT_EQ(run("st_astext('0104000000020000000101000000000000000000F03F0000000000000040010100000000000000000008400000000000001040')"),
            "text:MULTIPOINT((1 2),(3 4))");
  EXPECT_EQ(run("st_asgeojson('0107000000010000000101000000000000000000F03F0000000000000040')"),
            "text:{\"type\":\"GeometryCollection\",\"geometries\":[{\"type\":\"Point\",\"coordinates\":[1.0,2.0]}]}");
}

TEST(SqlOperators, ComparisonAndLogic) {
  check_all({
      {"1 = 1.0", "integer:1"},
      {"'1' = 1", "integer:0"},
      {"NULL = NULL", "null"},
      {"1 != 2", "integer:1"},
      {"'text' > 1", "integer:1"},
      {"1 < 'text'", "integer:1"},
      {"2 >= 2.0", "integer:1"},
      {"1 <= NULL", "null"},
      {"NULL IS NULL", "integer:1"},
      {"1 IS NOT NULL", "integer:1"},
      {"NULL AND 1", "integer:0"},
      {"NULL OR 1", "integer:1"},
      {"NOT NULL", "integer:1"},
      {"NOT '5x'", "integer:0"},
  });
}

TEST(SqlOperators, ArithmeticConcatInAndJson) {
  check_all({
      {"7 / 2", "integer:3"},
      {"-7 / 2", "integer:-3"},
      {"7 / 2.0", "real:3.5"},
      {"1 / 0", "null"},
      {"'3' * '2.0'", "real:6"},
      {"2 + NULL", "null"},
      {"5 - 7", "integer:-2"},
      {"'a' || 1 || 2.0", "text:a12"},
      {"'a' || NULL", "null"},
      {"2 IN '[1,2]'", "integer:1"},
      {"2.0 IN '[1,2]'", "integer:1"},
      {"'2' IN '[1,2]'", "integer:0"},
      {"NULL IN '[1]'", "null"},
      {"1 IN 'x'", "error:not a JSON array"},
      {"'{\"a\":{\"b\":2}}' ->> 'a.b'", "integer:2"},
      {"'{\"a\":null}' ->> 'a'", "text:null"},
      {"'{\"a\":null}' -> 'a'", "null"},
      {"'{\"a\":\"x\"}' -> 'a'", "text:\"x\""},
      {"'{\"a\":2.0}' -> 'a'", "text:2.0"},
      {"CAST('12abc' AS integer)", "integer:12"},
      {"CAST(1.5 AS text)", "text:1.5"},
      {"CAST('x' AS blob)", "blob:78"},
      {"CAST('2.5' AS real)", "real:2.5"},
      {"CAST('7' AS numeric)", "integer:7"},
      {"'12'::integer", "integer:12"},
      {"CAST(1 AS int)", "error:CAST not supported"},
  });
}

}  // namespace
}  // namespace powersync::rules
