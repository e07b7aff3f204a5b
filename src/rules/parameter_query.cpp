// Parameter queries (`parameters:`): static (no FROM), table-valued (`FROM json_each(...)`) and table
// queries with lookups (spec §4.3, §4.8): compile, evaluate rows into lookups, requests into buckets.
#include <algorithm>

#include "powersync/error.h"
#include "powersync/protocol/json_writer.h"
#include "queries.h"

namespace powersync::rules::detail {
namespace {

constexpr const char* kDangerous =
    "Potentially dangerous query based on parameters set by the client. The client can send any value for these "
    "parameters so it's not a good place to do authorization.";

bool is_error(const QueryIssue& i) { return i.severity == RuleIssue::Severity::Error; }
bool param_like(ClauseKind k) { return k == ClauseKind::Static || k == ClauseKind::Param; }

// Compiles the SELECT list of a parameter query: `_priority`, row outputs (table queries: plain
// columns of the table) and request outputs.
void compile_outputs(const ast::SelectStatement& stmt, const std::string& sql, const QueryContext& ctx,
                     const std::string* row_table, ClauseCompiler& cc, ParameterQuery& q,
                     std::vector<QueryIssue>& issues) {
  std::optional<int> priority;
  for (const auto& item : stmt.columns) {
    if (item.kind != ast::SelectItem::Kind::Expression) {
      cc.error("* is not supported here - use explicit columns", item.offset);
      continue;
    }
    if (item.alias) check_identifier_case(*item.alias, sql, issues);
    check_identifier_case(*item.expr, sql, issues);
    std::string name;
    if (item.alias) name = item.alias->name;
    else if (item.expr->kind == ast::ExprKind::Column) name = item.expr->name.name;
    else {
      cc.error("alias is required", item.expr->offset);
      continue;
    }
    if (name == "_priority") {
      if (ctx.definition_priority || priority) {
        cc.error("Cannot set priority multiple times.", item.offset);
        continue;
      }
      const ast::Expr& e = *item.expr;
      if (e.kind != ast::ExprKind::Literal || e.literal_kind != ast::LiteralKind::Integer) {
        cc.error("Priority must be a simple integer literal", e.offset);
      } else if (e.integer_value < 0 || e.integer_value > 3) {
        cc.error("Invalid value for priority, must be between 0 and 3 (inclusive).", e.offset);
      } else {
        priority = static_cast<int>(e.integer_value);
      }
      continue;
    }
    q.bucket_parameters.push_back(name);
    const ast::Expr& e = *item.expr;
    const bool is_table_column = row_table && e.kind == ast::ExprKind::Column &&
                                 (!e.qualifier || e.qualifier->name == *row_table);
    Clause c = cc.compile(e);
    if (c.kind == ClauseKind::Error) continue;
    if (is_table_column && c.kind == ClauseKind::Row) {
      q.row_outputs.emplace_back(name, c.expr);
      q.row_output_columns.push_back(e.name.name);
    } else if (param_like(c.kind)) {
      q.request_outputs.emplace_back(name, c.expr);
    } else {
      cc.error("Parameter match expression is not allowed here", e.offset);
    }
  }
  q.priority = priority.value_or(ctx.definition_priority.value_or(3));
}

// A request-only expression (static/table-valued WHERE, json_each argument).
std::shared_ptr<Expression> request_expression(const ast::Expr& e, ClauseCompiler& cc) {
  Clause c = cc.compile(e);
  if (c.kind == ClauseKind::Error) return nullptr;
  if (!param_like(c.kind)) {
    cc.error("Parameter match expression is not allowed here", e.offset);
    return nullptr;
  }
  return c.expr;
}

bool any_output(const ParameterQuery& q, bool (*pred)(const ast::Expr&), const std::vector<const ast::Expr*>& nodes) {
  for (const ast::Expr* n : nodes)
    if (n && pred(*n)) return true;
  return false;
}

std::vector<const ast::Expr*> request_output_nodes(const ast::SelectStatement& stmt) {
  std::vector<const ast::Expr*> out;
  for (const auto& item : stmt.columns)
    if (item.expr) out.push_back(item.expr.get());
  return out;
}

void compile_static(const ast::SelectStatement& stmt, const std::string& sql, const QueryContext& ctx,
                    ParameterQuery& q, std::vector<QueryIssue>& issues) {
  q.kind = QueryKind::ParameterStatic;
  ExpressionScope scope;
  scope.allow_row_columns = false;
  scope.allow_request = true;
  ClauseCompiler cc(QueryKind::ParameterStatic, scope, issues);
  if (stmt.where) {
    check_identifier_case(*stmt.where, sql, issues);
    q.request_filter = request_expression(*stmt.where, cc);
  }
  compile_outputs(stmt, sql, ctx, nullptr, cc, q, issues);
  auto outputs = request_output_nodes(stmt);
  bool client = any_output(q, reads_client_parameters, outputs) || (stmt.where && reads_client_parameters(*stmt.where));
  if (client && !any_output(q, reads_authenticated, outputs) && !ctx.accept_potentially_dangerous_queries)
    issues.push_back(QueryIssue{RuleIssue::Severity::Warning, kDangerous, stmt.offset});
}

void compile_table_valued(const ast::SelectStatement& stmt, const std::string& sql, const QueryContext& ctx,
                          ParameterQuery& q, std::vector<QueryIssue>& issues) {
  q.kind = QueryKind::ParameterTableValued;
  const ast::TableRef& from = *stmt.from;
  const ast::Expr& call = *from.function;
  if (call.qualifier || call.name.name != "json_each") {
    issues.push_back(QueryIssue{RuleIssue::Severity::Error,
                                "Table-valued function " + ast::to_sql(call).substr(0, ast::to_sql(call).find('(')) +
                                    " is not defined.",
                                call.offset});
    return;
  }
  if (call.operands.size() != 1) {
    issues.push_back(QueryIssue{RuleIssue::Severity::Error,
                                "json_each expects 1 argument, got " + std::to_string(call.operands.size()), call.offset});
    return;
  }
  ExpressionScope scope;
  scope.row_qualifiers = {from.alias ? from.alias->name : std::string("json_each")};
  scope.allow_row_columns = true;
  scope.allow_request = true;
  ClauseCompiler cc(QueryKind::ParameterTableValued, scope, issues);
  check_identifier_case(*call.operands[0], sql, issues);
  q.call_argument = request_expression(*call.operands[0], cc);
  if (stmt.where) {
    check_identifier_case(*stmt.where, sql, issues);
    q.request_filter = request_expression(*stmt.where, cc);
  }
  compile_outputs(stmt, sql, ctx, nullptr, cc, q, issues);
  auto outputs = request_output_nodes(stmt);
  outputs.push_back(call.operands[0].get());
  bool client = any_output(q, reads_client_parameters, outputs) || (stmt.where && reads_client_parameters(*stmt.where));
  if (client && !any_output(q, reads_authenticated, outputs) && !ctx.accept_potentially_dangerous_queries)
    issues.push_back(QueryIssue{RuleIssue::Severity::Warning, kDangerous, stmt.offset});
}

void compile_table(const ast::SelectStatement& stmt, const std::string& sql, const QueryContext& ctx,
                   ParameterQuery& q, std::vector<QueryIssue>& issues) {
  q.kind = QueryKind::ParameterTable;
  const ast::TableRef& from = *stmt.from;
  if (from.alias)
    issues.push_back(QueryIssue{RuleIssue::Severity::Error, "Table aliases not supported in parameter queries", from.offset});
  q.table = table_pattern(from, *ctx.options);
  const std::string sql_name = from.alias ? from.alias->name : from.name.name;
  if (!from.alias && !from.schema) check_identifier_case(from.name, sql, issues);
  ExpressionScope scope;
  scope.row_qualifiers = {sql_name};
  scope.allow_row_columns = true;
  scope.allow_request = true;
  ClauseCompiler cc(QueryKind::ParameterTable, scope, issues);
  if (stmt.where) check_identifier_case(*stmt.where, sql, issues);
  q.filter = cc.compile_where(stmt.where.get());
  compile_outputs(stmt, sql, ctx, &sql_name, cc, q, issues);
  int expanding = 0;
  for (const auto& in : q.filter.inputs) expanding += in.expands ? 1 : 0;
  if (expanding > 1) cc.error("Cannot have multiple array input parameters", stmt.offset);

  std::vector<const ast::Expr*> outputs;
  for (const auto& item : stmt.columns)
    if (item.expr && !(item.expr->kind == ast::ExprKind::Column && (!item.expr->qualifier || item.expr->qualifier->name == sql_name)))
      outputs.push_back(item.expr.get());
  std::vector<const ast::Expr*> filter_nodes;
  for (const auto& in : q.filter.inputs) filter_nodes.push_back(in.node);
  bool client = any_output(q, reads_client_parameters, outputs) || any_output(q, reads_client_parameters, filter_nodes);
  bool authenticated = any_output(q, reads_authenticated, outputs) ||
                       (q.filter.match && match_authenticated(*q.filter.match, q.filter.inputs));
  if (client && !authenticated && !ctx.accept_potentially_dangerous_queries)
    issues.push_back(QueryIssue{RuleIssue::Severity::Warning, kDangerous, stmt.offset});
}

Value normalize(Value v) {
  if (v.is_real()) {
    double d = v.as_real();
    if (d == static_cast<double>(static_cast<int64_t>(d)) && d >= -9.2e18 && d <= 9.2e18)
      return Value::integer(static_cast<int64_t>(d));
  }
  return v;
}

Value request_input(const InputParameter& p, const RequestContext& request) {
  EvalContext ctx;
  ctx.request = &request;
  if (p.as_boolean) return Value::integer(p.value->evaluate_truthy(ctx) ? 1 : 0);
  return p.value->evaluate(ctx);
}

}  // namespace

std::optional<ParameterQuery> compile_parameter_query(const std::string& sql, const QueryContext& ctx,
                                                      std::vector<QueryIssue>& issues) {
  const size_t first_issue = issues.size();
  SelectParseResult parsed = parse_query(sql);
  if (!parsed.ok()) {
    issues.push_back(QueryIssue{RuleIssue::Severity::Error, parsed.error->message, parsed.error->offset});
    return std::nullopt;
  }
  const ast::SelectStatement& stmt = *parsed.statement;
  ParameterQuery q;
  q.sql = sql;
  q.query_id = ctx.query_id;
  if (!stmt.from) compile_static(stmt, sql, ctx, q, issues);
  else if (stmt.from->is_function()) compile_table_valued(stmt, sql, ctx, q, issues);
  else compile_table(stmt, sql, ctx, q, issues);
  if (std::any_of(issues.begin() + first_issue, issues.end(), is_error)) return std::nullopt;
  return q;
}

std::string lookup_key(const std::string& definition, const std::string& query_id, const std::vector<Value>& values) {
  std::string out = "[";
  protocol::append_json_string(out, definition);
  out += ',';
  protocol::append_json_string(out, query_id);
  for (const auto& v : values) {
    out += ',';
    protocol::append_json_value(out, v, protocol::RealFormat::Plain);
  }
  return out + "]";
}

void evaluate_parameter_query(const ParameterQuery& q, const std::string& definition, const Row& row,
                              std::vector<EvaluatedParameters>& out) {
  EvalContext ctx;
  ctx.row = &row;
  std::vector<Assignment> assignments = filter_row(*q.filter.match, ctx);
  if (assignments.empty()) return;
  Row stored;
  for (size_t i = 0; i < q.row_outputs.size(); ++i) {
    // A column the row does not have is left out (undefined in the reference).
    if (!find_column(row, q.row_output_columns[i])) continue;
    stored.push_back(Column{q.row_outputs[i].first, q.row_outputs[i].second->evaluate(ctx)});
  }
  const std::string bucket_parameters = protocol::encode_row_json(stored);
  std::vector<Value> values(q.filter.inputs.size());
  for (const auto& a : assignments) {
    for (size_t i = 0; i < q.filter.inputs.size(); ++i) {
      const Value* v = assigned(a, q.filter.inputs[i].key);
      values[i] = v ? normalize(*v) : Value::null();
    }
    out.push_back(EvaluatedParameters{definition, lookup_key(definition, q.query_id, values), bucket_parameters});
  }
}

void static_buckets(const ParameterQuery& q, const std::string& definition, const RequestContext& request,
                    const ParseOptions& options, std::vector<BucketDescription>& out) {
  std::vector<Row> rows;
  if (q.kind == QueryKind::ParameterTableValued) {
    EvalContext ctx;
    ctx.request = &request;
    rows = json_each_rows(q.call_argument->evaluate(ctx));
  } else {
    rows.emplace_back();  // one evaluation without a row
  }
  std::vector<Value> values(q.request_outputs.size());
  for (const auto& row : rows) {
    EvalContext ctx;
    ctx.request = &request;
    ctx.row = &row;
    if (q.request_filter && !q.request_filter->evaluate_truthy(ctx)) continue;
    bool valid = true;
    for (size_t i = 0; i < q.request_outputs.size(); ++i) {
      values[i] = q.request_outputs[i].second->evaluate(ctx);
      if (values[i].is_blob()) valid = false;
    }
    if (!valid) {
      if (q.kind == QueryKind::ParameterTableValued) throw invalid_input("Invalid parameter value: a BLOB cannot be a bucket parameter");
      continue;
    }
    out.push_back(BucketDescription{protocol::bucket_id(options.bucket_prefix, definition, values), q.priority, definition});
  }
}

std::vector<std::string> request_lookups(const ParameterQuery& q, const std::string& definition,
                                         const RequestContext& request) {
  const auto& inputs = q.filter.inputs;
  auto expanding = std::find_if(inputs.begin(), inputs.end(), [](const InputParameter& p) { return p.expands; });
  std::vector<Value> values(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].expands) continue;
    values[i] = request_input(inputs[i], request);
    if (values[i].is_blob()) return {};
    values[i] = normalize(std::move(values[i]));
  }
  if (expanding == inputs.end()) return {lookup_key(definition, q.query_id, values)};
  Value array = request_input(*expanding, request);
  if (!array.is_text()) return {};
  std::vector<Value> elements;
  try {
    elements = json_array_values(array);
  } catch (const Error&) {
    return {};
  }
  std::vector<std::string> out;
  const size_t at = static_cast<size_t>(expanding - inputs.begin());
  for (auto& element : elements) {
    values[at] = normalize(std::move(element));
    out.push_back(lookup_key(definition, q.query_id, values));
  }
  return out;
}

