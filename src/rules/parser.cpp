// Recursive-descent parser of the sync-rules SQL subset (spec §4.2). Operator precedence follows
// Postgres: OR < AND < NOT < IS < comparison < IN < other operators (|| -> ->>) < + - < * / < unary
// < ::. Unsupported SQL is recognised explicitly so the user gets a precise message and offset.
#include "powersync/rules/parser.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <unordered_set>
#include <vector>

#include "lexer.h"

namespace powersync::rules {
namespace {

using ast::BinaryOp;
using ast::Expr;
using ast::ExprKind;
using ast::ExprPtr;
using ast::Identifier;

// Thrown inside the parser only; converted to ParseError at the entry points.
struct Failure {
  std::string message;
  size_t offset;
};

// Words that end an expression or select item: never taken as an implicit alias or column name.
const std::unordered_set<std::string>& reserved_words() {
  static const std::unordered_set<std::string> words = {
      "select", "from",   "where",  "as",     "and",    "or",      "not",   "in",    "is",     "null",
      "true",   "false",  "cast",   "join",   "inner",  "left",    "right", "full",  "outer",  "cross",
      "natural", "on",    "using",  "group",  "order",  "by",      "limit", "offset", "having", "distinct",
      "union",  "intersect", "except", "for", "case",   "when",    "then",  "else",  "end",    "like",
      "ilike",  "between", "exists", "with",  "all",    "window",  "fetch", "returning", "into", "lateral"};
  return words;
}

// Clauses that are valid SQL but not allowed in sync rules, with the message to show.
const char* unsupported_clause(const std::string& word) {
  if (word == "join" || word == "inner" || word == "left" || word == "right" || word == "full" ||
      word == "cross" || word == "natural" || word == "lateral")
    return "JOIN is not supported in sync rules";
  if (word == "group") return "GROUP BY is not supported in sync rules";
  if (word == "order") return "ORDER BY is not supported in sync rules";
  if (word == "limit") return "LIMIT is not supported in sync rules";
  if (word == "offset") return "OFFSET is not supported in sync rules";
  if (word == "having") return "HAVING is not supported in sync rules";
  if (word == "for") return "FOR is not supported in sync rules";
  if (word == "fetch") return "FETCH is not supported in sync rules";
  if (word == "window") return "WINDOW is not supported in sync rules";
  if (word == "union" || word == "intersect" || word == "except")
    return "UNION, INTERSECT and EXCEPT are not supported in sync rules";
  if (word == "into") return "SELECT INTO is not supported in sync rules";
  if (word == "returning") return "RETURNING is not supported in sync rules";
  return nullptr;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  std::unique_ptr<ast::SelectStatement> statement() {
    auto stmt = std::make_unique<ast::SelectStatement>();
    stmt->offset = peek().offset;
    if (is_word("with")) fail("WITH (common table expressions) is not supported in sync rules");
    if (!is_word("select")) {
      if (peek().kind == TokenKind::End) fail("Expected a SELECT statement, found nothing");
      fail("Expected SELECT, found " + describe(peek()));
    }
    advance();
    if (is_word("distinct")) fail("DISTINCT is not supported in sync rules");
    if (is_word("all")) advance();
    select_list(*stmt);
    if (is_word("from")) {
      advance();
      stmt->from = table_ref();
      if (is_punct(",")) fail("Multiple tables in FROM are not supported in sync rules (one table per query)");
    }
    if (is_word("where")) {
      advance();
      stmt->where = expression();
    }
    finish_statement();
    return stmt;
  }

  ExprPtr standalone_expression() {
    ExprPtr e = expression();
    finish_statement();
    return e;
  }

 private:
  // ---- token helpers ----
  const Token& peek(size_t ahead = 0) const {
    size_t i = pos_ + ahead;
    return i < tokens_.size() ? tokens_[i] : tokens_.back();
  }
  const Token& advance() {
    const Token& t = peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return t;
  }
  bool is_word(const char* w, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.kind == TokenKind::Identifier && t.value == w;
  }
  bool is_punct(const char* p, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.kind == TokenKind::Punct && t.value == p;
  }
  bool is_op(const char* p, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.kind == TokenKind::Operator && t.value == p;
  }
  [[noreturn]] void fail(const std::string& message) { fail_at(message, peek().offset); }
  [[noreturn]] void fail_at(const std::string& message, size_t offset) { throw Failure{message, offset}; }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::End: return "end of query";
      case TokenKind::String: return "string '" + t.value + "'";
      case TokenKind::QuotedIdentifier: return "\"" + t.value + "\"";
      default: return "'" + t.value + "'";
    }
  }
  void expect_punct(const char* p, const char* context) {
    if (!is_punct(p)) fail(std::string("Expected '") + p + "' " + context + ", found " + describe(peek()));
    advance();
  }

