// SQL functions of the replication part: powersync.deploy_sync_rules(text) and powersync.ensure_worker().
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
extern "C" {
#include "postgres.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(powersync_deploy_sync_rules);
PG_FUNCTION_INFO_V1(powersync_ensure_worker);
}

#include <string>
#include <vector>

#include "powersync/pg/boundary.h"
#include "powersync/pg/spi.h"
#include "powersync/pg/worker.h"
#include "powersync/rules/sync_rules.h"

namespace powersync::pg {
namespace {

std::string describe_issue(const rules::RuleIssue& issue) {
  std::string s = issue.message;
  if (issue.line > 0) s += " (line " + std::to_string(issue.line) + ", column " + std::to_string(issue.col) + ")";
  return s;
}

// Validates the YAML; throws InvalidInput listing every error. Warnings are reported as WARNINGs.
void validate(const std::string& yaml) {
  rules::ParseOptions options;
  options.bucket_prefix = "0#";
  std::vector<rules::RuleIssue> issues;
  auto parsed = rules::SyncRules::parse(yaml, options, issues);
  std::string errors, warnings;
  int error_count = 0;
  for (const auto& issue : issues) {
    if (issue.severity == rules::RuleIssue::Severity::Error) {
      errors += (error_count++ ? "\n" : "") + describe_issue(issue);
    } else {
      std::string w = describe_issue(issue);
      const char* m = w.c_str();
      pg_call([&] { ereport(WARNING, (errmsg("sync rules: %s", m))); });
    }
  }
  if (!parsed || error_count > 0) {
    std::string first = errors.substr(0, errors.find('\n'));
    throw invalid_input("invalid sync rules: " + (first.empty() ? std::string("rejected by the rules engine") : first),
                        error_count > 1 ? errors : std::string(),
                        "Fix the sync rules and deploy again; the deployed version was not changed.");
  }
}

void warn_if_not_ready() {
  std::string problem;
  if (wal_level < WAL_LEVEL_LOGICAL) problem = "wal_level is not logical (set wal_level = logical and restart)";
  else if (!library_preloaded)
    problem = "powersync_pg is not in shared_preload_libraries: the worker is started now, but not after a restart";
  if (problem.empty()) return;
  const char* m = problem.c_str();
  pg_call([&] { ereport(WARNING, (errmsg("powersync: %s", m))); });
  static spi::Statement update(
      "UPDATE powersync.replication_state SET last_error = $1, last_error_at = now()", {TEXTOID});
  Datum arg = spi::text_datum(problem);
  update.run(&arg);
}

bool ensure_worker() {
  BackgroundWorkerHandle* handle = nullptr;
  return start_replication_worker(MyDatabaseId, true, &handle);
}

}  // namespace
}  // namespace powersync::pg

using namespace powersync::pg;

extern "C" Datum powersync_deploy_sync_rules(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    std::string yaml = text_to_cstring(PG_GETARG_TEXT_PP(0));
    validate(yaml);
    pg_call([] { SPI_connect(); });
    spi::exec("UPDATE powersync.sync_rules SET state = 'STOP', stopped_at = now() WHERE state = 'PROCESSING'");
    static spi::Statement insert("INSERT INTO powersync.sync_rules (content) VALUES ($1) RETURNING id", {TEXTOID});
    Datum arg = spi::text_datum(yaml);
    insert.run(&arg);
    int64_t id = spi::int64_at(0, 0);
    warn_if_not_ready();
    pg_call([] { SPI_finish(); });
    ensure_worker();
    return Int64GetDatum(id);
  });
}

extern "C" Datum powersync_ensure_worker(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum { return BoolGetDatum(ensure_worker()); });
}
