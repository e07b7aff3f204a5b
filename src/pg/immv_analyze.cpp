// Reads an IMMV's defining query with Postgres' own parser and analyser, rejects what incremental
// maintenance cannot handle (naming the construct), and derives the view's columns and keys.
#include "powersync/pg/immv.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "powersync/pg/boundary.h"

extern "C" {
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
}

namespace powersync::pg::immv {
namespace {

[[noreturn]] void reject(const std::string& construct, const std::string& hint = {}) {
  throw not_supported("cannot create IMMV: " + construct, {}, hint);
}

std::string quoted(const char* ident) { return pg_call([&] { return quote_identifier(ident); }); }

std::string at(int location) {
  return location >= 0 ? " (at character " + std::to_string(location + 1) + ")" : std::string();
}

// Reports parser error positions against the view query, not the create_immv(...) call.
void query_position_callback(void* arg) {
  int position = geterrposition();
  if (position > 0) {
    errposition(0);
    internalerrposition(position);
    internalerrquery(static_cast<const char*>(arg));
  }
}

template <typename F>
auto with_query_position(const std::string& text, F&& fn) {
  return pg_call([&] {
    ErrorContextCallback callback;
    callback.callback = query_position_callback;
    callback.arg = (void*)text.c_str();
    callback.previous = error_context_stack;
    error_context_stack = &callback;
    auto result = fn();
    error_context_stack = callback.previous;
    return result;
  });
}

Query* parse_single_select(const std::string& text) {
  List* raw = with_query_position(text, [&] { return raw_parser(text.c_str(), RAW_PARSE_DEFAULT); });
  if (list_length(raw) != 1) throw invalid_input("cannot create IMMV: the query must be exactly one SELECT statement");
  RawStmt* stmt = linitial_node(RawStmt, raw);
  if (!IsA(stmt->stmt, SelectStmt)) throw invalid_input("cannot create IMMV: the query must be a SELECT statement");
  if (castNode(SelectStmt, stmt->stmt)->intoClause) reject("SELECT INTO is not supported");
  return with_query_position(text, [&] { return parse_analyze_fixedparams(stmt, text.c_str(), nullptr, 0, nullptr); });
}

void check_query_shape(Query* q) {
  if (q->commandType != CMD_SELECT || q->utilityStmt) throw invalid_input("cannot create IMMV: the query must be a SELECT statement");
  if (q->setOperations) reject("set operations (UNION, INTERSECT, EXCEPT) are not supported");
  if (q->cteList) reject("WITH (common table expressions) is not supported", "Write the joins directly in FROM.");
  if (q->hasAggs) reject("aggregate functions are not supported", "An IMMV keeps one row per joined base row; aggregate when reading it.");
  if (q->groupClause || q->groupingSets) reject("GROUP BY is not supported");
  if (q->havingQual) reject("HAVING is not supported");
  if (q->hasWindowFuncs) reject("window functions are not supported");
  if (q->distinctClause) reject(q->hasDistinctOn ? "DISTINCT ON is not supported" : "DISTINCT is not supported");
  if (q->hasSubLinks) reject("subqueries (sub-SELECT, EXISTS, IN (SELECT ...)) are not supported");
  if (q->limitCount || q->limitOffset) reject("LIMIT and OFFSET are not supported");
  if (q->sortClause) reject("ORDER BY is not supported", "An IMMV is a table; order rows when reading it.");
  if (q->rowMarks || q->hasForUpdate) reject("FOR UPDATE / FOR SHARE is not supported");
  if (q->hasTargetSRFs) reject("set-returning functions in the select list are not supported");
}

const char* relkind_name(char kind) {
  switch (kind) {
    case RELKIND_VIEW: return "a view";
    case RELKIND_MATVIEW: return "a materialized view";
    case RELKIND_FOREIGN_TABLE: return "a foreign table";
    case RELKIND_PARTITIONED_TABLE: return "a partitioned table";
    case RELKIND_SEQUENCE: return "a sequence";
    default: return "not an ordinary table";
  }
}

struct RelFacts {
  char relkind;
  char persistence;
  bool has_children;
  Oid nsp;
};

// Describes one base table and fills its primary key into `occ`.
void describe_base_table(RangeTblEntry* rte, int rtindex, Occurrence& occ) {
  Oid relid = rte->relid;
  std::string name = pg_call([&] { return get_rel_name(relid); });
  RelFacts facts = pg_call([&] {
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for relation %u", relid);
    Form_pg_class c = (Form_pg_class)GETSTRUCT(tup);
    RelFacts f{c->relkind, c->relpersistence, c->relhassubclass, c->relnamespace};
    ReleaseSysCache(tup);
    return f;
  });
  if (facts.relkind != RELKIND_RELATION)
    reject("\"" + name + "\" is " + relkind_name(facts.relkind) + "; base tables must be ordinary tables",
           "Join the underlying tables directly.");
  if (facts.persistence == RELPERSISTENCE_TEMP) reject("\"" + name + "\" is a temporary table");
  if (facts.has_children) reject("\"" + name + "\" has inheritance children");
  Oid constraint = InvalidOid;
  Bitmapset* pk = pg_call([&] { return get_primary_key_attnos(relid, false, &constraint); });
  if (!pk) reject("table \"" + name + "\" has no primary key", "An IMMV's key is built from its base tables' primary keys; add one.");
  occ.rtindex = rtindex;
  occ.relid = relid;
  occ.alias = rte->eref->aliasname;
  std::string nsp = pg_call([&] { return get_namespace_name(facts.nsp); });
  occ.table_sql = pg_call([&] { return quote_qualified_identifier(nsp.c_str(), name.c_str()); });
  for (int i = -1; (i = bms_next_member(pk, i)) >= 0;) {
    AttrNumber attno = i + FirstLowInvalidHeapAttributeNumber;
    occ.pk_names.push_back(pg_call([&] { return get_attname(relid, attno, false); }));
    occ.pk_columns.push_back(quoted(occ.pk_names.back().c_str()));
    occ.pk_attnums.push_back(attno);
  }
}

bool compare_as_text(Oid type) {
  return pg_call([&] { return lookup_type_cache(type, TYPECACHE_EQ_OPR)->eq_opr; }) == InvalidOid;
}

// The first function in `node` that is not immutable, or InvalidOid.
bool non_immutable_checker(Oid func, void* context) {
  if (func_volatile(func) != PROVOLATILE_IMMUTABLE) {
    *static_cast<Oid*>(context) = func;
    return true;
  }
  return false;
}
bool find_non_immutable(Node* node, void* context) {
  if (!node) return false;
  if (check_functions_in_node(node, non_immutable_checker, context)) return true;
  return expression_tree_walker(node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(find_non_immutable)), context);
}

void check_immutable(Node* node, const char* where) {
  Oid func = InvalidOid;
  bool found = pg_call([&] { return find_non_immutable(node, &func); });
  if (found) {
    char vol = pg_call([&] { return func_volatile(func); });
    std::string fname = pg_call([&] { return get_func_name(func); });
    reject("function " + fname + "() in " + where + " is " + (vol == PROVOLATILE_VOLATILE ? "volatile" : "stable") +
               "; only immutable functions and operators can be maintained incrementally",
           "Compute such values when reading the view.");
  }
  if (pg_call([&] { return contain_mutable_functions(node); }))
    reject(std::string("the ") + where + " uses a non-immutable expression (such as CURRENT_TIMESTAMP or nextval)");
}

struct JoinGraph {
  std::vector<int> parent;  // union-find over rtindexes
  int find(int x) { return parent[x] == x ? x : parent[x] = find(parent[x]); }
  void join(int a, int b) { parent[find(a)] = find(b); }
};

Node* strip_relabel(Node* n) {
  while (n && IsA(n, RelabelType)) n = (Node*)((RelabelType*)n)->arg;
  return n;
}

// Checks the conjuncts of a join or WHERE condition: any conjunct that spans two tables must be an
// equality between a column of each; each such equality joins the two tables in `graph`.
void check_condition(Query* q, Node* quals, JoinGraph& graph, const std::map<int, Occurrence>& occs,
                     std::vector<JoinEdge>& edges) {
  if (!quals) return;
  check_immutable(quals, "join or WHERE condition");
  Node* flat = pg_call([&] { return flatten_join_alias_vars(q, quals); });
  List* conjuncts = pg_call([&] { return make_ands_implicit((Expr*)flat); });
  ListCell* lc;
  foreach (lc, conjuncts) {
    Node* c = (Node*)lfirst(lc);
    Bitmapset* rels = pg_call([&] { return pull_varnos(nullptr, c); });
    if (bms_num_members(rels) < 2) continue;
    std::string names;
    for (int i = -1; (i = bms_next_member(rels, i)) >= 0;) {
      auto it = occs.find(i);
      names += (names.empty() ? "\"" : " and \"") + (it != occs.end() ? it->second.alias : std::to_string(i)) + "\"";
    }
    bool ok = false;
    if (IsA(c, OpExpr) && list_length(((OpExpr*)c)->args) == 2) {
      OpExpr* op = (OpExpr*)c;
      Node* l = strip_relabel((Node*)linitial(op->args));
      Node* r = strip_relabel((Node*)lsecond(op->args));
      Oid type = pg_call([&] { return exprType((Node*)linitial(op->args)); });
      bool equality = pg_call([&] { return op_mergejoinable(op->opno, type) || op_hashjoinable(op->opno, type); });
      if (IsA(l, Var) && IsA(r, Var) && equality) {
        Var* lv = (Var*)l;
        Var* rv = (Var*)r;
        graph.join(lv->varno, rv->varno);
        JoinEdge edge;
        edge.rt[0] = lv->varno;
        edge.rt[1] = rv->varno;
        edge.column[0] = quoted(pg_call([&] { return get_attname(occs.at(lv->varno).relid, lv->varattno, false); }));
        edge.column[1] = quoted(pg_call([&] { return get_attname(occs.at(rv->varno).relid, rv->varattno, false); }));
        edges.push_back(edge);
        ok = true;
      } else if (!equality) {
        std::string opname = pg_call([&] { return get_opname(op->opno); });
        reject("the condition joining " + names + " uses operator " + opname + at(op->location) +
                   "; only equality joins (a.x = b.y) are supported");
      }
    }
    if (!ok)
      reject("the condition joining " + names + at(pg_call([&] { return exprLocation(c); })) +
             " is not an equality between a column of each table; only equality joins (a.x = b.y) are supported");
  }
}

// Walks FROM: checks join types and conditions, and marks the nullable side of each LEFT JOIN with
// the anchor (leftmost table of the preserved side) whose key scopes its recomputation.
int leftmost_rel(Node* n) {
  if (IsA(n, RangeTblRef)) return ((RangeTblRef*)n)->rtindex;
  if (IsA(n, JoinExpr)) return leftmost_rel(((JoinExpr*)n)->larg);
  FromExpr* f = castNode(FromExpr, n);
  return leftmost_rel((Node*)linitial(f->fromlist));
}

void walk_from(Query* q, Node* n, int nullable_anchor, JoinGraph& graph, std::map<int, Occurrence>& occs,
               std::vector<JoinEdge>& edges) {
  if (IsA(n, RangeTblRef)) {
    int rt = ((RangeTblRef*)n)->rtindex;
    Occurrence& o = occs.at(rt);
    o.nullable = nullable_anchor != 0;
    o.anchor = nullable_anchor ? nullable_anchor : rt;
    return;
  }
  if (IsA(n, JoinExpr)) {
    JoinExpr* j = (JoinExpr*)n;
    switch (j->jointype) {
      case JOIN_INNER:
        walk_from(q, j->larg, nullable_anchor, graph, occs, edges);
        walk_from(q, j->rarg, nullable_anchor, graph, occs, edges);
        break;
      case JOIN_LEFT:
        walk_from(q, j->larg, nullable_anchor, graph, occs, edges);
        walk_from(q, j->rarg, nullable_anchor ? nullable_anchor : leftmost_rel(j->larg), graph, occs, edges);
        break;
      case JOIN_RIGHT: reject("RIGHT JOIN is not supported", "Swap the two sides and use LEFT JOIN.");
      case JOIN_FULL: reject("FULL JOIN is not supported");
      default: reject("this join type is not supported");
    }
    check_condition(q, j->quals, graph, occs, edges);
    return;
  }
  FromExpr* f = castNode(FromExpr, n);
  ListCell* lc;
  foreach (lc, f->fromlist) walk_from(q, (Node*)lfirst(lc), nullable_anchor, graph, occs, edges);
  check_condition(q, f->quals, graph, occs, edges);
}

// Keeps only the conjuncts joining two tables (equalities, checked by walk_from) in every WHERE and
// ON condition: what remains reaches every row combination a filter could show, wherever the
// filter is written (maintenance locks through it, see reach_sql).
Node* join_conditions_only(Query* q, Node* quals) {
  if (!quals) return nullptr;
  return pg_call([&]() -> Node* {
    List* kept = NIL;
    ListCell* lc;
    foreach (lc, make_ands_implicit((Expr*)quals)) {
      Node* c = (Node*)lfirst(lc);
      if (bms_num_members(pull_varnos(nullptr, flatten_join_alias_vars(q, c))) >= 2) kept = lappend(kept, c);
    }
    return kept ? (Node*)make_ands_explicit(kept) : nullptr;
  });
}

void strip_filters(Query* q, Node* n) {
  if (IsA(n, JoinExpr)) {
    JoinExpr* j = (JoinExpr*)n;
    strip_filters(q, j->larg);
    strip_filters(q, j->rarg);
    j->quals = join_conditions_only(q, j->quals);
  } else if (IsA(n, FromExpr)) {
    FromExpr* f = (FromExpr*)n;
    ListCell* lc;
    foreach (lc, f->fromlist) strip_filters(q, (Node*)lfirst(lc));
    f->quals = join_conditions_only(q, f->quals);
  }
}

void collect_base_tables(Query* q, std::map<int, Occurrence>& occs) {
  int rtindex = 0;
  ListCell* lc;
  foreach (lc, q->rtable) {
    ++rtindex;
    RangeTblEntry* rte = (RangeTblEntry*)lfirst(lc);
    switch (rte->rtekind) {
      case RTE_RELATION: describe_base_table(rte, rtindex, occs[rtindex]); break;
      case RTE_JOIN: break;
      case RTE_SUBQUERY: reject("subqueries in FROM are not supported");
      case RTE_FUNCTION: reject("functions in FROM are not supported");
      case RTE_TABLEFUNC: reject("XMLTABLE in FROM is not supported");
      case RTE_VALUES: reject("VALUES lists are not supported");
      case RTE_CTE: reject("WITH (common table expressions) is not supported");
      default: reject("this kind of FROM item is not supported");
    }
  }
  if (occs.empty()) reject("the query reads no table");
}

// Records which base columns each occurrence contributes to the view (through any expression).
void collect_used_columns(Query* q, Node* node, std::map<int, std::set<int>>& used) {
  Node* flat = pg_call([&] { return flatten_join_alias_vars(q, node); });
  List* vars = pg_call([&] { return pull_var_clause(flat, PVC_RECURSE_PLACEHOLDERS); });
  ListCell* lc;
  foreach (lc, vars) {
    Var* v = (Var*)lfirst(lc);
    if (v->varattno <= 0)
      reject(v->varattno == 0 ? "whole-row references are not supported" : "system columns (ctid, xmin, ...) are not supported",
             at(v->location).empty() ? "" : "Found" + at(v->location) + ".");
    used[v->varno].insert(v->varattno);
  }
}

std::string deparse(Query* q, bool qualify_everything) {
  return pg_call([&] {
    char* s;
    if (qualify_everything) {
      // Stored maintenance SQL must not depend on the search_path of whoever fires a trigger.
      int nest = NewGUCNestLevel();
      set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
      s = pg_get_querydef(q, false);
      AtEOXact_GUC(true, nest);
    } else {
      s = pg_get_querydef(q, true);
    }
    return s;
  });
}

std::string type_sql(Node* expr) {
  Oid type = pg_call([&] { return exprType(expr); });
  int32 typmod = pg_call([&] { return exprTypmod(expr); });
  Oid coll = pg_call([&] { return exprCollation(expr); });
  std::string s = pg_call([&] { return format_type_with_typemod(type, typmod); });
  if (OidIsValid(coll) && coll != pg_call([&] { return get_typcollation(type); }))
    s += " COLLATE " + std::string(pg_call([&] { return generate_collation_name(coll); }));
  return s;
}

// Adds the view's own columns; a plain reference to a non-nullable table's key column doubles as
// that table's stored key so the view carries no redundant copy.
void add_output_columns(Query* q, Definition& def, std::map<int, Occurrence>& occs) {
  std::set<std::string> names;
  ListCell* lc;
  foreach (lc, q->targetList) {
    TargetEntry* tle = (TargetEntry*)lfirst(lc);
    if (tle->resjunk) continue;
    std::string name = tle->resname ? tle->resname : "";
    if (name.empty() || name == "?column?")
      reject("select-list item " + std::to_string(tle->resno) + " has no name", "Give it an alias (... AS name).");
    if (name.rfind("__ps_", 0) == 0) reject("column name \"" + name + "\" uses the reserved prefix __ps_");
    if (!names.insert(name).second) reject("column name \"" + name + "\" appears more than once", "Give one of them an alias.");
    check_immutable((Node*)tle->expr, "select list");
    OutputColumn col;
    col.name = quoted(name.c_str());
    col.type_sql = type_sql((Node*)tle->expr);
    col.compare_as_text = compare_as_text(pg_call([&] { return exprType((Node*)tle->expr); }));
    col.source_expr = "q." + col.name;
    Node* flat = pg_call([&] { return flatten_join_alias_vars(q, (Node*)tle->expr); });
    if (IsA(flat, Var)) {
      Var* v = (Var*)flat;
      auto it = occs.find(v->varno);
      if (it != occs.end() && !it->second.nullable && it->second.pk_columns.size() == 1 && it->second.stored_keys.empty()) {
        if (v->varattno == it->second.pk_attnums[0]) {
          it->second.stored_keys.push_back(col.name);
          col.is_key = true;
        }
      }
    }
    def.columns.push_back(col);
  }
  if (def.columns.empty()) reject("the select list is empty");
}

// Appends every occurrence's key columns to the query (they form the source SQL's last columns) and
// adds the hidden key columns the view table needs. A nullable occurrence's key is one text column,
// ROW(key...)::text, which reads "()" when the LEFT JOIN found no row: primary key columns can never
// be NULL, so "()" cannot collide with a real key and the view's primary key stays NOT NULL.
void add_key_columns(Query* q, Definition& def, std::map<int, Occurrence>& occs) {
  std::set<std::string> taken;
  for (auto& c : def.columns) taken.insert(c.name);
  auto hidden_name = [&](const std::string& raw) {
    std::string name = quoted(raw.c_str());
    for (int n = 2; !taken.insert(name).second; ++n) name = quoted((raw + "_" + std::to_string(n)).c_str());
    return name;
  };
  int resno = list_length(q->targetList);
  for (auto& [rt, o] : occs) {
    std::string row_args;
    for (size_t i = 0; i < o.pk_attnums.size(); ++i) {
      std::string src = "__ps_src_" + std::to_string(rt) + "_" + std::to_string(i + 1);
      o.source_keys.push_back(src);
      row_args += (i ? ", q." : "q.") + src;
      AttrNumber attno = o.pk_attnums[i];
      Oid relid = o.relid;
      int rtindex = rt;
      int next = ++resno;
      const char* resname = src.c_str();
      Oid type = InvalidOid;
      int32 typmod = -1;
      Oid coll = InvalidOid;
      pg_call([&] {
        get_atttypetypmodcoll(relid, attno, &type, &typmod, &coll);
        Var* v = makeVar(rtindex, attno, type, typmod, coll, 0);
        q->targetList = lappend(q->targetList, makeTargetEntry((Expr*)v, next, pstrdup(resname), false));
      });
      if (!o.nullable && o.stored_keys.size() <= i) {
        OutputColumn col;
        col.name = hidden_name("__ps_" + o.alias + "_" + o.pk_names[i]);
        col.type_sql = pg_call([&] { return format_type_with_typemod(type, typmod); });
        col.is_key = true;
        col.source_expr = "q." + src;
        o.stored_keys.push_back(col.name);
        def.columns.push_back(col);
      }
    }
    // The row version each source row was built from (see the locking in immv_sql.cpp).
    o.source_ctid = "__ps_ctid_" + std::to_string(rt);
    {
      int rtindex = rt;
      int next = ++resno;
      const char* resname = o.source_ctid.c_str();
      pg_call([&] {
        Var* v = makeVar(rtindex, SelfItemPointerAttributeNumber, TIDOID, -1, InvalidOid, 0);
        q->targetList = lappend(q->targetList, makeTargetEntry((Expr*)v, next, pstrdup(resname), false));
      });
    }
    if (o.nullable) {
      for (size_t i = 0; i < o.pk_attnums.size(); ++i) {
        Oid relid = o.relid;
        AttrNumber attno = o.pk_attnums[i];
        bool stable_text = pg_call([&] {
          Oid out;
          bool varlena;
          getTypeOutputInfo(get_atttype(relid, attno), &out, &varlena);
          return func_volatile(out) == PROVOLATILE_IMMUTABLE;
        });
        if (!stable_text)
          reject("table \"" + o.alias + "\" is on the nullable side of a LEFT JOIN and its primary key column \"" + o.pk_names[i] + "\"" +
                     " has a type whose text form depends on settings (such as timestamptz)",
                 "The view keys such a table by the text of its primary key; use a key of another type.");
      }
      OutputColumn col;
      col.name = hidden_name("__ps_" + o.alias + "_key");
      col.type_sql = "text";
      col.is_key = true;
      col.source_expr = "ROW(" + row_args + ")::text";
      o.stored_keys.push_back(col.name);
      def.columns.push_back(col);
    }
  }
}

void check_connected(JoinGraph& graph, const std::map<int, Occurrence>& occs) {
  const Occurrence& first = occs.begin()->second;
  for (auto& [rt, o] : occs)
    if (graph.find(rt) != graph.find(first.rtindex))
      reject("tables \"" + first.alias + "\" and \"" + o.alias + "\" are not connected by an equality join condition",
             "Join every table to another one with ON a.x = b.y (cross joins are not supported).");
}

// The expression of a view column that reads only occurrence `rt`, as SQL over that table's row
// under the alias n (everything schema-qualified).
std::string local_expression_sql(Node* flat, int rt, Oid relid) {
  return pg_call([&] {
    Node* copy = (Node*)copyObjectImpl(flat);
    ChangeVarNodes(copy, rt, 1, 0);
    int nest = NewGUCNestLevel();
    set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    char* sql = deparse_expression(copy, deparse_context_for("n", relid), true, false);
    AtEOXact_GUC(true, nest);
    return sql;
  });
}

// Splits each occurrence's columns into structural ones (key, join and WHERE conditions, select-list
// expressions that combine tables) and value columns (select-list expressions of its row alone).
void classify_columns(Query* q, Definition& def, std::map<int, Occurrence>& occs) {
  std::map<int, std::set<int>> structural;
  collect_used_columns(q, (Node*)q->jointree, structural);
  size_t i = 0;
  ListCell* lc;
  foreach (lc, q->targetList) {
    TargetEntry* tle = (TargetEntry*)lfirst(lc);
    if (tle->resjunk || i >= def.columns.size()) continue;
    OutputColumn& col = def.columns[i++];
    Node* flat = pg_call([&] { return flatten_join_alias_vars(q, (Node*)tle->expr); });
    Bitmapset* rels = pg_call([&] { return pull_varnos(nullptr, flat); });
    int rt = -1;
    if (bms_get_singleton_member(rels, &rt) && occs.count(rt) && !col.is_key) {
      Occurrence& o = occs.at(rt);
      o.value_columns.push_back({col.name, local_expression_sql(flat, rt, o.relid), col.compare_as_text});
    } else {
      std::map<int, std::set<int>> vars;
      collect_used_columns(q, (Node*)tle->expr, vars);
      for (auto& [r, attnos] : vars) structural[r].insert(attnos.begin(), attnos.end());
    }
  }
  for (auto& [rt, o] : occs) {
    std::set<int> cols(structural[rt]);
    cols.insert(o.pk_attnums.begin(), o.pk_attnums.end());
    o.structural_attnums.assign(cols.begin(), cols.end());
  }
}

}  // namespace

