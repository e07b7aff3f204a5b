// Public API of the sync rules engine (edition 1 `bucket_definitions`): load + validate YAML,
// evaluate changed rows into bucket rows and parameter lookups, and resolve a request's buckets.
// Pure C++; this is the contract used by the Postgres layer (replication, SQL functions) and tests.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "powersync/rules/value.h"

namespace powersync::rules {

// One validation finding. line/col are 1-based positions in the YAML text (of the offending token
// inside a query when known, else of the YAML node); 0 when unknown.
struct RuleIssue {
  enum class Severity { Error, Warning };
  Severity severity = Severity::Error;
  std::string message;
  int line = 0;
  int col = 0;
  std::string query;  // the SQL text of the query concerned, empty for YAML-level findings
};

struct ParseOptions {
  // Prefix put before every bucket id, e.g. "3#" for sync rules version 3; "" = unversioned ids.
  std::string bucket_prefix;
  // Schema assumed for unqualified table names.
  std::string default_schema = "public";
};

// A table a rule reads. `name` may end in '%' (prefix wildcard); same for `schema`.
struct TablePattern {
  std::string schema;
  std::string name;
  bool matches(std::string_view schema_name, std::string_view table_name) const;
};

struct SourceTable {
  std::string schema;
  std::string name;
};

// One (bucket, output row) produced by a data query for a source row.
struct EvaluatedRow {
  std::string bucket;       // full bucket id incl. prefix, e.g. `3#by_user["u1"]`
  std::string table;        // object_type (output table name)
  std::string id;           // object_id
  std::string data;         // row JSON (exact bytes hashed into the PUT checksum)
};

// One parameter lookup produced by a parameter query for a source row.
struct EvaluatedParameters {
  std::string definition;         // bucket definition name
  // Canonical lookup key: JSON array text [definition, query_id, value...] with query_id the
  // 1-based index of the parameter query as a string and numbers normalized (integral REAL -> INTEGER).
  std::string lookup;
  // JSON object text of the row-side SELECT columns, e.g. {"org_id":"o1"}.
  std::string bucket_parameters;
};

// Receives the rows of SyncRules::evaluate_row one at a time, in the order evaluate_row lists them. The
// views are valid only during the call; put() must not evaluate rules itself (the engine's scratch
// buffers are per thread and in use).
class RowSink {
 public:
  virtual void put(std::string_view bucket, std::string_view table, std::string_view id, std::string_view data) = 0;
  virtual void error(std::string message) = 0;  // a query's evaluation error; it contributes nothing more

 protected:
  ~RowSink() = default;
};

struct RowEvaluation {
  std::vector<EvaluatedRow> rows;
  std::vector<std::string> errors;  // per-query evaluation errors; such a query contributes nothing
};

struct ParameterEvaluation {
  std::vector<EvaluatedParameters> lookups;
  std::vector<std::string> errors;
};

// What a request carries: JWT claims (must hold `sub`) and the client's `parameters` object.
struct RequestParameters {
  nlohmann::json token_claims = nlohmann::json::object();
  nlohmann::json client_parameters = nlohmann::json::object();
};

struct BucketDescription {
  std::string bucket;  // full bucket id incl. prefix
  int priority = 3;
  std::string definition;
};

// A table-based parameter query that needs stored lookups before it can name buckets.
struct DynamicBucketQuery {
  std::string definition;
  int query_index = 0;               // 0-based index of the parameter query in its definition
  int priority = 3;
  std::vector<std::string> lookups;  // canonical lookup keys (see EvaluatedParameters::lookup)
};

struct RequestBuckets {
  std::vector<BucketDescription> static_buckets;  // buckets known without any lookup
  std::vector<DynamicBucketQuery> dynamic;        // to be resolved with stored lookups
  std::vector<std::string> errors;
};

class SyncRules {
 public:
  // Parses and validates. Returns nullptr if any issue has Severity::Error; all issues (errors and
  // warnings) are appended to `issues`. Never throws on bad input.
  static std::unique_ptr<SyncRules> parse(std::string_view yaml, const ParseOptions& options,
                                          std::vector<RuleIssue>& issues);
  ~SyncRules();

  const std::vector<TablePattern>& source_tables() const;   // every table any query reads
  bool is_data_table(const SourceTable& table) const;       // some data query reads it
  bool is_parameter_table(const SourceTable& table) const;  // some parameter query reads it

  RowEvaluation evaluate_row(const SourceTable& table, const Row& row) const;
  // The same results handed to `sink` as they are produced: no allocation per output row (replication).
  void evaluate_row(const SourceTable& table, const Row& row, RowSink& sink) const;
  ParameterEvaluation evaluate_parameter_row(const SourceTable& table, const Row& row) const;

  // Buckets of a request: static ones directly, table-based ones as lookups to resolve.
  RequestBuckets request_buckets(const RequestParameters& request) const;
  // Turns the stored bucket_parameters objects found for a dynamic query's lookups into buckets.
  std::vector<BucketDescription> resolve_dynamic(const RequestParameters& request, const DynamicBucketQuery& query,
                                                 const std::vector<std::string>& bucket_parameters) const;

  struct Impl;

 private:
  explicit SyncRules(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Converts a JSON value to a sync value (spec: integer numbers -> INTEGER, other numbers -> REAL,
// strings -> TEXT, booleans -> 1/0, null -> NULL, arrays/objects -> JSON text).
Value value_from_json(const nlohmann::json& v);
// Parses JSON object text into a Row, keeping the key order of the text. Throws powersync::Error
// (InvalidInput) when the text is not a JSON object.
Row row_from_json_text(std::string_view json_object_text);

}  // namespace powersync::rules
