// Server-log messages from C++ code of the replication worker (through pg_call, so they are safe to
// call with live C++ objects).
#pragma once

#include <string>

namespace powersync::pg {

void log_info(const std::string& message);
void log_warning(const std::string& message);

}  // namespace powersync::pg