std::vector<BucketDescription> resolve_buckets(const ParameterQuery& q, const std::string& definition,
                                               const RequestContext& request, const ParseOptions& options,
                                               const std::vector<std::string>& bucket_parameters) {
  std::vector<BucketDescription> out;
  EvalContext ctx;
  ctx.request = &request;
  for (const auto& text : bucket_parameters) {
    nlohmann::json stored = nlohmann::json::parse(text, nullptr, false);
    if (!stored.is_object()) continue;  // e.g. a tombstone `[]`
    std::vector<Value> values;
    bool valid = true;
    for (const auto& name : q.bucket_parameters) {
      auto row_output = std::find_if(q.row_outputs.begin(), q.row_outputs.end(), [&](const auto& o) { return o.first == name; });
      if (row_output != q.row_outputs.end()) {
        auto it = stored.find(name);
        values.push_back(it == stored.end() ? Value::null() : value_from_json(*it));
        continue;
      }
      auto req = std::find_if(q.request_outputs.begin(), q.request_outputs.end(), [&](const auto& o) { return o.first == name; });
      Value v = req == q.request_outputs.end() ? Value::null() : req->second->evaluate(ctx);
      if (v.is_blob()) valid = false;
      values.push_back(std::move(v));
    }
    if (valid) out.push_back(BucketDescription{protocol::bucket_id(options.bucket_prefix, definition, values), q.priority, definition});
  }
  return out;
}

}  // namespace powersync::rules::detail
