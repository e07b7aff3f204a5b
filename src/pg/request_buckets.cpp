// powersync._request_buckets: the buckets a request may sync at a checkpoint. Static buckets come
// straight from the active rules; table-based parameter queries are resolved through the lookup
// index "as of" the checkpoint (latest row per source row with id <= C, tombstones dropped; spec §4.8).
#include "powersync/pg/boundary.h"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(powersync_request_buckets);
}

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "powersync/rules/sync_rules.h"

namespace {

using powersync::invalid_input;
using powersync::pg::pg_call;
using powersync::pg::pg_entry;
namespace rules = powersync::rules;

// PowerSync's limit on parameter query results per request (max_parameter_query_results).
constexpr long kMaxParameterResults = 1000;

struct ActiveRules {
  int64 version = -1;
  std::string content;
  std::unique_ptr<rules::SyncRules> rules;
};

// Parsed rules of the active version, kept for the life of the backend and reused while the active
// version (id and text: ids restart when the extension is re-created) stays the same.
ActiveRules& rules_cache() {
  static ActiveRules cache;
  return cache;
}

std::string text_arg(FunctionCallInfo fcinfo, int n, const char* fallback) {
  if (PG_ARGISNULL(n)) return fallback;
  char* s = pg_call([&] { return text_to_cstring(PG_GETARG_TEXT_PP(n)); });
  return s;
}

// Fetches (version id, rules text) of the active version; loads the rules on a cache miss.
const rules::SyncRules& load_active_rules(int64& version_out) {
  int rc = pg_call([&] {
    return SPI_execute("SELECT id, content FROM powersync.sync_rules WHERE state = 'ACTIVE'", true, 1);
  });
  if (rc != SPI_OK_SELECT || SPI_processed == 0)
    throw invalid_input("no active sync rules (PSYNC_S2302)", "",
                        "Deploy sync rules with powersync.deploy_sync_rules() and wait until they are active.");
  bool isnull = false;
  int64 version = version_out = DatumGetInt64(pg_call([&] { return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull); }));
  char* content = pg_call([&] { return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2); });
  ActiveRules& cache = rules_cache();
  if (cache.rules && cache.version == version && cache.content == (content ? content : "")) return *cache.rules;
  rules::ParseOptions options;
  options.bucket_prefix = std::to_string(version) + "#";
  std::vector<rules::RuleIssue> issues;
  auto parsed = rules::SyncRules::parse(content ? content : "", options, issues);
  if (!parsed) throw powersync::Error(powersync::Error::Kind::Internal, "the active sync rules no longer parse");
  cache.version = version;
  cache.content = content ? content : "";
  cache.rules = std::move(parsed);
  return *cache.rules;
}

powersync::Error too_many_results() {
  return invalid_input("too many parameter query results: more than " + std::to_string(kMaxParameterResults) +
                           " (PSYNC_S2305)",
                       "", "Reduce the number of rows the parameter queries return for this user.");
}

// Runs one lookup "as of" the checkpoint: the newest index row of every source row that has ever
// produced this lookup (rows with id <= C), minus tombstones ('[]'). Each stored row is a JSON array
// of parameter objects; their object texts are appended to `out`.
void read_lookup(int64 version, const std::string& lookup, int64 checkpoint, std::vector<std::string>& out) {
  static SPIPlanPtr plan = nullptr;
  if (!plan) {
    plan = pg_call([&] {
      Oid types[3] = {INT8OID, TEXTOID, INT8OID};
      SPIPlanPtr p = SPI_prepare(
          "SELECT bucket_parameters FROM ("
          "  SELECT DISTINCT ON (source_table_id, source_key) bucket_parameters"
          "    FROM powersync.bucket_parameters WHERE sync_rules_id = $1 AND lookup = $2 AND id <= $3"
          "   ORDER BY source_table_id, source_key, id DESC) latest"
          " WHERE bucket_parameters <> '[]' LIMIT 1001",
          3, types);
      if (p) SPI_keepplan(p);
      return p;
    });
    if (!plan) throw powersync::Error(powersync::Error::Kind::Internal, "cannot prepare the parameter lookup query");
  }
  Datum args[3];
  args[0] = Int64GetDatum(version);
  args[1] = pg_call([&] { return PointerGetDatum(cstring_to_text_with_len(lookup.data(), lookup.size())); });
  args[2] = Int64GetDatum(checkpoint);
  pg_call([&] { return SPI_execute_plan(plan, args, nullptr, true, 0); });
  for (uint64 i = 0; i < SPI_processed; i++) {
    char* v = pg_call([&] { return SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1); });
    if (!v) continue;
    auto stored = nlohmann::ordered_json::parse(v, nullptr, false);
    if (stored.is_discarded()) throw powersync::Error(powersync::Error::Kind::Internal, "corrupt parameter lookup row", v);
    if (!stored.is_array()) stored = nlohmann::ordered_json::array({stored});
    for (const auto& object : stored) out.push_back(object.dump());
    if (static_cast<long>(out.size()) > kMaxParameterResults) throw too_many_results();
  }
}

