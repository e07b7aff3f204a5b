// Conformance runner: rules actions (validate, evaluate_row, evaluate_parameter_row, request) and
// their expectations.
#include "checks.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "case_values.h"
#include "powersync/rules/sync_rules.h"

namespace conformance {
namespace {

namespace rules = powersync::rules;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool contains_ci(const std::string& haystack, const std::string& needle) {
  return lower(haystack).find(lower(needle)) != std::string::npos;
}

std::vector<std::string> string_list(const YAML::Node& node) {
  std::vector<std::string> out;
  if (!node.IsDefined() || node.IsNull()) return out;
  if (node.IsSequence()) {
    for (const auto& e : node) out.push_back(e.as<std::string>());
  } else {
    out.push_back(node.as<std::string>());
  }
  return out;
}

std::string describe_issues(const std::vector<rules::RuleIssue>& issues) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < issues.size(); ++i) {
    const auto& is = issues[i];
    out << (i ? "; " : "") << (is.severity == rules::RuleIssue::Severity::Error ? "error" : "warning") << " "
        << is.line << ":" << is.col << " " << is.message;
  }
  return out.str() + "]";
}

rules::ParseOptions parse_options(const CaseView& c) {
  rules::ParseOptions options;
  if (c.has("bucket_prefix")) options.bucket_prefix = c.get("bucket_prefix").as<std::string>();
  if (c.has("default_schema")) options.default_schema = c.get("default_schema").as<std::string>();
  return options;
}

std::string check_validate(const CaseView& c) {
  std::vector<rules::RuleIssue> issues;
  auto parsed = rules::SyncRules::parse(c.get("validate").as<std::string>(), parse_options(c), issues);
  bool has_error = false, has_warning = false;
  for (const auto& is : issues) (is.severity == rules::RuleIssue::Severity::Error ? has_error : has_warning) = true;
  if (has_error != (parsed == nullptr)) return "parse() result disagrees with its issues " + describe_issues(issues);
  if (c.has("expect_valid") && c.get("expect_valid").as<bool>() && has_error)
    return "expected valid rules, got " + describe_issues(issues);
  if (c.has("expect_no_warnings") && c.get("expect_no_warnings").as<bool>() && !issues.empty())
    return "expected no issues at all, got " + describe_issues(issues);
  const rules::RuleIssue* positioned = nullptr;
  for (const auto& [key, severity] : {std::pair{"expect_error", rules::RuleIssue::Severity::Error},
                                      std::pair{"expect_warning", rules::RuleIssue::Severity::Warning}}) {
    for (const auto& needle : string_list(c.get(key))) {
      auto it = std::find_if(issues.begin(), issues.end(), [&](const rules::RuleIssue& is) {
        return is.severity == severity && contains_ci(is.message, needle);
      });
      if (it == issues.end()) return std::string(key) + " '" + needle + "' not found in " + describe_issues(issues);
      if (!positioned) positioned = &*it;
    }
  }
  if (c.has("expect_position")) {
    if (!positioned) return "expect_position needs expect_error or expect_warning";
    int line = c.get("expect_position")["line"].as<int>();
    int col = c.get("expect_position")["col"] ? c.get("expect_position")["col"].as<int>() : positioned->col;
    if (positioned->line != line || positioned->col != col)
      return "expected position " + std::to_string(line) + ":" + std::to_string(col) + ", got " +
             std::to_string(positioned->line) + ":" + std::to_string(positioned->col) + " for '" + positioned->message + "'";
  }
  return "";
}

std::unique_ptr<rules::SyncRules> load_rules(const CaseView& c, std::string& failure) {
  if (!c.has("rules")) {
    failure = "case has no `rules`";
    return nullptr;
  }
  std::vector<rules::RuleIssue> issues;
  auto parsed = rules::SyncRules::parse(c.get("rules").as<std::string>(), parse_options(c), issues);
  if (!parsed) failure = "rules do not parse: " + describe_issues(issues);
  return parsed;
}

rules::Row case_row(const YAML::Node& action) {
  if (action["row_json"]) return rules::row_from_json_text(action["row_json"].as<std::string>());
  if (action["row"]) return typed_row(action["row"]);
  throw std::runtime_error("action needs `row` or `row_json`");
}

std::string check_errors(const CaseView& c, const std::vector<std::string>& errors) {
  auto expected = string_list(c.get("expect_errors"));
  for (const auto& needle : expected) {
    if (std::none_of(errors.begin(), errors.end(), [&](const std::string& e) { return contains_ci(e, needle); }))
      return "expected an evaluation error containing '" + needle + "'";
  }
  if (expected.empty() && !errors.empty()) return "unexpected evaluation error: " + errors.front();
  return "";
}

// Matches expected entries (maps with some of `fields`) against actual records, as multisets.
using Record = std::map<std::string, std::string>;

std::string record_text(const Record& r) {
  std::string out = "{";
  for (const auto& [k, v] : r) out += (out.size() > 1 ? ", " : "") + k + ": " + v;
  return out + "}";
}

std::string match_records(const YAML::Node& expected, std::vector<Record> actual, const char* what) {
  std::vector<Record> wanted;
  for (const auto& e : expected) {
    Record r;
    if (e.IsScalar()) {
      r["bucket"] = e.Scalar();
    } else {
      for (const auto& item : e) r[item.first.Scalar()] = item.second.IsSequence() ? to_json(item.second).dump() : item.second.as<std::string>();
    }
    wanted.push_back(std::move(r));
  }
  std::string all_actual;
  for (const auto& a : actual) all_actual += "\n         " + record_text(a);
  if (wanted.size() != actual.size())
    return "expected " + std::to_string(wanted.size()) + " " + what + ", got " + std::to_string(actual.size()) + ":" +
           (all_actual.empty() ? " (none)" : all_actual);
  for (const auto& w : wanted) {
    auto it = std::find_if(actual.begin(), actual.end(), [&](const Record& a) {
      for (const auto& [k, v] : w) {
        auto f = a.find(k);
        if (f == a.end() || f->second != v) return false;
      }
      return true;
    });
    if (it == actual.end()) return std::string("no ") + what + " matches " + record_text(w) + "; got:" + all_actual;
    actual.erase(it);
  }
  return "";
}

