// The non-streaming endpoints, each answering through a callback once Postgres has replied.
#pragma once

#include <functional>
#include <string>

#include "powersync/gateway/gateway.h"

namespace powersync::gateway {

using Respond = std::function<void(StringResponse)>;

void handle_write_checkpoint(Gateway& gw, unsigned version, const VerifiedToken& token, const std::string& client_id,
                             Respond respond);
void handle_checkpoint_request(Gateway& gw, unsigned version, const VerifiedToken& token, const std::string& body,
                               const std::string& query_client_id, Respond respond);
void handle_crud_upload(Gateway& gw, unsigned version, const VerifiedToken& token, const std::string& body, Respond respond);

// Query-string helpers for GET endpoints (values are percent-decoded).
std::string query_parameter(const std::string& target, const std::string& name);

}  // namespace powersync::gateway
