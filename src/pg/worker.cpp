// Background workers. The launcher (registered from _PG_init when the library is preloaded) scans
// pg_database every 10 s and starts one replication worker per connectable database; a worker whose
// database lacks the extension exits at once and is tried again at the next scan. CREATE EXTENSION and
// deploy_sync_rules also start the worker of their database right away (powersync.ensure_worker()).
// A session advisory lock keeps it to one worker per database; a crashed worker is restarted by the
// next scan and resumes from the committed state.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
extern "C" {
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/origin.h"
#include "replication/slot.h"
#include "storage/lwlock.h"
#include "storage/standby.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void powersync_launcher_main(Datum arg);
PGDLLEXPORT void powersync_replication_main(Datum arg);
}

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"
#include "powersync/pg/transaction.h"
#include "powersync/pg/worker.h"
#include "powersync/pg/worker_log.h"

namespace powersync::pg {

RepOriginId worker_origin = InvalidRepOriginId;

namespace {

constexpr long kPollMs = 5;  // flush-LSN poll interval: bounds commit -> checkpoint latency

void wait_ms(long ms) {
  pg_call([&] {
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  });
}

bool extension_exists() {
  Transaction xact;
  bool exists = spi::exec("SELECT 1 FROM pg_extension WHERE extname = 'powersync_pg'") > 0;
  spi::release();
  xact.commit();
  return exists;
}

void abort_transaction() {
  pg_call([] {
    AbortCurrentTransaction();
    MemoryContextSwitchTo(TopMemoryContext);
  });
}

void record_status(const std::string& status, const std::string& error) {
  try {
    Transaction xact;
    static spi::Statement update(
        "UPDATE powersync.replication_state SET status = $1, last_error = $2, last_error_at = now(), "
        "worker_pid = pg_backend_pid()",
        {TEXTOID, TEXTOID});
    Datum args[2] = {spi::text_datum(status), spi::text_datum(error)};
    update.run(args);
    xact.commit();
  } catch (const std::exception&) {
    abort_transaction();
  }
}

std::string slot_name() {
  Transaction xact;
  spi::exec("SELECT slot_name FROM powersync.replication_state");
  std::string name = SPI_processed ? spi::text(0, 0).value_or("") : std::string();
  spi::release();
  xact.commit();
  if (name.empty()) throw Error(Error::Kind::Internal, "powersync.replication_state has no row");
  return name;
}

bool take_worker_lock() {
  Transaction xact;
  spi::exec("SELECT pg_try_advisory_lock(1886607216, 1)");  // session lock, held while the worker lives
  bool got = spi::bool_at(0, 0);
  spi::release();
  xact.commit();
  return got;
}

// The walsender of our replication connection releases the slot a moment after we disconnect.
void drop_slot_if_unused(const std::string& slot) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    try {
      Transaction xact;
      std::string sql = "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '" +
                        slot + "' AND NOT active";
      spi::exec(sql);
      spi::exec("SELECT 1 FROM pg_replication_slots WHERE slot_name = '" + slot + "'");
      bool left = SPI_processed > 0;
      xact.commit();
      if (!left) return;
    } catch (const std::exception&) {
      abort_transaction();
    }
    wait_ms(100);
  }
}

// Stamps the worker's WAL with a replication origin of its own (named like the slot), so that logical
// decoding drops our writes to bucket_data/current_data record by record (the plugin's origin filter)
// instead of queueing and spilling them until commit and then filtering them by schema: with 3 rows
// written per source row, decoding our own WAL used to cost more than decoding the source changes.
// Without an origin (e.g. max_replication_slots exhausted) the schema filter still keeps them out.
void use_own_origin(const std::string& name) {
  static bool done = false;
  if (done) return;
  done = true;
  try {
    RepOriginId id = InvalidRepOriginId;
    {
      Transaction xact;
      id = pg_call([&] {
        RepOriginId found = replorigin_by_name(name.c_str(), true);
        return found != InvalidRepOriginId ? found : replorigin_create(name.c_str());
      });
      xact.commit();
    }
    pg_call([&] {
      replorigin_session_setup(id);
      replorigin_session_origin = id;
    });
    worker_origin = id;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    abort_transaction();
    log_warning("powersync: no replication origin for the worker (" + msg + "); its own writes are decoded and filtered");
  }
}

