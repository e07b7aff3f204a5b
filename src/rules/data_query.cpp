// Data queries (`data:`): compile `SELECT <columns> FROM <table> [WHERE ...]` and evaluate it on
// source rows into (bucket, table, id, row JSON) results (spec §4.4).
#include <algorithm>
#include <cctype>
#include <cstring>

#include "powersync/error.h"
#include "powersync/protocol/json_writer.h"
#include "queries.h"

namespace powersync::rules::detail {
namespace {

constexpr const char* kNoColumnsPlaceholder = " NULL AS \"__powersync_no_columns\" ";

bool is_error(const QueryIssue& i) { return i.severity == RuleIssue::Severity::Error; }

}  // namespace

// Offset where the column list of `SELECT <nothing> [FROM|WHERE|;|end]` would start, if it is empty.
std::optional<size_t> empty_select_list_at(const std::string& sql) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  auto word_at = [&](size_t i, const char* w) {
    size_t n = std::strlen(w);
    if (sql.size() < i + n) return false;
    for (size_t k = 0; k < n; ++k)
      if (std::tolower(static_cast<unsigned char>(sql[i + k])) != w[k]) return false;
    return i + n == sql.size() || !(std::isalnum(static_cast<unsigned char>(sql[i + n])) || sql[i + n] == '_');
  };
  size_t i = 0;
  while (i < sql.size() && is_space(sql[i])) ++i;
  if (!word_at(i, "select")) return std::nullopt;
  i += 6;
  while (i < sql.size() && is_space(sql[i])) ++i;
  if (i == sql.size() || sql[i] == ';' || word_at(i, "from") || word_at(i, "where")) return i;
  return std::nullopt;
}

SelectParseResult parse_query(const std::string& sql) {
  const std::optional<size_t> empty_at = empty_select_list_at(sql);
  if (!empty_at) return parse_select(sql);
  // The reference accepts an empty column list (`SELECT`, `SELECT WHERE c`, `SELECT FROM t WHERE c`).
  // Parse with a placeholder column, then drop it; AST offsets after it are shifted back.
  const size_t at = *empty_at;
  const std::string placeholder = kNoColumnsPlaceholder;
  SelectParseResult retry = parse_select(sql.substr(0, at) + placeholder + sql.substr(at));
  if (!retry.ok()) {
    if (retry.error && retry.error->offset >= at + placeholder.size()) retry.error->offset -= placeholder.size();
    return retry;
  }
  retry.statement->columns.clear();
  struct Shift {
    size_t at, by;
    void fix(size_t& o) const { if (o >= at + by) o -= by; }
    void expr(ast::Expr& e) const {
      fix(e.offset);
      if (e.qualifier) fix(e.qualifier->offset);
      fix(e.name.offset);
      for (auto& op : e.operands)
        if (op) expr(*op);
    }
  } shift{at, placeholder.size()};
  ast::SelectStatement& s = *retry.statement;
  if (s.from) {
    shift.fix(s.from->offset);
    if (s.from->schema) shift.fix(s.from->schema->offset);
    shift.fix(s.from->name.offset);
    if (s.from->alias) shift.fix(s.from->alias->offset);
    if (s.from->function) shift.expr(*s.from->function);
  }
  if (s.where) shift.expr(*s.where);
  return retry;
}

TablePattern table_pattern(const ast::TableRef& from, const ParseOptions& options) {
  TablePattern t;
  t.name = from.name.name;
  if (!from.schema) {
    t.schema = options.default_schema;
  } else {
    // `"connection_tag.schema".table`: only the default connection exists here.
    t.schema = from.schema->name;
    const std::string tag = "default.";
    if (t.schema.compare(0, tag.size(), tag) == 0) t.schema = t.schema.substr(tag.size());
  }
  return t;
}

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

void set_output(Row& data, const std::string& name, Value v) {
  for (auto& c : data) {
    if (c.name == name) {
      c.value = std::move(v);
      return;
    }
  }
  data.push_back(Column{name, std::move(v)});
}

void erase_output(Row& data, const std::string& name) {
  data.erase(std::remove_if(data.begin(), data.end(), [&](const Column& c) { return c.name == name; }), data.end());
}

Row transform_row(const DataQuery& q, const Row& row, const EvalContext& ctx) {
  Row data;
  data.reserve(row.size() + q.columns.size());
  for (const auto& col : q.columns) {
    if (col.kind == OutputColumn::Kind::Star) {
      // Legacy `*` skips `_`-prefixed columns and never replaces a value already set (unless NULL).
      for (const auto& c : row) {
        if (!c.name.empty() && c.name[0] == '_') continue;
        auto it = std::find_if(data.begin(), data.end(), [&](const Column& d) { return d.name == c.name; });
        if (it == data.end()) data.push_back(c);
        else if (it->value.is_null()) it->value = c.value;
      }
      continue;
    }
    if (!col.bare_column.empty() && !find_column(row, col.bare_column)) {
      erase_output(data, col.name);  // undefined in the reference: omitted from the JSON
      continue;
    }
    set_output(data, col.name, col.expr->evaluate(ctx));
  }
  return data;
}

std::string object_id(const Row& data) {
  const Value* id = find_column(data, "id");
  if (!id || id->is_blob()) return "";
  if (id->is_text()) return id->as_text();
  return cast_as_text(*id).value_or("");
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
  std::vector<Assignment> assignments = filter_row(*q.filter.match, ctx);
  if (assignments.empty()) return;
  Row data = transform_row(q, *source, ctx);
  EvaluatedRow result;
  result.table = q.output_name.empty() ? table.name : q.output_name;
  result.id = object_id(data);
  result.data = protocol::encode_row_json(data);
  std::vector<Value> values(q.bucket_parameters.size());
  for (const auto& a : assignments) {
    for (size_t i = 0; i < q.bucket_parameters.size(); ++i) {
      const Value* v = assigned(a, "bucket." + q.bucket_parameters[i]);
      values[i] = v ? *v : Value::null();
    }
    EvaluatedRow r = result;
    r.bucket = protocol::bucket_id(options.bucket_prefix, definition, values);
    out.push_back(std::move(r));
  }
}

}  // namespace powersync::rules::detail
