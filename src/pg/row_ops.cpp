// Op generation (spec §2.2): turns one decoded row change of one rule version into PUT/REMOVE ops,
// parameter lookup rows/tombstones and the new current_data state of the source row.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
#include <openssl/sha.h>

#include <random>

extern "C" {
#include "postgres.h"
#include "catalog/pg_type.h"
}

#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"
#include "powersync/pg/worker_log.h"
#include "powersync/protocol/checksum.h"

namespace powersync::pg {

std::vector<std::string> RelationInfo::key_columns() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < columns.size(); ++i)
    if (key[i]) out.push_back(columns[i]);
  return out;
}

namespace {

int column_index(const RelationInfo& rel, const std::string& name) {
  for (size_t i = 0; i < rel.columns.size(); ++i)
    if (rel.columns[i] == name) return static_cast<int>(i);
  return -1;
}

std::string random_key() {
  static std::mt19937_64 rng{std::random_device{}()};
  std::string key(16, '\0');
  for (int i = 0; i < 16; i += 8) {
    uint64_t r = rng();
    memcpy(&key[i], &r, 8);
  }
  return key;
}

// Moves the tuple's values into the row (the tuple keeps its flags, not its values).
rules::Row to_row(const RelationInfo& rel, wire::Tuple& t) {
  rules::Row row;
  row.reserve(rel.columns.size());
  for (size_t i = 0; i < rel.columns.size() && i < t.values.size(); ++i)
    row.push_back({rel.columns[i], std::move(t.values[i])});
  return row;
}

bool has_unchanged(const wire::Tuple& t) {
  for (bool u : t.unchanged)
    if (u) return true;
  return false;
}

// Fills unchanged-TOAST columns from a stored row image (by column name).
void fill_from_image(const RelationInfo& rel, wire::Tuple& t, const std::string& image) {
  rules::Row stored = wire::decode_row_image(image);
  for (size_t i = 0; i < t.values.size(); ++i) {
    if (!t.unchanged[i]) continue;
    if (const rules::Value* v = rules::find_column(stored, rel.columns[i])) {
      t.values[i] = *v;
      t.unchanged[i] = false;
    }
  }
}

}  // namespace

std::string source_key_of(const RelationInfo& rel, const wire::Tuple& tuple, const std::vector<std::string>& key_columns) {
  if (key_columns.empty()) return random_key();
  if (key_columns.size() == 1) {
    // A single integer key keeps its order (9 bytes: 'i', big-endian with the sign bit flipped), so rows
    // with increasing ids append to the right of current_data's primary key instead of landing at random
    // places in it. The hashed form below has 16 bytes, so the two never collide.
    int i = column_index(rel, key_columns[0]);
    if (i >= 0 && i < static_cast<int>(tuple.values.size()) && tuple.values[i].type() == rules::ValueType::Integer) {
      uint64_t v = static_cast<uint64_t>(tuple.values[i].as_integer()) ^ (uint64_t{1} << 63);
      std::string key(9, 'i');
      for (int b = 0; b < 8; ++b) key[1 + b] = static_cast<char>(v >> (56 - 8 * b));
      return key;
    }
  }
  std::string encoded;
  wire::Writer w(encoded);
  for (const auto& name : key_columns) {
    int i = column_index(rel, name);
    w.str(name);
    if (i < 0 || i >= static_cast<int>(tuple.values.size())) w.null_value();
    else w.value(tuple.values[i]);
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(encoded.data()), encoded.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), 16);
}

std::string subkey_of(int32_t table_id, const std::string& source_key) {
  static const char* hex = "0123456789abcdef";
  std::string s = std::to_string(table_id);
  s.push_back('/');
  for (unsigned char c : source_key) {
    s.push_back(hex[c >> 4]);
    s.push_back(hex[c & 15]);
  }
  return s;
}

namespace {

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

void add_remove(ChangeBatch& batch, int64_t version, const wire::BucketRefView& ref, const std::string& subkey) {
  batch.add_op(PendingRecord::Kind::Remove, version, ref.bucket, ref.table, ref.id, subkey, {},
               protocol::remove_checksum(subkey));
}

bool contains(const std::vector<std::string>& v, std::string_view x) {
  for (const auto& e : v)
    if (e == x) return true;
  return false;
}

}  // namespace

