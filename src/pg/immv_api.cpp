// SQL API of IMMVs: powersync.create_immv / refresh_immv / drop_immv and the write guard that keeps
// everyone but the maintenance code from changing a view's table.
#include "powersync/pg/immv.h"

#include <algorithm>
#include <set>

#include "powersync/pg/boundary.h"
#include "powersync/pg/immv_spi.h"

extern "C" {
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(powersync_create_immv);
PG_FUNCTION_INFO_V1(powersync_refresh_immv);
PG_FUNCTION_INFO_V1(powersync_drop_immv);
PG_FUNCTION_INFO_V1(powersync_immv_guard);
Datum powersync_create_immv(PG_FUNCTION_ARGS);
Datum powersync_refresh_immv(PG_FUNCTION_ARGS);
Datum powersync_drop_immv(PG_FUNCTION_ARGS);
Datum powersync_immv_guard(PG_FUNCTION_ARGS);
}

namespace powersync::pg::immv {

// ---- the maintenance flag ----------------------------------------------------------------------
namespace {
int maintenance_depth = 0;
void reset_on_abort(XactEvent event, void*) {
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) maintenance_depth = 0;
}
}  // namespace

MaintenanceScope::MaintenanceScope() {
  static bool registered = false;
  if (!registered) {
    pg_call([] { RegisterXactCallback(reset_on_abort, nullptr); });
    registered = true;
  }
  ++maintenance_depth;
}
MaintenanceScope::~MaintenanceScope() { --maintenance_depth; }
bool MaintenanceScope::active() { return maintenance_depth > 0; }

namespace {

std::string text_arg(FunctionCallInfo fcinfo, int n) {
  return pg_call([&] { return text_to_cstring(PG_GETARG_TEXT_PP(n)); });
}

std::string literal(const std::string& s) { return pg_call([&] { return quote_literal_cstr(s.c_str()); }); }

// Resolves a (possibly schema-qualified) name to a relation; missing_ok returns InvalidOid.
Oid relation_named(const std::string& name, bool missing_ok) {
  return pg_call([&] {
    List* names = textToQualifiedNameList(cstring_to_text(name.c_str()));
    return RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, missing_ok);
  });
}

// The name as CREATE TABLE should see it: every part quoted (the caller's spelling is kept).
std::string creation_name(const std::string& name) {
  return pg_call([&] {
    List* names = textToQualifiedNameList(cstring_to_text(name.c_str()));
    StringInfoData buf;
    initStringInfo(&buf);
    ListCell* lc;
    foreach (lc, names) appendStringInfo(&buf, "%s%s", buf.len ? "." : "", quote_identifier(strVal(lfirst(lc))));
    return buf.data;
  });
}

std::string require_immv(const std::string& name, Oid& relid) {
  relid = relation_named(name, true);
  if (!OidIsValid(relid)) throw invalid_input("IMMV \"" + name + "\" does not exist");
  std::string immv = qualified_name(relid);
  if (query_one("SELECT 1 FROM powersync.immv_catalog WHERE immv = " + std::to_string(relid) + "::oid").empty())
    throw invalid_input("\"" + name + "\" is not an IMMV", {}, "List IMMVs with SELECT * FROM powersync.immvs.");
  return immv;
}

std::string trigger_name(Oid immv, const std::string& event) {
  std::string lower;
  for (char c : event) lower += (char)(c - 'A' + 'a');
  return "ps_immv_" + std::to_string(immv) + "_" + lower;
}

void create_triggers(const Definition& def, Oid relid, const std::string& immv) {
  spi_exec("CREATE TRIGGER ps_immv_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON " + immv +
           " FOR EACH STATEMENT EXECUTE FUNCTION powersync.immv_guard()");
  std::vector<Oid> done;
  for (auto& o : def.occurrences) {
    if (std::find(done.begin(), done.end(), o.relid) != done.end()) continue;
    done.push_back(o.relid);
    std::string arg = literal(std::to_string(relid));
    std::string tail = " FOR EACH STATEMENT EXECUTE FUNCTION powersync.immv_maintain(" + arg + ")";
    std::string on = " ON " + o.table_sql;
    spi_exec("CREATE TRIGGER " + trigger_name(relid, "INSERT") + " AFTER INSERT" + on + " REFERENCING NEW TABLE AS __ps_new" + tail);
    spi_exec("CREATE TRIGGER " + trigger_name(relid, "UPDATE") + " AFTER UPDATE" + on +
             " REFERENCING OLD TABLE AS __ps_old NEW TABLE AS __ps_new" + tail);
    spi_exec("CREATE TRIGGER " + trigger_name(relid, "DELETE") + " AFTER DELETE" + on + " REFERENCING OLD TABLE AS __ps_old" + tail);
    spi_exec("CREATE TRIGGER " + trigger_name(relid, "TRUNCATE") + " AFTER TRUNCATE" + on + tail);
  }
}

