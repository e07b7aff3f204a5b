// SQL text that creates, populates, refreshes and maintains an IMMV, generated once at create time
// from its Definition and stored in the catalog (the triggers prepare it once per backend).
//
// Maintenance is a key-based recompute: the rows a statement changed in base table T (its transition
// tables, compared on the columns the view uses) give a scope of keys of an "anchor" table; every
// view row of those anchor keys is recomputed from the current base tables (index lookups) and
// diffed against the stored rows: vanished rows are deleted, changed rows updated in place, new rows
// inserted. That is correct whatever else the statement or transaction changed before. An UPDATE
// that keeps the table's structural columns instead propagates its value columns (propagate_sql).
// Concurrency (no view-wide lock): row share locks on lower-ranked partner rows, advisory locks on
// join values of new and deleted rows (not covered by a foreign key), on rows two writers can meet
// through, and on LEFT JOIN anchors, taken by a pre-lock statement before the snapshot; a statement whose row lock waited for a committed change,
// or that wrote fewer rows than planned, reports itself stale and the trigger runs it again.
#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include "powersync/pg/immv.h"

namespace powersync::pg::immv {
namespace {

std::string join(const std::vector<std::string>& parts, const std::string& sep, const std::string& prefix = {}) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + prefix + parts[i];
  return out;
}

std::string tuple(const std::vector<std::string>& cols, const std::string& prefix) {
  return "(" + join(cols, ", ", prefix) + ")";
}

std::string equal_all(const std::vector<std::string>& cols, const std::string& a, const std::string& b) {
  std::string out;
  for (size_t i = 0; i < cols.size(); ++i) out += (i ? " AND " : "") + a + cols[i] + " = " + b + cols[i];
  return out;
}

std::string equal_all_pairs(const std::vector<std::string>& a_cols, const std::vector<std::string>& b_cols,
                            const std::string& a, const std::string& b) {
  std::string out;
  for (size_t i = 0; i < a_cols.size(); ++i) out += (i ? " AND " : "") + a + a_cols[i] + " = " + b + b_cols[i];
  return out;
}

std::string distinct(const std::string& a, const std::string& b, bool as_text) {
  return as_text ? a + "::text IS DISTINCT FROM " + b + "::text" : a + " IS DISTINCT FROM " + b;
}

std::vector<std::string> key_columns(const Definition& def) {
  std::vector<std::string> keys;
  for (auto& c : def.columns)
    if (c.is_key) keys.push_back(c.name);
  return keys;
}

const Occurrence& occurrence(const Definition& def, int rtindex) {
  for (auto& o : def.occurrences)
    if (o.rtindex == rtindex) return o;
  throw std::logic_error("IMMV definition lost occurrence " + std::to_string(rtindex));
}

std::vector<std::string> numbered(const std::string& stem, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 1; i <= n; ++i) out.push_back(stem + std::to_string(i));
  return out;
}

// changed(k1..kn): primary keys of T's rows whose view-relevant columns this statement changed.
std::string changed_cte(const Occurrence& t, const std::vector<std::string>& used, const std::vector<bool>& used_text,
                        const std::string& event) {
  std::vector<std::string> k = numbered("k", t.pk_columns.size());
  std::string keys;
  for (size_t i = 0; i < k.size(); ++i) keys += (i ? ", " : "") + t.pk_columns[i] + " AS " + k[i];
  // One statement inserts or deletes a key at most once: its keys are distinct already.
  if (event == "INSERT") return "SELECT " + keys + " FROM __ps_new";
  if (event == "DELETE") return "SELECT " + keys + " FROM __ps_old";
  // UPDATE: keys of rows in the symmetric difference of old and new images, on the key and the
  // columns the view reads. Set operations hash or sort, so big statements stay linear.
  std::string image = keys;
  for (size_t i = 0; i < used.size(); ++i) image += ", " + used[i] + (used_text[i] ? "::text" : "");
  std::string knames = join(k, ", ");
  return "SELECT " + knames + " FROM (SELECT " + image + " FROM __ps_old EXCEPT SELECT " + image + " FROM __ps_new) d UNION SELECT " +
         knames + " FROM (SELECT " + image + " FROM __ps_new EXCEPT SELECT " + image + " FROM __ps_old) d";
}

