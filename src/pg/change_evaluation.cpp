// The pure part of op generation (spec §2.2): source keys and rule results of one row change. Runs on
// the worker's evaluation thread, so it must not call Postgres (no palloc, elog or catalog access).
#include "powersync/pg/change_evaluation.h"

#include "powersync/protocol/checksum.h"

namespace powersync::pg {
namespace {

// Moves the tuple's values into the row (the tuple keeps its flags, not its values).
rules::Row to_row(const RelationInfo& rel, wire::Tuple& t) {
  rules::Row row;
  row.reserve(rel.columns.size());
  for (size_t i = 0; i < rel.columns.size() && i < t.values.size(); ++i)
    row.push_back({rel.columns[i], std::move(t.values[i])});
  return row;
}

Keys keys_of(const SourceTable& t, const RowChange& c) {
  const RelationInfo& rel = *c.relation;
  const std::vector<std::string>& key_cols = t.identity == 'f' ? rel.columns : t.identity_columns;
  Keys k;
  if (c.kind != RowChange::Kind::Insert && c.old_kind != 'n' && !key_cols.empty())
    k.before = source_key_of(rel, c.old_tuple, key_cols);
  if (c.kind == RowChange::Kind::Delete) return k;
  k.merged = c.new_tuple;
  if (c.old_kind == 'o') {  // REPLICA IDENTITY FULL: the old row is complete
    for (size_t i = 0; i < k.merged.values.size() && i < c.old_tuple.values.size(); ++i)
      if (k.merged.unchanged[i]) {
        k.merged.values[i] = c.old_tuple.values[i];
        k.merged.unchanged[i] = false;
      }
  }
  k.after = source_key_of(rel, k.merged, key_cols);
  if (c.kind == RowChange::Kind::Update && !k.before && !key_cols.empty()) k.before = k.after;
  return k;
}

void add_errors(std::vector<std::string>& warnings, const RelationInfo& rel, const std::vector<std::string>& errors) {
  for (const auto& e : errors) warnings.push_back("powersync: sync rules error on " + rel.schema + "." + rel.name + ": " + e);
}

}  // namespace

bool has_unchanged(const wire::Tuple& t) {
  for (bool u : t.unchanged)
    if (u) return true;
  return false;
}

void evaluate_change(const rules::SyncRules& rules, const SourceTable& t, const RowChange& c, ChangeEvaluation& out) {
  out.keys = keys_of(t, c);
  if (out.keys.after && !has_unchanged(out.keys.merged)) evaluate_new_row(rules, t, *c.relation, out);
}

void evaluate_new_row(const rules::SyncRules& rules, const SourceTable& t, const RelationInfo& rel,
                      ChangeEvaluation& out) {
  Keys& k = out.keys;
  rules::Row row = to_row(rel, k.merged);
  rules::SourceTable st{rel.schema, rel.name};
  out.subkey = subkey_of(t.id, *k.after);
  if (rules.is_data_table(st)) {
    rules::RowEvaluation ev = rules.evaluate_row(st, row);
    add_errors(out.warnings, rel, ev.errors);
    out.now.reserve(ev.rows.size());
    out.data.reserve(ev.rows.size());
    out.checksums.reserve(ev.rows.size());
    for (auto& r : ev.rows) {
      out.checksums.push_back(protocol::put_checksum(r.table, r.id, r.data));
      out.data.push_back(std::move(r.data));
      out.now.add(r.bucket, r.table, r.id);
    }
  }
  if (rules.is_parameter_table(st)) {
    rules::ParameterEvaluation pe = rules.evaluate_parameter_row(st, row);
    add_errors(out.warnings, rel, pe.errors);
    for (const auto& p : pe.lookups) {
      size_t i = 0;
      while (i < out.lookups.size() && out.lookups[i] != p.lookup) ++i;
      if (i == out.lookups.size()) {
        out.lookups.push_back(p.lookup);
        out.params.push_back("[" + p.bucket_parameters + "]");
      } else {
        out.params[i].insert(out.params[i].size() - 1, "," + p.bucket_parameters);
      }
    }
  }
  out.lookup_list = wire::encode_strings(out.lookups);
  // The image only serves the unchanged-TOAST markers of the row's next update, and only a value stored
  // out of line in this version can become one (REPLICA IDENTITY FULL sends the complete old row).
  if (t.identity != 'f' && k.merged.out_of_line) out.image = wire::encode_row_image(row);
  out.evaluated = true;
}

}  // namespace powersync::pg