Definition analyse_view_query(const std::string& text) {
  Query* q = parse_single_select(text);
  check_query_shape(q);
  std::map<int, Occurrence> occs;
  collect_base_tables(q, occs);
  JoinGraph graph;
  graph.parent.resize(list_length(q->rtable) + 1);
  std::iota(graph.parent.begin(), graph.parent.end(), 0);
  std::vector<JoinEdge> edges;
  walk_from(q, (Node*)q->jointree, 0, graph, occs, edges);
  check_connected(graph, occs);
  std::map<int, std::set<int>> used;
  collect_used_columns(q, (Node*)q->targetList, used);
  collect_used_columns(q, (Node*)q->jointree, used);

  Definition def;
  def.edges = edges;
  def.definition_sql = deparse(q, false);
  add_output_columns(q, def, occs);
  classify_columns(q, def, occs);
  add_key_columns(q, def, occs);
  def.source_sql = deparse(q, true);
  Query* unfiltered = (Query*)pg_call([&] { return copyObjectImpl(q); });
  strip_filters(unfiltered, (Node*)unfiltered->jointree);
  def.reach_sql = deparse(unfiltered, true);
  for (auto& [rt, o] : occs) {
    for (int attno : used[rt]) {
      Oid relid = o.relid;
      o.used_attnums.push_back(attno);
      o.used_columns.push_back(quoted(pg_call([&] { return get_attname(relid, attno, false); })));
      o.used_as_text.push_back(compare_as_text(pg_call([&] { return get_atttype(relid, attno); })));
    }
    def.occurrences.push_back(o);
  }
  return def;
}

