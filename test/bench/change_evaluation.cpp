// Benchmark: the replication worker's evaluation-thread work per row change (evaluate_change: source
// keys, sync rules, op checksums, bucket lists; then freeing the results), on the replication benchmark's
// rules and `items` rows, without Postgres. Prints CPU time per change for INSERTs and key-preserving UPDATEs.
//   make BUILD=build-x build-x/bench/change_evaluation && build-x/bench/change_evaluation [rows]
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

// The evaluation code is part of the extension library (src/pg), which benchmarks do not link: it is
// pure C++, so it is compiled in here.
#include "../../src/pg/change_evaluation.cpp"

namespace pg = powersync::pg;
namespace rules = powersync::rules;

namespace {

// The rules of test/bench/replication_bench.sh.
const char* kRules = R"(
bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner
    data:
      - SELECT id, owner, name, n FROM items WHERE owner = bucket.owner
  global:
    data:
      - SELECT id, name FROM items
      - SELECT id, v FROM bench_latency
)";

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// What the worker decodes for `INSERT INTO items SELECT g, 'user' || (g % 1000), 'item ' || g, 0`
// (or the UPDATE of the same rows: no old tuple, the key is unchanged).
std::vector<pg::RowChange> make_changes(const pg::RelationInfo& rel, int64_t first, size_t n, bool update) {
  std::vector<pg::RowChange> changes(n);
  for (size_t i = 0; i < n; ++i) {
    pg::RowChange& c = changes[i];
    const int64_t g = first + static_cast<int64_t>(i);
    c.kind = update ? pg::RowChange::Kind::Update : pg::RowChange::Kind::Insert;
    c.relation = &rel;
    c.new_tuple.values = {rules::Value::integer(g), rules::Value::text("user" + std::to_string(g % 1000)),
                          rules::Value::text("item " + std::to_string(g)), rules::Value::integer(update ? 1 : 0)};
    c.new_tuple.unchanged.assign(4, false);
  }
  return changes;
}

struct Totals {
  size_t puts = 0, bytes = 0;
  uint32_t checksum = 0;
};

// Evaluates `total` changes in passes of `pass_size` as the worker does; returns CPU seconds spent
// evaluating and freeing the results (decoding the changes is the main thread's work: not counted).
double run(const rules::SyncRules& sync_rules, const pg::SourceTable& table, const pg::RelationInfo& rel,
           size_t total, bool update, Totals& totals) {
  const size_t pass_size = 2000;
  double spent = 0;
  for (size_t done = 0; done < total; done += pass_size) {
    std::vector<pg::RowChange> changes = make_changes(rel, static_cast<int64_t>(done) + 1, pass_size, update);
    double start = cpu_seconds();
    auto evaluations = std::make_unique<std::vector<pg::ChangeEvaluation>>(pass_size);
    auto arena = std::make_unique<pg::PutArena>();
    for (size_t i = 0; i < pass_size; ++i)
      pg::evaluate_change(sync_rules, table, changes[i], (*evaluations)[i], *arena);
    for (const auto& e : *evaluations) {
      pg::for_each_put(e, [&](const powersync::pg::wire::BucketRefView&, std::string_view data, uint32_t checksum) {
        ++totals.puts;
        totals.bytes += data.size();
        totals.checksum += checksum;
      });
      totals.bytes += e.now.bytes().size() + e.puts.subkey().size();
    }
    evaluations.reset();
    arena.reset();
    spent += cpu_seconds() - start;
  }
  return spent;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 300000;
  std::vector<rules::RuleIssue> issues;
  auto sync_rules = rules::SyncRules::parse(kRules, rules::ParseOptions{"1#", "public"}, issues);
  if (!sync_rules) {
    for (const auto& i : issues) std::fprintf(stderr, "%d:%d %s\n", i.line, i.col, i.message.c_str());
    return 1;
  }
  pg::RelationInfo rel;
  rel.relid = 16400;
  rel.schema = "public";
  rel.name = "items";
  rel.columns = {"id", "owner", "name", "n"};
  rel.types = {20, 25, 25, 23};
  rel.key = {true, false, false, false};
  pg::SourceTable table;
  table.id = 1;
  table.relid = rel.relid;
  table.schema = rel.schema;
  table.name = rel.name;
  table.identity = 'd';
  table.identity_columns = {"id"};
  for (bool update : {false, true}) {
    Totals totals;
    run(*sync_rules, table, rel, 20000, update, totals);  // warm-up
    totals = Totals{};
    const double s = run(*sync_rules, table, rel, n, update, totals);
    std::printf("%-6s %zu changes: %.3f s CPU = %.2f us per change, %.0f changes/s (%zu PUTs, %zu bytes, sum %08x)\n",
                update ? "update" : "insert", n, s, s * 1e6 / n, n / s, totals.puts, totals.bytes, totals.checksum);
  }
  return 0;
}