// The extension is gone: release the worker's origin and drop it, like the slot.
void drop_own_origin(const std::string& name) {
  if (worker_origin == InvalidRepOriginId) return;
  try {
    pg_call([] {
      replorigin_session_reset();
      replorigin_session_origin = InvalidRepOriginId;
    });
    worker_origin = InvalidRepOriginId;
    Transaction xact;
    pg_call([&] { replorigin_drop_by_name(name.c_str(), true, true); });
    xact.commit();
  } catch (const std::exception&) {
    abort_transaction();
  }
}

void replicate_forever() {
  if (wal_level < WAL_LEVEL_LOGICAL) {
    std::string msg = "wal_level is not logical: set wal_level = logical in postgresql.conf and restart the server";
    log_warning("powersync: " + msg);
    record_status("error", msg);
    for (;;) wait_ms(60000);
  }
  std::string slot = slot_name();
  use_own_origin(slot);
  long backoff_ms = 1000;
  for (;;) {
    auto replicator = std::make_unique<Replicator>(slot);
    try {
      replicator->start();
      for (;;) {
        if (ConfigReloadPending) {  // SIGHUP: e.g. powersync.evaluation_thread changed
          ConfigReloadPending = false;
          pg_call([] { ProcessConfigFile(PGC_SIGHUP); });
        }
        bool worked = replicator->round();
        worked = replicator->snapshot_step() || worked;
        if (worked) backoff_ms = 1000;
        else replicator->wait(kPollMs);
      }
    } catch (const std::exception& e) {
      std::string msg = e.what();
      abort_transaction();
      replicator.reset();  // closes the replication connection, so its walsender releases the slot
      if (!extension_exists()) {
        drop_slot_if_unused(slot);
        drop_own_origin(slot);
        log_info("powersync: extension dropped; replication worker exits");
        return;
      }
      log_warning("powersync replication error: " + msg);
      record_status("error", msg);
      wait_ms(backoff_ms);  // e.g. the walsender went away: reconnect, backing off up to 30 s
      backoff_ms = std::min(backoff_ms * 2, 30000L);
    }
  }
}

// Output functions of the decoded values depend on these; pin them whatever the database defaults are.
void pin_output_settings() {
  pg_call([] {
    SetConfigOption("DateStyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION);
    SetConfigOption("IntervalStyle", "postgres", PGC_USERSET, PGC_S_SESSION);
    SetConfigOption("extra_float_digits", "1", PGC_USERSET, PGC_S_SESSION);
    SetConfigOption("bytea_output", "hex", PGC_USERSET, PGC_S_SESSION);
    SetConfigOption("TimeZone", "UTC", PGC_USERSET, PGC_S_SESSION);
    // Decoding a large transaction spills it to disk beyond logical_decoding_work_mem (default 64MB) and
    // the peek's result tuplestore beyond work_mem; writing and re-reading those files cost the worker
    // ~10% of its time on 200k-row transactions. The worker is one process per database, so it gets more.
    SetConfigOption("logical_decoding_work_mem", "256MB", PGC_USERSET, PGC_S_SESSION);
    SetConfigOption("work_mem", "64MB", PGC_USERSET, PGC_S_SESSION);
  });
}

void run_replication_worker(bool wait_for_extension) {
  pin_output_settings();
  for (int i = 0; !extension_exists(); ++i) {
    if (!wait_for_extension || i >= 100) return;
    wait_ms(100);
  }
  if (!take_worker_lock()) return;  // another worker serves this database
  replicate_forever();
}

// Launcher: the connectable databases.
std::vector<Oid> list_databases() {
  std::vector<Oid> out;
  pg_call([&] {
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
  });
  Relation rel = pg_call([] { return table_open(DatabaseRelationId, AccessShareLock); });
  TableScanDesc scan = pg_call([&] { return table_beginscan_catalog(rel, 0, nullptr); });
  for (;;) {
    HeapTuple tup = pg_call([&] { return heap_getnext(scan, ForwardScanDirection); });
    if (!HeapTupleIsValid(tup)) break;
    Form_pg_database db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tup));
    if (db->datallowconn && !db->datistemplate) out.push_back(db->oid);
  }
  pg_call([&] {
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    PopActiveSnapshot();
    CommitTransactionCommand();
  });
  return out;
}

