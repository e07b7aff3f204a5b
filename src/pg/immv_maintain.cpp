// The maintenance trigger of IMMVs: AFTER ... FOR EACH STATEMENT on every base table, with the
// statement's transition tables. Runs the view's stored maintenance statements (src/pg/immv_sql.cpp),
// prepared once per backend per (view, table, event, size class) and kept until the view's table is
// invalidated. UPDATEs whose view columns are byte-identical skip all SQL; UPDATEs that keep the
// structural columns run the PROPAGATE statements; everything else recomputes.
#include <algorithm>
#include <string>
#include <vector>

#include "powersync/pg/boundary.h"
#include "powersync/pg/immv.h"
#include "powersync/pg/immv_spi.h"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "catalog/pg_type.h"
#include "utils/datum.h"
#include "utils/tuplestore.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(powersync_immv_maintain);
Datum powersync_immv_maintain(PG_FUNCTION_ARGS);
}

namespace powersync::pg::immv {
namespace {

struct PlanKey {
  Oid immv;
  Oid base;
  int32 event;
  int32 large;  // statements are planned for the size of the transition tables: few rows or many
};

// Prepared maintenance statements of one (view, base table, event, size class).
struct PlanSet {
  PlanKey key;  // hash key, first
  bool valid;
  bool recheck;  // the view's table was invalidated: check it still exists before use
  int nplans;
  SPIPlanPtr* plans;  // in CacheMemoryContext
  SPIPlanPtr* lock_plans;  // in CacheMemoryContext: per plan, its pre-lock statement or nullptr
  SPIPlanPtr* fallback_plans;  // in CacheMemoryContext: per plan, its full recompute or nullptr
  int ncompared;
  AttrNumber* compared;    // in CacheMemoryContext: columns whose change matters (see immv_bases)
  int nstructural;
  AttrNumber* structural;  // in CacheMemoryContext: columns whose change needs a recompute
};

// Pseudo event of UPDATEs that changed value columns only (statements stored as 'PROPAGATE').
constexpr int32 kPropagate = 0x1000;

HTAB* plan_cache = nullptr;

// The stored SQL of a view never changes (a new definition is a new table), and the saved plans
// revalidate themselves when a table's definition or statistics change (plancache: a re-plan, not a
// re-parse). So an invalidation of the view's table (VACUUM and ANALYZE send them too) only makes
// the next use check that the view still exists; base-table invalidations are the plancache's.
void forget_plans(Datum, Oid relid) {
  if (!plan_cache) return;
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, plan_cache);
  while (auto* set = (PlanSet*)hash_seq_search(&status))
    if (relid == InvalidOid || set->key.immv == relid) set->recheck = true;
}

// Whether a cached set may be used: after an invalidation, only if its view still exists.
bool still_valid(PlanSet* set) {
  if (!set->valid) return false;
  if (set->recheck) {
    Oid immv = set->key.immv;
    set->valid = pg_call([&] { return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(immv)); });
    set->recheck = false;
  }
  return set->valid;
}

