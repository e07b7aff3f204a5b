// Parsing of sync rules queries on top of the SQL parser: empty SELECT lists (accepted by the
// reference for parameter queries) and FROM clauses as table patterns.
#include <cctype>
#include <cstring>

#include "queries.h"

namespace powersync::rules::detail {
namespace {

constexpr const char* kNoColumnsPlaceholder = " NULL AS \"__powersync_no_columns\" ";

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

}  // namespace

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

}  // namespace powersync::rules::detail
