// Server-log messages from the replication worker's C++ code (see worker_log.h).
#include "powersync/pg/worker_log.h"

#include "powersync/pg/boundary.h"

namespace powersync::pg {

void log_info(const std::string& message) {
  const char* m = message.c_str();
  pg_call([&] { elog(LOG, "%s", m); });
}

void log_warning(const std::string& message) {
  const char* m = message.c_str();
  pg_call([&] { elog(WARNING, "%s", m); });
}

}  // namespace powersync::pg