void init_cache() {
  if (plan_cache) return;
  pg_call([] {
    HASHCTL ctl;
    memset(&ctl, 0, sizeof(ctl));
    ctl.keysize = sizeof(PlanKey);
    ctl.entrysize = sizeof(PlanSet);
    ctl.hcxt = CacheMemoryContext;
    plan_cache = hash_create("powersync IMMV plans", 32, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    CacheRegisterRelcacheCallback(forget_plans, (Datum)0);
  });
}

const char* event_name(int32 event) {
  if (event & kPropagate) return "PROPAGATE";
  if (TRIGGER_FIRED_BY_INSERT(event)) return "INSERT";
  if (TRIGGER_FIRED_BY_UPDATE(event)) return "UPDATE";
  if (TRIGGER_FIRED_BY_DELETE(event)) return "DELETE";
  return "TRUNCATE";
}

// "3,1,5" -> attribute numbers in CacheMemoryContext.
AttrNumber* attnum_array(const std::string& list, int& count) {
  std::vector<AttrNumber> attnums;
  for (size_t pos = 0; pos < list.size();) {
    size_t comma = list.find(',', pos);
    attnums.push_back((AttrNumber)std::stoi(list.substr(pos, comma - pos)));
    pos = comma == std::string::npos ? list.size() : comma + 1;
  }
  count = (int)attnums.size();
  if (attnums.empty()) return nullptr;
  auto* out = (AttrNumber*)pg_call([&] { return MemoryContextAlloc(CacheMemoryContext, sizeof(AttrNumber) * attnums.size()); });
  std::copy(attnums.begin(), attnums.end(), out);
  return out;
}

// The valid cached statements of a key, or nullptr.
PlanSet* cached_plans(Oid immv, Oid base, int32 event, bool large) {
  if (!plan_cache) return nullptr;
  PlanKey key{immv, base, event, large};
  auto* set = (PlanSet*)pg_call([&] { return hash_search(plan_cache, &key, HASH_FIND, nullptr); });
  return set && still_valid(set) ? set : nullptr;
}

// Loads and prepares the statements (the caller registered the transition tables they refer to).
PlanSet* plans_for(Oid immv, Oid base, int32 event, bool large) {
  init_cache();
  PlanKey key{immv, base, event, large};
  bool found = false;
  PlanSet* set = (PlanSet*)pg_call([&] { return hash_search(plan_cache, &key, HASH_ENTER, &found); });
  if (found && still_valid(set)) return set;
  if (found && set->plans) {
    pg_call([&] {
      for (int i = 0; i < set->nplans; ++i) {
        SPI_freeplan(set->plans[i]);
        if (set->lock_plans[i]) SPI_freeplan(set->lock_plans[i]);
        if (set->fallback_plans[i]) SPI_freeplan(set->fallback_plans[i]);
      }
      pfree(set->plans);
      pfree(set->lock_plans);
      pfree(set->fallback_plans);
    });
  }
  if (found && set->compared) pg_call([&] { pfree(set->compared); });
  if (found && set->structural) pg_call([&] { pfree(set->structural); });
  set->valid = set->recheck = false;
  set->nplans = set->ncompared = set->nstructural = 0;
  set->plans = set->lock_plans = set->fallback_plans = nullptr;
  set->compared = set->structural = nullptr;

  std::string where = " FROM powersync.immv_bases WHERE immv = " + std::to_string(immv) + "::oid AND base = " + std::to_string(base) + "::oid";
  set->compared = attnum_array(query_one("SELECT array_to_string(compared, ',')" + where), set->ncompared);
  set->structural = attnum_array(query_one("SELECT array_to_string(structural, ',')" + where), set->nstructural);

  std::string sql = "SELECT sql, lock_sql, fallback_sql FROM powersync.immv_statements WHERE immv = " + std::to_string(immv) +
                    "::oid AND base = " + std::to_string(base) + "::oid AND event = '" + event_name(event) + "' ORDER BY ord";
  std::vector<std::string> stmts, locks, fallbacks;
  pg_call([&] {
    if (SPI_execute(sql.c_str(), true, 0) != SPI_OK_SELECT) elog(ERROR, "reading IMMV statements failed");
  });
  for (uint64 i = 0; i < SPI_processed; ++i) {
    stmts.emplace_back(pg_call([&] { return SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1); }));
    const char* lock = pg_call([&] { return SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2); });
    locks.emplace_back(lock ? lock : "");
    const char* fallback = pg_call([&] { return SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3); });
    fallbacks.emplace_back(fallback ? fallback : "");
  }
  if (stmts.empty() && (event & kPropagate)) {  // this table's UPDATEs always recompute
    set->valid = true;
    return set;
  }
  if (stmts.empty())
    throw Error(Error::Kind::Internal, "IMMV with oid " + std::to_string(immv) + " has no maintenance statements for " +
                                           event_name(event) + " on table oid " + std::to_string(base),
                {}, "Drop the IMMV with powersync.drop_immv() and create it again.");
  set->plans = (SPIPlanPtr*)pg_call([&] { return MemoryContextAllocZero(CacheMemoryContext, sizeof(SPIPlanPtr) * stmts.size()); });
  set->lock_plans = (SPIPlanPtr*)pg_call([&] { return MemoryContextAllocZero(CacheMemoryContext, sizeof(SPIPlanPtr) * stmts.size()); });
  set->fallback_plans = (SPIPlanPtr*)pg_call([&] { return MemoryContextAllocZero(CacheMemoryContext, sizeof(SPIPlanPtr) * stmts.size()); });
  auto prepare = [](const std::string& text, int nargs) {
    return pg_call([&] {
      Oid keys_type = INT4ARRAYOID;
      SPIPlanPtr p = SPI_prepare(text.c_str(), nargs, &keys_type);
      if (!p) elog(ERROR, "preparing IMMV maintenance failed: %s", SPI_result_code_string(SPI_result));
      SPI_keepplan(p);
      return p;
    });
  };
  for (size_t i = 0; i < stmts.size(); ++i) {
    set->plans[i] = prepare(stmts[i], locks[i].empty() ? 0 : 1);
    if (!locks[i].empty()) set->lock_plans[i] = prepare(locks[i], 0);
    if (!fallbacks[i].empty()) set->fallback_plans[i] = prepare(fallbacks[i], locks[i].empty() ? 0 : 1);
    set->nplans++;
  }
  set->valid = true;
  return set;
}

