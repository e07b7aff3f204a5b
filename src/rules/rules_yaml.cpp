// Sync rules YAML loader: document structure, config block, bucket definitions, event definitions.
// Query texts are only collected here; src/rules/sync_rules.cpp compiles them.
#include "rules_yaml.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <set>

namespace powersync::rules::detail {
namespace {

// yaml-cpp (0.7) recurses once per nesting level; reject absurd nesting before it can exhaust the
// stack. Real sync rules nest four or five levels deep.
constexpr int kMaxYamlNesting = 64;

bool nesting_too_deep(std::string_view yaml) {
  int depth = 0;
  char quote = 0;
  for (char c : yaml) {
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') quote = c;
    else if (c == '[' || c == '{') { if (++depth > kMaxYamlNesting) return true; }
    else if (c == ']' || c == '}') depth = std::max(0, depth - 1);
    else if (c == '\n') quote = 0;  // quotes inside plain scalars must not swallow the document
  }
  return false;
}

ScalarLocation location_of(const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  ScalarLocation loc;
  if (m.pos >= 0) loc.pos = static_cast<size_t>(m.pos);
  loc.line = m.line >= 0 ? m.line + 1 : 0;
  loc.col = m.column >= 0 ? m.column + 1 : 0;
  return loc;
}

class Loader {
 public:
  Loader(std::string_view yaml, std::vector<RuleIssue>& issues) : yaml_(yaml), issues_(issues) {}

  RulesSource load();

 private:
  void error(const ScalarLocation& at, std::string message, RuleIssue::Severity severity = RuleIssue::Severity::Error) {
    RuleIssue issue;
    issue.severity = severity;
    issue.message = std::move(message);
    issue.line = at.line;
    issue.col = at.col;
    issues_.push_back(std::move(issue));
  }
  void warning(const ScalarLocation& at, std::string message) { error(at, std::move(message), RuleIssue::Severity::Warning); }

  void load_config(const YAML::Node& key, const YAML::Node& config);
  void load_definitions(const YAML::Node& key, const YAML::Node& definitions, RulesSource& out);
  void load_definition(const YAML::Node& key, const YAML::Node& body, RulesSource& out);
  void load_events(const YAML::Node& key, const YAML::Node& events, RulesSource& out);
  bool query_text(const YAML::Node& node, const ScalarLocation& fallback, const std::string& what, QuerySource& out);
  std::optional<bool> boolean(const YAML::Node& node, const ScalarLocation& fallback, const std::string& what);

  // Null nodes carry no useful mark in yaml-cpp: report them at their key.
  ScalarLocation where(const YAML::Node& node, const ScalarLocation& fallback) {
    return node.IsNull() ? fallback : location_of(node);
  }

  std::string_view yaml_;
  std::vector<RuleIssue>& issues_;
  std::set<std::string> names_;
};

RulesSource Loader::load() {
  RulesSource out;
  ScalarLocation start;
  if (nesting_too_deep(yaml_)) {
    error(start, "YAML nesting is too deep (more than " + std::to_string(kMaxYamlNesting) + " levels)");
    return out;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_));
  } catch (const YAML::Exception& e) {
    ScalarLocation at;
    at.line = e.mark.line >= 0 ? e.mark.line + 1 : 0;
    at.col = e.mark.column >= 0 ? e.mark.column + 1 : 0;
    error(at, "YAML syntax error: " + e.msg);
    return out;
  }
  if (!root.IsMap()) {
    error(root.IsDefined() && !root.IsNull() ? location_of(root) : start, "Sync Config must be a YAML map.");
    return out;
  }
  bool has_definitions = false;
  for (const auto& item : root) {
    const YAML::Node& key = item.first;
    const YAML::Node& value = item.second;
    const std::string name = key.IsScalar() ? key.Scalar() : std::string();
    const ScalarLocation at = location_of(key);
    if (name == "config") {
      load_config(key, value);
    } else if (name == "bucket_definitions") {
      has_definitions = true;
      load_definitions(key, value, out);
    } else if (name == "streams") {
      has_definitions = true;
      error(at, "Sync Streams are not supported yet: use bucket_definitions (edition 1 sync rules)");
    } else if (name == "event_definitions") {
      load_events(key, value, out);
    } else if (name == "with") {
      error(at, "Common table expressions require edition 3, which is not supported");
    } else {
      error(at, "Unknown top-level key '" + name +
                    "': expected bucket_definitions, config or event_definitions");
    }
  }
  if (!has_definitions) error(start, "'bucket_definitions' or 'streams' is required");
  return out;
}

