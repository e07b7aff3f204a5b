// SQL-callable sync rules functions (powersync.validate_sync_rules, evaluate_row, evaluate_parameter_row,
// static_buckets, request_lookups): thin shims over the pure C++ rules engine.
#include <memory>
#include <string>
#include <vector>

// C++ headers first: Postgres' port.h redefines snprintf & co. as macros.
#include "powersync/protocol/checksum.h"
#include "powersync/rules/sync_rules.h"

#include "powersync/pg/boundary.h"

extern "C" {
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(powersync_validate_sync_rules);
PG_FUNCTION_INFO_V1(powersync_evaluate_row);
PG_FUNCTION_INFO_V1(powersync_evaluate_parameter_row);
PG_FUNCTION_INFO_V1(powersync_static_buckets);
PG_FUNCTION_INFO_V1(powersync_request_lookups);
}

namespace {

using powersync::pg::pg_call;
using powersync::pg::pg_entry;
namespace rules = powersync::rules;

std::string text_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) throw powersync::invalid_input("argument " + std::to_string(n + 1) + " must not be NULL");
  char* s = pg_call([&] { return text_to_cstring(PG_GETARG_TEXT_PP(n)); });
  std::string out(s);
  pfree(s);
  return out;
}

std::string jsonb_arg(FunctionCallInfo fcinfo, int n, const char* if_null) {
  if (PG_ARGISNULL(n)) return if_null;
  char* s = pg_call([&] {
    Jsonb* j = PG_GETARG_JSONB_P(n);
    return JsonbToCString(nullptr, &j->root, VARSIZE(j));
  });
  std::string out(s);
  pfree(s);
  return out;
}

// Parsing rules is the expensive part; a backend usually evaluates many rows against one rules text.
struct ParsedRulesCache {
  std::string text;
  std::unique_ptr<rules::SyncRules> rules;
};

const rules::SyncRules& parsed_rules(const std::string& text) {
  static ParsedRulesCache cache;
  if (cache.rules && cache.text == text) return *cache.rules;
  cache.rules.reset();
  std::vector<rules::RuleIssue> issues;
  rules::ParseOptions options;  // unversioned bucket ids, default schema public
  auto parsed = rules::SyncRules::parse(text, options, issues);
  if (!parsed) {
    for (const auto& issue : issues) {
      if (issue.severity != rules::RuleIssue::Severity::Error) continue;
      std::string where = " (line " + std::to_string(issue.line) + ", column " + std::to_string(issue.col) + ")";
      throw powersync::invalid_input("invalid sync rules: " + issue.message + where,
                                     issue.query.empty() ? std::string() : "query: " + issue.query,
                                     "run powersync.validate_sync_rules(rules) to list every problem");
    }
    throw powersync::invalid_input("invalid sync rules");
  }
  cache.text = text;
  cache.rules = std::move(parsed);
  return *cache.rules;
}

// `table` means public.table; `schema.table` names the schema. Double quotes are removed.
rules::SourceTable source_table_arg(const std::string& text) {
  auto unquote = [](std::string s) {
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    return s;
  };
  rules::SourceTable t;
  size_t dot = std::string::npos;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '"') quoted = !quoted;
    else if (text[i] == '.' && !quoted) { dot = i; break; }
  }
  if (dot == std::string::npos) {
    t.schema = "public";
    t.name = unquote(text);
  } else {
    t.schema = unquote(text.substr(0, dot));
    t.name = unquote(text.substr(dot + 1));
  }
  if (t.name.empty() || t.schema.empty())
    throw powersync::invalid_input("source_table must be 'table' or 'schema.table', got '" + text + "'");
  return t;
}

// Appends one row of C strings (nullptr = SQL NULL) to the materialized result, converting each value
// with the input function of its column type.
class ResultSet {
 public:
  explicit ResultSet(FunctionCallInfo fcinfo) : fcinfo_(fcinfo) {
    pg_call([&] { InitMaterializedSRF(fcinfo_, 0); });
  }

  void add(const std::vector<const char*>& cells) {
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo_->resultinfo);
    const char* const* data = cells.data();
    const int count = static_cast<int>(cells.size());
    pg_call([&] {
      TupleDesc desc = rsinfo->setDesc;
      Datum values[8];
      bool nulls[8];
      for (int i = 0; i < count && i < 8; ++i) {
        nulls[i] = data[i] == nullptr;
        values[i] = nulls[i] ? (Datum)0 : datum_for(TupleDescAttr(desc, i)->atttypid, data[i]);
      }
      tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
    });
  }

 private:
  static Datum datum_for(Oid type, const char* text) {
    switch (type) {
      case INT4OID: return Int32GetDatum(pg_strtoint32(text));
      case INT8OID: return Int64GetDatum(pg_strtoint64(text));
      case JSONBOID: return DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
      default: return CStringGetTextDatum(text);
    }
  }
  FunctionCallInfo fcinfo_;
};