// scope: keys of r's anchor whose view rows must be recomputed.
std::string scope_cte(const Definition& def, const Occurrence& r, const std::string& immv) {
  if (!r.nullable) return "SELECT * FROM changed";
  const Occurrence& a = occurrence(def, r.anchor);
  std::vector<std::string> k = numbered("c.k", r.pk_columns.size());
  return "SELECT " + join(a.stored_keys, ", ", "v.") + " FROM ONLY " + immv + " v WHERE v." + r.stored_keys[0] +
         " IN (SELECT ROW(" + join(k, ", ") + ")::text FROM changed c) UNION SELECT " + join(a.source_keys, ", ", "q.") +
         " FROM (" + def.source_sql + ") q WHERE " + tuple(r.source_keys, "q.") + " IN (SELECT * FROM changed)";
}

std::string with_scope(const Definition& def, const Occurrence& t, const Occurrence& r, const std::string& event,
                       const std::vector<std::string>& used, const std::vector<bool>& used_text, const std::string& immv) {
  return "WITH changed AS MATERIALIZED (" + changed_cte(t, used, used_text, event) + "),\n scope AS MATERIALIZED (" +
         scope_cte(def, r, immv) + ")";
}

std::string fresh_select(const Definition& def, const std::string& where, const std::vector<std::string>& extra = {}) {
  std::string cols;
  for (size_t i = 0; i < def.columns.size(); ++i)
    cols += (i ? ", " : "") + def.columns[i].source_expr + " AS " + def.columns[i].name;
  for (auto& e : extra) cols += ", q." + e;
  return "SELECT " + cols + " FROM (" + def.source_sql + ") q" + (where.empty() ? "" : " WHERE " + where);
}

// The diff of `fresh` against the stored rows matching `stored_where` (alias v), as CTEs + final
// SELECT. One full join pairs them by key; rows are then deleted, updated in place (only when a
// value differs) or inserted, addressed by ctid so no key is looked up twice.
std::string apply_diff(const Definition& def, const std::string& immv, const std::string& stored_where,
                       const std::string& gate = {}, const std::string& stale = "false") {
  std::vector<std::string> keys = key_columns(def), all, values;
  for (auto& c : def.columns) all.push_back(c.name);
  std::string set, differs;
  for (auto& c : def.columns) {
    if (c.is_key) continue;
    values.push_back(c.name);
    set += (set.empty() ? "" : ", ") + c.name + " = d." + c.name;
    differs += (differs.empty() ? "" : " OR ") + distinct("s." + c.name, "f." + c.name, c.compare_as_text);
  }
  std::string stored_cols = join(keys, ", ", "v.") + (values.empty() ? "" : ", " + join(values, ", ", "v."));
  std::string upd = set.empty() ? "SELECT 1 WHERE false"
                                : "UPDATE ONLY " + immv + " v SET " + set +
                                      " FROM diff d WHERE v.ctid = d.__ps_ctid AND NOT d.__ps_vanished AND d.__ps_differs RETURNING 1";
  return ",\n stored AS MATERIALIZED (SELECT v.ctid AS __ps_ctid, " + stored_cols + " FROM ONLY " + immv + " v" +
         (stored_where.empty() ? "" : " WHERE " + stored_where) + "),\n diff AS MATERIALIZED (SELECT s.__ps_ctid, " +
         join(all, ", ", "f.") + ", f." + keys[0] + " IS NULL AS __ps_vanished, " + (differs.empty() ? "false" : differs) +
         " AS __ps_differs FROM fresh f FULL JOIN stored s ON " + equal_all(keys, "f.", "s.") +
         (gate.empty() ? "" : " WHERE " + gate) + "),\n gone AS (DELETE FROM ONLY " +
         immv + " v USING diff d WHERE v.ctid = d.__ps_ctid AND d.__ps_vanished RETURNING 1),\n updated AS (" + upd +
         "),\n added AS (INSERT INTO " + immv + " (" + join(all, ", ") + ") SELECT " + join(all, ", ", "d.") +
         " FROM diff d WHERE d.__ps_ctid IS NULL RETURNING 1)\nSELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM updated) + "
         "(SELECT count(*) FROM added),\n " + stale +
         // Rows are addressed by ctid: under READ COMMITTED a row another transaction changed meanwhile is
         // skipped by its re-check. Fewer rows written than planned means stale: run again.
         " OR (SELECT count(*) FROM gone) <> (SELECT count(*) FROM diff WHERE __ps_vanished AND __ps_ctid IS NOT NULL)"
         " OR (SELECT count(*) FROM updated) <> (SELECT count(*) FROM diff WHERE NOT __ps_vanished AND __ps_differs AND __ps_ctid IS NOT NULL)";
}

