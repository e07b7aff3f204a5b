// BSON sync streams (spec §1.3): sync lines as back-to-back BSON documents. Data lines are encoded
// directly; other lines are NDJSON re-encoded in one streaming pass (nlohmann's SAX parser feeding
// a BSON writer), without building a JSON tree.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "powersync/protocol/sync_lines.h"

namespace powersync::protocol {

// Appends one BSON document per non-empty line of `ndjson` to `out`. Keys keep their order; numbers
// are encoded as nlohmann::json::to_bson does (int32 when they fit, else int64; doubles). Throws
// std::runtime_error for a line that is not a JSON object or not representable in BSON.
void append_bson_documents(std::string& out, std::string_view ndjson);

// The raw_data `data` line of append_data_line() encoded straight to BSON from the op records
// (the bytes append_bson_documents() would give for that line, without writing and re-reading
// escaped JSON: in BSON a row's JSON text is stored as is).
void append_data_document(std::string& out, std::string_view bucket, int64_t after, bool has_more,
                          const std::vector<OpRecord>& ops, size_t begin, size_t end);

}  // namespace powersync::protocol