  void finish_statement() {
    if (is_punct(";")) advance();
    const Token& t = peek();
    if (t.kind == TokenKind::End) return;
    if (t.kind == TokenKind::Identifier) {
      if (const char* msg = unsupported_clause(t.value)) fail(msg);
      if (t.value == "select") fail("Only one statement per query is allowed");
    }
    if (t.kind == TokenKind::Punct && t.value == ",")
      fail("Multiple tables in FROM are not supported in sync rules (one table per query)");
    fail("Unexpected " + describe(t));
  }

  // ---- names ----
  bool at_name() const {
    const Token& t = peek();
    return t.kind == TokenKind::QuotedIdentifier ||
           (t.kind == TokenKind::Identifier && !reserved_words().count(t.value));
  }
  Identifier name(const char* what) {
    const Token& t = peek();
    if (t.kind == TokenKind::QuotedIdentifier || t.kind == TokenKind::Identifier) {
      if (t.kind == TokenKind::Identifier && reserved_words().count(t.value)) {
        if (const char* msg = unsupported_clause(t.value)) fail(msg);
        fail(std::string("Expected ") + what + ", found keyword " + describe(t) + " (quote it to use it as a name)");
      }
      advance();
      return Identifier{t.value, t.kind == TokenKind::QuotedIdentifier, t.had_upper_case, t.offset};
    }
    fail(std::string("Expected ") + what + ", found " + describe(t));
  }
  // A name after '.' (Postgres ColLabel): any word, keywords included, e.g. `assets.as`.
  Identifier label(const char* what) {
    const Token& t = peek();
    if (t.kind != TokenKind::Identifier && t.kind != TokenKind::QuotedIdentifier)
      fail(std::string("Expected ") + what + ", found " + describe(t));
    advance();
    return Identifier{t.value, t.kind == TokenKind::QuotedIdentifier, t.had_upper_case, t.offset};
  }

  // Alias after AS: any word, keywords included (as Postgres allows).
  std::optional<Identifier> optional_alias() {
    if (is_word("as")) {
      advance();
      const Token& t = peek();
      if (t.kind != TokenKind::Identifier && t.kind != TokenKind::QuotedIdentifier)
        fail("Expected an alias after AS, found " + describe(t));
      advance();
      return Identifier{t.value, t.kind == TokenKind::QuotedIdentifier, t.had_upper_case, t.offset};
    }
    if (at_name()) return name("alias");
    return std::nullopt;
  }

  // ---- SELECT list and FROM ----
  void select_list(ast::SelectStatement& stmt) {
    if (is_word("from") || peek().kind == TokenKind::End) fail("Expected at least one column after SELECT");
    while (true) {
      stmt.columns.push_back(select_item());
      if (!is_punct(",")) break;
      advance();
    }
  }

  ast::SelectItem select_item() {
    ast::SelectItem item;
    item.offset = peek().offset;
    if (is_op("*")) {
      advance();
      item.kind = ast::SelectItem::Kind::Star;
      return item;
    }
    if ((peek().kind == TokenKind::Identifier || peek().kind == TokenKind::QuotedIdentifier) && is_punct(".", 1) &&
        is_op("*", 2)) {
      item.kind = ast::SelectItem::Kind::QualifiedStar;
      item.qualifier = name("table name");
      advance();
      advance();
      return item;
    }
    item.kind = ast::SelectItem::Kind::Expression;
    item.expr = expression();
    item.alias = optional_alias();
    return item;
  }

  ast::TableRef table_ref() {
    ast::TableRef ref;
    ref.offset = peek().offset;
    if (is_punct("(")) {
      if (is_word("select", 1)) fail("Subqueries are not supported in sync rules");
      fail("Expected a table name after FROM, found '('");
    }
    Identifier first = name("a table name after FROM");
    if (is_punct(".")) {
      advance();
      ref.schema = first;
      ref.name = label("a table name");
      if (is_punct(".")) fail("Table names have at most two parts (schema.table)");
    } else {
      ref.name = first;
    }
    if (is_punct("(")) {
      auto fn = std::make_unique<Expr>();
      fn->kind = ExprKind::Function;
      fn->offset = ref.offset;
      fn->qualifier = ref.schema;
      fn->name = ref.name;
      advance();
      function_arguments(*fn);
      ref.function = std::move(fn);
    }
    ref.alias = optional_alias();
    if (peek().kind == TokenKind::Identifier) {
      if (const char* msg = unsupported_clause(peek().value)) fail(msg);
      if (peek().value == "on" || peek().value == "using") fail("JOIN is not supported in sync rules");
    }
    return ref;
  }

