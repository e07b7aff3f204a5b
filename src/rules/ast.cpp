// Rendering of syntax trees back to SQL-like text, for messages and tests.
#include "powersync/rules/ast.h"

namespace powersync::rules::ast {

const char* binary_op_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::Eq: return "=";
    case BinaryOp::NotEq: return "!=";
    case BinaryOp::Lt: return "<";
    case BinaryOp::Gt: return ">";
    case BinaryOp::LtEq: return "<=";
    case BinaryOp::GtEq: return ">=";
    case BinaryOp::And: return "AND";
    case BinaryOp::Or: return "OR";
    case BinaryOp::Add: return "+";
    case BinaryOp::Sub: return "-";
    case BinaryOp::Mul: return "*";
    case BinaryOp::Div: return "/";
    case BinaryOp::Concat: return "||";
    case BinaryOp::JsonArrow: return "->";
    case BinaryOp::JsonArrow2: return "->>";
    case BinaryOp::In: return "IN";
    case BinaryOp::NotIn: return "NOT IN";
  }
  return "?";
}

namespace {

std::string quote_identifier(const Identifier& id) {
  if (!id.quoted) return id.name;
  std::string out = "\"";
  for (char c : id.name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quote_text(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string qualified_name(const Expr& e) {
  std::string out;
  if (e.qualifier) out = quote_identifier(*e.qualifier) + ".";
  return out + quote_identifier(e.name);
}

}  // namespace

// Fully parenthesises binary operations so the rendering shows how the parser grouped them.
std::string to_sql(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Literal:
      switch (e.literal_kind) {
        case LiteralKind::Integer:
        case LiteralKind::Real: return e.text_value;
        case LiteralKind::Text: return quote_text(e.text_value);
        case LiteralKind::True: return "TRUE";
        case LiteralKind::False: return "FALSE";
        case LiteralKind::Null: return "NULL";
      }
      return "?";
    case ExprKind::Column: return qualified_name(e);
    case ExprKind::Function: {
      std::string out = qualified_name(e) + "(";
      for (size_t i = 0; i < e.operands.size(); ++i) {
        if (i) out += ", ";
        out += to_sql(*e.operands[i]);
      }
      return out + ")";
    }
    case ExprKind::Unary: {
      const char* op = e.unary_op == UnaryOp::Not ? "NOT " : e.unary_op == UnaryOp::Negate ? "-" : "+";
      return std::string("(") + op + to_sql(*e.operands[0]) + ")";
    }
    case ExprKind::Binary:
      return "(" + to_sql(*e.operands[0]) + " " + binary_op_symbol(e.binary_op) + " " + to_sql(*e.operands[1]) + ")";
    case ExprKind::IsNull:
      return "(" + to_sql(*e.operands[0]) + (e.negated ? " IS NOT NULL)" : " IS NULL)");
    case ExprKind::Cast:
      return "CAST(" + to_sql(*e.operands[0]) + " AS " + e.cast_type + ")";
  }
  return "?";
}

}  // namespace powersync::rules::ast