void Loader::load_config(const YAML::Node& key, const YAML::Node& config) {
  const ScalarLocation key_at = location_of(key);
  if (config.IsNull()) return;
  if (!config.IsMap()) {
    error(where(config, key_at), "'config' must be a map");
    return;
  }
  static const std::set<std::string> kQuirkOptions = {"timestamps_iso8601", "versioned_bucket_ids",
                                                      "fixed_json_extract", "custom_postgres_types",
                                                      "unstable_sqlite_expression_engine"};
  for (const auto& item : config) {
    const std::string name = item.first.IsScalar() ? item.first.Scalar() : std::string();
    const ScalarLocation at = location_of(item.first);
    const YAML::Node& value = item.second;
    const ScalarLocation value_at = where(value, at);
    if (name == "edition") {
      const std::string text = value.IsScalar() ? value.Scalar() : std::string();
      if (text != "1") {
        error(value_at, "config edition " + (text.empty() ? std::string("(not a number)") : text) +
                            " is not supported: powersync_pg implements edition 1 (legacy sync rules)");
      }
    } else if (name == "storage_version") {
      const std::string text = value.IsScalar() ? value.Scalar() : std::string();
      if (text == "3") {
        warning(value_at, "Storage version 3 is unstable, and may cause unexpected behavior or stop functioning in any release");
      } else if (text != "2") {
        error(value_at, "Storage version " + text + " is not supported");
      }
    } else if (kQuirkOptions.count(name)) {
      std::optional<bool> enabled = boolean(value, at, "'" + name + "'");
      if (enabled && *enabled) {
        error(value_at, "config option '" + name + "' is not supported yet (edition 1 behaviour is always used)");
      }
    } else if (name == "timestamp_max_precision") {
      error(value_at, "'timestamp_max_precision' requires 'timestamps_iso8601' to be enabled.");
    } else {
      error(at, "Unknown config option '" + name + "'");
    }
  }
}

void Loader::load_definitions(const YAML::Node& key, const YAML::Node& definitions, RulesSource& out) {
  if (definitions.IsNull()) return;
  if (!definitions.IsMap()) {
    error(where(definitions, location_of(key)), "'bucket_definitions' must be a map of definition names to definitions");
    return;
  }
  for (const auto& item : definitions) load_definition(item.first, item.second, out);
}

std::optional<bool> Loader::boolean(const YAML::Node& node, const ScalarLocation& fallback, const std::string& what) {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  error(where(node, fallback), what + " must be true or false");
  return std::nullopt;
}

bool Loader::query_text(const YAML::Node& node, const ScalarLocation& fallback, const std::string& what,
                        QuerySource& out) {
  if (!node.IsScalar()) {
    error(where(node, fallback), what + " must be a string holding one SQL query");
    return false;
  }
  out.sql = node.Scalar();
  out.location = location_of(node);
  return true;
}

void Loader::load_definition(const YAML::Node& key, const YAML::Node& body, RulesSource& out) {
  DefinitionSource def;
  def.name = key.IsScalar() ? key.Scalar() : std::string();
  def.location = location_of(key);
  if (!names_.insert(def.name).second) {
    error(def.location, "Duplicate stream or bucket definition.");
    return;
  }
  if (!body.IsMap()) {
    error(where(body, def.location), "'" + def.name + "' bucket definition must be an object");
    return;
  }
  bool has_data = false;
  for (const auto& item : body) {
    const std::string name = item.first.IsScalar() ? item.first.Scalar() : std::string();
    const ScalarLocation at = location_of(item.first);
    const YAML::Node& value = item.second;
    if (name == "parameters") {
      def.has_parameters = true;
      if (value.IsScalar()) {
        QuerySource q;
        if (query_text(value, at, "A parameter query", q)) def.parameters.push_back(std::move(q));
      } else if (value.IsSequence()) {
        for (const auto& element : value) {
          QuerySource q;
          if (query_text(element, at, "A parameter query", q)) def.parameters.push_back(std::move(q));
        }
      } else {
        error(where(value, at), "Parameters must be a string or array of strings");
      }
    } else if (name == "data") {
      has_data = true;
      if (value.IsSequence()) {
        for (const auto& element : value) {
          QuerySource q;
          if (query_text(element, at, "A data query", q)) def.data.push_back(std::move(q));
        }
      } else {
        error(where(value, at), "'data' must be a list of SQL queries");
      }
    } else if (name == "priority") {
      const std::string text = value.IsScalar() ? value.Scalar() : std::string();
      if (text.size() == 1 && text[0] >= '0' && text[0] <= '3') {
        def.priority = text[0] - '0';
      } else {
        error(where(value, at), "Invalid priority, expected a number between 0 and 3 (inclusive).");
      }
    } else if (name == "accept_potentially_dangerous_queries") {
      def.accept_potentially_dangerous_queries = boolean(value, at, "'accept_potentially_dangerous_queries'").value_or(false);
    } else {
      error(at, "Unknown key '" + name + "' in bucket definition '" + def.name +
                    "': expected parameters, data, priority or accept_potentially_dangerous_queries");
    }
  }
  if (!has_data) {
    error(def.location, "Bucket definition '" + def.name + "' must have a 'data' list");
    return;
  }
  out.definitions.push_back(std::move(def));
}

