// Conversion of JSON input (SQL API rows, request parameters, test cases) into sync values.
#include <cstdint>
#include <limits>

#include <nlohmann/json.hpp>

#include "powersync/error.h"
#include "powersync/rules/sync_rules.h"

namespace powersync::rules {
namespace {

template <typename Json>
Value convert(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      return Value::null();
    case Json::value_t::boolean:
      return Value::integer(v.template get<bool>() ? 1 : 0);
    case Json::value_t::number_integer:
      return Value::integer(v.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = v.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Value::integer(static_cast<int64_t>(u));
      return Value::real(static_cast<double>(u));
    }
    case Json::value_t::number_float:
      return Value::real(v.template get<double>());
    case Json::value_t::string:
      return Value::text(v.template get<std::string>());
    case Json::value_t::binary:
      return Value::blob(std::string(v.get_binary().begin(), v.get_binary().end()));
    case Json::value_t::array:
    case Json::value_t::object:
      return Value::text(v.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  return Value::null();
}

}  // namespace

Value value_from_json(const nlohmann::json& v) { return convert(v); }

Row row_from_json_text(std::string_view json_object_text) {
  nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(json_object_text.begin(), json_object_text.end(),
                                                                nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) throw invalid_input("row is not valid JSON");
  if (!parsed.is_object()) throw invalid_input("row must be a JSON object of column names to values");
  Row row;
  row.reserve(parsed.size());
  for (auto it = parsed.begin(); it != parsed.end(); ++it) row.push_back(Column{it.key(), convert(it.value())});
  return row;
}

}  // namespace powersync::rules
