// The body of POST /sync/stream (spec §1.2), parsed into what the state machine needs. Unknown
// fields are ignored, like the reference service.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace powersync::protocol {

struct SyncRequest {
  // Buckets the client already has, with its position (`after`), in request order.
  std::vector<std::pair<std::string, int64_t>> buckets;
  bool raw_data = true;
  std::string client_id;
  std::string parameters_json = "{}";  // client parameters as a JSON object text
};

// Parses a request body. An empty body means "no fields". Throws powersync::Error (InvalidInput)
// naming the offending field when the body is not a JSON object or a field has the wrong type.
SyncRequest parse_sync_request(std::string_view body);

// Parses a base-10 op id as sent by clients ("0".."9223372036854775807"); throws on anything else.
int64_t parse_op_id(std::string_view text, std::string_view what);

}  // namespace powersync::protocol
