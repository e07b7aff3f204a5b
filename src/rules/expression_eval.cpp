// Evaluation of compiled expressions (semantics of the reference's evaluateOperator and
// composeFunction): results are returned by reference to avoid copying row values.
#include <cmath>

#include "expression_node.h"
#include "json_support.h"
#include "powersync/error.h"
#include "sql_values.h"

namespace powersync::rules::detail {
namespace {

const Value kNull;
const Value kTrue = Value::integer(1);
const Value kFalse = Value::integer(0);

const Value& boolean(bool b) { return b ? kTrue : kFalse; }

const Value& column(const Node& n, const Row* row) {
  if (row == nullptr) return kNull;
  uint32_t hint = n.column_hint.load(std::memory_order_relaxed);
  if (hint < row->size() && (*row)[hint].name == n.name) return (*row)[hint].value;
  for (size_t i = 0; i < row->size(); ++i) {
    if ((*row)[i].name == n.name) {
      n.column_hint.store(static_cast<uint32_t>(i), std::memory_order_relaxed);
      return (*row)[i].value;
    }
  }
  return kNull;
}

const RequestContext& request(const EvalContext& ctx) {
  if (ctx.request == nullptr) throw Error(Error::Kind::Internal, "Request values are not available here");
  return *ctx.request;
}

const Value& compare(const Node& n, const EvalContext& ctx) {
  Value ta, tb;
  const Value& a = evaluate(*n.children[0], ctx, ta);
  const Value& b = evaluate(*n.children[1], ctx, tb);
  if (a.is_null() || b.is_null()) return kNull;
  int c = compare_values(a, b);
  switch (n.op) {
    case Op::Eq: return boolean(c == 0);
    case Op::NotEq: return boolean(c != 0);
    case Op::Lt: return boolean(c < 0);
    case Op::Gt: return boolean(c > 0);
    case Op::LtEq: return boolean(c <= 0);
    default: return boolean(c >= 0);
  }
}

const Value& in_array(const Node& n, const EvalContext& ctx, Value& scratch) {
  Value ta, tb;
  const Value& a = evaluate(*n.children[0], ctx, ta);
  if (n.constant_in_array) {
    if (a.is_null()) return kNull;
    for (const auto& v : n.in_values)
      if (compare_values(v, a) == 0) return kTrue;
    return kFalse;
  }
  const Value& b = evaluate(*n.children[1], ctx, tb);
  if (a.is_null() || b.is_null()) return kNull;
  for (const auto& v : json_array_values(b))
    if (compare_values(v, a) == 0) return kTrue;
  return kFalse;
}

const Value& call(const Node& n, const EvalContext& ctx, Value& scratch) {
  Value temps[3];
  const Value* args[3];
  size_t argc = n.children.size();
  for (size_t i = 0; i < argc; ++i) args[i] = &evaluate(*n.children[i], ctx, temps[i]);
  scratch = n.function->fn(args, argc);
  return scratch;
}

const Value& cast(const Node& n, const EvalContext& ctx, Value& scratch) {
  Value t;
  const Value& v = evaluate(*n.children[0], ctx, t);
  if (v.is_null()) return kNull;
  switch (n.cast) {
    case CastType::Text:
      if (v.is_text() && &v == &t) {  // the operand's own temporary: it must outlive this call
        scratch = std::move(t);
        return scratch;
      }
      if (v.is_text()) return v;
      scratch = Value::text(sql::to_text(v));
      break;
    case CastType::Numeric: scratch = sql::to_numeric(v); break;
    case CastType::Integer: scratch = sql::to_integer(v); break;
    case CastType::Real: scratch = sql::to_real(v); break;
    case CastType::Blob: scratch = Value::blob(sql::to_blob_bytes(v)); break;
  }
  return scratch;
}

const Value& negate(const Node& n, const EvalContext& ctx, Value& scratch) {
  Value t;
  const Value& v = evaluate(*n.children[0], ctx, t);
  if (v.is_null()) return kNull;
  Value num = sql::to_numeric(v);
  if (num.is_integer() && num.as_integer() != INT64_MIN) scratch = Value::integer(-num.as_integer());
  else if (num.is_integer()) scratch = Value::real(9223372036854775808.0);
  else scratch = Value::real(-num.as_real());
  return scratch;
}

const Value& binary_value(const Node& n, const EvalContext& ctx, Value& scratch) {
  Value ta, tb;
  const Value& a = evaluate(*n.children[0], ctx, ta);
  const Value& b = evaluate(*n.children[1], ctx, tb);
  switch (n.op) {
    case Op::And: return boolean(is_truthy(a) && is_truthy(b));
    case Op::Or: return boolean(is_truthy(a) || is_truthy(b));
    case Op::Add: scratch = sql::arithmetic(sql::ArithOp::Add, a, b); return scratch;
    case Op::Sub: scratch = sql::arithmetic(sql::ArithOp::Sub, a, b); return scratch;
    case Op::Mul: scratch = sql::arithmetic(sql::ArithOp::Mul, a, b); return scratch;
    case Op::Div: scratch = sql::arithmetic(sql::ArithOp::Div, a, b); return scratch;
    default: {  // Concat
      if (a.is_null() || b.is_null()) return kNull;
      std::string s = a.is_text() ? a.as_text() : sql::to_text(a);
      if (b.is_text()) s += b.as_text();
      else s += sql::to_text(b);
      scratch = Value::text(std::move(s));
      return scratch;
    }
  }
}

}  // namespace

const Value& evaluate(const Node& n, const EvalContext& ctx, Value& scratch) {
  switch (n.op) {
    case Op::Constant: return n.constant;
    case Op::Column: return column(n, ctx.row);
    case Op::BucketParam: return column(n, ctx.bucket_parameters);
    case Op::TokenParam: scratch = request(ctx).token_parameter(n.name); return scratch;
    case Op::UserParam: scratch = request(ctx).user_parameter(n.name); return scratch;
    case Op::UserId: return request(ctx).user_id();
    case Op::Jwt: scratch = Value::text(request(ctx).jwt_json()); return scratch;
    case Op::Parameters: scratch = Value::text(request(ctx).parameters_json()); return scratch;
    case Op::Parameter: {
      Value t;
      const Value& path = evaluate(*n.children[0], ctx, t);
      scratch = request(ctx).parameter(path);
      return scratch;
    }
    case Op::Function: return call(n, ctx, scratch);
    case Op::Not: {
      Value t;
      return boolean(!is_truthy(evaluate(*n.children[0], ctx, t)));
    }
    case Op::Negate: return negate(n, ctx, scratch);
    case Op::IsNull:
    case Op::IsNotNull: {
      Value t;
      bool is_null = evaluate(*n.children[0], ctx, t).is_null();
      return boolean(n.op == Op::IsNull ? is_null : !is_null);
    }
    case Op::Eq:
    case Op::NotEq:
    case Op::Lt:
    case Op::Gt:
    case Op::LtEq:
    case Op::GtEq: return compare(n, ctx);
    case Op::Arrow:
    case Op::Arrow2: {
      Value t;
      const Value& json = evaluate(*n.children[0], ctx, t);
      scratch = functions::json_extract(json, n.path,
                                        n.op == Op::Arrow ? functions::ExtractMode::Arrow : functions::ExtractMode::Arrow2);
      return scratch;
    }
    case Op::In: return in_array(n, ctx, scratch);
    case Op::Cast: return cast(n, ctx, scratch);
    default: return binary_value(n, ctx, scratch);
  }
}

}  // namespace powersync::rules::detail
