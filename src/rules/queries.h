// Compiled data queries and parameter queries of one bucket definition (spec §4.3, §4.4, §4.8).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clause.h"
#include "powersync/rules/ast.h"
#include "powersync/rules/expression.h"
#include "powersync/rules/sync_rules.h"

namespace powersync::rules::detail {

// Everything a query needs from its bucket definition while compiling.
struct QueryContext {
  std::string definition;
  std::string query_id;                       // 1-based position among the definition's parameter queries
  std::optional<int> definition_priority;     // `priority:` of the definition
  bool accept_potentially_dangerous_queries = false;
  const ParseOptions* options = nullptr;
};

// Index where a column was found in the last row: rows of one table usually share a layout, so
// the name is then compared once instead of against every column before it.
struct ColumnHint {
  mutable std::atomic<uint32_t> index{0};
  ColumnHint() = default;
  ColumnHint(const ColumnHint& o) : index(o.index.load(std::memory_order_relaxed)) {}
  ColumnHint& operator=(const ColumnHint& o) {
    index.store(o.index.load(std::memory_order_relaxed), std::memory_order_relaxed);
    return *this;
  }
};

struct OutputColumn {
  enum class Kind { Expression, Star };
  Kind kind = Kind::Expression;
  std::string name;
  std::string json_key;  // `"name":` JSON-encoded once at compile time
  std::shared_ptr<Expression> expr;
  std::string bare_column;  // set when the expression is a plain column: absent columns are omitted
  ColumnHint bare_hint;     // where bare_column was last found
};

struct DataQuery {
  std::string sql;
  TablePattern table;
  std::string output_name;   // alias, else table name; empty for an unaliased wildcard table
  bool wildcard_table = false;
  std::vector<OutputColumn> columns;
  bool distinct_columns = false;  // no `*` and no output name twice: no field lookups by name needed
  Clause filter;                             // a Match clause
  std::vector<std::string> bucket_parameters;  // of the definition, in bucket id order
  std::vector<std::string> bucket_keys;        // "bucket.<name>" for each of them
  int equals_key_index = -1;                   // filter `column = bucket.p`: index of p in bucket_keys
};

struct ParameterQuery {
  QueryKind kind = QueryKind::ParameterStatic;
  std::string sql;
  std::string query_id;
  int priority = 3;
  std::vector<std::string> bucket_parameters;  // output names in SELECT order (no _priority)
  // Table queries: row-side outputs stored with the lookup; request-side outputs evaluated at request time.
  TablePattern table;
  std::vector<std::pair<std::string, std::shared_ptr<Expression>>> row_outputs;
  std::vector<std::string> row_output_columns;  // the source column of each row output
  std::vector<std::pair<std::string, std::shared_ptr<Expression>>> request_outputs;
  Clause filter;                               // table queries: Match clause
  std::shared_ptr<Expression> request_filter;  // static / table-valued queries (null = true)
  std::shared_ptr<Expression> call_argument;   // table-valued: json_each(<this>)
};

// Parses + compiles one data query. Returns nullopt when it has errors (all reported in `issues`).
std::optional<DataQuery> compile_data_query(const std::string& sql, const QueryContext& ctx,
                                            const std::vector<std::string>& bucket_parameters,
                                            std::vector<QueryIssue>& issues);

// Parses + compiles one parameter query ("SELECT" alone for a definition without `parameters`).
std::optional<ParameterQuery> compile_parameter_query(const std::string& sql, const QueryContext& ctx,
                                                      std::vector<QueryIssue>& issues);

// The table a FROM clause names (default schema applied, `default.` connection tag removed).
TablePattern table_pattern(const ast::TableRef& from, const ParseOptions& options);

// Parses a SELECT, accepting an empty column list (`SELECT`, `SELECT WHERE ...`, `SELECT FROM t ...`).
SelectParseResult parse_query(const std::string& sql);

// Evaluation.
// Hands each (bucket, row) result to `sink`; a query that throws may have handed some already.
void evaluate_data_query(const DataQuery& q, const SourceTable& table, const Row& row, const ParseOptions& options,
                         const std::string& definition, RowSink& sink);
void evaluate_parameter_query(const ParameterQuery& q, const std::string& definition, const Row& row,
                              std::vector<EvaluatedParameters>& out);
// Static and table-valued queries: bucket ids of a request.
void static_buckets(const ParameterQuery& q, const std::string& definition, const RequestContext& request,
                    const ParseOptions& options, std::vector<BucketDescription>& out);
// Table queries: lookup keys of a request.
std::vector<std::string> request_lookups(const ParameterQuery& q, const std::string& definition,
                                         const RequestContext& request);
std::vector<BucketDescription> resolve_buckets(const ParameterQuery& q, const std::string& definition,
                                               const RequestContext& request, const ParseOptions& options,
                                               const std::vector<std::string>& bucket_parameters);

// JSON text of a lookup key: [definition, query_id, values...] with integral REALs as integers.
std::string lookup_key(const std::string& definition, const std::string& query_id, const std::vector<Value>& values);

}  // namespace powersync::rules::detail
