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
  if (q.filter.match && q.filter.match->kind == MatchNode::Kind::Equals)
    for (size_t i = 0; i < q.bucket_keys.size(); ++i)
      if (q.bucket_keys[i] == q.filter.match->key) q.equals_key_index = static_cast<int>(i);

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
  q.distinct_columns = !has_star;
  for (size_t i = 0; i < q.columns.size() && q.distinct_columns; ++i)
    for (size_t j = 0; j < i; ++j)
      if (q.columns[j].name == q.columns[i].name) q.distinct_columns = false;
  if (!has_id && !has_star) {
    issues.push_back(QueryIssue{RuleIssue::Severity::Error, "Query must return an \"id\" column",
                                stmt.columns.empty() ? stmt.offset : stmt.columns.front().offset});
  }
  if (std::any_of(issues.begin() + first_issue, issues.end(), is_error)) return std::nullopt;
  return q;
}

namespace {

const Value kNullValue;
constexpr size_t kKeptScratch = 64 * 1024;

// One output field: name and value point into the query, the source row or `computed`; nothing is
// copied until the JSON is written.
struct Field {
  const std::string* name;
  const Value* value;
  const std::string* json_key;  // pre-encoded `"name":` of explicit columns, null for `*` columns
};

// The fields of one output row: a reused per-thread array (evaluation is not re-entrant).
struct Fields {
  Field* data;
  size_t count;
  const Field* begin() const { return data; }
  const Field* end() const { return data + count; }
  size_t size() const { return count; }
  void push_back(const Field& f) { data[count++] = f; }
};

Field* find_field(Fields& fields, const std::string& name) {
  for (size_t i = 0; i < fields.count; ++i)
    if (*fields.data[i].name == name) return &fields.data[i];
  return nullptr;
}

// Copies `s` to `to` word by word (no call: row names and values are short) and sets `dirty` when
// some byte needs a JSON escape, so text is checked and copied in one pass. Reads and writes only
// [s.data(), +n) and [to, +n): short tails use overlapping loads and stores.
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
inline char* copy_checked(char* to, const std::string& s, bool& dirty) {
  const size_t n = s.size();
  const char* from = s.data();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    std::memcpy(&x, from + i, 8);
    dirty |= protocol::word_needs_escape(x);
    std::memcpy(to + i, &x, 8);
  }
  if (i == n) return to + n;
  uint64_t x;
  if (n >= 8) {  // the last 8 bytes, overlapping copied ones
    std::memcpy(&x, from + n - 8, 8);
    std::memcpy(to + n - 8, &x, 8);
  } else if (n >= 4) {  // 4-7 bytes: two overlapping 4-byte words
    uint32_t lo, hi;
    std::memcpy(&lo, from, 4);
    std::memcpy(&hi, from + n - 4, 4);
    std::memcpy(to, &lo, 4);
    std::memcpy(to + n - 4, &hi, 4);
    x = lo | static_cast<uint64_t>(hi) << 32;
  } else {
    x = 0x6161616161616161ull;  // 'a' padding
    for (size_t k = 0; k < n; ++k) {
      to[k] = from[k];
      x = (x << 8) | static_cast<unsigned char>(from[k]);
    }
  }
  dirty |= protocol::word_needs_escape(x);
  return to + n;
}