// Maintenance reads the latest committed state (plus this transaction's own changes), also under
// REPEATABLE READ and SERIALIZABLE: after waiting for a concurrent writer's row lock it must see
// what that writer committed, or the view would keep stale rows. A statement reports itself stale
// when one of its locks waited for such a writer; it then runs again with a newer snapshot.
// A statement with advisory keys first runs its pre-lock statement, which takes them, and gets
// them as $1: its own snapshot is then taken after every earlier holder of a key committed.
// Returns true when the statement asks for its full recompute instead (third column).
bool run_until_current(SPIPlanPtr plan, SPIPlanPtr lock_plan) {
  for (int attempt = 1;; ++attempt) {
    Datum keys = (Datum)0;
    char keys_null = 'n';
    if (lock_plan)
      pg_call([&] {
        int rc = SPI_execute_snapshot(lock_plan, nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, false, false, 0);
        if (rc < 0 || SPI_processed != 1) elog(ERROR, "IMMV maintenance lock statement failed: %s", SPI_result_code_string(rc));
        bool isnull = true;
        Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
        if (!isnull) {
          keys = datumCopy(d, false, -1);
          keys_null = ' ';
        }
      });
    bool fallback = false;
    bool stale = pg_call([&] {
      int rc = SPI_execute_snapshot(plan, lock_plan ? &keys : nullptr, lock_plan ? &keys_null : nullptr, GetLatestSnapshot(),
                                    InvalidSnapshot, false, true, 0);
      if (rc < 0) elog(ERROR, "IMMV maintenance statement failed: %s", SPI_result_code_string(rc));
      auto flag = [&](int column) {
        bool isnull = true;
        Datum d = SPI_processed == 1 && SPI_tuptable->tupdesc->natts >= column
                      ? SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull)
                      : (Datum)0;
        return !isnull && DatumGetBool(d);
      };
      fallback = flag(3);
      return flag(2);
    });
    if (!stale) return fallback;
    if (attempt == 10)
      pg_call([] {
        ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                        errmsg("IMMV maintenance kept conflicting with concurrent writers"),
                        errhint("Retry the transaction.")));
      });
  }
}

// Runs maintenance as the view's owner, whoever changed the base table.
class AsOwner {
 public:
  explicit AsOwner(Oid immv) : exceptions_(std::uncaught_exceptions()) {
    Oid owner = pg_call([&] {
      HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(immv));
      if (!HeapTupleIsValid(tup))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("IMMV with oid %u no longer exists", immv)));
      Oid o = ((Form_pg_class)GETSTRUCT(tup))->relowner;
      ReleaseSysCache(tup);
      return o;
    });
    GetUserIdAndSecContext(&saved_user_, &saved_context_);
    SetUserIdAndSecContext(owner, saved_context_ | SECURITY_LOCAL_USERID_CHANGE);
  }
  ~AsOwner() {
    if (std::uncaught_exceptions() == exceptions_) SetUserIdAndSecContext(saved_user_, saved_context_);
  }

 private:
  int exceptions_;
  Oid saved_user_ = InvalidOid;
  int saved_context_ = 0;
};

