// Internal SQLite-like value operations behind the expression evaluator (casts, arithmetic,
// comparison); the public subset is declared in powersync/rules/expression.h.
#pragma once

#include <optional>
#include <string>

#include "powersync/rules/value.h"

namespace powersync::rules::sql {

// CAST(v AS NUMERIC) of a non-NULL value: INTEGER or REAL.
Value to_numeric(const Value& v);
// CAST(v AS INTEGER) / CAST(v AS REAL) / CAST(v AS BLOB) of a non-NULL value.
Value to_integer(const Value& v);
Value to_real(const Value& v);
std::string to_blob_bytes(const Value& v);
// castAsText of a non-NULL value.
std::string to_text(const Value& v);

enum class ArithOp { Add, Sub, Mul, Div };
// + - * / with NULL propagation, numeric casts, INTEGER overflow -> REAL, division by zero -> NULL.
Value arithmetic(ArithOp op, const Value& a, const Value& b);

// JS parseFloat over the text (NaN when no number prefix).
double parse_float_prefix(std::string_view s);

}  // namespace powersync::rules::sql