// Resolves each change's source table per version, computes its keys once, loads the current_data
// rows of all those keys in one probe pass, then applies the changes in order.
void Replicator::apply_changes(const std::vector<RowChange>& changes, RuleVersion* only) {
  struct Item {
    RuleVersion* version;
    SourceTable* table;
    const RowChange* change;
    Keys keys;
  };
  std::vector<Item> items;
  items.reserve(changes.size());
  for (const RowChange& c : changes)
    for (auto& [id, v] : versions_) {
      if (only && only != &v) continue;
      SourceTable* t = only ? &only->tables.at(c.relation->relid) : source_table_for(v, *c.relation);
      if (!t) continue;
      items.push_back({&v, t, &c, keys_of(*t, c)});
      Keys& k = items.back().keys;
      // Rows that must be new skip the current_data probe: a stream INSERT into a table keyed by a primary
      // key or unique replica-identity index, committed after the table's copy ended (the copy cannot have
      // seen it, and an earlier delete or key change of that key committed and was applied first), and
      // rows copied into a fresh snapshot. Should a row
      // exist after all (a deferrable key, a row the copy read twice), the insert fails on the primary key,
      // the round is retried, and ChangeBatch::probe_everything keeps probing from then on.
      bool unique_key = (t->identity == 'd' || t->identity == 'i') && !t->identity_columns.empty();
      if (c.from_snapshot) k.after_is_new = t->snapshot_fresh;
      else {
        t->snapshot_fresh = false;
        k.after_is_new = c.kind == RowChange::Kind::Insert && unique_key && t->snapshot_done &&
                         c.commit_lsn > t->snapshot_lsn;
      }
      if (ChangeBatch::probe_everything) k.after_is_new = false;
    }
  batch_.reserve(items.size());
  std::vector<std::pair<int32_t, std::string>> wanted;
  wanted.reserve(items.size());
  for (const Item& i : items) {
    if (i.table->identity == 'n' || (i.table->identity_columns.empty() && i.table->identity != 'f')) continue;
    if (i.keys.before) wanted.emplace_back(i.table->id, *i.keys.before);
    if (i.keys.after && i.keys.after != i.keys.before && !i.keys.after_is_new)
      wanted.emplace_back(i.table->id, *i.keys.after);
  }
  batch_.prefetch(wanted);
  for (Item& i : items) apply_change(*i.version, *i.table, *i.change, std::move(i.keys));
}

void Replicator::apply_change(RuleVersion& v, SourceTable& t, const RowChange& c, Keys k) {
  const RelationInfo& rel = *c.relation;
  bool keyed = t.identity == 'f' || !t.identity_columns.empty();
  int64_t version = v.id;
  // A copied chunk whose snapshot already saw this change wrote that row state (or a newer one): applying
  // the change again would repeat the copy's PUT, or put an older state after it.
  bool skip_after = false;
  if (!c.from_snapshot && !keyed && keyless_copy_saw(t, c)) return;
  if (!c.from_snapshot && !copied_.empty()) {
    if (k.before && copy_reflects(t.id, *k.before, c)) k.before.reset();
    skip_after = k.after && copy_reflects(t.id, *k.after, c);
  }
  // 1. A delete or key change removes everything the old row produced (spec §2.2 step 2).
  if (k.before) {
    CurrentRow& b = batch_.row(t.id, *k.before);
    if (has_unchanged(k.merged) && b.row_image) fill_from_image(rel, k.merged, *b.row_image);
    if (b.exists && (!k.after || *k.after != *k.before)) {
      std::string subkey = subkey_of(t.id, *k.before);
      wire::for_each_bucket_ref(b.buckets, [&](const wire::BucketRefView& ref) { add_remove(batch_, version, ref, subkey); });
      wire::for_each_string(b.lookups, [&](std::string_view l) { batch_.add_lookup(version, t.id, *k.before, l, "[]"); });
      bool stored = b.stored;
      uint64_t tid = b.tid;
      b = CurrentRow{};
      b.stored = stored;
      b.tid = tid;
      b.dirty = true;
    }
  }
  if (!k.after || skip_after) return;
  // 2. The new row: PUT for every result, REMOVE for every previous (bucket, row) not produced again.
  CurrentRow& a = keyed && !k.after_is_new ? batch_.row(t.id, *k.after) : batch_.fresh_row(t.id, *k.after);
  if (c.from_snapshot && a.exists) return;  // the stream already wrote a newer version of this row
  if (c.from_snapshot && copying_ && keyed) copying_->keys.insert(*k.after);
  if (has_unchanged(k.merged) && a.row_image) fill_from_image(rel, k.merged, *a.row_image);
  if (has_unchanged(k.merged) && !reread_unchanged(t, rel, *k.after, k.merged))
    report_unresolved_toast(rel, subkey_of(t.id, *k.after));
  rules::Row row = to_row(rel, k.merged);
  rules::SourceTable st{rel.schema, rel.name};
  std::string subkey = subkey_of(t.id, *k.after);
  wire::BucketRefList now;
  if (v.rules->is_data_table(st)) {
    rules::RowEvaluation ev = v.rules->evaluate_row(st, row);
    for (const auto& e : ev.errors) log_warning("powersync: sync rules error on " + rel.schema + "." + rel.name + ": " + e);
    now.reserve(ev.rows.size());
    for (auto& r : ev.rows) {
      batch_.add_op(PendingRecord::Kind::Put, version, r.bucket, r.table, r.id, subkey, r.data,
                    protocol::put_checksum(r.table, r.id, r.data));
      now.add(r.bucket, r.table, r.id);
    }
  }
  if (a.exists)
    wire::for_each_bucket_ref(a.buckets, [&](const wire::BucketRefView& ref) {
      if (!now.contains(ref)) add_remove(batch_, version, ref, subkey);
    });
  std::vector<std::string> lookups;
  if (v.rules->is_parameter_table(st)) {
    rules::ParameterEvaluation pe = v.rules->evaluate_parameter_row(st, row);
    for (const auto& e : pe.errors) log_warning("powersync: sync rules error on " + rel.schema + "." + rel.name + ": " + e);
    std::vector<std::string> params;  // per lookup: JSON array text of its parameter objects
    for (const auto& p : pe.lookups) {
      size_t i = 0;
      while (i < lookups.size() && lookups[i] != p.lookup) ++i;
      if (i == lookups.size()) {
        lookups.push_back(p.lookup);
        params.push_back("[" + p.bucket_parameters + "]");
      } else {
        params[i].insert(params[i].size() - 1, "," + p.bucket_parameters);
      }
    }
    for (size_t i = 0; i < lookups.size(); ++i) batch_.add_lookup(version, t.id, *k.after, lookups[i], params[i]);
  }
  if (a.exists)
    wire::for_each_string(a.lookups, [&](std::string_view l) {
      if (!contains(lookups, l)) batch_.add_lookup(version, t.id, *k.after, l, "[]");
    });
  std::string lookup_list = wire::encode_strings(lookups);
  // The image only serves the unchanged-TOAST markers of the row's next update, and only a value stored
  // out of line in this version can become one (REPLICA IDENTITY FULL sends the complete old row).
  std::optional<std::string> image;
  if (t.identity != 'f' && k.merged.out_of_line) image = wire::encode_row_image(row);
  // An update that leaves the stored state as it was (same buckets, lookups and image: the common case
  // of a row changing within its buckets) does not rewrite its current_data row at all.
  if (!a.exists || a.buckets != now.bytes() || a.lookups != lookup_list || a.row_image != image) a.dirty = true;
  a.exists = true;
  a.buckets = now.take();
  a.lookups = std::move(lookup_list);
  a.row_image = std::move(image);
}

