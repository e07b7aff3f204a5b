// The compiled form of an expression: a tree of Nodes with names resolved, functions bound and
// constant JSON paths / IN arrays pre-parsed. Internal to src/rules.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "functions.h"
#include "powersync/rules/expression.h"

namespace powersync::rules::detail {

enum class Op : uint8_t {
  Constant,
  Column,        // row column `name`
  BucketParam,   // bucket.<name>
  TokenParam,    // token_parameters.<name>
  UserParam,     // user_parameters.<name>
  UserId,        // request.user_id()
  Jwt,           // request.jwt()
  Parameters,    // request.parameters()
  Parameter,     // request.parameter(children[0])
  Function,      // fn(children...)
  Not, Negate, IsNull, IsNotNull,
  And, Or,
  Eq, NotEq, Lt, Gt, LtEq, GtEq,
  Add, Sub, Mul, Div,
  Concat,
  Arrow, Arrow2,  // children[0] -> / ->> path
  In,             // children[0] IN children[1] (or in_values when the array is constant)
  Cast,
};

enum class CastType : uint8_t { Text, Numeric, Integer, Real, Blob };

struct Node {
  Op op = Op::Constant;
  Value constant;
  std::string name;
  // Index where `name` was found in the last row: rows of one table usually share a layout.
  mutable std::atomic<uint32_t> column_hint{0};
  std::vector<std::unique_ptr<Node>> children;
  const functions::FunctionDef* function = nullptr;
  std::vector<std::string> path;      // Arrow / Arrow2
  bool constant_in_array = false;     // In: right side was a constant JSON array
  std::vector<Value> in_values;
  CastType cast = CastType::Text;
};

// Evaluates `node`; the result lives in `scratch`, in the row/context, or in the tree itself.
const Value& evaluate(const Node& node, const EvalContext& ctx, Value& scratch);

}  // namespace powersync::rules::detail