// Locking for a change of r. Before writing the view, share-lock the rows of lower-ranked tables
// (and of r's table in its other appearances) that the changed rows combine with, so that this writer
// and a concurrent writer of one of them never both build a view row from the other's old data.
// They are found through the join equalities alone (edge_walk_sql from the changed rows' old and new
// images; filters ignored), not through the view rows: a row the filter hides now may be shown by the
// partner's concurrent change, which then reads this writer's row as it was, and a deleted or moved
// row no longer leads to its old partners through the base tables. The rows were read from the statement's snapshot: if a lock had
// to wait for a writer that then committed a change (the locked version differs from the one read, or
// the row is gone), the result is flagged stale and the caller runs the statement again.
struct Locking {
  std::string ctes;                      // lock CTEs and `lockdone`, after `fresh`
  std::string gate;                      // makes the diff wait for the locks
  std::string stale = "false";
  std::string advisory;                  // the advisory-lock CTEs alone (for the pre-lock statement)
};

// Appearances whose rows a writer of r's table must share-lock: lower-ranked tables (parents before
// children, ties broken by oid) and the other appearances of the same table.
std::vector<const Occurrence*> lockable_occurrences(const Definition& def, const Occurrence& t, const Occurrence& r) {
  std::vector<const Occurrence*> lockable;
  for (auto& o : def.occurrences) {
    if (o.rtindex == r.rtindex) continue;
    bool lower = o.lock_rank < t.lock_rank || (o.lock_rank == t.lock_rank && o.relid < t.relid);
    if (lower || o.relid == t.relid) lockable.push_back(&o);
  }
  return lockable;
}

// No filters and no LEFT JOINs: a view row holding a row exists exactly when its join partners do.
bool open_view(const Definition& def) {
  for (auto& o : def.occurrences)
    if (o.nullable) return false;
  return def.reach_sql == def.source_sql;
}

std::string walk_alias(int rt) { return "__ps_a" + std::to_string(rt); }

// r's rows (`start`, alias __ps_a<r>) LEFT JOINed outwards through the join equalities alone
// (filters ignored), breadth first, to the appearances in `needed` (all when empty) and those on
// the way to them. Each appearance is joined on all its edges to the ones joined before it.
struct Walk {
  std::string from;
  std::vector<int> joined;  // rtindexes in join order, r first
};
Walk walk_joins(const Definition& def, const Occurrence& r, std::set<int> needed, const std::string& start) {
  std::vector<int> order{r.rtindex};
  std::map<int, int> via;  // rtindex -> the joined appearance it was reached from
  for (size_t i = 0; i < order.size(); ++i)
    for (auto& e : def.edges)
      for (int side = 0; side < 2; ++side)
        if (e.rt[side] == order[i] && !via.count(e.rt[1 - side]) && e.rt[1 - side] != r.rtindex) {
          via[e.rt[1 - side]] = order[i];
          order.push_back(e.rt[1 - side]);
        }
  if (needed.empty())
    for (int rt : order) needed.insert(rt);
  for (int target : std::vector<int>(needed.begin(), needed.end()))
    for (int rt = via.count(target) ? via[target] : 0; rt && rt != r.rtindex && needed.insert(rt).second;) rt = via.count(rt) ? via[rt] : 0;
  Walk w{start + " " + walk_alias(r.rtindex), {r.rtindex}};
  std::set<int> joined{r.rtindex};
  for (int rt : order) {
    if (!needed.count(rt) || joined.count(rt)) continue;
    std::string on;
    for (auto& e : def.edges)
      for (int side = 0; side < 2; ++side)
        if (e.rt[side] == rt && joined.count(e.rt[1 - side]))
          on += (on.empty() ? "" : " AND ") + walk_alias(rt) + "." + e.column[side] + " = " + walk_alias(e.rt[1 - side]) + "." +
                e.column[1 - side];
    w.from += " LEFT JOIN ONLY " + occurrence(def, rt).table_sql + " " + walk_alias(rt) + " ON " + on;
    joined.insert(rt);
    w.joined.push_back(rt);
  }
  return w;
}

// r's rows a statement changed, as the edge walk's start: old and/or new images of the changed keys.
std::string changed_images(const std::string& event) {
  if (event == "INSERT" || event == "PROPAGATE") return "__ps_new";
  if (event == "DELETE") return "__ps_old";
  return "(SELECT * FROM __ps_old UNION ALL SELECT * FROM __ps_new)";
}

// An advisory key for one row of a table, whichever appearance reaches it.
std::string identity_key(const Occurrence& o, const std::string& alias) {
  return "pg_catalog.hash_record(ROW(" + std::to_string(o.relid) + "::oid, " + join(o.pk_columns, ", ", alias + ".") + ")) # 9000011";
}

