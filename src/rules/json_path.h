// Fast JSON path lookup for ->, ->> and json_extract on row values: validates the whole text in
// one pass without building a document and locates the target value. Anything unusual (escaped
// keys, JS string indexing, very deep nesting) is reported as Fallback so the caller uses the full
// parser; results are therefore identical to json_support. Internal to src/rules.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace powersync::rules::json_path {

enum class Outcome {
  Invalid,    // the text is not valid JSON (or has duplicate keys)
  Undefined,  // a path step does not exist
  Found,      // target holds the value's JSON text (may be `null`)
  Fallback,   // not decided here: use the full parser
};

struct Lookup {
  Outcome outcome = Outcome::Fallback;
  std::string_view target;  // Found: the raw JSON text of the value, inside the input
};

// Walks `components` (already split) from the root; stops at a JSON null like the reference.
Lookup find(std::string_view text, const std::vector<std::string>& components);

}  // namespace powersync::rules::json_path
