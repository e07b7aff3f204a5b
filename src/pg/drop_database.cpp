// DROP DATABASE waits for other sessions of the database to leave; our replication worker never would.
// This ProcessUtility hook stops the worker of the database being dropped first and waits until its
// slot is released (dropdb refuses a database with an active slot at once, without waiting), so the
// slot is dropped with the database. C-style: runs inside statement processing.
extern "C" {
#include "postgres.h"

#include <signal.h>

#include "commands/dbcommands.h"
#include "nodes/parsenodes.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/slot.h"
#include "tcop/utility.h"
#include "utils/backend_status.h"
}

#include "powersync/pg/worker.h"

namespace powersync::pg {
namespace {

ProcessUtility_hook_type previous_utility_hook = nullptr;

// Signals the database's replication workers; returns how many were found.
int signal_replication_workers(Oid database) {
  pgstat_clear_backend_activity_snapshot();  // see workers started since the last look
  int found = 0;
  int n = pgstat_fetch_stat_numbackends();
  for (int i = 1; i <= n; ++i) {
    LocalPgBackendStatus* local = pgstat_fetch_stat_local_beentry(i);
    if (local == nullptr) continue;
    PgBackendStatus* be = &local->backendStatus;
    if (be->st_databaseid == database && be->st_backendType == B_BG_WORKER &&
        strcmp(be->st_appname, "powersync replication") == 0) {
      kill(be->st_procpid, SIGTERM);
      ++found;
    }
  }
  return found;
}

// Stops the workers and waits (up to 10 s) until no slot of the database is in use. Signals again
// on every look, in case the launcher started a worker meanwhile.
void stop_replication_workers(Oid database) {
  for (int waited_ms = 0; waited_ms < 10000; waited_ms += 20) {
    int workers = signal_replication_workers(database);
    int slots = 0, active_slots = 0;
    ReplicationSlotsCountDBSlots(database, &slots, &active_slots);
    if (workers == 0 && active_slots == 0) return;
    CHECK_FOR_INTERRUPTS();
    pg_usleep(20 * 1000L);
  }
}

void utility_hook(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                  ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
  Node* stmt = pstmt->utilityStmt;
  if (IsA(stmt, DropdbStmt)) {
    Oid database = get_database_oid(castNode(DropdbStmt, stmt)->dbname, true);
    if (OidIsValid(database)) stop_replication_workers(database);
  }
  if (previous_utility_hook)
    previous_utility_hook(pstmt, query, read_only_tree, context, params, env, dest, qc);
  else
    standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
}

}  // namespace

void install_drop_database_hook() {
  previous_utility_hook = ProcessUtility_hook;
  ProcessUtility_hook = utility_hook;
}

}  // namespace powersync::pg