// Whether a copied chunk wrote this key under a snapshot that saw the change's transaction. A chunk that
// wrote the key but did not see it no longer describes the row once the change is applied: forgotten.
// Chunks whose horizon the stream has passed are dropped (no later commit can be in their snapshots).
bool Replicator::copy_reflects(int32_t table_id, const std::string& key, const RowChange& c) {
  auto it = copied_.find(table_id);
  if (it == copied_.end()) return false;
  std::deque<CopiedChunk>& chunks = it->second;
  while (!chunks.empty() && chunks.front().horizon <= c.commit_lsn && &chunks.front() != copying_) chunks.pop_front();
  bool reflected = false;
  for (CopiedChunk& chunk : chunks) {
    if (!chunk.keys.contains(key)) continue;
    if (chunk.sees(c.xid)) reflected = true;
    else chunk.keys.erase(key);
  }
  if (chunks.empty()) copied_.erase(it);
  return reflected;
}

// A table without row identity is copied under one snapshot (snapshot_step): a stream change that
// snapshot saw, or that reaches a table not copied yet (its copy will see it), is in the copy already.
bool Replicator::keyless_copy_saw(SourceTable& t, const RowChange& c) {
  if (!t.snapshot_done) {
    skipped_for_copy_[t.id].insert(c.xid);
    return true;
  }
  auto it = copied_.find(t.id);
  if (it == copied_.end()) return false;
  std::deque<CopiedChunk>& chunks = it->second;
  while (!chunks.empty() && chunks.front().horizon <= c.commit_lsn) chunks.pop_front();
  bool saw = false;
  for (const CopiedChunk& chunk : chunks) saw = saw || chunk.sees(c.xid);
  if (chunks.empty()) copied_.erase(it);
  return saw;
}

void Replicator::apply_truncate(RuleVersion& v, SourceTable& t) {
  copied_.erase(t.id);  // the rows the chunks wrote are gone: the stream re-adds what follows
  batch_.flush();
  static spi::Statement select_rows(
      "SELECT source_key, buckets, lookups FROM powersync.current_data WHERE source_table_id = $1", {INT4OID});
  static spi::Statement delete_rows("DELETE FROM powersync.current_data WHERE source_table_id = $1", {INT4OID});
  Datum arg = Int32GetDatum(t.id);
  uint64_t n = select_rows.run(&arg);
  for (uint64_t i = 0; i < n; ++i) {
    std::string key = spi::bytes(i, 0).value_or("");
    std::string subkey = subkey_of(t.id, key);
    wire::for_each_bucket_ref(spi::bytes(i, 1).value_or(""),
                              [&](const wire::BucketRefView& ref) { add_remove(batch_, v.id, ref, subkey); });
    wire::for_each_string(spi::bytes(i, 2).value_or(""), [&](std::string_view l) { batch_.add_lookup(v.id, t.id, key, l, "[]"); });
  }
  spi::release();
  delete_rows.run(&arg);
  batch_.flush();
}

}  // namespace powersync::pg
