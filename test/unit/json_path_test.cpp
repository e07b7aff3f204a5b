// The one-pass JSON path lookup (src/rules/json_path) must agree with the full parser path
// (json_support) on every document and path: a differential test over hand-picked and generated
// documents, plus validation of what is invalid JSON.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "../../src/rules/functions.h"
#include "../../src/rules/json_path.h"
#include "../../src/rules/json_support.h"
#include "powersync/error.h"
#include "powersync/rules/expression.h"

namespace powersync::rules {
namespace {

// The reference algorithm on a full document (what functions::json_extract did before the scanner).
std::string slow(const std::string& text, const std::vector<std::string>& path, functions::ExtractMode mode) {
  json::Json root;
  if (!json::parse(text, root)) return "error";
  if (root.is_null()) return "NULL";
  json::Json scratch;
  const json::Json* found = json::follow_path(root, path, scratch);
  Value v;
  if (mode == functions::ExtractMode::Arrow) {
    if (found != nullptr && !found->is_null()) v = Value::text(json::stringify(*found));
  } else if (found != nullptr) {
    v = json::to_value(*found, json::NullMode::LegacyText);
  }
  if (v.is_null()) return "NULL";
  return std::string(sqlite_type_name(v)) + ":" + (v.is_text() ? v.as_text() : std::to_string(v.is_integer() ? v.as_integer() : 0)) +
         (v.is_real() ? std::to_string(v.as_real()) : "");
}

std::string fast(const std::string& text, const std::vector<std::string>& path, functions::ExtractMode mode) {
  try {
    Value v = functions::json_extract(Value::text(text), path, mode);
    if (v.is_null()) return "NULL";
    return std::string(sqlite_type_name(v)) + ":" + (v.is_text() ? v.as_text() : std::to_string(v.is_integer() ? v.as_integer() : 0)) +
           (v.is_real() ? std::to_string(v.as_real()) : "");
  } catch (const Error&) {
    return "error";
  }
}

void agree(const std::string& text, const std::vector<std::string>& path) {
  for (auto mode : {functions::ExtractMode::Arrow, functions::ExtractMode::Arrow2}) {
    EXPECT_EQ(fast(text, path, mode), slow(text, path, mode))
        << text << " path of " << path.size() << (path.empty() ? "" : " first=" + path[0]);
  }
}

// (Numbers overflowing a double, e.g. 1e400, are left out: the scanner accepts them like JavaScript,
// the full parser does not.)
const std::vector<std::string> kDocs = {
    R"({"a":1})", R"({"a":{"b":[1,2.5,null,"x",true,false,{"c":"d"}]},"n":null,"s":"str"})",
    R"( { "a" : [ ] , "b" : { } } )", R"([1,[2,[3,[4]]]])", R"("just a string")", "42", "-0", "null", "true",
    R"({"big":123456789012345678901234,"neg":-9223372036854775808,"u":18446744073709551615})",
    R"({"esc":"a\"b\\c\n","u":"\u00e9\ud83d\ude00","k\"q":1})", R"({"a.b":{"c":1},"a":{"b":{"c":2}}})",
    R"({"1":"one","0":"zero","x":{"2":2,"10":10}})", R"({"dup":1,"dup":2})", R"({"a":{"dup":1,"dup":2}})",
    R"({"a":[1,2,3],"length":7})", R"({"é":"accent","😀":"emoji"})", "{\"bad\":\"\x01\"}", R"({"a":1,})",
    R"([1,2,])", R"({"a":01})", R"({"a":1.})", R"({"a":.5})", R"({"a":-})", R"({"a":tru})", R"({'a':1})", "",
    "   ", R"({"a":1} x)", R"({"a":"\x"})", "{\"a\":\"\xff\"}", R"({"a":1e+5,"b":2E-3,"c":-1.5e10})",
    R"({"n":{"m":null}})", R"({"a":"b"})"};

const std::vector<std::vector<std::string>> kPaths = {
    {},          {"a"},      {"a", "b"},   {"a", "b", "0"}, {"a", "b", "6", "c"}, {"a", "b", "9"},
    {"n"},       {"n", "x"}, {"s"},        {"s", "0"},      {"s", "length"},      {"0"},
    {"1"},       {"1", "1"}, {"big"},      {"neg"},         {"u"},                {"esc"},
    {"u"},       {"k\"q"},   {"a.b"},      {"x", "10"},     {"x", "2"},           {"length"},
    {"a", "length"}, {"é"}, {"😀"},       {"dup"},         {"a", "dup"},         {"missing", "deeper"},
    {""},        {"b"},      {"c"},        {"n", "m"},      {"n", "m", "z"},      {"01"}};

TEST(JsonPath, AgreesWithTheFullParserOnHandPickedDocuments) {
  for (const auto& doc : kDocs)
    for (const auto& path : kPaths) agree(doc, path);
}

// Random small documents built from a grammar, looked up with random paths.
std::string random_value(std::mt19937& rng, int depth) {
  std::uniform_int_distribution<int> pick(0, depth > 3 ? 5 : 8);
  static const char* kKeys[] = {"a", "b", "0", "1", "c.d", "é"};
  switch (pick(rng)) {
    case 0: return "null";
    case 1: return rng() % 2 ? "true" : "false";
    case 2: return std::to_string(static_cast<int>(rng() % 2000) - 1000);
    case 3: return std::to_string((rng() % 1000) / 8.0);
    case 4: return "\"s" + std::to_string(rng() % 10) + "\"";
    case 5: return "1e" + std::to_string(rng() % 30);
    case 6:
    case 7: {
      std::string out = "{";
      int n = static_cast<int>(rng() % 4);
      for (int i = 0; i < n; ++i) out += (i ? "," : "") + std::string("\"") + kKeys[(i + rng()) % 6] + "\":" + random_value(rng, depth + 1);
      return out + "}";
    }
    default: {
      std::string out = "[";
      int n = static_cast<int>(rng() % 4);
      for (int i = 0; i < n; ++i) out += (i ? "," : "") + random_value(rng, depth + 1);
      return out + "]";
    }
  }
}

TEST(JsonPath, AgreesWithTheFullParserOnGeneratedDocuments) {
  std::mt19937 rng(20261120);
  static const char* kSteps[] = {"a", "b", "0", "1", "2", "c.d", "é", "length", "x"};
  for (int i = 0; i < 3000; ++i) {
    std::string doc = random_value(rng, 0);
    std::vector<std::string> path;
    int n = static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) path.push_back(kSteps[rng() % 9]);
    agree(doc, path);
  }
}

TEST(JsonPath, ReportsInvalidJsonAndUndefinedSteps) {
  EXPECT_EQ(json_path::find("{\"a\":1,}", {"a"}).outcome, json_path::Outcome::Invalid);
  EXPECT_EQ(json_path::find("{\"a\":1,\"a\":2}", {"b"}).outcome, json_path::Outcome::Invalid);
  EXPECT_EQ(json_path::find("{\"a\":1}", {"b"}).outcome, json_path::Outcome::Undefined);
  auto found = json_path::find("{\"a\": {\"b\" : [1, 2]} }", {"a", "b"});
  EXPECT_EQ(found.outcome, json_path::Outcome::Found);
  EXPECT_EQ(found.target, "[1, 2]");
  EXPECT_EQ(json_path::find("{\"a\":\"\\u0041\"}", {"a"}).outcome, json_path::Outcome::Fallback);
  std::string deep(1000, '[');
  deep += std::string(1000, ']');
  EXPECT_EQ(json_path::find(deep, {"0"}).outcome, json_path::Outcome::Fallback);
}

}  // namespace
}  // namespace powersync::rules
