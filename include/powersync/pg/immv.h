// Incrementally maintained JOIN views (IMMV): the analysed shape of a view query and the SQL that
// creates, refreshes and maintains it. See src/pg/immv_*.cpp and sql/install/50_immv.sql.
#pragma once

extern "C" {
#include "postgres.h"
#include "access/attnum.h"
}

#include <string>
#include <vector>

namespace powersync::pg::immv {

// A view column computed from one base row alone (e.g. c.name, upper(c.name)): when an UPDATE
// leaves the table's structural columns alone, such columns are copied into the view directly.
struct ValueColumn {
  std::string column;     // quoted IMMV column
  std::string expr_sql;   // its expression over the new base row, alias n
  bool compare_as_text = false;
};

// One appearance of a base table in the view's FROM clause (a table joined to itself appears twice).
struct Occurrence {
  int rtindex = 0;               // position in the analysed query's range table
  Oid relid = InvalidOid;
  std::string table_sql;         // schema-qualified, quoted table name
  std::string alias;             // the name the query uses for it
  std::vector<std::string> pk_names;     // base column names of its primary key
  std::vector<std::string> pk_columns;   // the same, quoted
  std::vector<AttrNumber> pk_attnums;
  std::vector<std::string> source_keys;  // names of its key columns in the source query's output
  std::vector<std::string> stored_keys;  // IMMV columns holding its key (one text column if nullable)
  std::string source_ctid;               // name of its row's ctid in the source query's output
  std::vector<AttrNumber> used_attnums;
  std::vector<std::string> used_columns; // quoted base columns the view reads from this occurrence
  std::vector<bool> used_as_text;        // ... compared as text (their type has no equality)
  std::vector<ValueColumn> value_columns;
  std::vector<AttrNumber> structural_attnums;  // key, join/WHERE columns, columns mixed with other tables
  bool nullable = false;         // on the nullable side of a LEFT JOIN
  int anchor = 0;                // rtindex whose key scopes recomputation (itself unless nullable)
  int lock_rank = 0;             // foreign-key depth among the view's tables (parents lower)
};

struct OutputColumn {
  std::string name;       // quoted column name in the IMMV
  std::string type_sql;   // type (with typmod and collation) for CREATE TABLE
  bool compare_as_text = false;  // type has no equality operator: compare text forms
  bool is_key = false;    // also part of the primary key (a base key column the user selected)
  std::string source_expr;  // its value in terms of the source query's output (alias q)
};

// Everything create_immv derives from the query; the SQL texts are stored in the catalog.
// An equality join condition a.x = b.y between two appearances.
struct JoinEdge {
  int rt[2];
  std::string column[2];  // quoted base column names
  bool enforced = false;  // a foreign key of one side to the other: its check (the referenced row
                          // exists, committed, key-share locked) stands in for advisory join keys
  int child_side = -1;    // enforced: the side holding the foreign key (the referencing table)
};

struct Definition {
  Oid immv = InvalidOid;            // set once the table exists (advisory lock keys use it)
  std::vector<JoinEdge> edges;
  std::string definition_sql;       // the query as Postgres reads it back (for display)
  std::string source_sql;           // view columns followed by every occurrence's raw key columns
  std::string reach_sql;            // source_sql without its WHERE: every row combination the joins
                                    // reach, also those the filter hides (maintenance locks them)
  std::vector<OutputColumn> columns;  // user columns then hidden key columns, in table order
  std::vector<Occurrence> occurrences;
  std::vector<Oid> relied_constraints;  // foreign keys behind enforced edges (the IMMV depends on them)
};

// Parses and analyses `query` with Postgres' own parser and checks that an IMMV can maintain it.
// Throws powersync::Error naming the unsupported construct. Must run inside a transaction.
Definition analyse_view_query(const std::string& query);

// Fills lock ranks and enforced edges from the foreign keys between the view's tables (needs SPI).
void assign_lock_ranks(Definition& def);

// SQL generation (pure string building over a Definition).
struct TriggerSql {
  Oid base = InvalidOid;
  std::string event;                   // INSERT, UPDATE, DELETE or TRUNCATE
  std::vector<std::string> apply_sql;  // recompute the affected view rows and apply the diff; each returns
                                       // (rows changed, stale): stale means run it again
  std::vector<std::string> fallback_sql;  // per apply statement: "" or the full recompute to run when
                                          // the apply statement's third column is true
  std::vector<std::string> lock_sql;   // per apply statement: "" or the pre-lock statement taking its
                                       // advisory keys, returning (_, keys int4[]) for the apply's $1
};
std::string create_table_sql(const Definition& def, const std::string& immv);
std::vector<std::string> create_index_sql(const Definition& def, const std::string& immv);
std::string populate_sql(const Definition& def, const std::string& immv);
std::string refresh_sql(const Definition& def, const std::string& immv);
std::vector<TriggerSql> trigger_sql(const Definition& def, const std::string& immv);

// Backend-local flag: the maintenance code is writing to an IMMV (checked by the write guard).
class MaintenanceScope {
 public:
  MaintenanceScope();
  ~MaintenanceScope();
  MaintenanceScope(const MaintenanceScope&) = delete;
  MaintenanceScope& operator=(const MaintenanceScope&) = delete;
  static bool active();
};

}  // namespace powersync::pg::immv
