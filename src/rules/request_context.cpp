// Request-side values (RequestParameters of the reference's types.ts) and the JSON helpers of
// expression.h used by IN and json_each.
#include <cmath>

#include "json_support.h"
#include "powersync/error.h"
#include "powersync/rules/expression.h"
#include "sql_values.h"

namespace powersync::rules {
namespace {

json::Json to_ordered(const nlohmann::json& j) {
  json::Json out;
  if (!json::parse(j.dump(), out)) return json::Json::object();
  return out;
}

// toSyncRulesParameters: integral numbers -> INTEGER, booleans -> 1/0, nested -> JSON text.
Value parameter_value(const json::Json& j) {
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) return Value::integer(static_cast<int64_t>(d));
  }
  return json::to_value(j, json::NullMode::SqlNull);
}

Row parameter_row(const json::Json& object) {
  Row row;
  if (!object.is_object()) return row;
  for (const auto* m : json::ordered_members(object)) row.push_back(Column{m->first, parameter_value(m->second)});
  return row;
}

Value lookup(const Row& row, std::string_view name) {
  const Value* v = find_column(row, name);
  return v ? *v : Value::null();
}

}  // namespace

struct RequestContext::Data {
  Value user_id;
  std::string jwt_json = "{}";
  std::string parameters_json = "{}";
  Row token_parameters;
  Row user_parameters;
};

RequestContext::RequestContext() : data_(std::make_unique<Data>()) {}

RequestContext::RequestContext(const nlohmann::json& token_claims, const nlohmann::json& client_parameters)
    : data_(std::make_unique<Data>()) {
  json::Json claims = to_ordered(token_claims);
  json::Json params = to_ordered(client_parameters);
  if (!claims.is_object()) claims = json::Json::object();
  if (!params.is_object()) params = json::Json::object();
  data_->jwt_json = json::stringify(claims);
  data_->parameters_json = json::stringify(params);
  auto sub = claims.find("sub");
  data_->user_id = sub == claims.end() ? Value::null() : json::to_value(*sub, json::NullMode::SqlNull);
  // Legacy token parameters: the `parameters` claim, with user_id = sub taking precedence.
  json::Json token_params = json::Json::object();
  auto legacy = claims.find("parameters");
  if (legacy != claims.end() && legacy->is_object()) token_params = *legacy;
  data_->token_parameters = parameter_row(token_params);
  bool replaced = false;
  for (auto& c : data_->token_parameters)
    if (c.name == "user_id") c.value = data_->user_id, replaced = true;
  if (!replaced) data_->token_parameters.push_back(Column{"user_id", data_->user_id});
  data_->user_parameters = parameter_row(params);
}

RequestContext::~RequestContext() = default;
RequestContext::RequestContext(RequestContext&&) noexcept = default;
RequestContext& RequestContext::operator=(RequestContext&&) noexcept = default;

const Value& RequestContext::user_id() const { return data_->user_id; }
const std::string& RequestContext::jwt_json() const { return data_->jwt_json; }
const std::string& RequestContext::parameters_json() const { return data_->parameters_json; }
Value RequestContext::token_parameter(std::string_view name) const { return lookup(data_->token_parameters, name); }
Value RequestContext::user_parameter(std::string_view name) const { return lookup(data_->user_parameters, name); }

// request.parameter(path): the reference walks the *converted* client parameters with the fixed
// path rules, so only top-level keys reach nested data (nested values are already JSON text).
Value RequestContext::parameter(const Value& path) const {
  if (!path.is_text()) return Value::null();
  std::vector<std::string> components = json::split_path(path.as_text(), true);
  if (components.empty()) {
    json::Json record = json::Json::object();
    for (const auto& c : data_->user_parameters) {
      const Value& v = c.value;
      if (v.is_integer()) record[c.name] = v.as_integer();
      else if (v.is_real()) record[c.name] = v.as_real();
      else if (v.is_text()) record[c.name] = v.as_text();
      else record[c.name] = nullptr;
    }
    return Value::text(json::stringify(record));
  }
  const Value* first = find_column(data_->user_parameters, components[0]);
  if (first == nullptr) return Value::null();
  if (components.size() == 1) return *first;
  if (!first->is_text()) return Value::null();
  json::Json current = first->as_text();
  for (size_t i = 1; i < components.size(); ++i) {
    json::Json scratch;
    const json::Json* next = nullptr;
    if (!json::member(current, components[i], scratch, next)) return Value::null();
    json::Json copy = *next;
    current = std::move(copy);
  }
  return json::to_value(current, json::NullMode::SqlNull);
}

std::vector<Value> json_array_values(const Value& value) {
  if (!value.is_text()) throw invalid_input("IN is only supported on JSON arrays (value is not a JSON array)");
  json::Json parsed;
  if (!json::parse(value.as_text(), parsed) || !parsed.is_array())
    throw invalid_input("IN is only supported on JSON arrays (not a JSON array: " + value.as_text().substr(0, 100) + ")");
  std::vector<Value> out;
  out.reserve(parsed.size());
  for (const auto& e : parsed) out.push_back(json::to_value(e, json::NullMode::SqlNull));
  return out;
}

namespace {

// JSON.parse (not JSONBig) turns every number into a double; nested values are later stringified
// with JSONBig, which then writes integral numbers as `1.0`.
void numbers_to_doubles(json::Json& j, int depth) {
  if (depth > 1000) throw invalid_input("JSON value is nested too deeply");
  if (j.is_number_integer()) j = static_cast<double>(j.get<int64_t>());
  else if (j.is_number_unsigned()) j = static_cast<double>(j.get<uint64_t>());
  else if (j.is_structured())
    for (auto& e : j) numbers_to_doubles(e, depth + 1);
}

}  // namespace

// json_each parses with plain JSON.parse in the reference, so every number is a REAL there.
std::vector<Row> json_each_rows(const Value& value) {
  std::vector<Row> rows;
  if (value.is_null()) return rows;
  if (!value.is_text()) throw invalid_input("Expected json_each to be called with a string");
  json::Json parsed;
  if (!json::parse(value.as_text(), parsed, /*reject_duplicate_keys=*/false)) throw invalid_input("Expected JSON string");
  numbers_to_doubles(parsed, 0);
  auto element = [](const json::Json& j) {
    if (j.is_number()) return Value::real(j.get<double>());
    return json::to_value(j, json::NullMode::LegacyText);
  };
  if (parsed.is_array()) {
    int64_t i = 0;
    for (const auto& e : parsed) rows.push_back(Row{{"key", Value::integer(i++)}, {"value", element(e)}});
  } else if (parsed.is_object()) {
    for (const auto* m : json::ordered_members(parsed))
      rows.push_back(Row{{"key", Value::text(m->first)}, {"value", element(m->second)}});
  } else {
    rows.push_back(Row{{"key", Value::null()}, {"value", element(parsed)}});
  }
  return rows;
}

}  // namespace powersync::rules