const char* severity_name(rules::RuleIssue::Severity s) {
  return s == rules::RuleIssue::Severity::Error ? "error" : "warning";
}

void warn_evaluation_errors(const std::vector<std::string>& errors) {
  for (const auto& e : errors) {
    const char* msg = e.c_str();
    pg_call([&] { ereport(WARNING, (errmsg("sync rules evaluation: %s", msg))); });
  }
}

rules::RequestParameters request_args(FunctionCallInfo fcinfo) {
  rules::RequestParameters request;
  std::string claims = jsonb_arg(fcinfo, 1, "{}");
  std::string params = jsonb_arg(fcinfo, 2, "{}");
  request.token_claims = nlohmann::json::parse(claims, nullptr, false);
  request.client_parameters = nlohmann::json::parse(params, nullptr, false);
  if (!request.token_claims.is_object()) throw powersync::invalid_input("token_claims must be a JSON object");
  if (!request.client_parameters.is_object())
    throw powersync::invalid_input("client_parameters must be a JSON object");
  return request;
}

}  // namespace

extern "C" Datum powersync_validate_sync_rules(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    std::string text = text_arg(fcinfo, 0);
    std::vector<rules::RuleIssue> issues;
    rules::SyncRules::parse(text, rules::ParseOptions{}, issues);
    ResultSet out(fcinfo);
    for (const auto& issue : issues) {
      std::string line = std::to_string(issue.line), col = std::to_string(issue.col);
      out.add({severity_name(issue.severity), issue.message.c_str(), issue.line ? line.c_str() : nullptr,
               issue.col ? col.c_str() : nullptr});
    }
    return (Datum)0;
  });
}

extern "C" Datum powersync_evaluate_row(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    const rules::SyncRules& sync_rules = parsed_rules(text_arg(fcinfo, 0));
    rules::SourceTable table = source_table_arg(text_arg(fcinfo, 1));
    rules::Row row = rules::row_from_json_text(jsonb_arg(fcinfo, 2, "null"));
    rules::RowEvaluation result = sync_rules.evaluate_row(table, row);
    warn_evaluation_errors(result.errors);
    ResultSet out(fcinfo);
    for (const auto& r : result.rows) {
      std::string checksum = std::to_string(powersync::protocol::put_checksum(r.table, r.id, r.data));
      out.add({r.bucket.c_str(), r.table.c_str(), r.id.c_str(), r.data.c_str(), checksum.c_str()});
    }
    return (Datum)0;
  });
}

extern "C" Datum powersync_evaluate_parameter_row(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    const rules::SyncRules& sync_rules = parsed_rules(text_arg(fcinfo, 0));
    rules::SourceTable table = source_table_arg(text_arg(fcinfo, 1));
    rules::Row row = rules::row_from_json_text(jsonb_arg(fcinfo, 2, "null"));
    rules::ParameterEvaluation result = sync_rules.evaluate_parameter_row(table, row);
    warn_evaluation_errors(result.errors);
    ResultSet out(fcinfo);
    for (const auto& l : result.lookups) out.add({l.definition.c_str(), l.lookup.c_str(), l.bucket_parameters.c_str()});
    return (Datum)0;
  });
}

extern "C" Datum powersync_static_buckets(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    const rules::SyncRules& sync_rules = parsed_rules(text_arg(fcinfo, 0));
    rules::RequestBuckets result = sync_rules.request_buckets(request_args(fcinfo));
    warn_evaluation_errors(result.errors);
    ResultSet out(fcinfo);
    for (const auto& b : result.static_buckets) {
      std::string priority = std::to_string(b.priority);
      out.add({b.bucket.c_str(), priority.c_str()});
    }
    return (Datum)0;
  });
}

extern "C" Datum powersync_request_lookups(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    const rules::SyncRules& sync_rules = parsed_rules(text_arg(fcinfo, 0));
    rules::RequestBuckets result = sync_rules.request_buckets(request_args(fcinfo));
    warn_evaluation_errors(result.errors);
    ResultSet out(fcinfo);
    for (const auto& q : result.dynamic) {
      std::string index = std::to_string(q.query_index);
      std::string priority = std::to_string(q.priority);
      for (const auto& lookup : q.lookups) out.add({q.definition.c_str(), index.c_str(), lookup.c_str(), priority.c_str()});
    }
    return (Datum)0;
  });
}
