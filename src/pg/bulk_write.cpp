// Direct heap/index access for the replication worker (see bulk_write.h): the op log, current_data and
// lookups are written with table_multi_insert + ExecInsertIndexTuples, the way COPY does it, instead of
// `INSERT ... SELECT unnest(...)` through SPI.
#include "powersync/pg/bulk_write.h"

extern "C" {
#include "access/heapam.h"
#include "access/hio.h"
#include "access/tableam.h"
#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "storage/bufmgr.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/relcache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

#include "powersync/pg/boundary.h"

namespace powersync::pg::bulk {
namespace {

constexpr int kSlots = 1000;  // rows per table_multi_insert call

// An open powersync table with its indexes, as the executor would set it up for INSERT/UPDATE.
struct OpenTable {
  Relation rel;
  EState* estate;
  ResultRelInfo* info;
};

Relation open_relation(const char* table, LOCKMODE lock) {
  return table_openrv(makeRangeVar(const_cast<char*>("powersync"), const_cast<char*>(table), -1), lock);
}

OpenTable open_table(const char* table, int columns) {
  // SPI statements of this command (a TRUNCATE's DELETE, bucket_state) must be visible to what follows.
  CommandCounterIncrement();
  OpenTable t;
  t.rel = open_relation(table, RowExclusiveLock);
  if (RelationGetDescr(t.rel)->natts != columns)
    elog(ERROR, "powersync.%s has %d columns, the replication worker writes %d: reinstall the extension", table,
         RelationGetDescr(t.rel)->natts, columns);
  t.estate = CreateExecutorState();
  t.info = makeNode(ResultRelInfo);
  InitResultRelInfo(t.info, t.rel, 0, nullptr, 0);  // no range table: nothing asks for one
  ExecOpenIndices(t.info, false);
  return t;
}

void close_table(OpenTable& t) {
  ExecCloseIndices(t.info);
  FreeExecutorState(t.estate);
  table_close(t.rel, NoLock);  // the lock is held until the end of the transaction
  // Later commands of this transaction (SPI statements, probes) must see what was written.
  CommandCounterIncrement();
}

// update = false also for updates: it is only a hint for bottom-up index deletion, and answering it
// would need a range table entry.
void insert_index_entries(OpenTable& t, TupleTableSlot* slot) {
  if (t.info->ri_NumIndices == 0) return;
  ExprContext* econtext = GetPerTupleExprContext(t.estate);
  econtext->ecxt_scantuple = slot;
  List* recheck = ExecInsertIndexTuples(t.info, slot, t.estate, false, false, nullptr, NIL);
  list_free(recheck);
  ResetPerTupleExprContext(t.estate);
}

// Rows are built in a context reset after every chunk, so a large flush does not hold them all at once.
void insert_chunks(OpenTable& t, size_t n, RowSource& rows) {
  TupleTableSlot* slots[kSlots];
  int nslots = static_cast<int>(n < static_cast<size_t>(kSlots) ? n : kSlots);
  for (int i = 0; i < nslots; ++i) slots[i] = table_slot_create(t.rel, nullptr);
  MemoryContext chunk_ctx = AllocSetContextCreate(CurrentMemoryContext, "powersync bulk rows", ALLOCSET_DEFAULT_SIZES);
  // A bulk-insert state keeps the target page pinned between rows; without its ring strategy, so the
  // new pages stay in shared buffers for the readers of the op log.
  BulkInsertState bistate = GetBulkInsertState();
  FreeAccessStrategy(bistate->strategy);
  bistate->strategy = nullptr;
  CommandId cid = GetCurrentCommandId(true);
  for (size_t done = 0; done < n;) {
    int count = static_cast<int>(n - done < static_cast<size_t>(nslots) ? n - done : nslots);
    MemoryContext old = MemoryContextSwitchTo(chunk_ctx);
    for (int i = 0; i < count; ++i) {
      TupleTableSlot* s = slots[i];
      ExecClearTuple(s);
      rows.fill(done + i, s->tts_values, s->tts_isnull);
      ExecStoreVirtualTuple(s);
    }
    table_multi_insert(t.rel, slots, count, cid, 0, bistate);
    for (int i = 0; i < count; ++i) insert_index_entries(t, slots[i]);
    MemoryContextSwitchTo(old);
    for (int i = 0; i < count; ++i) ExecClearTuple(slots[i]);
    MemoryContextReset(chunk_ctx);
    done += count;
  }
  FreeBulkInsertState(bistate);
  MemoryContextDelete(chunk_ctx);
  for (int i = 0; i < nslots; ++i) ExecDropSingleTupleTableSlot(slots[i]);
}

ItemPointerData unpack_tid(uint64_t packed) {
  ItemPointerData tid;
  ItemPointerSet(&tid, static_cast<BlockNumber>(packed >> 16), static_cast<OffsetNumber>(packed & 0xffff));
  return tid;
}

}  // namespace

uint64_t pack_tid(const void* item_pointer) {
  const ItemPointerData* tid = static_cast<const ItemPointerData*>(item_pointer);
  return (static_cast<uint64_t>(ItemPointerGetBlockNumberNoCheck(tid)) << 16) | ItemPointerGetOffsetNumberNoCheck(tid);
}

void insert_rows(const char* table, int columns, size_t n, RowSource& rows) {
  if (n == 0) return;
  pg_call([&] {
    OpenTable t = open_table(table, columns);
    insert_chunks(t, n, rows);
    close_table(t);
  });
}

void update_rows(const char* table, int columns, size_t n, const uint64_t* tids, RowSource& rows) {
  if (n == 0) return;
  pg_call([&] {
    OpenTable t = open_table(table, columns);
    TupleTableSlot* slot = table_slot_create(t.rel, nullptr);
    MemoryContext row_ctx = AllocSetContextCreate(CurrentMemoryContext, "powersync bulk update", ALLOCSET_DEFAULT_SIZES);
    Snapshot snapshot = GetActiveSnapshot();
    for (size_t i = 0; i < n; ++i) {
      MemoryContext old = MemoryContextSwitchTo(row_ctx);
      ExecClearTuple(slot);
      rows.fill(i, slot->tts_values, slot->tts_isnull);
      ExecStoreVirtualTuple(slot);
      ItemPointerData tid = unpack_tid(tids[i]);
      bool update_indexes = false;
      simple_table_tuple_update(t.rel, &tid, slot, snapshot, &update_indexes);
      if (update_indexes) insert_index_entries(t, slot);
      MemoryContextSwitchTo(old);
      ExecClearTuple(slot);
      MemoryContextReset(row_ctx);
    }
    MemoryContextDelete(row_ctx);
    ExecDropSingleTupleTableSlot(slot);
    close_table(t);
  });
}

void delete_rows(const char* table, size_t n, const uint64_t* tids) {
  if (n == 0) return;
  pg_call([&] {
    CommandCounterIncrement();
    Relation rel = open_relation(table, RowExclusiveLock);
    Snapshot snapshot = GetActiveSnapshot();
    for (size_t i = 0; i < n; ++i) {
      ItemPointerData tid = unpack_tid(tids[i]);
      simple_table_tuple_delete(rel, &tid, snapshot);
    }
    table_close(rel, NoLock);
    CommandCounterIncrement();
  });
}

size_t probe_current_data(size_t n, const int32_t* table_ids, const char* const* keys, const size_t* key_lengths,
                          FoundRow** found) {
  *found = nullptr;
  if (n == 0) return 0;
  return pg_call([&]() -> size_t {
    CommandCounterIncrement();  // see rows written by SPI statements of the current command too
    Relation heap = open_relation("current_data", AccessShareLock);
    if (RelationGetDescr(heap)->natts != 5) elog(ERROR, "powersync.current_data does not have the expected 5 columns");
    Oid pk = RelationGetPrimaryKeyIndex(heap);
    if (!OidIsValid(pk)) elog(ERROR, "powersync.current_data has no primary key");
    Relation index = index_open(pk, AccessShareLock);
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    IndexScanDesc scan = index_beginscan(heap, index, snapshot, 2, 0);
    TupleTableSlot* slot = table_slot_create(heap, nullptr);
    FoundRow* out = static_cast<FoundRow*>(palloc(n * sizeof(FoundRow)));
    size_t m = 0;
    for (size_t i = 0; i < n; ++i) {
      bytea* key = static_cast<bytea*>(palloc(key_lengths[i] + VARHDRSZ));
      SET_VARSIZE(key, key_lengths[i] + VARHDRSZ);
      memcpy(VARDATA(key), keys[i], key_lengths[i]);
      ScanKeyData sk[2];
      ScanKeyInit(&sk[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(table_ids[i]));
      ScanKeyInit(&sk[1], 2, BTEqualStrategyNumber, F_BYTEAEQ, PointerGetDatum(key));
      index_rescan(scan, sk, 2, nullptr, 0);
      if (index_getnext_slot(scan, ForwardScanDirection, slot)) {
        slot_getallattrs(slot);
        FoundRow& r = out[m++];
        r.key = i;
        r.tid = pack_tid(&slot->tts_tid);
        for (int c = 0; c < 5; ++c) {
          r.nulls[c] = slot->tts_isnull[c];
          r.values[c] = slot->tts_isnull[c] || c == 0 ? slot->tts_values[c]
                                                       : PointerGetDatum(PG_DETOAST_DATUM_COPY(slot->tts_values[c]));
        }
        ExecClearTuple(slot);
      }
      pfree(key);
    }
    index_endscan(scan);
    ExecDropSingleTupleTableSlot(slot);
    UnregisterSnapshot(snapshot);
    index_close(index, NoLock);
    table_close(heap, NoLock);
    *found = out;
    return m;
  });
}

}  // namespace powersync::pg::bulk
