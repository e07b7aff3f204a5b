// Conformance runner: expression cases (`expr:`) — parse + compile + evaluate one expression with an
// optional row and request, compare the typed result or the error.
#include <algorithm>
#include <cctype>

#include "case_values.h"
#include "checks.h"
#include "powersync/rules/expression.h"

namespace conformance {
namespace {

namespace rules = powersync::rules;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::string run_expression_case(const CaseView& c) {
  const std::string text = c.get("expr").as<std::string>();
  rules::ExpressionScope scope;
  scope.allow_row_columns = true;
  scope.allow_request = c.has("request");
  scope.allow_bucket_parameters = c.has("bucket");
  if (c.has("table")) scope.row_qualifiers = {c.get("table").as<std::string>()};
  const bool expect_error = c.has("expect_error");
  const std::string error_needle = expect_error ? c.get("expect_error").as<std::string>() : std::string();

  rules::CompileResult compiled = rules::compile_expression_text(text, scope);
  if (!compiled.ok()) {
    const std::string message = compiled.error ? compiled.error->message : "compile failed";
    if (expect_error && lower(message).find(lower(error_needle)) != std::string::npos) return "";
    return "compile error: " + message;
  }
  rules::Row row;
  if (c.has("row")) row = typed_row(c.get("row"));
  rules::Row bucket;
  if (c.has("bucket")) bucket = typed_row(c.get("bucket"));
  std::unique_ptr<rules::RequestContext> request;
  if (c.has("request")) {
    const YAML::Node r = c.get("request");
    request = std::make_unique<rules::RequestContext>(r["token"] ? to_json(r["token"]) : nlohmann::json::object(),
                                                      r["params"] ? to_json(r["params"]) : nlohmann::json::object());
  }
  rules::EvalContext ctx;
  ctx.row = &row;
  ctx.request = request.get();
  ctx.bucket_parameters = c.has("bucket") ? &bucket : nullptr;
  rules::Value result;
  try {
    result = compiled.expression->evaluate(ctx);
  } catch (const std::exception& e) {
    if (expect_error && lower(e.what()).find(lower(error_needle)) != std::string::npos) return "";
    return std::string("evaluation error: ") + e.what();
  }
  if (expect_error) return "expected an error containing '" + error_needle + "', got " + describe(result);
  if (c.has("expect_type")) {
    const std::string want = lower(c.get("expect_type").as<std::string>());
    if (want != rules::sqlite_type_name(result))
      return "expected type " + want + ", got " + describe(result);
    if (!c.has("expect")) return "";
  }
  if (!c.has("expect")) return "case has no expect / expect_type / expect_error";
  rules::Value expected = typed_value(c.get("expect"));
  if (!same_value(expected, result)) return "expected " + describe(expected) + ", got " + describe(result);
  return "";
}

}  // namespace conformance
