// BSON sync streams (spec §1.3): NDJSON sync lines re-encoded as back-to-back BSON documents in
// one streaming pass (nlohmann's SAX parser feeding a BSON writer), without building a JSON tree.
#pragma once

#include <string>
#include <string_view>

namespace powersync::gateway {

// Appends one BSON document per non-empty line of `ndjson` to `out`. Keys keep their order; numbers
// are encoded as nlohmann::json::to_bson does (int32 when they fit, else int64; doubles). Throws
// std::runtime_error for a line that is not a JSON object or not representable in BSON.
void append_bson_documents(std::string& out, std::string_view ndjson);

}  // namespace powersync::gateway