// Rows that do not exist yet cannot be row-locked: a transaction inserting a row (or moving one to
// new join partners) and one inserting its partner would each miss the other. So such changes also
// take transaction advisory locks on the join values of their new rows, one key per (equality
// condition, value) hashed into the view's key space; equal values on both sides of a condition get
// the same key (hash opclasses agree across integer widths). Deletes take them on their old rows, so
// a row's deletion and a new partner of it queue too.
// Two writers can also meet through a committed row p that neither changes (A-B-C: one inserts an A,
// the other a C, both joining the same B), or one changes p's values while the other gives p a new
// partner: each writer's statement misses the other's uncommitted row. So every writer also takes a
// key on p's identity when it reaches p (edge walk from its changed rows) through a join without a
// foreign key, or when p has a further join through which a concurrent row may appear (no foreign
// key, or p is the referenced side: children of one parent meet through it); a writer of rows with
// a join without a foreign key takes the keys of its own rows. Where only foreign keys join
// (customers <- orders <- line items) a new row's partners are committed parents, which its writer
// share-locks (see Locking), and no key is taken.
// Statements with many keys take one view-wide exclusive key instead (all others hold it shared).
// Waiting for a key marks the statement stale: it runs again and sees what the other committed.
std::string advisory_ctes(const Definition& def, const Occurrence& t, const Occurrence& r, const std::string& event,
                          const std::string& start_where) {
  std::string values, ctes;
  auto add = [&](const std::string& select) { values += (values.empty() ? "" : " UNION ") + select; };
  const std::string images = changed_images(event);
  for (size_t e = 0; e < def.edges.size() && event != "PROPAGATE"; ++e)
    for (int side = 0; side < 2 && !def.edges[e].enforced; ++side) {
      const Occurrence& o = occurrence(def, def.edges[e].rt[side]);
      if (o.relid != t.relid) continue;
      const std::string& col = def.edges[e].column[side];
      add("SELECT pg_catalog.hash_record(ROW(n." + col + ")) # " + std::to_string(1000003 * (e + 1)) + " AS k FROM " + images +
          " n WHERE n." + col + " IS NOT NULL");
    }
  // Identity keys: r's own rows, and the partners reached (see above).
  bool own = false;
  for (auto& e : def.edges) own = own || (!e.enforced && (e.rt[0] == r.rtindex || e.rt[1] == r.rtindex));
  if (own) add("SELECT " + identity_key(r, "n") + " AS k FROM " + images + " n");
  std::vector<int> meeting;  // appearances whose reached rows get identity keys
  std::set<int> before{r.rtindex};
  // New rows referenced through foreign keys only (a new customer) have no committed partners yet.
  bool new_parent = event == "INSERT";
  for (auto& e : def.edges)
    for (int side = 0; side < 2; ++side)
      if (e.rt[side] == r.rtindex) new_parent = new_parent && e.enforced && e.child_side == 1 - side;
  for (int rt : new_parent ? std::vector<int>{} : walk_joins(def, r, {}, images).joined) {
    if (rt == r.rtindex) continue;
    bool meets = false;
    for (auto& e : def.edges)
      for (int side = 0; side < 2; ++side) {
        if (e.rt[side] != rt) continue;
        const Occurrence& far = occurrence(def, e.rt[1 - side]);
        bool arrival = before.count(far.rtindex) > 0;
        // A concurrent writer of far's rows share-locks r's existing rows when r ranks below far
        // (see lockable_occurrences): only r's new rows need the key then.
        bool far_locks_r = event != "INSERT" && (r.lock_rank < far.lock_rank || (r.lock_rank == far.lock_rank && r.relid < far.relid) ||
                                                 r.relid == far.relid);
        // In an open view far's value-only UPDATEs lock nothing (propagate_sql): a writer building
        // view rows from far's rows must then lock them itself, or take the key.
        bool r_locks_far = far.lock_rank < r.lock_rank || (far.lock_rank == r.lock_rank && far.relid < r.relid) || far.relid == r.relid;
        bool covered = far_locks_r && (!open_view(def) || event == "PROPAGATE" || r_locks_far);
        meets = meets || !e.enforced || (!arrival && e.child_side == 1 - side && !covered);
      }
    before.insert(rt);
    if (meets) meeting.push_back(rt);
  }
  if (!meeting.empty()) {
    Walk walk = walk_joins(def, r, std::set<int>(meeting.begin(), meeting.end()), images);
    std::string cols;
    for (int rt : meeting) {
      std::string w = "w" + std::to_string(rt);
      cols += (cols.empty() ? "" : ", ") + std::string("CASE WHEN ") + walk_alias(rt) + ".ctid IS NOT NULL THEN " +
              identity_key(occurrence(def, rt), walk_alias(rt)) + " END AS " + w;
      add("SELECT " + w + " AS k FROM partners WHERE " + w + " IS NOT NULL");
    }
    ctes = ",\n partners AS MATERIALIZED (SELECT " + cols + " FROM " + walk.from + (start_where.empty() ? "" : " WHERE " + start_where) + ")";
  }
  // A LEFT JOIN's null-extended row depends on all rows of the nullable side that match an anchor
  // row, including ones other transactions change: recomputes of the same anchor serialize on it.
  if (r.nullable && event != "PROPAGATE") add("SELECT pg_catalog.hash_record(ROW(s.*)) # " + std::to_string(7000003 * r.anchor) + " AS k FROM scope s");
  if (values.empty()) return {};
  std::string space = std::to_string((int64)(def.immv % 2147483647));
  auto acquire = [&](const std::string& fn, const std::string& key) {
    return "CASE WHEN pg_catalog.pg_try_" + fn + "(" + space + ", " + key + ") THEN false ELSE (SELECT true FROM (SELECT pg_catalog.pg_" +
           fn + "(" + space + ", " + key + ")) w) END";
  };
  return ctes + ",\n advkeys AS MATERIALIZED (SELECT DISTINCT k FROM (" + values + ") v),\n adv AS MATERIALIZED (SELECT CASE WHEN (SELECT count(*) FROM advkeys) > 32 THEN " +
         acquire("advisory_xact_lock", "0") + " ELSE " + acquire("advisory_xact_lock_shared", "0") +
         " OR coalesce((SELECT bool_or(" + acquire("advisory_xact_lock", "k") +
         ") FROM (SELECT k FROM advkeys ORDER BY k) ordered), false) END AS waited)";  // one order: no deadlock among these
}

