// Building the SQL of /api/crud entries. Identifiers come only from the catalog-checked column
// list and are quoted; values go in a single jsonb parameter.
#include "powersync/gateway/crud.h"

#include "powersync/gateway/pg_async.h"

namespace powersync::gateway {

namespace {

CrudError entry_error(size_t index, std::string message) {
  CrudError e;
  e.status = 400;
  e.index = index;
  e.message = std::move(message);
  return e;
}

// SQLite has no JSON or array types: such columns arrive as JSON text and are parsed here so that
// jsonb_populate_record sees a JSON value instead of a string.
nlohmann::json coerce_value(const nlohmann::json& v, const ColumnInfo& col) {
  if ((col.json_like || col.array) && v.is_string()) {
    auto parsed = nlohmann::json::parse(v.get_ref<const std::string&>(), nullptr, false);
    if (!parsed.is_discarded() && (col.json_like || parsed.is_array())) return parsed;
  }
  return v;
}

}  // namespace

std::vector<CrudEntry> parse_crud_batch(const std::string& body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("batch") || !doc["batch"].is_array()) {
    CrudError e;
    e.message = "the body must be a JSON object {\"batch\": [...]} of CrudEntry objects";
    throw e;
  }
  std::vector<CrudEntry> out;
  const auto& batch = doc["batch"];
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& j = batch[i];
    if (!j.is_object()) throw entry_error(i, "entry is not a JSON object");
    CrudEntry e;
    e.index = i;
    e.raw = j;
    auto str = [&](const char* name) -> std::string {
      auto it = j.find(name);
      if (it == j.end() || !(it->is_string() || it->is_number()))
        throw entry_error(i, std::string("entry has no string \"") + name + "\"");
      return it->is_string() ? it->get<std::string>() : it->dump();
    };
    e.op = str("op");
    e.table = str("type");
    e.id = str("id");
    if (e.op != "PUT" && e.op != "PATCH" && e.op != "DELETE")
      throw entry_error(i, "op must be PUT, PATCH or DELETE, got \"" + e.op + "\"");
    // toJSON() calls the row values opData; older payloads used data.
    for (const char* name : {"data", "opData"}) {
      auto it = j.find(name);
      if (it == j.end() || it->is_null()) continue;
      if (!it->is_object()) throw entry_error(i, std::string("\"") + name + "\" must be an object of column values");
      e.data = *it;
      break;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<std::string> allowed_table(const std::string& type, const std::vector<std::string>& allow_list) {
  for (const auto& allowed : allow_list) {
    if (allowed == type) return allowed;
    if (type.find('.') == std::string::npos && allowed == "public." + type) return allowed;
  }
  return std::nullopt;
}

std::string quote_qualified(const std::string& name) {
  size_t dot = name.find('.');
  if (dot == std::string::npos) return quote_identifier(name);
  return quote_identifier(name.substr(0, dot)) + "." + quote_identifier(name.substr(dot + 1));
}

std::optional<CrudStatement> build_crud_statement(const CrudEntry& entry, const TableInfo& table) {
  if (!table.columns.count("id"))
    throw entry_error(entry.index, "table " + entry.table + " has no \"id\" column, which uploads need");
  nlohmann::json row = nlohmann::json::object();
  std::vector<std::string> columns;
  for (const auto& [name, value] : entry.data.items()) {
    if (name == "id") continue;
    auto col = table.columns.find(name);
    if (col == table.columns.end())
      throw entry_error(entry.index, "table " + entry.table + " has no column \"" + name + "\"");
    row[name] = coerce_value(value, col->second);
    columns.push_back(name);
  }
  row["id"] = entry.id;
  const std::string& t = table.qualified;
  std::string source = "jsonb_populate_record(NULL::" + t + ", $1::jsonb) AS r";
  CrudStatement st;
  st.row_json = row.dump();
  if (entry.op == "PUT") {
    std::string cols = quote_identifier("id"), vals = "r." + quote_identifier("id"), sets;
    for (const auto& c : columns) {
      cols += ", " + quote_identifier(c);
      vals += ", r." + quote_identifier(c);
      sets += (sets.empty() ? "" : ", ") + quote_identifier(c) + " = EXCLUDED." + quote_identifier(c);
    }
    st.sql = "INSERT INTO " + t + " (" + cols + ") SELECT " + vals + " FROM " + source + " ON CONFLICT (" +
             quote_identifier("id") + ") DO " + (sets.empty() ? "NOTHING" : "UPDATE SET " + sets);
  } else if (entry.op == "PATCH") {
    if (columns.empty()) return std::nullopt;
    std::string sets;
    for (const auto& c : columns) sets += (sets.empty() ? "" : ", ") + quote_identifier(c) + " = r." + quote_identifier(c);
    st.sql = "UPDATE " + t + " AS t SET " + sets + " FROM " + source + " WHERE t." + quote_identifier("id") + " = r." +
             quote_identifier("id");
  } else {
    st.sql = "DELETE FROM " + t + " AS t USING " + source + " WHERE t." + quote_identifier("id") + " = r." + quote_identifier("id");
  }
  return st;
}

}  // namespace powersync::gateway
