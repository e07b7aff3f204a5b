// POST /api/crud: the client's upload queue applied to Postgres. Parsing and SQL building are
// pure (unit-tested); values always travel as one jsonb parameter and are coerced to the column
// types by jsonb_populate_record on the table's row type.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace powersync::gateway {

// One entry of {"batch": [...]} as produced by the SDK's CrudEntry.toJSON().
struct CrudEntry {
  size_t index = 0;
  std::string op;     // PUT | PATCH | DELETE
  std::string table;  // `type`
  std::string id;
  nlohmann::json data = nlohmann::json::object();
  nlohmann::json raw;  // the entry as sent, echoed back in errors
};

// A user-facing rejection of the batch (HTTP status, which entry, why).
struct CrudError {
  int status = 400;
  std::optional<size_t> index;
  std::string message;
  std::string sqlstate;
};

// Column facts needed to coerce SQLite values: JSON-valued and array columns receive JSON text
// from SQLite and are parsed before population.
struct ColumnInfo {
  bool json_like = false;  // json / jsonb
  bool array = false;
};

struct TableInfo {
  std::string qualified;  // quoted, schema-qualified name, safe to splice into SQL
  std::map<std::string, ColumnInfo> columns;
};

struct CrudStatement {
  std::string sql;   // uses $1 = the row as jsonb
  std::string row_json;
};

// Parses the request body. Throws CrudError (400) naming the entry at fault.
std::vector<CrudEntry> parse_crud_batch(const std::string& body);

// Resolves a client table name against the allow-list ("t" matches "t" and "public.t";
// "s.t" only itself). Returns the allow-list entry or nullopt.
std::optional<std::string> allowed_table(const std::string& type, const std::vector<std::string>& allow_list);

// "schema.table" or "table" -> quoted form, each part quoted separately.
std::string quote_qualified(const std::string& name);

// Builds the statement for one entry. Throws CrudError for unknown columns or ops. Returns
// nullopt when the entry changes nothing (PATCH without columns).
std::optional<CrudStatement> build_crud_statement(const CrudEntry& entry, const TableInfo& table);

}  // namespace powersync::gateway