// The rows of `lockable` appearances that a set of r's rows (`start`, e.g. a transition table)
// combine with through the join equalities alone: r's rows LEFT JOINed outwards, edge by edge, to
// the appearances on the way to a lockable one. Starting from the statement's own old and new images
// (not from r's table) also reaches the partners of deleted rows and of rows moved to other keys.
// Columns: each lockable appearance's source key names and source ctid name (like reach_sql).
std::string edge_walk_sql(const Definition& def, const Occurrence& r, const std::vector<const Occurrence*>& lockable,
                          const std::string& start, const std::string& start_where) {
  std::set<int> needed;
  for (auto* o : lockable) needed.insert(o->rtindex);
  Walk walk = walk_joins(def, r, needed, start);
  std::string cols;
  for (auto* o : lockable) {
    if (std::find(walk.joined.begin(), walk.joined.end(), o->rtindex) == walk.joined.end()) continue;  // not connected
    for (size_t i = 0; i < o->pk_columns.size(); ++i)
      cols += (cols.empty() ? "" : ", ") + walk_alias(o->rtindex) + "." + o->pk_columns[i] + " AS " + o->source_keys[i];
    cols += ", " + walk_alias(o->rtindex) + ".ctid AS " + o->source_ctid;
  }
  return "SELECT " + cols + " FROM " + walk.from + (start_where.empty() ? "" : " WHERE " + start_where);
}


// Share-locks the row versions of `lockable` that CTE `found` (an edge walk) read, by ctid: a TID
// scan, no key lookups. Under READ COMMITTED a version another transaction updated meanwhile is
// locked in its newest version (another ctid), a deleted one not at all: either way fewer of the
// versions read are locked than were read, and `checks` (true = stale) says so.
struct ShareLocks {
  std::string ctes;
  std::string checks;
};
ShareLocks share_locks(const std::vector<const Occurrence*>& lockable, const std::string& found) {
  ShareLocks out;
  std::string seen;
  for (size_t i = 0; i < lockable.size(); ++i) {
    const Occurrence& o = *lockable[i];
    std::string n = std::to_string(i + 1), s = "(SELECT s" + n + " FROM seen)::pg_catalog.tid[]";
    seen += (i ? ", " : "") + std::string("ARRAY(SELECT DISTINCT f.") + o.source_ctid + " FROM " + found + " f WHERE f." +
            o.source_ctid + " IS NOT NULL) AS s" + n;
    out.ctes += ",\n l" + n + " AS MATERIALIZED (SELECT t.ctid AS locked FROM ONLY " + o.table_sql + " t WHERE t.ctid = ANY(" + s +
                ") FOR SHARE OF t)";
    out.checks += std::string(i ? " OR " : "") + "(SELECT count(*) FROM l" + n + " WHERE locked = ANY(" + s + ")) <> cardinality(" +
                  s + ")";
  }
  out.ctes = ",\n seen AS MATERIALIZED (SELECT " + seen + ")" + out.ctes;
  return out;
}

