// Tokenizer for the sync-rules SQL subset (see lexer.h).
#include "lexer.h"

#include <cctype>

namespace powersync::rules {
namespace {

bool is_ident_start(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool is_ident_char(unsigned char c) { return std::isalnum(c) || c == '_' || c == '$' || c >= 0x80; }

// Operators, longest first so that `->>` wins over `->` and `->` over `-`.
const char* const kOperators[] = {"->>", "->", "||", "::", "<=", ">=", "<>", "!=", "==", "=", "<", ">",
                                  "+",   "-",  "*",  "/",  "%",  "^",  "&&", "&",  "|",  "~", "!", "@"};

class Lexer {
 public:
  Lexer(std::string_view sql, std::vector<Token>& out, LexError& error) : sql_(sql), out_(out), error_(error) {}

  bool run() {
    while (true) {
      if (!skip_space_and_comments()) return false;
      if (pos_ >= sql_.size()) break;
      if (!next_token()) return false;
    }
    out_.push_back(Token{TokenKind::End, "", sql_.size(), 0, false});
    return true;
  }

 private:
  bool fail(const std::string& message, size_t offset) {
    error_.message = message;
    error_.offset = offset;
    return false;
  }

  bool skip_space_and_comments() {
    while (pos_ < sql_.size()) {
      unsigned char c = sql_[pos_];
      if (std::isspace(c)) {
        ++pos_;
      } else if (c == '-' && peek(1) == '-') {
        while (pos_ < sql_.size() && sql_[pos_] != '\n') ++pos_;
      } else if (c == '/' && peek(1) == '*') {
        size_t start = pos_;
        size_t end = sql_.find("*/", pos_ + 2);
        if (end == std::string_view::npos) return fail("Unterminated /* comment", start);
        pos_ = end + 2;
      } else {
        break;
      }
    }
    return true;
  }

  char peek(size_t ahead) const { return pos_ + ahead < sql_.size() ? sql_[pos_ + ahead] : '\0'; }

  bool next_token() {
    unsigned char c = sql_[pos_];
    if (c == '\'') return string_literal();
    if (c == '"') return quoted_identifier();
    if (std::isdigit(c) || (c == '.' && std::isdigit(static_cast<unsigned char>(peek(1))))) return number();
    if (is_ident_start(c)) return identifier();
    if (c == '(' || c == ')' || c == ',' || c == '.' || c == ';' || c == '[' || c == ']') {
      out_.push_back(Token{TokenKind::Punct, std::string(1, static_cast<char>(c)), pos_, 1, false});
      ++pos_;
      return true;
    }
    for (const char* op : kOperators) {
      std::string_view sv(op);
      if (sql_.substr(pos_, sv.size()) == sv) {
        out_.push_back(Token{TokenKind::Operator, std::string(sv), pos_, sv.size(), false});
        pos_ += sv.size();
        return true;
      }
    }
    if (c == '?' || c == '$')
      return fail("Query parameters ($1, ?) are not supported in sync rules", pos_);
    return fail(std::string("Unexpected character '") + static_cast<char>(c) + "'", pos_);
  }

  bool string_literal() {
    size_t start = pos_++;
    std::string value;
    while (true) {
      if (pos_ >= sql_.size()) return fail("Unterminated string literal", start);
      char c = sql_[pos_++];
      if (c == '\'') {
        if (peek(0) == '\'') {  // '' is an escaped quote
          value.push_back('\'');
          ++pos_;
          continue;
        }
        break;
      }
      value.push_back(c);
    }
    out_.push_back(Token{TokenKind::String, std::move(value), start, pos_ - start, false});
    return true;
  }

  bool quoted_identifier() {
    size_t start = pos_++;
    std::string value;
    while (true) {
      if (pos_ >= sql_.size()) return fail("Unterminated quoted identifier", start);
      char c = sql_[pos_++];
      if (c == '"') {
        if (peek(0) == '"') {
          value.push_back('"');
          ++pos_;
          continue;
        }
        break;
      }
      value.push_back(c);
    }
    if (value.empty()) return fail("Empty quoted identifier", start);
    out_.push_back(Token{TokenKind::QuotedIdentifier, std::move(value), start, pos_ - start, false});
    return true;
  }

  bool number() {
    size_t start = pos_;
    bool is_real = false;
    while (std::isdigit(static_cast<unsigned char>(peek(0)))) ++pos_;
    if (peek(0) == '.' && !(peek(1) == '.')) {
      is_real = true;
      ++pos_;
      while (std::isdigit(static_cast<unsigned char>(peek(0)))) ++pos_;
    }
    if (peek(0) == 'e' || peek(0) == 'E') {
      size_t save = pos_;
      ++pos_;
      if (peek(0) == '+' || peek(0) == '-') ++pos_;
      if (std::isdigit(static_cast<unsigned char>(peek(0)))) {
        is_real = true;
        while (std::isdigit(static_cast<unsigned char>(peek(0)))) ++pos_;
      } else {
        pos_ = save;
      }
    }
    if (is_ident_start(static_cast<unsigned char>(peek(0))))
      return fail("Invalid number: a number cannot be directly followed by letters", start);
    out_.push_back(Token{is_real ? TokenKind::Real : TokenKind::Integer, std::string(sql_.substr(start, pos_ - start)),
                         start, pos_ - start, false});
    return true;
  }

  bool identifier() {
    size_t start = pos_;
    std::string value;
    bool upper = false;
    while (pos_ < sql_.size() && is_ident_char(static_cast<unsigned char>(sql_[pos_]))) {
      char c = sql_[pos_++];
      if (c >= 'A' && c <= 'Z') {
        upper = true;
        c = static_cast<char>(c - 'A' + 'a');
      }
      value.push_back(c);
    }
    out_.push_back(Token{TokenKind::Identifier, std::move(value), start, pos_ - start, upper});
    return true;
  }

  std::string_view sql_;
  std::vector<Token>& out_;
  LexError& error_;
  size_t pos_ = 0;
};

}  // namespace

bool tokenize(std::string_view sql, std::vector<Token>& tokens, LexError& error) {
  tokens.clear();
  return Lexer(sql, tokens, error).run();
}

}  // namespace powersync::rules