int64 current_checkpoint() {
  pg_call([&] { return SPI_execute("SELECT op_id FROM powersync.checkpoint()", true, 1); });
  if (SPI_processed == 0) throw invalid_input("no active sync rules (PSYNC_S2302)");
  bool isnull = false;
  Datum d = pg_call([&] { return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull); });
  return isnull ? 0 : DatumGetInt64(d);
}

nlohmann::json parse_object(const std::string& text, const char* what) {
  auto v = nlohmann::json::parse(text, nullptr, false);
  if (v.is_discarded() || !v.is_object()) throw invalid_input(std::string(what) + " must be a JSON object");
  return v;
}

}  // namespace

// powersync._request_buckets(token_claims text, client_parameters text, at_checkpoint bigint)
//   RETURNS TABLE(bucket text, priority int)
extern "C" Datum powersync_request_buckets(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    rules::RequestParameters request;
    request.token_claims = parse_object(text_arg(fcinfo, 0, "{}"), "token_claims");
    request.client_parameters = parse_object(text_arg(fcinfo, 1, "{}"), "client_parameters");
    pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
    pg_call([&] { SPI_connect(); });
    int64 version = 0;
    const rules::SyncRules& sync_rules = load_active_rules(version);
    int64 checkpoint = PG_ARGISNULL(2) ? current_checkpoint() : PG_GETARG_INT64(2);

    rules::RequestBuckets planned = sync_rules.request_buckets(request);
    if (!planned.errors.empty()) {
      std::string all;
      for (const auto& e : planned.errors) all += (all.empty() ? "" : "; ") + e;
      throw invalid_input("cannot evaluate the request against the sync rules", all);
    }
    std::vector<rules::BucketDescription> buckets = planned.static_buckets;
    size_t results = 0;
    for (const auto& query : planned.dynamic) {
      std::vector<std::string> params;
      for (const auto& lookup : query.lookups) {
        read_lookup(version, lookup, checkpoint, params);
        if (results + params.size() > static_cast<size_t>(kMaxParameterResults)) throw too_many_results();
      }
      results += params.size();
      auto resolved = sync_rules.resolve_dynamic(request, query, params);
      buckets.insert(buckets.end(), resolved.begin(), resolved.end());
    }

    // One row per bucket; a bucket reached through several definitions keeps its most urgent priority.
    std::map<std::string, size_t> index;
    std::vector<std::pair<std::string, int>> rows;
    for (const auto& b : buckets) {
      auto it = index.find(b.bucket);
      if (it == index.end()) {
        index.emplace(b.bucket, rows.size());
        rows.emplace_back(b.bucket, b.priority);
      } else if (b.priority < rows[it->second].second) {
        rows[it->second].second = b.priority;
      }
    }
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (const auto& [bucket, priority] : rows) {
      pg_call([&] {
        Datum values[2] = {PointerGetDatum(cstring_to_text_with_len(bucket.data(), bucket.size())), Int32GetDatum(priority)};
        bool nulls[2] = {false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
      });
    }
    pg_call([&] { SPI_finish(); });
    return (Datum)0;
  });
}