// The view depends on its base tables and on every base column it reads (so DROP TABLE / DROP
// COLUMN are refused, or cascade to the view) and on the foreign keys of enforced edges; its triggers on the base tables go with the view.
void record_dependencies(const Definition& def, Oid relid) {
  std::vector<Oid> done;
  for (auto& o : def.occurrences) {
    Oid base = o.relid;
    bool first = std::find(done.begin(), done.end(), base) == done.end();
    done.push_back(base);
    if (first)
      pg_call([&] {
        ObjectAddress view = {RelationRelationId, relid, 0};
        ObjectAddress table = {RelationRelationId, base, 0};
        recordDependencyOn(&view, &table, DEPENDENCY_NORMAL);
      });
    for (AttrNumber attno : o.used_attnums)
      pg_call([&] {
        ObjectAddress view = {RelationRelationId, relid, 0};
        ObjectAddress column = {RelationRelationId, base, (int32)attno};
        recordDependencyOn(&view, &column, DEPENDENCY_NORMAL);
      });
    for (const char* event : {"INSERT", "UPDATE", "DELETE", "TRUNCATE"}) {
      if (!first) break;
      std::string tg = trigger_name(relid, event);
      pg_call([&] {
        Oid trigger = get_trigger_oid(base, tg.c_str(), false);
        ObjectAddress trig = {TriggerRelationId, trigger, 0};
        ObjectAddress view = {RelationRelationId, relid, 0};
        recordDependencyOn(&trig, &view, DEPENDENCY_AUTO);
      });
    }
  }
  // Foreign keys the maintenance relies on instead of advisory locks cannot go away underneath it.
  for (Oid con : def.relied_constraints)
    pg_call([&] {
      ObjectAddress view = {RelationRelationId, relid, 0};
      ObjectAddress constraint = {ConstraintRelationId, con, 0};
      recordDependencyOn(&view, &constraint, DEPENDENCY_NORMAL);
    });
}

void store_catalog(const Definition& def, Oid relid, const std::string& immv) {
  std::string base_array;
  for (auto& o : def.occurrences) {
    std::string id = std::to_string(o.relid);
    if (("," + base_array + ",").find("," + id + ",") == std::string::npos) base_array += (base_array.empty() ? "" : ",") + id;
  }
  spi_exec("INSERT INTO powersync.immv_catalog (immv, definition, base_tables, refresh_sql, source_sql) VALUES (" +
           std::to_string(relid) + "::oid, " + literal(def.definition_sql) + ", '{" + base_array + "}'::oid[]::regclass[], " +
           literal(refresh_sql(def, immv)) + ", " + literal(def.source_sql) + ")");
  for (auto& o : def.occurrences) {
    std::set<AttrNumber> compared(o.pk_attnums.begin(), o.pk_attnums.end()), structural;
    for (auto& other : def.occurrences) {
      if (other.relid != o.relid) continue;
      compared.insert(other.used_attnums.begin(), other.used_attnums.end());
      structural.insert(other.structural_attnums.begin(), other.structural_attnums.end());
    }
    auto array = [](const std::set<AttrNumber>& cols) {
      std::string list;
      for (AttrNumber a : cols) list += (list.empty() ? "" : ",") + std::to_string(a);
      return "'{" + list + "}'";
    };
    spi_exec("INSERT INTO powersync.immv_bases VALUES (" + std::to_string(relid) + "::oid, " + std::to_string(o.relid) +
             "::oid, " + array(compared) + ", " + array(structural) + ") ON CONFLICT DO NOTHING");
  }
  for (auto& ts : trigger_sql(def, immv)) {
    for (size_t i = 0; i < ts.apply_sql.size(); ++i)
      spi_exec("INSERT INTO powersync.immv_statements VALUES (" + std::to_string(relid) + "::oid, " + std::to_string(ts.base) +
               "::oid, " + literal(ts.event) + ", " + std::to_string(i + 1) + ", " + literal(ts.apply_sql[i]) + ", " +
               (i < ts.lock_sql.size() && !ts.lock_sql[i].empty() ? literal(ts.lock_sql[i]) : std::string("NULL")) + ", " +
               (i < ts.fallback_sql.size() && !ts.fallback_sql[i].empty() ? literal(ts.fallback_sql[i]) : std::string("NULL")) + ")");
  }
}

