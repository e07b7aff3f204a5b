// Data queries (`data:`): compile `SELECT <columns> FROM <table> [WHERE ...]` and evaluate it on
// source rows into (bucket, table, id, row JSON) results (spec §4.4).
#include <algorithm>
#include <charconv>
#include <cstring>

#include "powersync/error.h"
#include "powersync/protocol/json_writer.h"
#include "queries.h"

namespace powersync::rules::detail {
namespace {

bool is_error(const QueryIssue& i) { return i.severity == RuleIssue::Severity::Error; }

}  // namespace

std::optional<DataQuery> compile_data_query(const std::string& sql, const QueryContext& ctx,
                                            const std::vector<std::string>& bucket_parameters,
                                            std::vector<QueryIssue>& issues) {
  const size_t first_issue = issues.size();
  SelectParseResult parsed = parse_query(sql);
  if (!parsed.ok()) {
    issues.push_back(QueryIssue{RuleIssue::Severity::Error, parsed.error->message, parsed.error->offset});
    return std::nullopt;
  }
  const ast::SelectStatement& stmt = *parsed.statement;
  if (!stmt.from || stmt.from->is_function()) {
    issues.push_back(QueryIssue{RuleIssue::Severity::Error, "Must SELECT from a single table",
                                stmt.from ? stmt.from->offset : stmt.offset});
    return std::nullopt;
  }
  const ast::TableRef& from = *stmt.from;
  DataQuery q;
  q.sql = sql;
  q.table = table_pattern(from, *ctx.options);
  q.wildcard_table = !q.table.name.empty() && q.table.name.back() == '%';
  const std::string sql_name = from.alias ? from.alias->name : from.name.name;
  q.output_name = (q.wildcard_table && !from.alias) ? std::string() : sql_name;
  if (!from.alias && !from.schema) check_identifier_case(from.name, sql, issues);

  ExpressionScope scope;
  scope.row_qualifiers = {sql_name};
  scope.allow_row_columns = true;
  scope.allow_bucket_parameters = true;
  ClauseCompiler cc(QueryKind::Data, scope, issues);
  if (stmt.where) check_identifier_case(*stmt.where, sql, issues);
  q.filter = cc.compile_where(stmt.where.get());

  // Every bucket parameter must be bound by the WHERE clause, and nothing else may be.
  std::vector<std::string> expected, got;
  for (const auto& p : bucket_parameters) expected.push_back("bucket." + p);
  for (const auto& in : q.filter.inputs) got.push_back(in.key);
  std::vector<std::string> all = got;
  for (const auto& e : expected)
    if (std::find(all.begin(), all.end(), e) == all.end()) all.push_back(e);
  if ((!q.filter.has_error && all.size() != got.size()) || all.size() != expected.size()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? ",\"" : "\"") + v[i] + "\"";
      return out + "]";
    };
    issues.push_back(QueryIssue{RuleIssue::Severity::Error,
                                "Query must cover all bucket parameters. Expected: " + list(expected) +
                                    " Got: " + list(got),
                                stmt.where ? stmt.where->offset : stmt.offset});
  }
  q.bucket_parameters = bucket_parameters;
  for (const auto& p : bucket_parameters) q.bucket_keys.push_back("bucket." + p);

  bool has_id = false, has_star = false;
  for (const auto& item : stmt.columns) {
    OutputColumn col;
    if (item.kind != ast::SelectItem::Kind::Expression) {
      col.kind = OutputColumn::Kind::Star;
      has_star = true;
      q.columns.push_back(std::move(col));
      continue;
    }
    check_identifier_case(*item.expr, sql, issues);
    if (item.alias) {
      col.name = item.alias->name;
    } else if (item.expr->kind == ast::ExprKind::Column) {
      col.name = item.expr->name.name;
    } else {
      cc.error("alias is required", item.expr->offset);
      continue;
    }
    Clause c = cc.compile(*item.expr);
    if (c.kind == ClauseKind::Error) continue;
    if (c.kind != ClauseKind::Row && c.kind != ClauseKind::Static) {
      cc.error("Parameter match expression is not allowed here", item.expr->offset);
      continue;
    }
    if (item.expr->kind == ast::ExprKind::Column &&
        (!item.expr->qualifier || item.expr->qualifier->name == sql_name)) {
      col.bare_column = item.expr->name.name;
    }
    col.expr = c.expr;
    protocol::append_json_string(col.json_key, col.name);
    col.json_key.push_back(':');
    if (col.name == "id") has_id = true;
    q.columns.push_back(std::move(col));
  }
  if (!has_id && !has_star) {
    issues.push_back(QueryIssue{RuleIssue::Severity::Error, "Query must return an \"id\" column",
                                stmt.columns.empty() ? stmt.offset : stmt.columns.front().offset});
  }
  if (std::any_of(issues.begin() + first_issue, issues.end(), is_error)) return std::nullopt;
  return q;
}