Locking locking(const Definition& def, const Occurrence& t, const Occurrence& r, const std::string& event,
                const std::string& in_scope) {
  Locking l;
  std::vector<const Occurrence*> lockable = lockable_occurrences(def, t, r);
  std::string checks, reached;
  for (auto* o : lockable) reached += (reached.empty() ? "" : ", ") + join(o->source_keys, ", ", "q.") + ", q." + o->source_ctid;
  if (!lockable.empty()) {
    ShareLocks locks = share_locks(lockable, "reach");
    l.ctes = locks.ctes;
    checks = locks.checks;
  }
  std::vector<std::string> k = numbered("k", r.pk_columns.size());
  std::string changed_rows = tuple(r.pk_columns, walk_alias(r.rtindex) + ".") + " IN (SELECT " + join(k, ", ") + " FROM changed)";
  if (!lockable.empty()) {
    // From the changed rows' old and new images; a LEFT JOIN anchor's recompute reads all rows of
    // its anchors, so their rows are reached through the (filter-free) joins as well.
    std::string walk = edge_walk_sql(def, r, lockable, changed_images(event), changed_rows);
    if (r.nullable) walk += " UNION ALL SELECT " + reached + " FROM (" + def.reach_sql + ") q WHERE " + in_scope;
    l.ctes = ",\n reach AS MATERIALIZED (" + walk + ")" + l.ctes;
  }
  std::string advisory = advisory_ctes(def, t, r, event, changed_rows);
  if (!advisory.empty()) {
    l.ctes += advisory;
    l.advisory = advisory;
    // The statement's snapshot predates its locks: a transaction that held one of these keys and
    // committed in between would be invisible although its lock was already released, so the keys
    // are taken beforehand by the pre-lock statement ($1 = the keys it holds). A key it did not
    // take (the scope moved meanwhile) makes the result stale.
    checks += std::string(checks.empty() ? "" : " OR ") +
              "(SELECT waited FROM adv) OR NOT (ARRAY(SELECT k FROM advkeys) <@ coalesce($1::int4[], '{}'))";
  }
  if (checks.empty()) return l;
  l.ctes += ",\n lockdone AS MATERIALIZED (SELECT " + checks + " AS stale)";
  l.gate = "(SELECT stale FROM lockdone) IS NOT NULL";
  l.stale = "(SELECT stale FROM lockdone)";
  return l;
}

