// WHERE-clause compilation into row / parameter / match clauses, and match evaluation on rows.
// Mirrors the reference service's legacy clause rules (sql_filters.ts, sql_support.ts) so the same
// queries are accepted, rejected with the same messages, and yield the same bucket parameters.
#include "clause.h"

#include <algorithm>

#include "powersync/error.h"

namespace powersync::rules::detail {
namespace {

bool is_row_like(ClauseKind k) { return k == ClauseKind::Static || k == ClauseKind::Row; }
bool is_param_like(ClauseKind k) { return k == ClauseKind::Static || k == ClauseKind::Param; }

bool is_json_value(const Value& v) { return !v.is_blob(); }

void add_inputs(std::vector<InputParameter>& into, const std::vector<InputParameter>& from) {
  for (const auto& p : from) {
    if (std::none_of(into.begin(), into.end(), [&](const InputParameter& q) { return q.key == p.key; }))
      into.push_back(p);
  }
}

std::string keys_json(const std::vector<InputParameter>& inputs) {
  std::string out = "[";
  for (size_t i = 0; i < inputs.size(); ++i) out += (i ? ",\"" : "\"") + inputs[i].key + "\"";
  return out + "]";
}

}  // namespace

Clause ClauseCompiler::error_clause(std::string message, size_t offset) {
  error(std::move(message), offset);
  return Clause{};
}

// Compiles `e` as one expression and classifies it by what it reads.
Clause ClauseCompiler::compile_whole(const ast::Expr& e) {
  CompileResult compiled = compile_expression(e, scope_);
  if (!compiled.ok()) {
    const ParseError& err = *compiled.error;
    return error_clause(err.message, err.offset);
  }
  const ExpressionDependencies& deps = compiled.expression->dependencies();
  Clause c;
  c.node = &e;
  c.key = ast::to_sql(e);
  // json_each columns are request-side values in table-valued parameter queries.
  const bool row = deps.row && kind_ != QueryKind::ParameterTableValued;
  const bool param = deps.bucket || deps.request || (deps.row && kind_ == QueryKind::ParameterTableValued);
  if (row && param) {
    return error_clause("Cannot use table values and parameters in the same clauses", e.offset);
  }
  if (deps.bucket && kind_ == QueryKind::Data && e.kind != ast::ExprKind::Column) {
    return error_clause("Cannot use bucket parameters in expressions", e.offset);
  }
  c.kind = row ? ClauseKind::Row : param ? ClauseKind::Param : ClauseKind::Static;
  c.expr = std::shared_ptr<Expression>(std::move(compiled.expression));
  return c;
}

Clause ClauseCompiler::compile(const ast::Expr& e) {
  if (e.kind == ast::ExprKind::Binary) {
    switch (e.binary_op) {
      case ast::BinaryOp::And:
      case ast::BinaryOp::Or: return compile_and_or(e);
      case ast::BinaryOp::Eq: return compile_equals(e);
      case ast::BinaryOp::In: return compile_in(e);
      case ast::BinaryOp::NotIn:
        return error_clause("NOT IN is not supported in edition 1 sync rules", e.offset);
      default: break;
    }
  }
  // Any other node: its operands must not contain parameter matches.
  for (const auto& operand : e.operands) {
    if (!operand) continue;
    Clause child = compile(*operand);
    if (child.kind == ClauseKind::Error) return Clause{};
    if (child.kind == ClauseKind::Match) return error_clause("Parameter match clauses cannot be used here", operand->offset);
  }
  return compile_whole(e);
}

Clause ClauseCompiler::compile_and_or(const ast::Expr& e) {
  Clause a = compile(*e.operands[0]);
  Clause b = compile(*e.operands[1]);
  if (a.kind == ClauseKind::Error || b.kind == ClauseKind::Error) return Clause{};
  const bool is_and = e.binary_op == ast::BinaryOp::And;
  if ((is_row_like(a.kind) && is_row_like(b.kind)) || (is_param_like(a.kind) && is_param_like(b.kind))) {
    return compile_whole(e);
  }
  return is_and ? combine_and(std::move(a), std::move(b), e.offset) : combine_or(std::move(a), std::move(b), e.offset);
}

InputParameter ClauseCompiler::input_for(const Clause& param, bool expands) {
  InputParameter p;
  p.key = expands ? param.key + "[*]" : param.key;
  p.expands = expands;
  p.value = param.expr;
  p.node = param.node;
  return p;
}

Clause ClauseCompiler::compile_equals(const ast::Expr& e) {
  Clause a = compile(*e.operands[0]);
  Clause b = compile(*e.operands[1]);
  if (a.kind == ClauseKind::Error || b.kind == ClauseKind::Error) return Clause{};
  if (is_parameter_query() && is_param_like(a.kind) && is_param_like(b.kind)) return compile_whole(e);
  if (!is_row_like(a.kind) && !is_row_like(b.kind)) {
    if (a.kind == ClauseKind::Match || b.kind == ClauseKind::Match)
      return error_clause("Parameter match clauses cannot be used here", e.offset);
    return error_clause("Cannot have bucket parameters on both sides of = operator", e.offset);
  }
  Clause& row = is_row_like(a.kind) ? a : b;
  Clause& other = is_row_like(a.kind) ? b : a;
  if (is_row_like(other.kind)) return compile_whole(e);
  if (other.kind == ClauseKind::Match) return error_clause("Parameter match clauses cannot be used here", e.offset);
  // row value = parameter value
  Clause m;
  m.kind = ClauseKind::Match;
  m.match = std::make_unique<MatchNode>();
  m.match->kind = MatchNode::Kind::Equals;
  m.match->row = row.expr;
  InputParameter input = input_for(other, false);
  m.match->key = input.key;
  m.inputs.push_back(std::move(input));
  return m;
}

Clause ClauseCompiler::compile_in(const ast::Expr& e) {
  Clause a = compile(*e.operands[0]);
  Clause b = compile(*e.operands[1]);
  if (a.kind == ClauseKind::Error || b.kind == ClauseKind::Error) return Clause{};
  if (is_row_like(a.kind) && is_row_like(b.kind)) return compile_whole(e);
  if (is_parameter_query() && is_param_like(a.kind) && is_param_like(b.kind)) return compile_whole(e);
  if (a.kind == ClauseKind::Match || b.kind == ClauseKind::Match)
    return error_clause("Parameter match clauses cannot be used here", e.offset);
  Clause m;
  m.kind = ClauseKind::Match;
  m.match = std::make_unique<MatchNode>();
  if (a.kind == ClauseKind::Param && is_row_like(b.kind)) {
    // request_value IN row_array / bucket.p IN row_array: one assignment per array element.
    m.match->kind = MatchNode::Kind::ParamInRowArray;
    m.match->row = b.expr;
    InputParameter input = input_for(a, false);
    m.match->key = input.key;
    m.inputs.push_back(std::move(input));
    m.unbounded = true;
    return m;
  }
  if (is_parameter_query() && is_row_like(a.kind) && b.kind == ClauseKind::Param) {
    // row_value IN request_array: the lookup expands over the request's array.
    m.match->kind = MatchNode::Kind::RowInParamArray;
    m.match->row = a.expr;
    InputParameter input = input_for(b, true);
    m.match->key = input.key;
    m.inputs.push_back(std::move(input));
    return m;
  }
  if (!is_parameter_query()) return error_clause("Cannot use bucket parameters on the right side of IN operators", e.offset);
  return error_clause("Cannot use table values and parameters in the same clauses", e.offset);
}

Clause ClauseCompiler::to_match(Clause c) {
  if (c.kind == ClauseKind::Match) return c;
  Clause m;
  m.kind = ClauseKind::Match;
  m.match = std::make_unique<MatchNode>();
  if (c.kind == ClauseKind::Error) {
    m.has_error = true;
    m.match->kind = MatchNode::Kind::RowFilter;  // never evaluated: the query is invalid
    return m;
  }
  if (is_row_like(c.kind)) {
    m.match->kind = MatchNode::Kind::RowFilter;
    m.match->row = c.expr;
    return m;
  }
  // A bare request/bucket condition: equivalent to `condition = TRUE`.
  InputParameter input = input_for(c, false);
  input.as_boolean = true;
  m.match->kind = MatchNode::Kind::ParamTrue;
  m.match->key = input.key;
  m.inputs.push_back(std::move(input));
  return m;
}

Clause ClauseCompiler::combine_and(Clause a, Clause b, size_t offset) {
  Clause ma = to_match(std::move(a));
  Clause mb = to_match(std::move(b));
  if (ma.unbounded && mb.unbounded)
    return error_clause("Cannot have multiple IN expressions on bucket parameters", offset);
  Clause m;
  m.kind = ClauseKind::Match;
  m.has_error = ma.has_error || mb.has_error;
  m.unbounded = ma.unbounded || mb.unbounded;
  add_inputs(m.inputs, ma.inputs);
  add_inputs(m.inputs, mb.inputs);
  m.match = std::make_unique<MatchNode>();
  m.match->kind = MatchNode::Kind::And;
  m.match->left = std::move(ma.match);
  m.match->right = std::move(mb.match);
  return m;
}

Clause ClauseCompiler::combine_or(Clause a, Clause b, size_t offset) {
  Clause ma = to_match(std::move(a));
  Clause mb = to_match(std::move(b));
  std::vector<InputParameter> combined;
  add_inputs(combined, ma.inputs);
  add_inputs(combined, mb.inputs);
  if (combined.size() != ma.inputs.size() || combined.size() != mb.inputs.size()) {
    return error_clause("Left and right sides of OR must use the same parameters, or split into separate queries. " +
                            keys_json(ma.inputs) + " != " + keys_json(mb.inputs),
                        offset);
  }
  Clause m;
  m.kind = ClauseKind::Match;
  m.has_error = ma.has_error || mb.has_error;
  m.unbounded = ma.unbounded || mb.unbounded;
  m.inputs = std::move(combined);
  m.match = std::make_unique<MatchNode>();
  m.match->kind = MatchNode::Kind::Or;
  m.match->left = std::move(ma.match);
  m.match->right = std::move(mb.match);
  return m;
}

Clause ClauseCompiler::compile_where(const ast::Expr* where) {
  if (!where) {
    Clause m;
    m.kind = ClauseKind::Match;
    m.match = std::make_unique<MatchNode>();
    m.match->kind = MatchNode::Kind::RowFilter;  // no expression: always true
    return m;
  }
  return to_match(compile(*where));
}

const Value* assigned(const Assignment& a, const std::string& key) {
  for (const auto& [k, v] : a)
    if (k == key) return &v;
  return nullptr;
}

std::vector<Assignment> filter_row(const MatchNode& m, const EvalContext& ctx) {
  using Kind = MatchNode::Kind;
  switch (m.kind) {
    case Kind::RowFilter:
      if (!m.row || m.row->evaluate_truthy(ctx)) return {Assignment{}};
      return {};
    case Kind::ParamTrue:
      return {Assignment{{m.key, Value::integer(1)}}};
    case Kind::Equals: {
      Value v = m.row->evaluate(ctx);
      if (v.is_null() || !is_json_value(v)) return {};
      return {Assignment{{m.key, std::move(v)}}};
    }
    case Kind::ParamInRowArray: {
      Value v = m.row->evaluate(ctx);
      if (v.is_null()) return {};
      if (!v.is_text()) throw invalid_input("Not an array");
      std::vector<Value> values;
      try {
        values = json_array_values(v);
      } catch (const Error&) {
        throw invalid_input("Not an array");
      }
      std::vector<Assignment> out;
      out.reserve(values.size());
      for (auto& element : values) out.push_back(Assignment{{m.key, std::move(element)}});
      return out;
    }
    case Kind::RowInParamArray: {
      Value v = m.row->evaluate(ctx);
      if (!is_json_value(v)) return {};
      return {Assignment{{m.key, std::move(v)}}};
    }
    case Kind::And: {
      std::vector<Assignment> a = filter_row(*m.left, ctx);
      if (a.empty()) return {};
      std::vector<Assignment> b = filter_row(*m.right, ctx);
      std::vector<Assignment> out;
      out.reserve(a.size() * b.size());
      for (const auto& x : a) {
        for (const auto& y : b) {
          // Later assignments overwrite earlier ones; conflicts are not filtered out (reference quirk).
          Assignment combined = x;
          for (const auto& [k, v] : y) {
            auto it = std::find_if(combined.begin(), combined.end(), [&](const auto& p) { return p.first == k; });
            if (it != combined.end()) it->second = v;
            else combined.emplace_back(k, v);
          }
          out.push_back(std::move(combined));
        }
      }
      return out;
    }
    case Kind::Or: {
      std::vector<Assignment> out = filter_row(*m.left, ctx);
      std::vector<Assignment> b = filter_row(*m.right, ctx);
      for (auto& x : b) out.push_back(std::move(x));
      return out;
    }
  }
  return {};
}

namespace {

template <typename Pred>
bool any_node(const ast::Expr& e, Pred pred) {
  if (pred(e)) return true;
  for (const auto& op : e.operands)
    if (op && any_node(*op, pred)) return true;
  return false;
}

bool qualifier_is(const ast::Expr& e, const char* q) { return e.qualifier && e.qualifier->name == q; }

}  // namespace

bool reads_authenticated(const ast::Expr& e) {
  return any_node(e, [](const ast::Expr& n) {
    if (n.kind == ast::ExprKind::Column) return qualifier_is(n, "token_parameters");
    if (n.kind == ast::ExprKind::Function)
      return qualifier_is(n, "request") && (n.name.name == "user_id" || n.name.name == "jwt");
    return false;
  });
}

bool reads_client_parameters(const ast::Expr& e) {
  return any_node(e, [](const ast::Expr& n) {
    if (n.kind == ast::ExprKind::Column) return qualifier_is(n, "user_parameters");
    if (n.kind == ast::ExprKind::Function)
      return qualifier_is(n, "request") && (n.name.name == "parameters" || n.name.name == "parameter");
    return false;
  });
}

bool match_authenticated(const MatchNode& m, const std::vector<InputParameter>& inputs) {
  switch (m.kind) {
    case MatchNode::Kind::And: return match_authenticated(*m.left, inputs) || match_authenticated(*m.right, inputs);
    case MatchNode::Kind::Or: return match_authenticated(*m.left, inputs) && match_authenticated(*m.right, inputs);
    case MatchNode::Kind::RowFilter: return false;
    default: break;
  }
  for (const auto& p : inputs)
    if (p.key == m.key) return p.node && reads_authenticated(*p.node);
  return false;
}

void check_identifier_case(const ast::Identifier& id, std::string_view sql, std::vector<QueryIssue>& issues) {
  if (id.quoted || !id.had_upper_case) return;
  std::string spelled(sql.substr(std::min(id.offset, sql.size()), id.name.size()));
  issues.push_back(QueryIssue{RuleIssue::Severity::Warning,
                              "Unquoted identifiers are converted to lower-case. Use \"" + spelled + "\" instead.",
                              id.offset});
}

void check_identifier_case(const ast::Expr& e, std::string_view sql, std::vector<QueryIssue>& issues) {
  if (e.kind == ast::ExprKind::Column) {
    if (e.qualifier) check_identifier_case(*e.qualifier, sql, issues);
    check_identifier_case(e.name, sql, issues);
  }
  for (const auto& op : e.operands)
    if (op) check_identifier_case(*op, sql, issues);
}

}  // namespace powersync::rules::detail
