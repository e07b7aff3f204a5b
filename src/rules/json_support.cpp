// JSON helpers with the reference service's (JSONBig / JavaScript) semantics; see json_support.h.
#include "json_support.h"

#include <algorithm>
#include <charconv>

#include "powersync/error.h"
#include "powersync/protocol/json_writer.h"
#include "text_utils.h"

namespace powersync::rules::json {
namespace {

constexpr int kMaxStringifyDepth = 1000;

// Canonical array index ("0", "17"; not "01", not >= 2^32-1), which JS enumerates first.
bool array_index_key(const std::string& key, uint32_t& index) {
  if (key.empty() || key.size() > 10) return false;
  if (key.size() > 1 && key[0] == '0') return false;
  uint64_t v = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v >= 4294967295ull) return false;
  index = static_cast<uint32_t>(v);
  return true;
}

void stringify_at(const Json& j, std::string& out, int depth) {
  if (depth > kMaxStringifyDepth) throw invalid_input("JSON value is nested too deeply");
  switch (j.type()) {
    case Json::value_t::null: out += "null"; break;
    case Json::value_t::boolean: out += j.get<bool>() ? "true" : "false"; break;
    case Json::value_t::number_integer: out += std::to_string(j.get<int64_t>()); break;
    case Json::value_t::number_unsigned: out += std::to_string(j.get<uint64_t>()); break;
    case Json::value_t::number_float:
      protocol::append_json_value(out, Value::real(j.get<double>()), protocol::RealFormat::RowJson);
      break;
    case Json::value_t::string: protocol::append_json_string(out, j.get_ref<const std::string&>()); break;
    case Json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : j) {
        if (!first) out.push_back(',');
        first = false;
        stringify_at(e, out, depth + 1);
      }
      out.push_back(']');
      break;
    }
    case Json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto* m : ordered_members(j)) {
        if (!first) out.push_back(',');
        first = false;
        protocol::append_json_string(out, m->first);
        out.push_back(':');
        stringify_at(m->second, out, depth + 1);
      }
      out.push_back('}');
      break;
    }
    default: out += "null"; break;  // binary/discarded do not come out of the parser
  }
}

}  // namespace

bool parse(std::string_view text, Json& out, bool reject_duplicate_keys) {
  if (!reject_duplicate_keys || text.find('{') == std::string_view::npos) {
    out = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    return !out.is_discarded();
  }
  // JSONBig (lossless-json) rejects duplicate keys; track the keys of each open object.
  std::vector<std::vector<std::string>> open_objects;
  bool duplicate = false;
  auto callback = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
      auto& keys = open_objects.back();
      const std::string& key = parsed.get_ref<const std::string&>();
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) duplicate = true;
      else keys.push_back(key);
    }
    return true;
  };
  out = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false);
  return !out.is_discarded() && !duplicate;
}

Json parse_or_throw(std::string_view text) {
  Json j;
  if (!parse(text, j)) throw invalid_input("Invalid JSON text");
  return j;
}

void stringify(const Json& j, std::string& out) { stringify_at(j, out, 0); }

std::string stringify(const Json& j) {
  std::string out;
  stringify_at(j, out, 0);
  return out;
}

std::vector<const Member*> ordered_members(const Json& object) {
  std::vector<const Member*> members;
  std::vector<std::pair<uint32_t, const Member*>> indexed;
  const auto& map = object.get_ref<const Json::object_t&>();
  for (const auto& m : map) {
    uint32_t index;
    if (array_index_key(m.first, index)) indexed.emplace_back(index, &m);
    else members.push_back(&m);
  }
  if (indexed.empty()) return members;
  std::sort(indexed.begin(), indexed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<const Member*> result;
  result.reserve(indexed.size() + members.size());
  for (const auto& p : indexed) result.push_back(p.second);
  result.insert(result.end(), members.begin(), members.end());
  return result;
}

Value to_value(const Json& j, NullMode mode) {
  switch (j.type()) {
    case Json::value_t::null: return mode == NullMode::LegacyText ? Value::text("null") : Value::null();
    case Json::value_t::boolean: return Value::integer(j.get<bool>() ? 1 : 0);
    case Json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::integer(static_cast<int64_t>(u));
      return Value::real(static_cast<double>(u));
    }
    case Json::value_t::number_float: return Value::real(j.get<double>());
    case Json::value_t::string: return Value::text(j.get<std::string>());
    default: return Value::text(stringify(j));
  }
}

bool member(const Json& value, const std::string& key, Json& scratch, const Json*& result) {
  if (value.is_object()) {
    const auto& map = value.get_ref<const Json::object_t&>();
    auto it = map.find(key);
    if (it == map.end()) return false;
    result = &it->second;
    return true;
  }
  uint32_t index;
  if (value.is_array()) {
    if (key == "length") {
      scratch = value.size();
      result = &scratch;
      return true;
    }
    if (!array_index_key(key, index) || index >= value.size()) return false;
    result = &value[index];
    return true;
  }
  if (value.is_string()) {  // JS strings index by UTF-16 code unit
    const std::string& s = value.get_ref<const std::string&>();
    if (key == "length") {
      scratch = text::utf16_length(s);
      result = &scratch;
      return true;
    }
    if (!array_index_key(key, index)) return false;
    std::u16string u = text::to_utf16(s);
    if (index >= u.size()) return false;
    scratch = text::from_utf16(u.substr(index, 1));
    result = &scratch;
    return true;
  }
  return false;
}

std::vector<std::string> split_path(std::string_view path, bool fixed) {
  bool proper = !path.empty() && path[0] == '$';
  std::vector<std::string> components;
  if (fixed && !proper) {
    components.emplace_back(path);
    return components;
  }
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    components.emplace_back(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (proper) components.erase(components.begin());
  return components;
}

const Json* follow_path(const Json& root, const std::vector<std::string>& components, Json& scratch) {
  const Json* current = &root;
  for (const auto& c : components) {
    if (current->is_null()) break;  // the reference stops walking at null (and keeps the null)
    const Json* next = nullptr;
    Json step_scratch;
    if (!member(*current, c, step_scratch, next)) return nullptr;
    if (next == &step_scratch) {
      scratch = std::move(step_scratch);
      next = &scratch;
    }
    current = next;
  }
  return current;
}

}  // namespace powersync::rules::json
