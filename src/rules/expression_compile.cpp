// Compilation of ast::Expr into evaluable Nodes (the reference's legacy compileClause): names are
// resolved against the scope, functions bound and arity-checked, row/request mixing rejected,
// constant sub-expressions folded, constant JSON paths split and constant IN arrays parsed.
#include <algorithm>

#include "expression_node.h"
#include "json_support.h"
#include "powersync/error.h"

namespace powersync::rules {

using detail::Node;
using detail::Op;

namespace {

struct CompileFailure {
  std::string message;
  size_t offset;
};

enum Side : unsigned { kStatic = 0, kRow = 1, kRequest = 2, kBucket = 4 };

struct Compiled {
  std::unique_ptr<Node> node;
  unsigned side = kStatic;
  size_t offset = 0;
};

std::unique_ptr<Node> make(Op op) {
  auto n = std::make_unique<Node>();
  n->op = op;
  return n;
}

std::string display_name(const ast::Expr& e) {
  return e.qualifier ? e.qualifier->name + "." + e.name.name : e.name.name;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

struct ExpressionCompiler {
  const ExpressionScope& scope;
  ExpressionDependencies deps;

  [[noreturn]] static void fail(const std::string& message, size_t offset) { throw CompileFailure{message, offset}; }

  Compiled compile(const ast::Expr& e) {
    Compiled c;
    switch (e.kind) {
      case ast::ExprKind::Literal: c.node = literal(e); break;
      case ast::ExprKind::Column: c = column(e); break;
      case ast::ExprKind::Function: c = function(e); break;
      case ast::ExprKind::Unary: c = unary(e); break;
      case ast::ExprKind::IsNull: {
        auto n = make(e.negated ? Op::IsNotNull : Op::IsNull);
        c.side = add_children(*n, e, false);
        c.node = std::move(n);
        break;
      }
      case ast::ExprKind::Cast: c = cast(e); break;
      case ast::ExprKind::Binary: c = binary(e); break;
    }
    c.offset = e.offset;
    if (c.side == kStatic && c.node->op != Op::Constant) fold(c);
    return c;
  }

  // Constant sub-expressions are evaluated once; one that fails stays, to fail per evaluation.
  static void fold(Compiled& c) {
    try {
      Value scratch;
      EvalContext none;
      Value v = detail::evaluate(*c.node, none, scratch);
      auto n = make(Op::Constant);
      n->constant = std::move(v);
      c.node = std::move(n);
    } catch (const Error&) {
    }
  }

  static std::unique_ptr<Node> literal(const ast::Expr& e) {
    auto n = make(Op::Constant);
    switch (e.literal_kind) {
      case ast::LiteralKind::Integer: n->constant = Value::integer(e.integer_value); break;
      case ast::LiteralKind::Real: n->constant = Value::real(e.real_value); break;
      case ast::LiteralKind::Text: n->constant = Value::text(e.text_value); break;
      case ast::LiteralKind::True: n->constant = Value::integer(1); break;
      case ast::LiteralKind::False: n->constant = Value::integer(0); break;
      case ast::LiteralKind::Null: break;
    }
    return n;
  }

  Compiled column(const ast::Expr& e) {
    Compiled c;
    const std::string& name = e.name.name;
    if (!e.qualifier) {
      if (!scope.allow_row_columns) fail("Undefined reference: " + name + " (this query has no FROM table)", e.offset);
      return row_column(name);
    }
    const std::string& q = e.qualifier->name;
    if (contains(scope.row_qualifiers, q)) return row_column(name);
    if (q == "bucket" && scope.allow_bucket_parameters) {
      c.node = make(Op::BucketParam);
      c.node->name = name;
      c.side = kBucket;
      deps.bucket = true;
      if (!contains(deps.bucket_parameters, name)) deps.bucket_parameters.push_back(name);
      return c;
    }
    if (q == "token_parameters" || q == "user_parameters") {
      if (!scope.allow_request) fail(q + "." + name + " is only available in parameter queries", e.offset);
      c.node = make(q == "token_parameters" ? Op::TokenParam : Op::UserParam);
      c.node->name = name;
      c.side = kRequest;
      deps.request = true;
      if (q == "user_parameters") deps.client_parameters = true;
      return c;
    }
    if (q == "bucket") fail("bucket." + name + " is only available in data queries", e.offset);
    fail("Undefined reference: " + display_name(e), e.offset);
  }

  Compiled row_column(const std::string& name) {
    Compiled c;
    c.node = make(Op::Column);
    c.node->name = name;
    c.side = kRow;
    deps.row = true;
    if (!contains(deps.columns, name)) deps.columns.push_back(name);
    return c;
  }

  // Compiles the operands of `e` into `n`. allow_match: = IN AND OR may combine row values with
  // request values or bucket parameters (the query layer turns those into lookups/filters).
  unsigned add_children(Node& n, const ast::Expr& e, bool allow_match) {
    unsigned side = kStatic;
    for (const auto& operand : e.operands) {
      Compiled c = compile(*operand);
      if (!allow_match) {
        if (c.side & kBucket) fail("Cannot use bucket parameters in expressions", operand->offset);
        if (((side | c.side) & kRow) && ((side | c.side) & kRequest))
          fail("Cannot use table values and parameters in the same clauses", operand->offset);
      }
      side |= c.side;
      n.children.push_back(std::move(c.node));
    }
    return side;
  }

  Compiled function(const ast::Expr& e) {
    if (e.qualifier) return request_function(e);
    const std::string& name = e.name.name;
    const functions::FunctionDef* def = functions::find(name);
    if (def == nullptr) {
      if (name == "json_each") fail("json_each is a table-valued function: use it in FROM, e.g. FROM json_each(...)", e.offset);
      fail("Function '" + name + "' is not defined", e.offset);
    }
    int argc = static_cast<int>(e.operands.size());
    if (argc < def->min_args || argc > def->max_args) {
      std::string expected = def->min_args == def->max_args
                                 ? std::to_string(def->min_args)
                                 : std::to_string(def->min_args) + " to " + std::to_string(def->max_args);
      fail("Function '" + name + "' takes " + expected + " argument" + (def->max_args == 1 ? "" : "s") + ", got " +
               std::to_string(argc),
           e.offset);
    }
    Compiled c;
    c.node = make(Op::Function);
    c.node->function = def;
    c.side = add_children(*c.node, e, false);
    return c;
  }

  Compiled request_function(const ast::Expr& e) {
    const std::string& schema = e.qualifier->name;
    const std::string& name = e.name.name;
    if (schema != "request") fail("Function '" + schema + "." + name + "' is not defined", e.offset);
    if (!scope.allow_request) fail("request." + name + "() is only available in parameter queries", e.offset);
    Op op;
    size_t arity = 0;
    if (name == "user_id") op = Op::UserId;
    else if (name == "jwt") op = Op::Jwt;
    else if (name == "parameters") op = Op::Parameters;
    else if (name == "parameter") op = Op::Parameter, arity = 1;
    else fail("Function 'request." + name + "' is not defined", e.offset);
    if (e.operands.size() != arity)
      fail("Function 'request." + name + "' takes " + std::to_string(arity) + " arguments.", e.offset);
    Compiled c;
    c.node = make(op);
    for (const auto& operand : e.operands) {
      Compiled arg = compile(*operand);
      if (arg.side & ~static_cast<unsigned>(kRequest)) fail("Must only depend on data derived from request.", operand->offset);
      c.node->children.push_back(std::move(arg.node));
    }
    c.side = kRequest;
    deps.request = true;
    if (op == Op::Parameters || op == Op::Parameter) deps.client_parameters = true;
    return c;
  }

  Compiled unary(const ast::Expr& e) {
    if (e.unary_op == ast::UnaryOp::Plus) fail("Unary + is not supported", e.offset);
    Compiled c;
    c.node = make(e.unary_op == ast::UnaryOp::Not ? Op::Not : Op::Negate);
    c.side = add_children(*c.node, e, false);
    return c;
  }

  Compiled cast(const ast::Expr& e) {
    static const std::pair<const char*, detail::CastType> kTypes[] = {
        {"text", detail::CastType::Text},       {"numeric", detail::CastType::Numeric},
        {"integer", detail::CastType::Integer}, {"real", detail::CastType::Real},
        {"blob", detail::CastType::Blob}};
    Compiled c;
    c.node = make(Op::Cast);
    bool known = false;
    for (const auto& t : kTypes)
      if (e.cast_type == t.first) c.node->cast = t.second, known = true;
    if (!known)
      fail("CAST not supported for '" + e.cast_type + "' (use text, numeric, integer, real or blob)", e.offset);
    c.side = add_children(*c.node, e, false);
    return c;
  }

  Compiled binary(const ast::Expr& e) {
    using B = ast::BinaryOp;
    static const std::pair<B, Op> kOps[] = {
        {B::Eq, Op::Eq},   {B::NotEq, Op::NotEq}, {B::Lt, Op::Lt},   {B::Gt, Op::Gt},   {B::LtEq, Op::LtEq},
        {B::GtEq, Op::GtEq}, {B::And, Op::And},   {B::Or, Op::Or},   {B::Add, Op::Add}, {B::Sub, Op::Sub},
        {B::Mul, Op::Mul}, {B::Div, Op::Div},     {B::Concat, Op::Concat}, {B::In, Op::In}};
    if (e.binary_op == B::NotIn) fail("NOT IN is not supported in sync rules (edition 1)", e.offset);
    if (e.binary_op == B::JsonArrow || e.binary_op == B::JsonArrow2) return json_arrow(e);
    Compiled c;
    c.node = make(Op::Eq);
    for (const auto& p : kOps)
      if (p.first == e.binary_op) c.node->op = p.second;
    bool match = e.binary_op == B::Eq || e.binary_op == B::In || e.binary_op == B::And || e.binary_op == B::Or;
    if (e.binary_op == B::Eq) {
      // Classified before compiling the sides so the message points at the operator.
      Compiled left = compile(*e.operands[0]);
      Compiled right = compile(*e.operands[1]);
      if ((left.side & kBucket) && (right.side & kBucket))
        fail("Cannot have bucket parameters on both sides of = operator", e.offset);
      c.side = left.side | right.side;
      c.node->children.push_back(std::move(left.node));
      c.node->children.push_back(std::move(right.node));
      return c;
    }
    c.side = add_children(*c.node, e, match);
    if (c.node->op == Op::In) prepare_in(*c.node);
    return c;
  }

  static void prepare_in(Node& n) {
    const Node& right = *n.children[1];
    if (right.op != Op::Constant || !right.constant.is_text()) return;
    try {
      n.in_values = json_array_values(right.constant);
      n.constant_in_array = true;
    } catch (const Error&) {
      // Not an array: fails at evaluation time, with the reference's error.
    }
  }

  Compiled json_arrow(const ast::Expr& e) {
    const ast::Expr& path = *e.operands[1];
    const char* symbol = ast::binary_op_symbol(e.binary_op);
    if (path.kind != ast::ExprKind::Literal || path.literal_kind != ast::LiteralKind::Text)
      fail(std::string("The right side of ") + symbol + " must be a string literal, e.g. data " + symbol + " 'key'",
           path.offset);
    Compiled operand = compile(*e.operands[0]);
    if (operand.side & kBucket) fail("Cannot use bucket parameters in expressions", e.operands[0]->offset);
    Compiled c;
    c.node = make(e.binary_op == ast::BinaryOp::JsonArrow ? Op::Arrow : Op::Arrow2);
    c.node->path = json::split_path(path.text_value, /*fixed=*/false);
    c.node->children.push_back(std::move(operand.node));
    c.side = operand.side;
    return c;
  }

  // Builds the public object (ExpressionCompiler is Expression's friend).
  std::unique_ptr<Expression> finish(Compiled c, const ast::Expr& expr) {
    std::unique_ptr<Expression> compiled(new Expression());
    compiled->root_ = std::move(c.node);
    compiled->deps_ = std::move(deps);
    compiled->offset_ = expr.offset;
    compiled->source_ = ast::to_sql(expr);
    return compiled;
  }
};

Expression::Expression() = default;
Expression::~Expression() = default;
Expression::Expression(Expression&&) noexcept = default;
Expression& Expression::operator=(Expression&&) noexcept = default;

Value Expression::evaluate(const EvalContext& ctx) const {
  Value scratch;
  const Value& v = detail::evaluate(*root_, ctx, scratch);
  if (&v == &scratch) return scratch;
  return v;
}

const Value& Expression::evaluate_ref(const EvalContext& ctx, Value& scratch) const {
  return detail::evaluate(*root_, ctx, scratch);
}

bool Expression::evaluate_truthy(const EvalContext& ctx) const {
  Value scratch;
  return is_truthy(detail::evaluate(*root_, ctx, scratch));
}

CompileResult compile_expression(const ast::Expr& expr, const ExpressionScope& scope) {
  CompileResult result;
  ExpressionCompiler compiler{scope, {}};
  try {
    result.expression = compiler.finish(compiler.compile(expr), expr);
  } catch (const CompileFailure& f) {
    result.error = ParseError{f.message, f.offset};
  }
  return result;
}

CompileResult compile_expression_text(std::string_view sql, const ExpressionScope& scope) {
  auto parsed = parse_expression(sql);
  if (!parsed.ok()) {
    CompileResult r;
    r.error = parsed.error;
    return r;
  }
  return compile_expression(*parsed.expr, scope);
}

}  // namespace powersync::rules