// A new logical slot only becomes consistent after running-xacts records that show the transactions of
// its creation time finished; the bgwriter logs those every 15 s. While one of our slots is being
// created, the launcher logs them every 100 ms instead.
bool slot_being_created() {
  bool creating = false;
  pg_call([&] {
    LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
    for (int i = 0; i < max_replication_slots; ++i) {
      ReplicationSlot* slot = &ReplicationSlotCtl->replication_slots[i];
      if (slot->in_use && slot->data.persistency == RS_EPHEMERAL &&
          strcmp(NameStr(slot->data.plugin), "powersync_pg") == 0)
        creating = true;
    }
    LWLockRelease(ReplicationSlotControlLock);
  });
  return creating;
}

}  // namespace

bool start_replication_worker(Oid database, bool wait_for_extension, BackgroundWorkerHandle** handle) {
  BackgroundWorker w;
  memset(&w, 0, sizeof w);
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = BGW_NEVER_RESTART;
  snprintf(w.bgw_library_name, BGW_MAXLEN, "powersync_pg");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "powersync_replication_main");
  snprintf(w.bgw_name, BGW_MAXLEN, "powersync replication worker for database %u", database);
  snprintf(w.bgw_type, BGW_MAXLEN, "powersync replication");
  w.bgw_main_arg = ObjectIdGetDatum(database);
  w.bgw_extra[0] = wait_for_extension ? 1 : 0;
  return pg_call([&] { return RegisterDynamicBackgroundWorker(&w, handle); });
}

void register_launcher() {
  BackgroundWorker w;
  memset(&w, 0, sizeof w);
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = 5;
  snprintf(w.bgw_library_name, BGW_MAXLEN, "powersync_pg");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "powersync_launcher_main");
  snprintf(w.bgw_name, BGW_MAXLEN, "powersync launcher");
  snprintf(w.bgw_type, BGW_MAXLEN, "powersync launcher");
  RegisterBackgroundWorker(&w);
}

}  // namespace powersync::pg

using namespace powersync::pg;

void powersync_launcher_main(Datum arg) {
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
  try {
    std::map<Oid, BackgroundWorkerHandle*> workers;  // handles live in TopMemoryContext
    for (int tick = 0;; tick = (tick + 1) % 100) {
      wait_ms(100);
      if (slot_being_created()) pg_call([] { LogStandbySnapshot(); });
      if (tick != 0) continue;
      for (Oid db : list_databases()) {
        auto it = workers.find(db);
        pid_t pid;
        if (it != workers.end() && GetBackgroundWorkerPid(it->second, &pid) != BGWH_STOPPED) continue;
        BackgroundWorkerHandle* handle = nullptr;
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        bool started = start_replication_worker(db, false, &handle);
        MemoryContextSwitchTo(old);
        if (started) workers[db] = handle;
      }
    }
  } catch (const std::exception& e) {
    std::string msg = e.what();
    log_warning("powersync launcher: " + msg);
  }
  proc_exit(1);
}

void powersync_replication_main(Datum arg) {
  Oid database = DatumGetObjectId(arg);
  bool wait_for_extension = MyBgworkerEntry->bgw_extra[0] != 0;
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
  pgstat_report_appname("powersync replication");
  int code = 0;
  try {
    run_replication_worker(wait_for_extension);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    log_warning("powersync replication worker stops: " + msg);
    code = 1;
  }
  proc_exit(code);
}