// Value propagation for an UPDATE of r's table that left every structural column alone: the view
// rows of the changed keys keep their key and their partners, so only r's value columns change and
// are copied from the new rows; nothing is joined or recomputed. The same locks as a recompute are
// taken (found through the stored view rows), and a lock that waited for a committed change makes
// the statement stale. Returns "" when r has no value columns, nullopt-like "!" when it cannot be
// done this way (a lockable appearance on the nullable side of a LEFT JOIN).
std::string propagate_sql(const Definition& def, const Occurrence& t, const Occurrence& r, const std::string& immv,
                          std::string& lock_sql) {
  if (r.value_columns.empty()) return {};
  std::vector<std::string> k = numbered("k", r.pk_columns.size());
  std::string n = "SELECT ";
  for (size_t i = 0; i < k.size(); ++i) n += "n." + r.pk_columns[i] + " AS " + k[i] + ", ";
  std::string set, differs;
  for (size_t i = 0; i < r.value_columns.size(); ++i) {
    const ValueColumn& v = r.value_columns[i];
    std::string c = "c" + std::to_string(i + 1);
    n += (i ? ", " : "") + v.expr_sql + " AS " + c;
    set += (i ? ", " : "") + v.column + " = n." + c;
    differs += (i ? " OR " : "") + distinct("v." + v.column, "n." + c, v.compare_as_text);
  }
  n += " FROM __ps_new n";
  std::string match = r.nullable ? "v." + r.stored_keys[0] + " = ROW(" + join(k, ", ", "n.") + ")::text"
                                 : equal_all_pairs(r.stored_keys, k, "v.", "n.");
  std::string sql = "WITH n AS MATERIALIZED (" + n + ")";
  std::string gate, stale = "false", checks, returning;
  std::vector<const Occurrence*> lockable = lockable_occurrences(def, t, r);
  // Without filters and LEFT JOINs a view row holding r's row exists exactly when its partners do:
  // a concurrent writer can only build one from r's old values by re-keying an existing row (its
  // partner moved: the row this statement planned to update is gone after the wait, so fewer rows
  // are written than planned and it runs again) or by giving r's row a new partner (whose writer
  // share-locks r's row when r ranks lower, else the advisory keys below queue them). Row locks on
  // the partners are needed only where a filter or a LEFT JOIN can show a row that was not there.
  if (open_view(def)) {
    returning = " RETURNING 1";
    checks = "(SELECT count(*) FROM updated) <> (SELECT count(*) FROM ONLY " + immv + " v, n WHERE " + match + " AND (" + differs + "))";
    lockable.clear();
  }
  if (!lockable.empty()) {
    for (auto* o : lockable)
      if (o->nullable) return "!";
    // Through the joins, not the view rows: see Locking. The new images' partners: the structural
    // columns are unchanged, so they are the old ones too.
    sql += ",\n targets AS MATERIALIZED (" + edge_walk_sql(def, r, lockable, "__ps_new", "") + ")";
    ShareLocks locks = share_locks(lockable, "targets");
    sql += locks.ctes;
    checks = locks.checks;
  }
  // A concurrent writer giving these rows (or rows they meet through) a new partner: see advisory_ctes.
  std::string advisory = advisory_ctes(def, t, r, "PROPAGATE", "");
  if (!advisory.empty()) {
    lock_sql = "WITH n AS MATERIALIZED (" + n + ")" + advisory + "\nSELECT (SELECT waited FROM adv) IS NOT NULL, ARRAY(SELECT k FROM advkeys)";
    sql += advisory;
    if (!open_view(def))
      checks += std::string(checks.empty() ? "" : " OR ") +
                "(SELECT waited FROM adv) OR NOT (ARRAY(SELECT k FROM advkeys) <@ coalesce($1::int4[], '{}'))";
  }
  std::string update = ",\n updated AS (UPDATE ONLY " + immv + " v SET " + set + " FROM n WHERE " + match + " AND (" + differs + ")";
  if (open_view(def)) {  // the check reads what the update wrote: no gate
    if (!advisory.empty()) checks = "(SELECT waited FROM adv) OR NOT (ARRAY(SELECT k FROM advkeys) <@ coalesce($1::int4[], '{}')) OR " + checks;
    return sql + update + returning + ")\nSELECT NULL, " + checks;
  }
  if (!checks.empty()) {
    sql += ",\n lockdone AS MATERIALIZED (SELECT " + checks + " AS stale)";
    gate = " AND (SELECT stale FROM lockdone) IS NOT NULL";
    stale = "(SELECT stale FROM lockdone)";
  }
  return sql + update + gate + ")\nSELECT NULL, " + stale;
}

// INSERT or DELETE of rows of r's table, r not on the nullable side of a LEFT JOIN: usually no view
// row holds a new key yet, and every view row holding a deleted key goes (inner joins: no other row
// depends on them), so nothing is diffed. When the same statement also changed another base table
// (its maintenance may have added the rows already) or deleted and re-inserted a key, the third
// column asks for the full recompute (`fallback`). Written only when no lock found a change: a
// stale statement writes nothing and runs again.
std::string insert_or_delete(const Definition& def, const Occurrence& r, const std::string& event, const std::string& in_scope,
                             const std::string& immv, const std::string& stale) {
  std::string current = stale == "false" ? "" : " AND NOT " + stale;
  std::string fallback = stale == "false" ? "" : "NOT " + stale + " AND ";
  std::string k = join(numbered("k", r.pk_columns.size()), ", ");
  if (event == "DELETE")
    return ",\n gone AS (DELETE FROM ONLY " + immv + " v WHERE " + tuple(r.stored_keys, "v.") + " IN (SELECT " + k +
           " FROM changed)" + current + ")\nSELECT NULL, " + stale + ", " + fallback + "EXISTS (SELECT 1 FROM ONLY " + r.table_sql +
           " x WHERE " + tuple(r.pk_columns, "x.") + " IN (SELECT " + k + " FROM changed))";
  std::string all;
  for (auto& c : def.columns) all += (all.empty() ? "" : ", ") + c.name;
  return ",\n fresh AS MATERIALIZED (" + fresh_select(def, in_scope) + "),\n added AS (INSERT INTO " + immv + " (" + all +
         ") SELECT * FROM fresh WHERE true" + current + " ON CONFLICT DO NOTHING RETURNING 1)\nSELECT NULL, " + stale + ", " +
         fallback + "(SELECT count(*) FROM added) <> (SELECT count(*) FROM fresh)";
}

}  // namespace

