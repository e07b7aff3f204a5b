// libFuzzer target: sync rules YAML and query SQL -> SyncRules::parse; rules that parse are then
// evaluated on a row, a parameter row and a request. Bad input must give issues, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "powersync/rules/sync_rules.h"

namespace rules = powersync::rules;

namespace {

// Every query line of `sql` becomes part of a literal block scalar, so any text is a valid YAML string.
std::string embed_query(const std::string& sql, bool as_parameter_query) {
  std::string block;
  for (char c : sql) {
    block.push_back(c);
    if (c == '\n') block += "        ";
  }
  if (as_parameter_query)
    return "bucket_definitions:\n  b:\n    parameters:\n      - |\n        " + block +
           "\n    data:\n      - SELECT * FROM t WHERE t.a = bucket.a\n";
  return "bucket_definitions:\n  b:\n    parameters: SELECT request.user_id() AS a\n    data:\n      - |\n        " +
         block + "\n";
}

void exercise(const std::string& yaml) {
  std::vector<rules::RuleIssue> issues;
  rules::ParseOptions options;
  options.bucket_prefix = "1#";
  auto parsed = rules::SyncRules::parse(yaml, options, issues);
  if (!parsed) return;
  rules::Row row = {{"id", rules::Value::text("r1")},          {"a", rules::Value::text("u1")},
                    {"b", rules::Value::integer(42)},           {"c", rules::Value::real(1.5)},
                    {"arr", rules::Value::text("[\"u1\",2]")}, {"blob", rules::Value::blob("\x01\x02")},
                    {"n", rules::Value::null()}};
  for (const auto& pattern : parsed->source_tables()) {
    rules::SourceTable table{pattern.schema, pattern.name};
    if (!table.name.empty() && table.name.back() == '%') table.name.back() = 'x';
    if (!table.schema.empty() && table.schema.back() == '%') table.schema.back() = 'x';
    parsed->evaluate_row(table, row);
    parsed->evaluate_parameter_row(table, row);
  }
  rules::RequestParameters request;
  request.token_claims = {{"sub", "u1"}, {"parameters", {{"a", "u1"}, {"list", {1, 2}}}}};
  request.client_parameters = {{"a", 1}, {"list", "[\"x\"]"}};
  auto buckets = parsed->request_buckets(request);
  for (const auto& q : buckets.dynamic) parsed->resolve_dynamic(request, q, {"{\"a\":\"o1\"}", "{}", "not json"});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: exercise(input); break;
    case 1: exercise(embed_query(input, false)); break;
    default: exercise(embed_query(input, true)); break;
  }
  return 0;
}
