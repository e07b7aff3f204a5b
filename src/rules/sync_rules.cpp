// SyncRules: loads a rules document (YAML + queries) into compiled bucket definitions and evaluates
// rows, parameter rows and requests against them (public API in include/powersync/rules/sync_rules.h).
#include "powersync/rules/sync_rules.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "powersync/error.h"
#include "queries.h"
#include "rules_yaml.h"

namespace powersync::rules {

namespace {

bool matches_pattern(const std::string& pattern, std::string_view value) {
  if (!pattern.empty() && pattern.back() == '%')
    return value.substr(0, pattern.size() - 1) == std::string_view(pattern).substr(0, pattern.size() - 1);
  return pattern.size() == value.size() && std::memcmp(pattern.data(), value.data(), value.size()) == 0;
}

}  // namespace

bool TablePattern::matches(std::string_view schema_name, std::string_view table_name) const {
  return matches_pattern(schema, schema_name) && matches_pattern(name, table_name);
}

struct Definition {
  std::string name;
  std::vector<std::string> bucket_parameters;
  std::vector<detail::ParameterQuery> parameter_queries;  // index = DynamicBucketQuery::query_index
  std::vector<detail::DataQuery> data_queries;
};

struct SyncRules::Impl {
  ParseOptions options;
  std::vector<Definition> definitions;
  std::vector<TablePattern> tables;
};

namespace {

using detail::QueryIssue;

// Turns issues found inside a query into document issues with YAML positions.
void report(std::string_view yaml, const detail::QuerySource& query, const std::vector<QueryIssue>& found,
            std::vector<RuleIssue>& issues) {
  for (const auto& qi : found) {
    RuleIssue issue;
    issue.severity = qi.severity;
    issue.message = qi.message;
    issue.query = query.sql;
    detail::locate_in_scalar(yaml, query.location, query.sql, qi.offset, issue.line, issue.col);
    issues.push_back(std::move(issue));
  }
}

void error_at(const detail::QuerySource& query, std::string message, std::vector<RuleIssue>& issues) {
  RuleIssue issue;
  issue.message = std::move(message);
  issue.line = query.location.line;
  issue.col = query.location.col;
  issue.query = query.sql;
  issues.push_back(std::move(issue));
}

// The parameter query of a definition without `parameters`: `SELECT` (one global bucket).
detail::ParameterQuery implicit_global_query(const detail::DefinitionSource& def) {
  detail::ParameterQuery q;
  q.kind = detail::QueryKind::ParameterStatic;
  q.sql = "SELECT";
  q.query_id = "1";
  q.priority = def.priority.value_or(3);
  return q;
}

bool same_parameter_set(const std::vector<std::string>& first, const std::vector<std::string>& other) {
  std::set<std::string> all(first.begin(), first.end());
  all.insert(other.begin(), other.end());
  return all.size() == first.size();
}

Definition compile_definition(std::string_view yaml, const detail::DefinitionSource& src, const ParseOptions& options,
                              std::vector<RuleIssue>& issues) {
  Definition def;
  def.name = src.name;
  detail::QueryContext ctx;
  ctx.definition = src.name;
  ctx.definition_priority = src.priority;
  ctx.accept_potentially_dangerous_queries = src.accept_potentially_dangerous_queries;
  ctx.options = &options;
  bool parameters_known = true;
  bool parameters_set = false;
  if (!src.has_parameters) {
    def.parameter_queries.push_back(implicit_global_query(src));
    parameters_set = true;
  }
  int next_id = 1;
  for (const auto& query : src.parameters) {
    ctx.query_id = std::to_string(next_id++);
    std::vector<QueryIssue> found;
    auto compiled = detail::compile_parameter_query(query.sql, ctx, found);
    report(yaml, query, found, issues);
    if (!compiled) {
      parameters_known = parameters_known && parameters_set;
      continue;
    }
    if (!parameters_set) {
      def.bucket_parameters = compiled->bucket_parameters;
      parameters_set = true;
    } else if (!same_parameter_set(def.bucket_parameters, compiled->bucket_parameters)) {
      error_at(query, "Bucket parameters must match for each parameter query within a bucket", issues);
    }
    def.parameter_queries.push_back(std::move(*compiled));
  }
  for (const auto& query : src.data) {
    std::vector<QueryIssue> found;
    auto compiled = detail::compile_data_query(query.sql, ctx, def.bucket_parameters, found);
    if (!parameters_known || !parameters_set) {
      // The definition's parameters are unknown (its parameter query is invalid): coverage cannot be judged.
      found.erase(std::remove_if(found.begin(), found.end(),
                                 [](const QueryIssue& q) { return q.message.rfind("Query must cover all", 0) == 0; }),
                  found.end());
    }
    report(yaml, query, found, issues);
    if (compiled) def.data_queries.push_back(std::move(*compiled));
  }
  return def;
}

void add_table(std::vector<TablePattern>& tables, const TablePattern& t) {
  for (const auto& existing : tables)
    if (existing.schema == t.schema && existing.name == t.name) return;
  tables.push_back(t);
}

void dedupe(std::vector<BucketDescription>& buckets) {
  std::set<std::string> seen;
  buckets.erase(std::remove_if(buckets.begin(), buckets.end(),
                               [&](const BucketDescription& b) { return !seen.insert(b.bucket).second; }),
                buckets.end());
}

}  // namespace

SyncRules::SyncRules(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SyncRules::~SyncRules() = default;

std::unique_ptr<SyncRules> SyncRules::parse(std::string_view yaml, const ParseOptions& options,
                                            std::vector<RuleIssue>& issues) {
  const size_t first_issue = issues.size();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  try {
    detail::RulesSource source = detail::load_rules_yaml(yaml, issues);
    for (const auto& def : source.definitions) {
      impl->definitions.push_back(compile_definition(yaml, def, impl->options, issues));
    }
    for (const auto& ev : source.events) {
      for (const auto& payload : ev.payloads) {
        auto parsed = detail::parse_query(payload.sql);
        if (!parsed.ok()) report(yaml, payload, {QueryIssue{RuleIssue::Severity::Error, parsed.error->message, parsed.error->offset}}, issues);
      }
      RuleIssue warning;
      warning.severity = RuleIssue::Severity::Warning;
      warning.message = "event_definitions '" + ev.name +
                        "' is accepted but has no effect: custom write checkpoints are not supported";
      warning.line = ev.location.line;
      warning.col = ev.location.col;
      issues.push_back(std::move(warning));
    }
  } catch (const std::exception& e) {
    RuleIssue issue;
    issue.message = std::string("internal error while loading sync rules: ") + e.what();
    issues.push_back(std::move(issue));
  }
  for (size_t i = first_issue; i < issues.size(); ++i)
    if (issues[i].severity == RuleIssue::Severity::Error) return nullptr;
  for (const auto& def : impl->definitions) {
    for (const auto& q : def.data_queries) add_table(impl->tables, q.table);
    for (const auto& q : def.parameter_queries)
      if (q.kind == detail::QueryKind::ParameterTable) add_table(impl->tables, q.table);
  }
  return std::unique_ptr<SyncRules>(new SyncRules(std::move(impl)));
}

const std::vector<TablePattern>& SyncRules::source_tables() const { return impl_->tables; }

bool SyncRules::is_data_table(const SourceTable& table) const {
  for (const auto& def : impl_->definitions)
    for (const auto& q : def.data_queries)
      if (q.table.matches(table.schema, table.name)) return true;
  return false;
}

bool SyncRules::is_parameter_table(const SourceTable& table) const {
  for (const auto& def : impl_->definitions)
    for (const auto& q : def.parameter_queries)
      if (q.kind == detail::QueryKind::ParameterTable && q.table.matches(table.schema, table.name)) return true;
  return false;
}

void SyncRules::evaluate_row(const SourceTable& table, const Row& row, RowSink& sink) const {
  for (const auto& def : impl_->definitions) {
    for (const auto& q : def.data_queries) {
      if (!q.table.matches(table.schema, table.name)) continue;
      try {
        detail::evaluate_data_query(q, table, row, impl_->options, def.name, sink);
      } catch (const std::exception& e) {
        sink.error(def.name + ": " + e.what() + " (query: " + q.sql + ")");
      }
    }
  }
}

namespace {

struct CollectedRows final : RowSink {
  RowEvaluation& out;
  explicit CollectedRows(RowEvaluation& o) : out(o) {}
  void put(std::string_view bucket, std::string_view table, std::string_view id, std::string_view data) override {
    out.rows.push_back(EvaluatedRow{std::string(bucket), std::string(table), std::string(id), std::string(data)});
  }
  void error(std::string message) override { out.errors.push_back(std::move(message)); }
};

}  // namespace

RowEvaluation SyncRules::evaluate_row(const SourceTable& table, const Row& row) const {
  RowEvaluation out;
  out.rows.reserve(4);
  CollectedRows sink(out);
  evaluate_row(table, row, sink);
  return out;
}

ParameterEvaluation SyncRules::evaluate_parameter_row(const SourceTable& table, const Row& row) const {
  ParameterEvaluation out;
  for (const auto& def : impl_->definitions) {
    for (const auto& q : def.parameter_queries) {
      if (q.kind != detail::QueryKind::ParameterTable || !q.table.matches(table.schema, table.name)) continue;
      try {
        detail::evaluate_parameter_query(q, def.name, row, out.lookups);
      } catch (const std::exception& e) {
        out.errors.push_back(def.name + ": " + e.what() + " (query: " + q.sql + ")");
      }
    }
  }
  return out;
}

RequestBuckets SyncRules::request_buckets(const RequestParameters& request) const {
  RequestBuckets out;
  std::optional<RequestContext> context;
  try {
    context.emplace(request.token_claims, request.client_parameters);
  } catch (const std::exception& e) {
    out.errors.push_back(std::string("invalid request parameters: ") + e.what());
    return out;
  }
  for (const auto& def : impl_->definitions) {
    for (size_t i = 0; i < def.parameter_queries.size(); ++i) {
      const auto& q = def.parameter_queries[i];
      try {
        if (q.kind == detail::QueryKind::ParameterTable) {
          std::vector<std::string> lookups = detail::request_lookups(q, def.name, *context);
          if (!lookups.empty())
            out.dynamic.push_back(DynamicBucketQuery{def.name, static_cast<int>(i), q.priority, std::move(lookups)});
        } else {
          detail::static_buckets(q, def.name, *context, impl_->options, out.static_buckets);
        }
      } catch (const std::exception& e) {
        out.errors.push_back(def.name + ": " + e.what() + " (query: " + q.sql + ")");
      }
    }
  }
  dedupe(out.static_buckets);
  return out;
}

std::vector<BucketDescription> SyncRules::resolve_dynamic(const RequestParameters& request,
                                                          const DynamicBucketQuery& query,
                                                          const std::vector<std::string>& bucket_parameters) const {
  for (const auto& def : impl_->definitions) {
    if (def.name != query.definition) continue;
    if (query.query_index < 0 || static_cast<size_t>(query.query_index) >= def.parameter_queries.size()) break;
    const auto& q = def.parameter_queries[static_cast<size_t>(query.query_index)];
    if (q.kind != detail::QueryKind::ParameterTable) break;
    RequestContext context(request.token_claims, request.client_parameters);
    auto buckets = detail::resolve_buckets(q, def.name, context, impl_->options, bucket_parameters);
    dedupe(buckets);
    return buckets;
  }
  return {};
}

}  // namespace powersync::rules