std::string create_table_sql(const Definition& def, const std::string& immv) {
  std::string cols;
  for (auto& c : def.columns) cols += c.name + " " + c.type_sql + (c.is_key ? " NOT NULL" : "") + ", ";
  // Half-empty pages let an update of a view row stay on its page (HOT: no index writes), also
  // when one base change rewrites every row of a page, as a parent row's fan-out does.
  return "CREATE TABLE " + immv + " (" + cols + "PRIMARY KEY (" + join(key_columns(def), ", ") + ")) WITH (fillfactor = 50)";
}

// The primary key serves the first table's scope; every other table's stored key gets an index so
// that recomputing the rows of a changed key never scans the view.
std::vector<std::string> create_index_sql(const Definition& def, const std::string& immv) {
  std::vector<std::string> out;
  for (size_t i = 1; i < def.occurrences.size(); ++i)
    out.push_back("CREATE INDEX ON " + immv + " (" + join(def.occurrences[i].stored_keys, ", ") + ")");
  return out;
}

std::string populate_sql(const Definition& def, const std::string& immv) {
  std::string all;
  for (auto& c : def.columns) all += (all.empty() ? "" : ", ") + c.name;
  return "INSERT INTO " + immv + " (" + all + ") " + fresh_select(def, "");
}

std::string refresh_sql(const Definition& def, const std::string& immv) {
  return "WITH fresh AS MATERIALIZED (" + fresh_select(def, "") + ")" + apply_diff(def, immv, "");
}

std::vector<TriggerSql> trigger_sql(const Definition& def, const std::string& immv) {
  std::vector<TriggerSql> out;
  std::set<Oid> done;
  for (auto& t : def.occurrences) {
    if (!done.insert(t.relid).second) continue;
    // Columns of T the view reads through any of its appearances.
    std::vector<std::string> used;
    std::vector<bool> used_text;
    for (auto& o : def.occurrences) {
      if (o.relid != t.relid) continue;
      for (size_t i = 0; i < o.used_columns.size(); ++i) {
        bool seen = false;
        for (auto& u : used) seen = seen || u == o.used_columns[i];
        if (!seen) {
          used.push_back(o.used_columns[i]);
          used_text.push_back(o.used_as_text[i]);
        }
      }
    }
    for (std::string event : {"INSERT", "UPDATE", "DELETE"}) {
      TriggerSql ts;
      ts.base = t.relid;
      ts.event = event;
      for (auto& r : def.occurrences) {
        if (r.relid != t.relid) continue;
        const Occurrence& a = occurrence(def, r.anchor);
        std::string prefix = with_scope(def, t, r, event, used, used_text, immv);
        std::string in_scope = tuple(a.source_keys, "q.") + " IN (SELECT * FROM scope)";
        Locking lock = locking(def, t, r, event, in_scope);
        // Takes the advisory keys before the apply statement's snapshot exists; returns them.
        ts.lock_sql.push_back(lock.advisory.empty() ? std::string()
                                                    : prefix + lock.advisory +
                                                          "\nSELECT (SELECT waited FROM adv) IS NOT NULL, ARRAY(SELECT k FROM advkeys)");
        std::string recompute = prefix + ",\n fresh AS MATERIALIZED (" + fresh_select(def, in_scope) + ")" + lock.ctes +
                                apply_diff(def, immv, tuple(a.stored_keys, "v.") + " IN (SELECT * FROM scope)", lock.gate, lock.stale);
        if (!r.nullable && (event == "INSERT" || event == "DELETE")) {
          ts.apply_sql.push_back(prefix + lock.ctes + insert_or_delete(def, r, event, in_scope, immv, lock.stale));
          ts.fallback_sql.push_back(recompute);
        } else {
          ts.apply_sql.push_back(recompute);
          ts.fallback_sql.push_back({});
        }
      }
      out.push_back(ts);
    }
    // UPDATEs that keep the structural columns: propagate value columns, for every appearance.
    TriggerSql propagate;
    propagate.base = t.relid;
    propagate.event = "PROPAGATE";
    bool possible = true;
    for (auto& r : def.occurrences) {
      if (r.relid != t.relid) continue;
      std::string lock_sql;
      std::string sql = propagate_sql(def, t, r, immv, lock_sql);
      if (sql == "!") {
        possible = false;
      } else if (!sql.empty()) {
        propagate.apply_sql.push_back(sql);
        propagate.lock_sql.push_back(lock_sql);
        propagate.fallback_sql.push_back({});
      }
    }
    if (possible) out.push_back(propagate);
    TriggerSql truncate;
    truncate.base = t.relid;
    truncate.event = "TRUNCATE";
    truncate.apply_sql.push_back(refresh_sql(def, immv));
    out.push_back(truncate);
  }
  return out;
}

}  // namespace powersync::pg::immv
