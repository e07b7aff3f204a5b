// Benchmark of the expression language and the protocol encoding primitives: evaluations per
// second of typical compiled expressions over synthetic rows (next to a baseline that only copies
// the column value), plus row JSON encoding and PUT checksums per second.
//   make BUILD=build-x bench && build-x/bench/expression_eval [rows]
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "powersync/protocol/checksum.h"
#include "powersync/protocol/json_writer.h"
#include "powersync/rules/expression.h"

namespace rules = powersync::rules;

namespace {

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

std::vector<rules::Row> synthetic_rows(size_t n) {
  std::vector<rules::Row> rows;
  rows.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    rows.push_back({{"id", rules::Value::text("todo-" + std::to_string(i))},
                    {"owner", rules::Value::text("user-" + std::to_string(i % 1000))},
                    {"title", rules::Value::text("Buy milk and bread, item number " + std::to_string(i))},
                    {"done", rules::Value::integer(static_cast<int64_t>(i % 2))},
                    {"created_at", rules::Value::text("2024-03-0" + std::to_string(1 + i % 9) + " 10:00:00")},
                    {"meta", rules::Value::text("{\"tags\":[\"a\",\"b\"],\"priority\":" + std::to_string(i % 5) + "}")}});
  }
  return rows;
}

// Evaluates `sql` once per row; returns evaluations per CPU second.
double measure(const char* sql, const std::vector<rules::Row>& rows, size_t& sink) {
  rules::ExpressionScope scope;
  scope.row_qualifiers = {"todos"};
  auto compiled = rules::compile_expression_text(sql, scope);
  if (!compiled.ok()) {
    std::fprintf(stderr, "cannot compile %s: %s\n", sql, compiled.error->message.c_str());
    std::exit(1);
  }
  double start = cpu_seconds();
  for (const auto& row : rows) {
    rules::Value v = compiled.expression->evaluate({&row});
    sink += v.is_text() ? v.as_text().size() : static_cast<size_t>(v.type());
  }
  return static_cast<double>(rows.size()) / (cpu_seconds() - start);
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000000;
  std::vector<rules::Row> rows = synthetic_rows(n);
  size_t sink = 0;

  // Baseline: find the column and copy its value, the least any evaluation does.
  double start = cpu_seconds();
  for (const auto& row : rows) {
    rules::Value v = *rules::find_column(row, "title");
    sink += v.as_text().size();
  }
  double baseline = static_cast<double>(n) / (cpu_seconds() - start);
  std::printf("expression_eval: %zu rows\n", n);
  std::printf("  %-48s %12.0f /s\n", "baseline: copy column value", baseline);

  const char* expressions[] = {
      "title",
      "owner = 'user-7' AND done = 0",
      "upper(title)",
      "substring(created_at, 1, 10) || ':' || id",
      "meta ->> 'priority'",
      "json_extract(meta, '$.tags')",
      "unixepoch(created_at)",
      "owner IN '[\"user-1\",\"user-2\",\"user-3\"]'",
      "CAST(done AS text) || typeof(done)",
  };
  for (const char* sql : expressions) {
    double rate = measure(sql, rows, sink);
    std::printf("  %-48s %12.0f /s  (%.2fx baseline time)\n", sql, rate, baseline / rate);
  }

  start = cpu_seconds();
  for (const auto& row : rows) sink += powersync::protocol::encode_row_json(row).size();
  double encode = static_cast<double>(n) / (cpu_seconds() - start);
  std::printf("  %-48s %12.0f /s\n", "encode_row_json (6 columns)", encode);

  start = cpu_seconds();
  for (const auto& row : rows) {
    std::string data = powersync::protocol::encode_row_json(row);
    sink += powersync::protocol::put_checksum("todos", row[0].value.as_text(), data);
  }
  double checksum = static_cast<double>(n) / (cpu_seconds() - start);
  std::printf("  %-48s %12.0f /s\n", "encode_row_json + put_checksum", checksum);
  std::printf("(checksum of results: %zu)\n", sink % 1000);
  return 0;
}
