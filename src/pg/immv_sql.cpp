// SQL text that creates, populates, refreshes and maintains an IMMV, generated once at create time
// from its Definition and stored in the catalog (the triggers prepare it once per backend).
//
// Maintenance is a key-based recompute: the rows a statement changed in base table T (its transition
// tables, compared on the columns the view uses) give a scope of keys of an "anchor" table; every
// view row of those anchor keys is recomputed from the current base tables (index lookups) and
// diffed against the stored rows: vanished rows are deleted, changed rows updated in place, new rows
// inserted. That is correct whatever else the statement or transaction changed before.
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
  auto keys_of = [&](const std::string& alias) {
    std::string out;
    for (size_t i = 0; i < k.size(); ++i) out += (i ? ", " : "") + alias + "." + t.pk_columns[i] + " AS " + k[i];
    return out;
  };
  if (event == "INSERT") return "SELECT DISTINCT " + keys_of("n") + " FROM __ps_new n";
  if (event == "DELETE") return "SELECT DISTINCT " + keys_of("o") + " FROM __ps_old o";
  std::string differs = "n." + t.pk_columns[0] + " IS NULL";
  for (size_t i = 0; i < used.size(); ++i) differs += " OR " + distinct("o." + used[i], "n." + used[i], used_text[i]);
  return "SELECT " + keys_of("o") + " FROM __ps_old o LEFT JOIN __ps_new n ON " + equal_all(t.pk_columns, "n.", "o.") +
         " WHERE " + differs + " UNION SELECT " + keys_of("n") + " FROM __ps_new n WHERE NOT EXISTS (SELECT 1 FROM __ps_old o WHERE " +
         equal_all(t.pk_columns, "o.", "n.") + ")";
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

std::string fresh_select(const Definition& def, const std::string& where) {
  std::string cols;
  for (size_t i = 0; i < def.columns.size(); ++i)
    cols += (i ? ", " : "") + def.columns[i].source_expr + " AS " + def.columns[i].name;
  return "SELECT " + cols + " FROM (" + def.source_sql + ") q" + (where.empty() ? "" : " WHERE " + where);
}

// The diff of `fresh` against the stored rows matching `stored_where` (alias v), as CTEs + final SELECT.
std::string apply_diff(const Definition& def, const std::string& immv, const std::string& stored_where) {
  std::vector<std::string> keys = key_columns(def);
  std::string key_eq = equal_all(keys, "f.", "v.");
  std::string set, differs, all = join([&] {
    std::vector<std::string> n;
    for (auto& c : def.columns) n.push_back(c.name);
    return n;
  }(), ", ");
  for (auto& c : def.columns) {
    if (c.is_key) continue;
    set += (set.empty() ? "" : ", ") + c.name + " = f." + c.name;
    differs += (differs.empty() ? "" : " OR ") + distinct("v." + c.name, "f." + c.name, c.compare_as_text);
  }
  std::string where = stored_where.empty() ? "" : stored_where + " AND ";
  std::string upd = set.empty() ? "SELECT 1 WHERE false"
                                : "UPDATE ONLY " + immv + " v SET " + set + " FROM fresh f WHERE " + key_eq + " AND (" +
                                      differs + ") RETURNING 1";
  return ",\n gone AS (DELETE FROM ONLY " + immv + " v WHERE " + where + "NOT EXISTS (SELECT 1 FROM fresh f WHERE " + key_eq +
         ") RETURNING 1),\n updated AS (" + upd + "),\n added AS (INSERT INTO " + immv + " (" + all + ") SELECT " +
         join([&] {
           std::vector<std::string> n;
           for (auto& c : def.columns) n.push_back(c.name);
           return n;
         }(), ", ", "f.") +
         " FROM fresh f WHERE NOT EXISTS (SELECT 1 FROM ONLY " + immv + " v WHERE " + key_eq +
         ") RETURNING 1)\nSELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM updated) + (SELECT count(*) FROM added)";
}

// Lock step for a change of r: share-lock the rows of lower-ranked tables (and of r's table in its
// other appearances) that the affected view rows combine with, so that a concurrent writer of one
// of them and this writer never both compute a view row from the other's old data.
std::string lock_sql(const Definition& def, const Occurrence& t, const Occurrence& r, const std::string& prefix) {
  std::vector<const Occurrence*> lockable;
  for (auto& o : def.occurrences) {
    if (o.rtindex == r.rtindex) continue;
    bool lower = o.lock_rank < t.lock_rank || (o.lock_rank == t.lock_rank && o.relid < t.relid);
    if (lower || o.relid == t.relid) lockable.push_back(&o);
  }
  if (lockable.empty()) return {};
  const Occurrence& a = occurrence(def, r.anchor);
  std::vector<std::string> combo_cols;
  for (auto* o : lockable) combo_cols.insert(combo_cols.end(), o->source_keys.begin(), o->source_keys.end());
  std::string sql = prefix + ",\n combos AS MATERIALIZED (SELECT " + join(combo_cols, ", ", "q.") + " FROM (" + def.source_sql +
                    ") q WHERE " + tuple(a.source_keys, "q.") + " IN (SELECT * FROM scope))";
  std::string total;
  for (size_t i = 0; i < lockable.size(); ++i) {
    const Occurrence& o = *lockable[i];
    std::string name = "l" + std::to_string(i + 1);
    sql += ",\n " + name + " AS (SELECT 1 FROM ONLY " + o.table_sql + " t WHERE " + tuple(o.pk_columns, "t.") + " IN (SELECT " +
           join(o.source_keys, ", ", "c.") + " FROM combos c) FOR SHARE OF t)";
    total += (i ? " + " : "") + std::string("(SELECT count(*) FROM ") + name + ")";
  }
  return sql + "\nSELECT " + total;
}

}  // namespace

std::string create_table_sql(const Definition& def, const std::string& immv) {
  std::string cols;
  for (auto& c : def.columns) cols += c.name + " " + c.type_sql + (c.is_key ? " NOT NULL" : "") + ", ";
  return "CREATE TABLE " + immv + " (" + cols + "PRIMARY KEY (" + join(key_columns(def), ", ") + "))";
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
        std::string lock = lock_sql(def, t, r, prefix);
        if (!lock.empty()) ts.lock_sql.push_back(lock);
        std::string in_scope = tuple(a.source_keys, "q.") + " IN (SELECT * FROM scope)";
        ts.apply_sql.push_back(prefix + ",\n fresh AS MATERIALIZED (" + fresh_select(def, in_scope) + ")" +
                               apply_diff(def, immv, tuple(a.stored_keys, "v.") + " IN (SELECT * FROM scope)"));
      }
      out.push_back(ts);
    }
    TriggerSql truncate;
    truncate.base = t.relid;
    truncate.event = "TRUNCATE";
    truncate.apply_sql.push_back(refresh_sql(def, immv));
    out.push_back(truncate);
  }
  return out;
}

}  // namespace powersync::pg::immv
