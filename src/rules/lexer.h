// Tokenizer for the sync-rules SQL subset: identifiers (quoted or folded to lower case), numbers,
// 'strings', operators and punctuation, each with its byte offset. Internal to src/rules.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace powersync::rules {

enum class TokenKind {
  Identifier,     // unquoted word (keywords included; compare `lower`)
  QuotedIdentifier,
  Integer,        // digits only
  Real,           // digits with '.' or exponent
  String,         // 'text' (value = unescaped contents)
  Operator,       // = != <> < > <= >= + - * / || -> ->> :: % ^ etc.
  Punct,          // ( ) , . ;
  End,
};

struct Token {
  TokenKind kind = TokenKind::End;
  std::string value;   // identifiers: folded name; strings: contents; operators: symbol
  size_t offset = 0;
  size_t length = 0;
  bool had_upper_case = false;  // unquoted identifier spelled with upper case
};

struct LexError {
  std::string message;
  size_t offset = 0;
};

// Splits `sql` into tokens (ending with an End token). Returns false and sets `error` on bad input
// (unterminated string/identifier/comment, unexpected character).
bool tokenize(std::string_view sql, std::vector<Token>& tokens, LexError& error);

}  // namespace powersync::rules