void Loader::load_events(const YAML::Node& key, const YAML::Node& events, RulesSource& out) {
  if (events.IsNull()) return;
  if (!events.IsMap()) {
    error(where(events, location_of(key)), "'event_definitions' must be a map");
    return;
  }
  for (const auto& item : events) {
    EventSource ev;
    ev.name = item.first.IsScalar() ? item.first.Scalar() : std::string();
    ev.location = location_of(item.first);
    const YAML::Node& body = item.second;
    if (!body.IsMap()) {
      error(where(body, ev.location), "Event definitions must be objects.");
      continue;
    }
    for (const auto& field : body) {
      const std::string name = field.first.IsScalar() ? field.first.Scalar() : std::string();
      const ScalarLocation at = location_of(field.first);
      if (name != "payloads") {
        error(at, "Unknown key '" + name + "' in event definition '" + ev.name + "': expected payloads");
        continue;
      }
      if (!field.second.IsSequence()) {
        error(where(field.second, at), "Event definition payloads must be an array.");
        continue;
      }
      for (const auto& element : field.second) {
        QuerySource q;
        if (query_text(element, at, "Payload queries for events", q)) ev.payloads.push_back(std::move(q));
      }
    }
    out.events.push_back(std::move(ev));
  }
}

}  // namespace

RulesSource load_rules_yaml(std::string_view yaml, std::vector<RuleIssue>& issues) {
  Loader loader(yaml, issues);
  try {
    return loader.load();
  } catch (const YAML::Exception& e) {
    // Conversions on malformed nodes; report rather than crash.
    RuleIssue issue;
    issue.message = "YAML error: " + e.msg;
    issue.line = e.mark.line >= 0 ? e.mark.line + 1 : 0;
    issue.col = e.mark.column >= 0 ? e.mark.column + 1 : 0;
    issues.push_back(std::move(issue));
    return {};
  }
}

void locate_in_scalar(std::string_view yaml, const ScalarLocation& where, std::string_view value, size_t offset,
                      int& line, int& col) {
  line = where.line;
  col = where.col;
  if (where.pos >= yaml.size() || where.line == 0) return;
  size_t src = where.pos;
  const char first = yaml[src];
  if (first == '|' || first == '>') {
    size_t nl = yaml.find('\n', src);
    if (nl == std::string_view::npos) return;
    src = nl + 1;
  } else if (first == '\'' || first == '"') {
    src += 1;
  }
  // Walk value and source together; source characters the value does not contain (indentation,
  // folded line breaks, escape introducers, doubled quotes) are skipped, a bounded number at a time.
  offset = std::min(offset, value.size());
  for (size_t i = 0; i < offset && src < yaml.size(); ++i) {
    size_t probe = src;
    int skipped = 0;
    while (probe < yaml.size() && yaml[probe] != value[i] && skipped < 24) { ++probe; ++skipped; }
    if (probe < yaml.size() && yaml[probe] == value[i]) src = probe + 1;
    else src += 1;
  }
  // Skip indentation/newlines that precede the token itself.
  while (src < yaml.size() && offset < value.size() && yaml[src] != value[offset] &&
         (yaml[src] == ' ' || yaml[src] == '\n' || yaml[src] == '\r' || yaml[src] == '\t')) {
    ++src;
  }
  src = std::min(src, yaml.size());
  int l = where.line;
  size_t line_start = 0;
  for (size_t p = where.pos; p < src; ++p) {
    if (yaml[p] == '\n') { ++l; line_start = p + 1; }
  }
  if (l == where.line) {
    col = where.col + static_cast<int>(src - where.pos);
  } else {
    col = static_cast<int>(src - line_start) + 1;
  }
  line = l;
}

}  // namespace powersync::rules::detail
