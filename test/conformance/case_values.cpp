// Typed values in conformance case files: how a YAML scalar is read as NULL/INTEGER/REAL/TEXT/BLOB.
#include "case_values.h"

#include <cmath>
#include <cstdlib>
#include <regex>
#include <stdexcept>

namespace conformance {
namespace {

namespace rules = powersync::rules;

bool is_plain(const YAML::Node& node) { return node.Tag() == "?" || node.Tag().empty(); }

const std::regex& integer_re() {
  static const std::regex re("^[-+]?[0-9]+$");
  return re;
}
const std::regex& real_re() {
  static const std::regex re("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$");
  return re;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::runtime_error("bad hex digit in !blob");
  };
  if (hex.size() % 2) throw std::runtime_error("!blob needs an even number of hex digits");
  for (size_t i = 0; i < hex.size(); i += 2) out.push_back(static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1])));
  return out;
}

bool parse_special_real(const std::string& s, double& out) {
  if (s == ".inf" || s == "+.inf" || s == ".Inf") { out = INFINITY; return true; }
  if (s == "-.inf" || s == "-.Inf") { out = -INFINITY; return true; }
  if (s == ".nan" || s == ".NaN") { out = NAN; return true; }
  return false;
}

}  // namespace

rules::Value typed_value(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return rules::Value::null();
  if (node.Tag() == "!blob") return rules::Value::blob(from_hex(node.Scalar()));
  if (node.IsMap() || node.IsSequence()) return rules::Value::text(to_json(node).dump());
  const std::string& s = node.Scalar();
  if (!is_plain(node)) return rules::Value::text(s);
  if (s == "null" || s == "~" || s == "Null" || s == "NULL") return rules::Value::null();
  if (s == "true") return rules::Value::integer(1);
  if (s == "false") return rules::Value::integer(0);
  if (std::regex_match(s, integer_re())) {
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE) throw std::runtime_error("integer out of 64-bit range: " + s);
    return rules::Value::integer(v);
  }
  double d;
  if (parse_special_real(s, d)) return rules::Value::real(d);
  if (std::regex_match(s, real_re())) return rules::Value::real(std::strtod(s.c_str(), nullptr));
  return rules::Value::text(s);
}

rules::Row typed_row(const YAML::Node& node) {
  if (!node.IsMap()) throw std::runtime_error("row must be a mapping of column names to values");
  rules::Row row;
  for (const auto& item : node) row.push_back(rules::Column{item.first.Scalar(), typed_value(item.second)});
  return row;
}

nlohmann::json to_json(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return nullptr;
  if (node.IsSequence()) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : node) arr.push_back(to_json(e));
    return arr;
  }
  if (node.IsMap()) {
    nlohmann::json obj = nlohmann::json::object();
    for (const auto& item : node) obj[item.first.Scalar()] = to_json(item.second);
    return obj;
  }
  const std::string& s = node.Scalar();
  if (!is_plain(node)) return s;
  if (s == "null" || s == "~") return nullptr;
  if (s == "true") return true;
  if (s == "false") return false;
  if (std::regex_match(s, integer_re())) return static_cast<int64_t>(std::strtoll(s.c_str(), nullptr, 10));
  if (std::regex_match(s, real_re())) return std::strtod(s.c_str(), nullptr);
  return s;
}

std::string describe(const rules::Value& v) {
  switch (v.type()) {
    case rules::ValueType::Null: return "NULL";
    case rules::ValueType::Integer: return "INTEGER " + std::to_string(v.as_integer());
    case rules::ValueType::Real: {
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", v.as_real());
      return std::string("REAL ") + buf;
    }
    case rules::ValueType::Text: return "TEXT \"" + v.as_text() + "\"";
    case rules::ValueType::Blob: {
      static const char* hex = "0123456789ABCDEF";
      std::string out = "BLOB x'";
      for (unsigned char c : v.as_blob()) { out.push_back(hex[c >> 4]); out.push_back(hex[c & 15]); }
      return out + "'";
    }
  }
  return "?";
}

bool same_value(const rules::Value& a, const rules::Value& b) {
  if (a.type() != b.type()) return false;
  if (a.is_real()) {
    if (std::isnan(a.as_real()) && std::isnan(b.as_real())) return true;
    return a.as_real() == b.as_real();
  }
  return a == b;
}

rules::SourceTable source_table(const std::string& text) {
  rules::SourceTable t;
  size_t dot = text.find('.');
  if (dot == std::string::npos) {
    t.schema = "public";
    t.name = text;
  } else {
    t.schema = text.substr(0, dot);
    t.name = text.substr(dot + 1);
  }
  return t;
}

}  // namespace conformance
