// Parsing of the POST /sync/stream body (spec §1.2). Lenient where the reference service is
// (unknown fields ignored, `after` as string or number), strict where a wrong type would make the
// stream misbehave later.
#include "powersync/protocol/sync_request.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "powersync/error.h"

namespace powersync::protocol {

int64_t parse_op_id(std::string_view text, std::string_view what) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < 0) {
    throw invalid_input(std::string(what) + " must be a base-10 op id string, got \"" + std::string(text) + "\"",
                        {}, "send op ids as decimal strings between \"0\" and \"9223372036854775807\"");
  }
  return v;
}

namespace {

int64_t parse_after(const nlohmann::json& v, size_t index) {
  std::string where = "buckets[" + std::to_string(index) + "].after";
  if (v.is_null()) return 0;
  if (v.is_string()) return parse_op_id(v.get_ref<const std::string&>(), where);
  if (v.is_number_unsigned()) return static_cast<int64_t>(v.get<uint64_t>());
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return v.get<int64_t>();
  throw invalid_input(where + " must be a base-10 op id string");
}

}  // namespace

SyncRequest parse_sync_request(std::string_view body) {
  SyncRequest req;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return req;
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) throw invalid_input("the sync request body is not valid JSON");
  if (!j.is_object()) throw invalid_input("the sync request body must be a JSON object");

  if (auto it = j.find("buckets"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) throw invalid_input("\"buckets\" must be an array of {\"name\", \"after\"} objects");
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& b = (*it)[i];
      if (!b.is_object() || !b.contains("name") || !b["name"].is_string())
        throw invalid_input("buckets[" + std::to_string(i) + "] must be an object with a string \"name\"");
      req.buckets.emplace_back(b["name"].get<std::string>(), parse_after(b.value("after", nlohmann::json()), i));
    }
  }
  if (auto it = j.find("raw_data"); it != j.end()) {
    if (!it->is_boolean() && !it->is_null()) throw invalid_input("\"raw_data\" must be a boolean");
    req.raw_data = it->is_boolean() && it->get<bool>();
  } else {
    req.raw_data = false;  // absent means legacy nested rows (spec §1.4.5)
  }
  if (auto it = j.find("client_id"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw invalid_input("\"client_id\" must be a string");
    req.client_id = it->get<std::string>();
  }
  if (auto it = j.find("parameters"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) throw invalid_input("\"parameters\" must be a JSON object");
    req.parameters_json = it->dump();
  }
  return req;
}

}  // namespace powersync::protocol