int64 create(const std::string& name, const std::string& query) {
  if (OidIsValid(relation_named(name, true)))
    throw invalid_input("cannot create IMMV \"" + name + "\": a relation with that name already exists",
                        {}, "Choose another name.");
  Definition def = analyse_view_query(query);
  SpiConnection spi;
  assign_lock_ranks(def);
  spi_exec(create_table_sql(def, creation_name(name)));
  Oid relid = relation_named(name, false);
  def.immv = relid;
  std::string immv = qualified_name(relid);
  for (auto& sql : create_index_sql(def, immv)) spi_exec(sql);
  spi_exec("COMMENT ON TABLE " + immv + " IS " + literal("IMMV maintained by powersync_pg (powersync.immvs): " + def.definition_sql));
  // Triggers first: creating them locks the base tables against writers until we commit, so the
  // rows copied below cannot miss a concurrent change.
  create_triggers(def, relid, immv);
  store_catalog(def, relid, immv);
  record_dependencies(def, relid);
  MaintenanceScope writing;
  return (int64)spi_exec(populate_sql(def, immv));
}

int64 refresh(const std::string& name) {
  SpiConnection spi;
  Oid relid;
  std::string immv = require_immv(name, relid);
  std::string bases = query_one("SELECT string_agg(b::text, ', ') FROM powersync.immv_catalog, unnest(base_tables) b WHERE immv = " +
                                std::to_string(relid) + "::oid");
  // SHARE mode waits for running writers and holds new ones off: the recompute sees a stable state.
  spi_exec("LOCK TABLE " + bases + " IN SHARE MODE");
  spi_exec("LOCK TABLE " + immv + " IN EXCLUSIVE MODE");
  std::string sql = query_one("SELECT refresh_sql FROM powersync.immv_catalog WHERE immv = " + std::to_string(relid) + "::oid");
  MaintenanceScope writing;
  return std::stoll(query_one(sql));
}

void drop(const std::string& name) {
  SpiConnection spi;
  Oid relid;
  std::string immv = require_immv(name, relid);
  spi_exec("DELETE FROM powersync.immv_catalog WHERE immv = " + std::to_string(relid) + "::oid");
  spi_exec("DROP TABLE " + immv);
}

const char* operation(TriggerEvent event) {
  if (TRIGGER_FIRED_BY_INSERT(event)) return "INSERT into";
  if (TRIGGER_FIRED_BY_UPDATE(event)) return "UPDATE";
  if (TRIGGER_FIRED_BY_DELETE(event)) return "DELETE from";
  return "TRUNCATE";
}

}  // namespace
}  // namespace powersync::pg::immv

using namespace powersync::pg;

Datum powersync_create_immv(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum { return Int64GetDatum(immv::create(immv::text_arg(fcinfo, 0), immv::text_arg(fcinfo, 1))); });
}

Datum powersync_refresh_immv(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum { return Int64GetDatum(immv::refresh(immv::text_arg(fcinfo, 0))); });
}

Datum powersync_drop_immv(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    immv::drop(immv::text_arg(fcinfo, 0));
    PG_RETURN_VOID();
  });
}

// BEFORE ... FOR EACH STATEMENT on every IMMV table: refuses any write not made by maintenance.
Datum powersync_immv_guard(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    if (!CALLED_AS_TRIGGER(fcinfo)) throw powersync::invalid_input("powersync.immv_guard() must be called as a trigger");
    if (immv::MaintenanceScope::active()) return PointerGetDatum(nullptr);
    TriggerData* td = (TriggerData*)fcinfo->context;
    pg_call([&] {
      ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                      errmsg("cannot %s \"%s\": it is an IMMV maintained from its base tables", immv::operation(td->tg_event),
                             RelationGetRelationName(td->tg_relation)),
                      errhint("Change its base tables instead; powersync.refresh_immv() recomputes it.")));
    });
    return PointerGetDatum(nullptr);
  });
}
