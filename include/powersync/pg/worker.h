// Starting the background workers (src/pg/worker.cpp): the launcher registered at preload time, and the
// per-database replication worker started by the launcher, CREATE EXTENSION and deploy_sync_rules.
#pragma once

extern "C" {
#include "postgres.h"
#include "postmaster/bgworker.h"
#include "replication/origin.h"
}

namespace powersync::pg {

// Registers the launcher; only valid while shared_preload_libraries are being loaded.
void register_launcher();

// Starts a replication worker for `database`; with wait_for_extension it waits up to 10 s for the
// extension to become visible (CREATE EXTENSION not committed yet). False if no worker slot was free.
bool start_replication_worker(Oid database, bool wait_for_extension, BackgroundWorkerHandle** handle);

// Makes DROP DATABASE stop that database's replication worker first (src/pg/drop_database.cpp).
void install_drop_database_hook();

// True when the library was loaded through shared_preload_libraries (set by _PG_init).
extern bool library_preloaded;

// The replication origin stamped on the replication worker's own transactions (InvalidRepOriginId in
// every other process); the output plugin drops changes of this origin while decoding.
extern RepOriginId worker_origin;

}  // namespace powersync::pg