// An equality edge that is exactly a single-column foreign key (checked immediately, validated)
// needs no advisory keys: no transaction can insert a row whose partner through it is uncommitted.
void mark_enforced_edges(Definition& def, const std::string& oids) {
  std::string sql = "SELECT c.oid::int8, c.conrelid::int8, pg_catalog.quote_ident(a.attname), c.confrelid::int8,"
                    " pg_catalog.quote_ident(fa.attname) FROM pg_catalog.pg_constraint c"
                    " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
                    " JOIN pg_catalog.pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]"
                    " WHERE c.contype = 'f' AND NOT c.condeferrable AND c.convalidated AND cardinality(c.conkey) = 1"
                    " AND c.conrelid = ANY('{" + oids + "}'::oid[]) AND c.confrelid = ANY('{" + oids + "}'::oid[])";
  pg_call([&] { SPI_execute(sql.c_str(), true, 0); });
  auto relid_of = [&](int rt) {
    for (auto& o : def.occurrences)
      if (o.rtindex == rt) return o.relid;
    return InvalidOid;
  };
  for (uint64 i = 0; i < SPI_processed; ++i) {
    auto text = [&](int col) { return std::string(pg_call([&] { return SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, col); })); };
    Oid con = (Oid)std::stoul(text(1)), child = (Oid)std::stoul(text(2)), parent = (Oid)std::stoul(text(4));
    std::string fk = text(3), pk = text(5);
    for (auto& e : def.edges) {
      for (int side = 0; side < 2; ++side) {
        int other = 1 - side;
        if (e.enforced || relid_of(e.rt[side]) != child || e.column[side] != fk || relid_of(e.rt[other]) != parent ||
            e.column[other] != pk)
          continue;
        e.enforced = true;
        e.child_side = side;
        def.relied_constraints.push_back(con);
      }
    }
  }
}

