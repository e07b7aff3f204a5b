// Benchmark: evaluates a 3-definition rules file over N synthetic `todos` rows (default 1M) on one
// core and prints row evaluations per second, next to a baseline that only JSON-encodes each row.
//   make BUILD=build-x bench && build-x/bench/rules_eval [rows]
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "powersync/protocol/json_writer.h"
#include "powersync/rules/sync_rules.h"

namespace rules = powersync::rules;

namespace {

const char* kRules = R"(
bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, title, done FROM todos WHERE owner = bucket.user_id
  by_list:
    parameters: SELECT id AS list_id FROM lists WHERE owner = request.user_id()
    data:
      - SELECT * FROM todos WHERE list_id = bucket.list_id
  completed:
    priority: 1
    data:
      - SELECT id, upper(title) AS title, created_at FROM todos WHERE done = 1
)";

std::vector<rules::Row> make_rows(size_t distinct) {
  std::vector<rules::Row> rows;
  rows.reserve(distinct);
  for (size_t i = 0; i < distinct; ++i) {
    rows.push_back({{"id", rules::Value::text("todo-" + std::to_string(i))},
                    {"list_id", rules::Value::text("list-" + std::to_string(i % 97))},
                    {"owner", rules::Value::text("user-" + std::to_string(i % 1013))},
                    {"title", rules::Value::text("Buy milk number " + std::to_string(i))},
                    {"done", rules::Value::integer(static_cast<int64_t>(i % 2))},
                    {"created_at", rules::Value::text("2024-03-06 15:47:00")},
                    {"priority", rules::Value::real(1.5 + static_cast<double>(i % 7))}});
  }
  return rows;
}

// CPU time of this thread: the machine may be shared, and the target is per core.
double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  std::vector<rules::RuleIssue> issues;
  auto sync_rules = rules::SyncRules::parse(kRules, rules::ParseOptions{"1#", "public"}, issues);
  if (!sync_rules) {
    for (const auto& i : issues) std::fprintf(stderr, "%d:%d %s\n", i.line, i.col, i.message.c_str());
    return 1;
  }
  const std::vector<rules::Row> rows = make_rows(4096);
  const rules::SourceTable table{"public", "todos"};

  // Baseline: the least any sync of these rows must do, encode each row's JSON once.
  size_t baseline_bytes = 0;
  double start = cpu_seconds();
  for (size_t i = 0; i < n; ++i) baseline_bytes += powersync::protocol::encode_row_json(rows[i % rows.size()]).size();
  const double baseline_s = cpu_seconds() - start;

  size_t outputs = 0, bytes = 0;
  start = cpu_seconds();
  for (size_t i = 0; i < n; ++i) {
    rules::RowEvaluation r = sync_rules->evaluate_row(table, rows[i % rows.size()]);
    outputs += r.rows.size();
    for (const auto& out : r.rows) bytes += out.data.size() + out.bucket.size();
  }
  const double eval_s = cpu_seconds() - start;

  std::printf("rules_eval: %zu rows, 3 bucket definitions, %zu bucket rows out (%zu bytes)\n", n, outputs, bytes);
  std::printf("evaluate_row:        %.0f rows/s (%.3f s CPU)\n", n / eval_s, eval_s);
  std::printf("baseline (row JSON): %.0f rows/s (%.3f s CPU, %zu bytes)\n", n / baseline_s, baseline_s, baseline_bytes);
  std::printf("ratio evaluate_row / baseline time: %.2f\n", eval_s / baseline_s);
  return 0;
}