  // ---- expressions ----
  // Every recursive entry passes through here, bounding parser recursion on hostile input.
  ExprPtr expression() {
    if (++depth_ > kMaxExpressionDepth) fail("Expression is nested too deeply");
    ExprPtr e = or_expr();
    --depth_;
    return e;
  }

  ExprPtr make_binary(BinaryOp op, size_t offset, ExprPtr left, ExprPtr right) {
    auto e = std::make_unique<Expr>();
    e->kind = ExprKind::Binary;
    e->binary_op = op;
    e->offset = offset;
    e->height = 1 + std::max(left->height, right->height);
    if (e->height > kMaxExpressionDepth) fail_at("Expression is nested too deeply", offset);
    e->operands.push_back(std::move(left));
    e->operands.push_back(std::move(right));
    return e;
  }
  ExprPtr make_unary(ExprKind kind, size_t offset, ExprPtr operand) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    e->height = 1 + operand->height;
    if (e->height > kMaxExpressionDepth) fail_at("Expression is nested too deeply", offset);
    e->operands.push_back(std::move(operand));
    return e;
  }

  ExprPtr or_expr() {
    ExprPtr left = and_expr();
    while (is_word("or")) {
      size_t at = advance().offset;
      left = make_binary(BinaryOp::Or, at, std::move(left), and_expr());
    }
    return left;
  }

  ExprPtr and_expr() {
    ExprPtr left = not_expr();
    while (is_word("and")) {
      size_t at = advance().offset;
      left = make_binary(BinaryOp::And, at, std::move(left), not_expr());
    }
    return left;
  }

  ExprPtr not_expr() {
    if (is_word("not")) {
      size_t at = advance().offset;
      if (is_word("exists")) fail("Subqueries (EXISTS) are not supported in sync rules");
      if (++depth_ > kMaxExpressionDepth) fail("Expression is nested too deeply");
      ExprPtr operand = not_expr();
      --depth_;
      auto e = make_unary(ExprKind::Unary, at, std::move(operand));
      e->unary_op = ast::UnaryOp::Not;
      return e;
    }
    return is_expr();
  }

  ExprPtr is_expr() {
    ExprPtr left = comparison();
    while (is_word("is")) {
      size_t at = advance().offset;
      bool negated = false;
      if (is_word("not")) {
        advance();
        negated = true;
      }
      if (is_word("distinct")) fail("IS [NOT] DISTINCT FROM is not supported in sync rules");
      if (!is_word("null")) fail("Only IS NULL and IS NOT NULL are supported, found IS " + describe(peek()));
      advance();
      left = make_unary(ExprKind::IsNull, at, std::move(left));
      left->negated = negated;
    }
    return left;
  }

  ExprPtr comparison() {
    ExprPtr left = in_expr();
    while (peek().kind == TokenKind::Operator) {
      const std::string& op = peek().value;
      BinaryOp bop;
      if (op == "=") bop = BinaryOp::Eq;
      else if (op == "!=" || op == "<>") bop = BinaryOp::NotEq;
      else if (op == "<") bop = BinaryOp::Lt;
      else if (op == ">") bop = BinaryOp::Gt;
      else if (op == "<=") bop = BinaryOp::LtEq;
      else if (op == ">=") bop = BinaryOp::GtEq;
      else if (op == "==") fail("Operator '==' is not supported; use '='");
      else break;
      size_t at = advance().offset;
      left = make_binary(bop, at, std::move(left), in_expr());
    }
    return left;
  }

  ExprPtr in_expr() {
    ExprPtr left = other_operator();
    while (true) {
      size_t at = peek().offset;
      bool negated = false;
      if (is_word("not") && (is_word("in", 1) || is_word("like", 1) || is_word("ilike", 1) || is_word("between", 1))) {
        advance();
        negated = true;
      }
      if (is_word("like") || is_word("ilike")) fail("LIKE is not supported in sync rules");
      if (is_word("between")) fail("BETWEEN is not supported in sync rules (edition 1)");
      if (!is_word("in")) break;
      advance();
      left = make_binary(negated ? BinaryOp::NotIn : BinaryOp::In, at, std::move(left), in_right_side());
    }
    return left;
  }

  // Legacy IN takes a single expression (JSON-array text); value lists and subqueries are rejected.
  ExprPtr in_right_side() {
    if (is_punct("(")) {
      if (is_word("select", 1)) fail_at("Subqueries are not supported in sync rules", peek(1).offset);
      size_t open = peek().offset;
      advance();
      ExprPtr inner = expression();
      if (is_punct(","))
        fail_at("IN with a list of values is not supported in sync rules; compare against JSON array text, "
                "e.g. x IN '[\"a\",\"b\"]'",
                open);
      expect_punct(")", "to close '('");
      return inner;
    }
    return other_operator();
  }

  ExprPtr other_operator() {
    ExprPtr left = additive();
    while (peek().kind == TokenKind::Operator) {
      const std::string& op = peek().value;
      BinaryOp bop;
      if (op == "||") bop = BinaryOp::Concat;
      else if (op == "->") bop = BinaryOp::JsonArrow;
      else if (op == "->>") bop = BinaryOp::JsonArrow2;
      else if (op == "&&" || op == "&" || op == "|" || op == "~" || op == "!" || op == "@" || op == "^")
        fail("Operator '" + op + "' is not supported in sync rules");
      else break;
      size_t at = advance().offset;
      left = make_binary(bop, at, std::move(left), additive());
    }
    return left;
  }

  ExprPtr additive() {
    ExprPtr left = multiplicative();
    while (is_op("+") || is_op("-")) {
      BinaryOp bop = is_op("+") ? BinaryOp::Add : BinaryOp::Sub;
      size_t at = advance().offset;
      left = make_binary(bop, at, std::move(left), multiplicative());
    }
    return left;
  }

  ExprPtr multiplicative() {
    ExprPtr left = unary();
    while (is_op("*") || is_op("/") || is_op("%")) {
      if (is_op("%")) fail("Operator '%' is not supported in sync rules");
      BinaryOp bop = is_op("*") ? BinaryOp::Mul : BinaryOp::Div;
      size_t at = advance().offset;
      left = make_binary(bop, at, std::move(left), unary());
    }
    return left;
  }

  ExprPtr unary() {
    if (is_op("-") || is_op("+")) {
      bool minus = is_op("-");
      size_t at = advance().offset;
      if (++depth_ > kMaxExpressionDepth) fail("Expression is nested too deeply");
      ExprPtr operand = unary();
      --depth_;
      auto e = make_unary(ExprKind::Unary, at, std::move(operand));
      e->unary_op = minus ? ast::UnaryOp::Negate : ast::UnaryOp::Plus;
      return e;
    }
    return postfix();
  }

  ExprPtr postfix() {
    ExprPtr e = primary();
    while (true) {
      if (is_op("::")) {
        size_t at = advance().offset;
        std::string type = type_name();
        e = make_unary(ExprKind::Cast, at, std::move(e));
        e->cast_type = std::move(type);
        e->cast_is_double_colon = true;
      } else if (is_punct("[")) {
        fail("Array subscripts are not supported in sync rules");
      } else {
        return e;
      }
    }
  }

  std::string type_name() {
    const Token& t = peek();
    if (t.kind != TokenKind::Identifier && t.kind != TokenKind::QuotedIdentifier)
      fail("Expected a type name, found " + describe(t));
    advance();
    std::string type = t.value;
    if (type == "double" && is_word("precision")) {
      advance();
      type = "double precision";
    }
    if (is_punct("(")) fail("Type modifiers such as (n) are not supported in casts");
    if (is_punct("[")) fail("Array types are not supported in casts");
    return type;
  }

  ExprPtr literal(ast::LiteralKind kind, const Token& t) {
    auto e = std::make_unique<Expr>();
    e->kind = ExprKind::Literal;
    e->literal_kind = kind;
    e->offset = t.offset;
    e->text_value = t.value;
    return e;
  }

  ExprPtr number_literal(const Token& t) {
    if (t.kind == TokenKind::Integer) {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(t.value.c_str(), &end, 10);
      if (errno != ERANGE) {
        auto e = literal(ast::LiteralKind::Integer, t);
        e->integer_value = v;
        return e;
      }
    }
    auto e = literal(ast::LiteralKind::Real, t);  // decimals, and integers beyond 64 bits
    e->real_value = std::strtod(t.value.c_str(), nullptr);
    return e;
  }

  ExprPtr primary() {
    const Token& t = peek();
    switch (t.kind) {
      case TokenKind::Integer:
      case TokenKind::Real:
        advance();
        return number_literal(t);
      case TokenKind::String:
        advance();
        return literal(ast::LiteralKind::Text, t);
      case TokenKind::Punct:
        if (t.value == "(") return parenthesized();
        break;
      case TokenKind::Identifier:
        if (t.value == "null") return advance(), literal(ast::LiteralKind::Null, t);
        if (t.value == "true") return advance(), literal(ast::LiteralKind::True, t);
        if (t.value == "false") return advance(), literal(ast::LiteralKind::False, t);
        if (t.value == "cast") return cast_call();
        if (t.value == "case") fail("CASE is not supported in sync rules (edition 1)");
        if (t.value == "exists") fail("Subqueries (EXISTS) are not supported in sync rules");
        if (t.value == "select") fail("Subqueries are not supported in sync rules");
        if ((t.value == "array" && is_punct("[", 1)) || (t.value == "row" && is_punct("(", 1)))
          fail("ARRAY[...] and ROW(...) are not supported in sync rules (edition 1)");
        return name_or_call();
      case TokenKind::QuotedIdentifier:
        return name_or_call();
      case TokenKind::End:
        fail("Expected an expression, found end of query");
      default:
        break;
    }
    if (t.kind == TokenKind::Operator && t.value == "*") fail("'*' is only allowed as a select column");
    fail("Expected an expression, found " + describe(t));
  }

  ExprPtr parenthesized() {
    size_t open = peek().offset;
    advance();
    if (is_word("select")) fail("Subqueries are not supported in sync rules");
    ExprPtr inner = expression();
    if (is_punct(",")) fail_at("Row values and value lists in parentheses are not supported in sync rules", open);
    expect_punct(")", "to close '('");
    return inner;
  }

  ExprPtr cast_call() {
    size_t at = advance().offset;
    expect_punct("(", "after CAST");
    ExprPtr operand = expression();
    if (!is_word("as")) fail("Expected AS in CAST(expression AS type), found " + describe(peek()));
    advance();
    std::string type = type_name();
    expect_punct(")", "to close CAST(");
    auto e = make_unary(ExprKind::Cast, at, std::move(operand));
    e->cast_type = std::move(type);
    return e;
  }

  ExprPtr name_or_call() {
    size_t at = peek().offset;
    Identifier first = name("a column or function name");
    std::optional<Identifier> qualifier;
    Identifier last = first;
    if (is_punct(".")) {
      advance();
      if (is_op("*")) fail("'table.*' is only allowed as a select column");
      qualifier = first;
      last = label("a column or function name after '.'");
      if (is_punct(".")) fail("Names have at most two parts (table.column)");
    }
    auto e = std::make_unique<Expr>();
    e->offset = at;
    e->qualifier = qualifier;
    e->name = last;
    if (is_punct("(")) {
      e->kind = ExprKind::Function;
      advance();
      function_arguments(*e);
    } else {
      e->kind = ExprKind::Column;
    }
    return e;
  }

  // Parses `args...)` after the opening parenthesis into fn.operands.
  void function_arguments(Expr& fn) {
    if (is_word("distinct")) fail("DISTINCT in function arguments is not supported in sync rules");
    if (is_op("*")) fail("'*' arguments (aggregates) are not supported in sync rules");
    int height = 1;
    if (!is_punct(")")) {
      while (true) {
        ExprPtr arg = expression();
        height = std::max(height, arg->height + 1);
        fn.operands.push_back(std::move(arg));
        if (!is_punct(",")) break;
        advance();
      }
    }
    if (is_word("order")) fail("ORDER BY is not supported in sync rules");
    expect_punct(")", "to close the function's argument list");
    if (is_word("over")) fail("Window functions are not supported in sync rules");
    if (is_word("filter")) fail("FILTER is not supported in sync rules");
    fn.height = height;
    if (height > kMaxExpressionDepth) fail_at("Expression is nested too deeply", fn.offset);
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

template <typename Result, typename Body>
Result run_parser(std::string_view sql, Body body) {
  Result result;
  std::vector<Token> tokens;
  LexError lex_error;
  if (!tokenize(sql, tokens, lex_error)) {
    result.error = ParseError{lex_error.message, lex_error.offset};
    return result;
  }
  try {
    Parser parser(std::move(tokens));
    body(parser, result);
  } catch (const Failure& f) {
    result.error = ParseError{f.message, f.offset};
  }
  return result;
}

}  // namespace

SelectParseResult parse_select(std::string_view sql) {
  return run_parser<SelectParseResult>(sql, [](Parser& p, SelectParseResult& r) { r.statement = p.statement(); });
}

ExpressionParseResult parse_expression(std::string_view sql) {
  return run_parser<ExpressionParseResult>(sql,
                                           [](Parser& p, ExpressionParseResult& r) { r.expr = p.standalone_expression(); });
}

}  // namespace powersync::rules
