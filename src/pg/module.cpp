// Library entry: module magic and _PG_init (registers the replication launcher when preloaded).
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

void _PG_init(void);
}

#include "powersync/pg/evaluation_thread.h"
#include "powersync/pg/worker.h"

namespace powersync::pg {
bool library_preloaded = false;
}

void _PG_init(void) {
  powersync::pg::install_drop_database_hook();
  powersync::pg::define_evaluation_thread_setting();
  if (process_shared_preload_libraries_in_progress) {
    powersync::pg::library_preloaded = true;
    powersync::pg::register_launcher();
  }
}