std::string check_evaluate_row(const CaseView& c) {
  std::string failure;
  auto sync_rules = load_rules(c, failure);
  if (!sync_rules) return failure;
  const YAML::Node action = c.get("evaluate_row");
  auto result = sync_rules->evaluate_row(source_table(action["table"].as<std::string>()), case_row(action));
  std::vector<Record> actual;
  for (const auto& r : result.rows) actual.push_back({{"bucket", r.bucket}, {"table", r.table}, {"id", r.id}, {"data", r.data}});
  if (c.has("expect_rows")) failure = match_records(c.get("expect_rows"), actual, "rows");
  if (failure.empty() && c.has("expect_buckets")) {
    std::vector<Record> buckets;
    for (const auto& r : result.rows) buckets.push_back({{"bucket", r.bucket}});
    failure = match_records(c.get("expect_buckets"), buckets, "buckets");
  }
  if (failure.empty()) failure = check_errors(c, result.errors);
  return failure;
}

std::string check_evaluate_parameter_row(const CaseView& c) {
  std::string failure;
  auto sync_rules = load_rules(c, failure);
  if (!sync_rules) return failure;
  const YAML::Node action = c.get("evaluate_parameter_row");
  auto result = sync_rules->evaluate_parameter_row(source_table(action["table"].as<std::string>()), case_row(action));
  std::vector<Record> actual;
  for (const auto& l : result.lookups)
    actual.push_back({{"definition", l.definition}, {"lookup", l.lookup}, {"bucket_parameters", l.bucket_parameters}});
  if (c.has("expect_lookups")) failure = match_records(c.get("expect_lookups"), actual, "lookups");
  if (failure.empty()) failure = check_errors(c, result.errors);
  return failure;
}

std::string check_request(const CaseView& c) {
  std::string failure;
  auto sync_rules = load_rules(c, failure);
  if (!sync_rules) return failure;
  const YAML::Node action = c.get("request");
  rules::RequestParameters request;
  if (action["token"]) request.token_claims = to_json(action["token"]);
  if (action["params"]) request.client_parameters = to_json(action["params"]);
  rules::RequestBuckets buckets = sync_rules->request_buckets(request);

  if (c.has("expect_static")) {
    std::vector<Record> actual;
    for (const auto& b : buckets.static_buckets) actual.push_back({{"bucket", b.bucket}});
    failure = match_records(c.get("expect_static"), actual, "static buckets");
    if (!failure.empty()) return failure;
  }
  if (c.has("expect_priorities")) {
    for (const auto& item : c.get("expect_priorities")) {
      const std::string id = item.first.Scalar();
      int want = item.second.as<int>();
      auto it = std::find_if(buckets.static_buckets.begin(), buckets.static_buckets.end(),
                             [&](const rules::BucketDescription& b) { return b.bucket == id; });
      if (it == buckets.static_buckets.end()) return "no static bucket " + id + " for expect_priorities";
      if (it->priority != want)
        return "bucket " + id + ": expected priority " + std::to_string(want) + ", got " + std::to_string(it->priority);
    }
  }
  if (c.has("expect_request_lookups")) {
    std::vector<Record> actual;
    for (const auto& q : buckets.dynamic) {
      nlohmann::json lookups = q.lookups;
      actual.push_back({{"definition", q.definition}, {"query_index", std::to_string(q.query_index)},
                        {"lookups", lookups.dump()}, {"priority", std::to_string(q.priority)}});
    }
    failure = match_records(c.get("expect_request_lookups"), actual, "dynamic queries");
    if (!failure.empty()) return failure;
  }
  if (c.has("expect_buckets")) {
    std::map<std::string, std::vector<std::string>> stored;
    if (c.has("parameter_sets"))
      for (const auto& item : c.get("parameter_sets")) stored[item.first.Scalar()] = string_list(item.second);
    std::set<std::string> all;
    for (const auto& b : buckets.static_buckets) all.insert(b.bucket);
    for (const auto& q : buckets.dynamic) {
      std::vector<std::string> rows;
      for (const auto& l : q.lookups)
        for (const auto& r : stored[l]) rows.push_back(r);
      for (const auto& b : sync_rules->resolve_dynamic(request, q, rows)) all.insert(b.bucket);
    }
    std::vector<Record> actual;
    for (const auto& b : all) actual.push_back({{"bucket", b}});
    failure = match_records(c.get("expect_buckets"), actual, "buckets");
    if (!failure.empty()) return failure;
  }
  return check_errors(c, buckets.errors);
}

}  // namespace

std::string run_case(const CaseView& c) {
  // The check's own action wins over one inherited from its group.
  for (const YAML::Node& where : {c.own, c.group}) {
    if (!where.IsMap()) continue;
    if (where["expr"]) return run_expression_case(c);
    if (where["validate"]) return check_validate(c);
    if (where["evaluate_row"]) return check_evaluate_row(c);
    if (where["evaluate_parameter_row"]) return check_evaluate_parameter_row(c);
    if (where["request"]) return check_request(c);
  }
  return "case has no action (expr, validate, evaluate_row, evaluate_parameter_row or request)";
}

}  // namespace conformance