namespace {

// One output field: name and value point into the query, the source row or `computed`; nothing is
// copied until the JSON is written.
struct Field {
  const std::string* name;
  const Value* value;
  const std::string* json_key;  // pre-encoded `"name":` of explicit columns, null for `*` columns
};

Field* find_field(std::vector<Field>& fields, const std::string& name) {
  for (auto& f : fields)
    if (*f.name == name) return &f;
  return nullptr;
}

void write_json(const std::vector<Field>& fields, std::string& json, const Value*& id);

// The common case of write_json in one allocation and raw copies: every name and TEXT value is free
// of escapes. Returns false (having written nothing) otherwise.
bool write_clean_json(const std::vector<Field>& fields, std::string& json, const Value*& id) {
  size_t size = 1;  // '{'
  for (const auto& f : fields) {
    const Value& v = *f.value;
    if (v.is_blob()) continue;
    if (f.json_key) {
      size += f.json_key->size();
    } else {
      if (protocol::next_escape(*f.name, 0) != f.name->size()) return false;
      size += f.name->size() + 3;
    }
    if (v.is_text()) {
      if (protocol::next_escape(v.as_text(), 0) != v.as_text().size()) return false;
      size += v.as_text().size() + 2;
    } else if (v.is_integer()) {
      size += 20;  // at most 20 characters; trimmed below
    } else {
      size += 32;  // null, or a REAL: at most 25 characters ("-1.2345678901234567e-308") + ".0"
    }
    size += 1;  // ',' or '}'
  }
  json.clear();
  json.resize(size);
  char* p = json.data();
  *p++ = '{';
  id = nullptr;
  for (const auto& f : fields) {
    const Value& v = *f.value;
    if (v.is_blob()) continue;
    if (f.name->size() == 2 && (*f.name)[0] == 'i' && (*f.name)[1] == 'd') id = &v;
    if (p != json.data() + 1) *p++ = ',';
    if (f.json_key) {
      std::memcpy(p, f.json_key->data(), f.json_key->size());
      p += f.json_key->size();
    } else {
      *p++ = '"';
      std::memcpy(p, f.name->data(), f.name->size());
      p += f.name->size();
      *p++ = '"';
      *p++ = ':';
    }
    if (v.is_text()) {
      *p++ = '"';
      std::memcpy(p, v.as_text().data(), v.as_text().size());
      p += v.as_text().size();
      *p++ = '"';
    } else if (v.is_integer()) {
      p = std::to_chars(p, p + 20, v.as_integer()).ptr;
    } else {
      std::string number;  // short: no allocation
      protocol::append_json_value(number, v, protocol::RealFormat::RowJson);
      std::memcpy(p, number.data(), number.size());
      p += number.size();
    }
  }
  *p++ = '}';
  json.resize(static_cast<size_t>(p - json.data()));
  return true;
}

// Applies the SELECT list (reference semantics: a later explicit column overwrites in place, `*`
// never replaces a set value unless it is NULL and skips `_` columns; absent plain columns are
// omitted) and writes the row JSON. Returns the object id.
std::string write_output(const DataQuery& q, const Row& row, const EvalContext& ctx, std::string& json) {
  // Per-thread scratch space: evaluation is not re-entrant, and this saves two allocations per row.
  thread_local std::vector<Value> computed;
  thread_local std::vector<Field> fields;
  computed.clear();
  fields.clear();
  computed.reserve(q.columns.size());  // stable addresses for Field::value
  fields.reserve(row.size() + q.columns.size());
  for (const auto& col : q.columns) {
    if (col.kind == OutputColumn::Kind::Star) {
      const bool nothing_set = fields.empty();  // row column names are distinct: no lookups needed
      for (const auto& c : row) {
        if (!c.name.empty() && c.name[0] == '_') continue;
        if (nothing_set) {
          fields.push_back(Field{&c.name, &c.value, nullptr});
          continue;
        }
        Field* f = find_field(fields, c.name);
        if (!f) fields.push_back(Field{&c.name, &c.value, nullptr});
        else if (f->value->is_null()) f->value = &c.value;
      }
      continue;
    }
    const Value* v;
    if (!col.bare_column.empty()) {
      v = find_column(row, col.bare_column);
      if (!v) {  // undefined in the reference: omitted from the JSON
        fields.erase(std::remove_if(fields.begin(), fields.end(), [&](const Field& f) { return *f.name == col.name; }),
                     fields.end());
        continue;
      }
    } else {
      computed.push_back(col.expr->evaluate(ctx));
      v = &computed.back();
    }
    if (Field* f = find_field(fields, col.name)) f->value = v;
    else fields.push_back(Field{&col.name, v, &col.json_key});
  }
  const Value* id = nullptr;
  if (!write_clean_json(fields, json, id)) write_json(fields, json, id);
  if (!id) return "";
  if (id->is_text()) return id->as_text();
  return cast_as_text(*id).value_or("");
}

}  // namespace