// Position of `name` in `row` (-1 if absent), trying the hinted position first.
int find_column_index(const Row& row, const std::string& name, const ColumnHint& hint) {
  const uint32_t h = hint.index.load(std::memory_order_relaxed);
  if (h < row.size() && row[h].name == name) return static_cast<int>(h);
  for (size_t i = 0; i < row.size(); ++i) {
    if (row[i].name == name) {
      hint.index.store(static_cast<uint32_t>(i), std::memory_order_relaxed);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void write_json(const Fields& fields, std::string& json, const Value*& id);

// The common case of write_json in one allocation and raw copies: every name and TEXT value is free
// of escapes. Returns false otherwise (`json` is then rewritten by write_json).
bool write_clean_json(const Fields& fields, std::string& json, const Value*& id) {
  size_t size = 1;  // '{'; the exact size if nothing needs escaping
  for (const auto& f : fields) {
    const Value& v = *f.value;
    if (v.is_blob()) continue;
    size += f.json_key ? f.json_key->size() : f.name->size() + 3;
    if (v.is_text()) {
      size += v.as_text().size() + 2;
    } else if (v.is_integer()) {
      size += 20;  // at most 20 characters; trimmed below
    } else {
      size += 32;  // null, or a REAL: at most 25 characters ("-1.2345678901234567e-308") + ".0"
    }
    size += 1;  // ',' or '}'
  }
  // Written into a stack buffer when it fits, then copied into `json` with one exact allocation
  // (resizing `json` first would zero-fill it).
  char stack[1024];
  const bool on_stack = size <= sizeof stack && json.capacity() < size;
  if (!on_stack) json.resize(size);
  char* const begin = on_stack ? stack : json.data();
  char* p = begin;
  bool dirty = false;
  *p++ = '{';
  id = nullptr;
  for (const auto& f : fields) {
    const Value& v = *f.value;
    if (v.is_blob()) continue;
    if (f.name->size() == 2 && (*f.name)[0] == 'i' && (*f.name)[1] == 'd') id = &v;
    if (p != begin + 1) *p++ = ',';
    if (f.json_key) {
      bool encoded_key = false;  // escaped at compile time: its quotes and backslashes are wanted
      p = copy_checked(p, *f.json_key, encoded_key);
    } else {
      *p++ = '"';
      p = copy_checked(p, *f.name, dirty);
      *p++ = '"';
      *p++ = ':';
    }
    if (v.is_text()) {
      *p++ = '"';
      p = copy_checked(p, v.as_text(), dirty);
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
  if (dirty) return false;
  *p++ = '}';
  if (on_stack) json.assign(stack, static_cast<size_t>(p - stack));  // `json` is a reused buffer: no allocation
  else json.resize(static_cast<size_t>(p - begin));
  return true;
}

// Per-thread scratch space of evaluate_data_query, reused (evaluation is not re-entrant): no allocation
// per row once warm. One thread_local object: in a shared library each thread_local costs a lookup call.
struct Scratch {
  std::vector<Value> computed;      // computed output values (Field::value points here)
  std::vector<Field> field_buffer;  // the output row's fields
  std::vector<Value> owned;         // bucket parameter values of general WHERE clauses
  std::vector<const Value*> params;
  std::string data, id_text, bucket;
};

// Applies the SELECT list (reference semantics: a later explicit column overwrites in place, `*`
// never replaces a set value unless it is NULL and skips `_` columns; absent plain columns are
// omitted) and writes the row JSON into scratch.data. Returns the object id: a view of the row's TEXT
// value, or of scratch.id_text.
std::string_view write_output(const DataQuery& q, const Row& row, const EvalContext& ctx, Scratch& scratch) {
  std::vector<Value>& computed = scratch.computed;
  std::vector<Field>& field_buffer = scratch.field_buffer;
  std::string& json = scratch.data;
  std::string& id_text = scratch.id_text;
  computed.clear();
  computed.reserve(q.columns.size());  // stable addresses for Field::value
  if (field_buffer.size() < row.size() + q.columns.size()) field_buffer.resize(row.size() + q.columns.size());
  Fields fields{field_buffer.data(), 0};
  for (const auto& col : q.columns) {
    if (col.kind == OutputColumn::Kind::Star) {
      const bool nothing_set = fields.count == 0;  // row column names are distinct: no lookups needed
      for (const auto& c : row) {
        if (!c.name.empty() && c.name[0] == '_') continue;
        Field* f = nothing_set ? nullptr : find_field(fields, c.name);
        if (!f) fields.push_back(Field{&c.name, &c.value, nullptr});
        else if (f->value->is_null()) f->value = &c.value;
      }
      continue;
    }
    const Value* v;
    int column = -1;
    if (!col.bare_column.empty()) {
      column = find_column_index(row, col.bare_column, col.bare_hint);
      if (column < 0) {  // undefined in the reference: omitted from the JSON
        if (q.distinct_columns) continue;
        Field* kept = std::remove_if(fields.data, fields.data + fields.count,
                                     [&](const Field& f) { return *f.name == col.name; });
        fields.count = static_cast<size_t>(kept - fields.data);
        continue;
      }
      v = &row[static_cast<size_t>(column)].value;
    } else {
      computed.emplace_back();
      v = &col.expr->evaluate_ref(ctx, computed.back());
    }
    if (Field* f = q.distinct_columns ? nullptr : find_field(fields, col.name)) f->value = v;
    else fields.push_back(Field{&col.name, v, &col.json_key});
  }
  const Value* id = nullptr;
  if (!write_clean_json(fields, json, id)) write_json(fields, json, id);
  if (!id) return {};
  if (id->is_text()) return id->as_text();
  if (id->is_integer()) {
    char digits[24];
    id_text.assign(digits, static_cast<size_t>(std::to_chars(digits, digits + sizeof digits, id->as_integer()).ptr - digits));
  } else {
    id_text = cast_as_text(*id).value_or("");
  }
  return id_text;
}

}  // namespace

namespace {

void write_json(const Fields& fields, std::string& json, const Value*& id) {
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

// Sets `bucket` (a reused buffer) to `prefix + definition + [values...]` for the `n` values `values[0..n)`.
void bucket_id_of(const std::string& prefix, const std::string& definition, const Value* const* values, size_t n,
                  std::string& bucket) {
  char stack[256];
  if (n == 1 && values[0]->is_text() &&
      prefix.size() + definition.size() + values[0]->as_text().size() + 4 <= sizeof stack) {
    // The common `definition["value"]` without escapes: built here, copied out with one exact
    // allocation.
    const std::string& v = values[0]->as_text();
    char* p = stack;
    std::memcpy(p, prefix.data(), prefix.size());
    p += prefix.size();
    std::memcpy(p, definition.data(), definition.size());
    p += definition.size();
    *p++ = '[';
    *p++ = '"';
    bool dirty = false;
    p = copy_checked(p, v, dirty);
    *p++ = '"';
    *p++ = ']';
    if (!dirty) {
      bucket.assign(stack, static_cast<size_t>(p - stack));
      return;
    }
  }
  bucket.clear();
  bucket.reserve(prefix.size() + definition.size() + 2 + 16 * n);
  bucket.append(prefix).append(definition).push_back('[');
  for (size_t i = 0; i < n; ++i) {
    if (i) bucket.push_back(',');
    protocol::append_json_value(bucket, *values[i], protocol::RealFormat::Plain);
  }
  bucket.push_back(']');
}

// The bucket parameter values of each way the WHERE clause holds, as pointers into `owned`, the
// row or `scratch`, flattened into `params` (assignment a at [a * n, (a + 1) * n)); returns the
// number of assignments. The two most common shapes (a row filter, one `column = bucket.p`) skip
// the general assignment machinery and copy nothing.
size_t bucket_values(const DataQuery& q, const EvalContext& ctx, std::vector<Value>& owned,
                     std::vector<const Value*>& params, Value& scratch) {
  const MatchNode& m = *q.filter.match;
  const size_t n = q.bucket_parameters.size();
  params.clear();
  if (m.kind == MatchNode::Kind::RowFilter) {
    if (m.row && !m.row->evaluate_truthy(ctx)) return 0;
    params.assign(n, &kNullValue);
    return 1;
  }
  if (m.kind == MatchNode::Kind::Equals) {
    const Value& v = m.row->evaluate_ref(ctx, scratch);
    if (v.is_null() || v.is_blob()) return 0;
    params.assign(n, &kNullValue);
    if (q.equals_key_index >= 0) params[static_cast<size_t>(q.equals_key_index)] = &v;
    return 1;
  }
  std::vector<Assignment> assignments = filter_row(m, ctx);
  owned.clear();
  owned.resize(n * assignments.size());  // a parameter an assignment lacks serializes as null
  for (size_t a = 0; a < assignments.size(); ++a)
    for (size_t i = 0; i < n; ++i)
      for (auto& [key, value] : assignments[a])
        if (key == q.bucket_keys[i]) owned[a * n + i] = std::move(value);
  for (const auto& v : owned) params.push_back(&v);
  return assignments.size();
}

}  // namespace

void evaluate_data_query(const DataQuery& q, const SourceTable& table, const Row& row, const ParseOptions& options,
                         const std::string& definition, RowSink& sink) {
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
  thread_local Scratch scratch;
  Value equals_value;
  const size_t count = bucket_values(q, ctx, scratch.owned, scratch.params, equals_value);
  if (count == 0) return;
  const size_t n = q.bucket_parameters.size();
  const std::string_view id = write_output(q, *source, ctx, scratch);  // may throw: nothing handed out yet
  const std::string& table_name = q.output_name.empty() ? table.name : q.output_name;
  for (size_t a = 0; a < count; ++a) {
    bucket_id_of(options.bucket_prefix, definition, scratch.params.data() + a * n, n, scratch.bucket);
    sink.put(scratch.bucket, table_name, id, scratch.data);
  }
  // A huge row's buffer is not kept for the rest of the thread's life.
  if (scratch.data.capacity() > kKeptScratch) std::string().swap(scratch.data);
}

}  // namespace powersync::rules::detail
