// DROP DATABASE waits for other sessions of the database to leave; our replication worker never would.
// This ProcessUtility hook stops the worker of the database being dropped first (its slot is then
// inactive and dropped with the database). C-style: runs inside statement processing.
extern "C" {
#include "postgres.h"

#include <signal.h>

#include "commands/dbcommands.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "tcop/utility.h"
#include "utils/backend_status.h"
}

#include "powersync/pg/worker.h"

namespace powersync::pg {
namespace {

ProcessUtility_hook_type previous_utility_hook = nullptr;

void stop_replication_worker(Oid database) {
  int n = pgstat_fetch_stat_numbackends();
  for (int i = 1; i <= n; ++i) {
    LocalPgBackendStatus* local = pgstat_fetch_stat_local_beentry(i);
    if (local == nullptr) continue;
    PgBackendStatus* be = &local->backendStatus;
    if (be->st_databaseid == database && be->st_backendType == B_BG_WORKER &&
        strcmp(be->st_appname, "powersync replication") == 0)
      kill(be->st_procpid, SIGTERM);
  }
}

void utility_hook(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                  ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
  Node* stmt = pstmt->utilityStmt;
  if (IsA(stmt, DropdbStmt)) {
    Oid database = get_database_oid(castNode(DropdbStmt, stmt)->dbname, true);
    if (OidIsValid(database)) stop_replication_worker(database);
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