// Lock rank = length of the longest foreign-key chain from a table to its ancestors among the
// view's tables, so parents rank below children. Maintenance share-locks the rows of lower-ranked
// tables only: a child's writer waits for a concurrent parent writer, never the other way round.
void assign_lock_ranks(Definition& def) {
  std::string oids;
  for (auto& o : def.occurrences) oids += (oids.empty() ? "" : ",") + std::to_string(o.relid);
  std::string sql = "SELECT conrelid::oid::int8, confrelid::oid::int8 FROM pg_catalog.pg_constraint WHERE contype = 'f'"
                    " AND conrelid = ANY('{" + oids + "}'::oid[]) AND confrelid = ANY('{" + oids + "}'::oid[])"
                    " AND conrelid <> confrelid";
  pg_call([&] { SPI_execute(sql.c_str(), true, 0); });
  std::vector<std::pair<Oid, Oid>> edges;  // child -> parent
  for (uint64 i = 0; i < SPI_processed; ++i) {
    bool null;
    Oid child = (Oid)DatumGetInt64(pg_call([&] { return SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &null); }));
    Oid parent = (Oid)DatumGetInt64(pg_call([&] { return SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &null); }));
    edges.emplace_back(child, parent);
  }
  std::map<Oid, int> rank;
  for (auto& o : def.occurrences) rank[o.relid] = 0;
  for (size_t round = 0; round < rank.size(); ++round)  // bounded: FK cycles cannot loop forever
    for (auto& [child, parent] : edges) rank[child] = std::max(rank[child], std::min<int>(rank[parent] + 1, rank.size()));
  for (auto& o : def.occurrences) o.lock_rank = rank[o.relid];
  mark_enforced_edges(def, oids);
}

}  // namespace powersync::pg::immv