// True when every row an UPDATE changed is byte-for-byte the same on the columns the view
// depends on. The transition tables hold the old and new images in the same order; comparing
// row i with row i is exact because the key is among the compared columns.
bool columns_unchanged(TriggerData* td, const AttrNumber* columns, int ncolumns) {
  if (ncolumns == 0) return false;
  return pg_call([&] {
    Tuplestorestate* olds = td->tg_oldtable;
    Tuplestorestate* news = td->tg_newtable;
    if (tuplestore_tuple_count(olds) != tuplestore_tuple_count(news)) return false;
    TupleDesc desc = RelationGetDescr(td->tg_relation);
    TupleTableSlot* a = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
    TupleTableSlot* b = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
    int read_old = tuplestore_alloc_read_pointer(olds, EXEC_FLAG_REWIND);
    int read_new = tuplestore_alloc_read_pointer(news, EXEC_FLAG_REWIND);
    tuplestore_select_read_pointer(olds, read_old);
    tuplestore_rescan(olds);
    tuplestore_select_read_pointer(news, read_new);
    tuplestore_rescan(news);
    bool same = true;
    while (same && tuplestore_gettupleslot(olds, true, false, a)) {
      if (!tuplestore_gettupleslot(news, true, false, b)) {
        same = false;
        break;
      }
      for (int i = 0; same && i < ncolumns; ++i) {
        AttrNumber att = columns[i];
        bool null_a, null_b;
        Datum va = slot_getattr(a, att, &null_a);
        Datum vb = slot_getattr(b, att, &null_b);
        Form_pg_attribute form = TupleDescAttr(desc, att - 1);
        same = null_a == null_b && (null_a || datumIsEqual(va, vb, form->attbyval, form->attlen));
      }
    }
    ExecDropSingleTupleTableSlot(a);
    ExecDropSingleTupleTableSlot(b);
    return same;
  });
}

// Statements touching more rows than this get their own plans (planned with big transition tables).
constexpr int64 kLargeStatementRows = 100;

void maintain(TriggerData* td) {
  if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) || td->tg_trigger->tgnargs < 1)
    throw invalid_input("powersync.immv_maintain() must be an AFTER ... FOR EACH STATEMENT trigger created by create_immv()");
  Oid immv = (Oid)std::stoul(td->tg_trigger->tgargs[0]);
  Oid base = RelationGetRelid(td->tg_relation);
  int32 event = td->tg_event & TRIGGER_EVENT_OPMASK;
  int64 rows = 0;
  if (td->tg_oldtable) rows = std::max<int64>(rows, pg_call([&] { return tuplestore_tuple_count(td->tg_oldtable); }));
  if (td->tg_newtable) rows = std::max<int64>(rows, pg_call([&] { return tuplestore_tuple_count(td->tg_newtable); }));
  if (rows == 0 && !TRIGGER_FIRED_BY_TRUNCATE(td->tg_event)) return;  // the statement changed no row
  bool large = rows > kLargeStatementRows;
  if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {  // the common no-op, decided without SPI when cached
    PlanSet* cached = cached_plans(immv, base, event, large);
    if (cached && columns_unchanged(td, cached->compared, cached->ncompared)) return;
  }
  AsOwner owner(immv);
  SpiConnection spi;
  pg_call([&] {
    if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER) elog(ERROR, "registering transition tables failed");
  });
  PlanSet* set = plans_for(immv, base, event, large);
  if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
    if (columns_unchanged(td, set->compared, set->ncompared)) return;  // nothing the view reads changed
    if (columns_unchanged(td, set->structural, set->nstructural)) {
      PlanSet* propagate = plans_for(immv, base, event | kPropagate, large);
      if (propagate->nplans > 0) set = propagate;  // else this table's UPDATEs always recompute
    }
  }
  MaintenanceScope writing;
  for (int i = 0; i < set->nplans; ++i) {
    SPIPlanPtr lock = set->lock_plans ? set->lock_plans[i] : nullptr;
    if (run_until_current(set->plans[i], lock) && set->fallback_plans && set->fallback_plans[i])
      run_until_current(set->fallback_plans[i], lock);
  }
}

}  // namespace
}  // namespace powersync::pg::immv

Datum powersync_immv_maintain(PG_FUNCTION_ARGS) {
  return powersync::pg::pg_entry([&]() -> Datum {
    if (!CALLED_AS_TRIGGER(fcinfo)) throw powersync::invalid_input("powersync.immv_maintain() must be called as a trigger");
    powersync::pg::immv::maintain((TriggerData*)fcinfo->context);
    return PointerGetDatum(nullptr);
  });
}