namespace {

void write_json(const std::vector<Field>& fields, std::string& json, const Value*& id) {
  json.clear();
  json.reserve(64 + 24 * fields.size());
  json.push_back('{');
  bool first = true;
  id = nullptr;
  for (const auto& f : fields) {
    if (f.value->is_blob()) continue;  // BLOBs are not JSON values: dropped
    if (f.name->size() == 2 && (*f.name)[0] == 'i' && (*f.name)[1] == 'd') id = f.value;
    if (!first) json.push_back(',');
    first = false;
    if (f.json_key) {
      json.append(*f.json_key);
    } else {
      protocol::append_json_string(json, *f.name);
      json.push_back(':');
    }
    protocol::append_json_value(json, *f.value, protocol::RealFormat::RowJson);
  }
  json.push_back('}');
}

// Appends `prefix + definition + [values...]` for the `n` values starting at `values`.
std::string bucket_id_of(const std::string& prefix, const std::string& definition, const Value* values, size_t n) {
  std::string bucket;
  if (n == 1 && values[0].is_text() &&
      protocol::next_escape(values[0].as_text(), 0) == values[0].as_text().size()) {
    // The common `definition["value"]`: sized once, copied raw.
    const std::string& v = values[0].as_text();
    bucket.resize(prefix.size() + definition.size() + v.size() + 4);
    char* p = bucket.data();
    std::memcpy(p, prefix.data(), prefix.size());
    p += prefix.size();
    std::memcpy(p, definition.data(), definition.size());
    p += definition.size();
    *p++ = '[';
    *p++ = '"';
    std::memcpy(p, v.data(), v.size());
    p += v.size();
    *p++ = '"';
    *p = ']';
    return bucket;
  }
  bucket.reserve(prefix.size() + definition.size() + 2 + 16 * n);
  bucket.append(prefix).append(definition).push_back('[');
  for (size_t i = 0; i < n; ++i) {
    if (i) bucket.push_back(',');
    protocol::append_json_value(bucket, values[i], protocol::RealFormat::Plain);
  }
  bucket.push_back(']');
  return bucket;
}

// The bucket parameter values of each way the WHERE clause holds, flattened into `values`
// (assignment a at [a * n, (a + 1) * n)); returns the number of assignments. The two most common
// shapes (a row filter, one `column = bucket.p`) skip the general assignment machinery.
size_t bucket_values(const DataQuery& q, const EvalContext& ctx, std::vector<Value>& values) {
  const MatchNode& m = *q.filter.match;
  const size_t n = q.bucket_parameters.size();
  values.clear();
  if (m.kind == MatchNode::Kind::RowFilter) {
    if (m.row && !m.row->evaluate_truthy(ctx)) return 0;
    values.resize(n);
    return 1;
  }
  if (m.kind == MatchNode::Kind::Equals) {
    Value v = m.row->evaluate(ctx);
    if (v.is_null() || v.is_blob()) return 0;
    values.resize(n);
    for (size_t i = 0; i < n; ++i)
      if (q.bucket_keys[i] == m.key) values[i] = std::move(v);
    return 1;
  }
  std::vector<Assignment> assignments = filter_row(m, ctx);
  values.resize(n * assignments.size());  // a parameter an assignment lacks serializes as null
  for (size_t a = 0; a < assignments.size(); ++a)
    for (size_t i = 0; i < n; ++i)
      for (auto& [key, value] : assignments[a])
        if (key == q.bucket_keys[i]) values[a * n + i] = std::move(value);
  return assignments.size();
}

}  // namespace

void evaluate_data_query(const DataQuery& q, const SourceTable& table, const Row& row, const ParseOptions& options,
                         const std::string& definition, std::vector<EvaluatedRow>& out) {
  const Row* source = &row;
  Row with_suffix;
  if (q.wildcard_table) {
    with_suffix = row;
    const std::string prefix = q.table.name.substr(0, q.table.name.size() - 1);
    with_suffix.push_back(Column{"_table_suffix", Value::text(table.name.substr(std::min(prefix.size(), table.name.size())))});
    source = &with_suffix;
  }
  EvalContext ctx;
  ctx.row = source;
  thread_local std::vector<Value> values;  // evaluation is not re-entrant: reuse the buffer
  const size_t count = bucket_values(q, ctx, values);
  if (count == 0) return;
  const size_t n = q.bucket_parameters.size();
  EvaluatedRow result;
  result.id = write_output(q, *source, ctx, result.data);
  result.table = q.output_name.empty() ? table.name : q.output_name;
  for (size_t a = 0; a < count; ++a) {
    std::string bucket = bucket_id_of(options.bucket_prefix, definition, values.data() + a * n, n);
    if (a + 1 == count) {
      result.bucket = std::move(bucket);
      out.push_back(std::move(result));
    } else {
      EvaluatedRow copy = result;
      copy.bucket = std::move(bucket);
      out.push_back(std::move(copy));
    }
  }
}

}  // namespace powersync::rules::detail
