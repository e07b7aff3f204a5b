// The change batch of a replication round: a current_data cache (prefetched in bulk) and the pending
// ops/lookups, written with one array-parameter statement per table at flush time. Op ids are taken
// from powersync.op_id_sequence as one block per flush, in generation order; cumulative checksums
// continue bucket_state.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
}

#include <unordered_map>

#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"

namespace powersync::pg {
namespace {

std::string cache_key(int32_t table_id, const std::string& key) {
  std::string k(reinterpret_cast<const char*>(&table_id), 4);
  k += key;
  return k;
}

void load_rows(std::unordered_map<std::string, CurrentRow>& rows, const std::vector<int32_t>& ids,
               const std::vector<std::string>& keys) {
  static spi::Statement fetch(
      // One primary-key probe per key (OFFSET 0 keeps the planner from turning this into a hash join
      // over the whole of current_data).
      "SELECT c.source_table_id, c.source_key, c.row_image, c.buckets, c.lookups FROM unnest($1::int4[], "
      "$2::bytea[]) AS d(t, k), LATERAL (SELECT * FROM powersync.current_data c WHERE c.source_table_id = d.t "
      "AND c.source_key = d.k OFFSET 0) c",
      {INT4ARRAYOID, BYTEAARRAYOID});
  Datum args[2] = {spi::int4_array(ids), spi::bytea_array(keys)};
  uint64_t n = fetch.run(args);
  for (uint64_t i = 0; i < n; ++i) {
    CurrentRow& r = rows[cache_key(static_cast<int32_t>(spi::int64_at(i, 0)), spi::bytes(i, 1).value_or(""))];
    r.exists = true;
    r.stored = true;
    r.row_image = spi::bytes(i, 2);
    r.buckets = wire::decode_bucket_refs(spi::bytes(i, 3).value_or(""));
    r.lookups = wire::decode_strings(spi::bytes(i, 4).value_or(""));
  }
  spi::release();
  // Keys not found are cached as absent so that they are not looked up again.
  for (size_t i = 0; i < ids.size(); ++i) rows.try_emplace(cache_key(ids[i], keys[i]));
}

Oid op_id_sequence() {
  return pg_call([] { return get_relname_relid("op_id_sequence", get_namespace_oid("powersync", false)); });
}

// Takes n consecutive op ids in one step (one nextval + one setval instead of n nextvals). Only the
// replication worker of the database takes ids from this sequence, so nothing can interleave between the
// two calls; both are WAL-logged like nextval, and ids of an aborted round are simply skipped.
int64_t reserve_op_ids(Oid seq, int64_t n) {
  return pg_call([&] {
    int64_t first = nextval_internal(seq, false);
    if (n > 1) DirectFunctionCall2(setval_oid, ObjectIdGetDatum(seq), Int64GetDatum(first + n - 1));
    return first;
  });
}

// Runs a flush under its own memory context so that parameter arrays do not accumulate in a long round.
template <typename F>
void in_flush_context(F&& fn) {
  MemoryContext flush_ctx = pg_call([] {
    return AllocSetContextCreate(CurrentMemoryContext, "powersync flush", ALLOCSET_DEFAULT_SIZES);
  });
  MemoryContext old = MemoryContextSwitchTo(flush_ctx);
  try {
    fn();
  } catch (...) {
    MemoryContextSwitchTo(old);
    throw;
  }
  MemoryContextSwitchTo(old);
  MemoryContextDelete(flush_ctx);
}

}  // namespace

void ChangeBatch::prefetch(const std::vector<std::pair<int32_t, std::string>>& keys) {
  std::vector<int32_t> ids;
  std::vector<std::string> wanted;
  for (const auto& [id, key] : keys) {
    if (rows_.count(cache_key(id, key))) continue;
    ids.push_back(id);
    wanted.push_back(key);
  }
  if (ids.empty()) return;
  in_flush_context([&] { load_rows(rows_, ids, wanted); });
}

CurrentRow& ChangeBatch::row(int32_t table_id, const std::string& key) {
  auto it = rows_.find(cache_key(table_id, key));
  if (it != rows_.end()) return it->second;
  in_flush_context([&] { load_rows(rows_, {table_id}, {key}); });
  return rows_[cache_key(table_id, key)];
}

CurrentRow& ChangeBatch::fresh_row(int32_t table_id, const std::string& key) { return rows_[cache_key(table_id, key)]; }

void ChangeBatch::drop_table(int32_t table_id) {
  for (auto it = rows_.begin(); it != rows_.end();) {
    int32_t id;
    memcpy(&id, it->first.data(), 4);
    if (id == table_id) it = rows_.erase(it);
    else ++it;
  }
}

void ChangeBatch::flush() {
  if (rows_.empty() && records_.empty()) return;
  in_flush_context([&] {
    write_current_data();
    write_records();
  });
  rows_.clear();
  records_.clear();
}

void ChangeBatch::write_current_data() {
  static spi::Statement upsert(
      "INSERT INTO powersync.current_data (source_table_id, source_key, row_image, buckets, lookups) "
      "SELECT * FROM unnest($1::int4[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[]) "
      "ON CONFLICT (source_table_id, source_key) DO UPDATE SET row_image = EXCLUDED.row_image, "
      "buckets = EXCLUDED.buckets, lookups = EXCLUDED.lookups",
      {INT4ARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID});
  static spi::Statement insert(
      "INSERT INTO powersync.current_data (source_table_id, source_key, row_image, buckets, lookups) "
      "SELECT * FROM unnest($1::int4[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[])",
      {INT4ARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID});
  static spi::Statement remove(
      "DELETE FROM powersync.current_data c USING unnest($1::int4[], $2::bytea[]) AS d(t, k) "
      "WHERE c.source_table_id = d.t AND c.source_key = d.k",
      {INT4ARRAYOID, BYTEAARRAYOID});
  // New rows go through a plain INSERT (no conflict check); only stored rows need the upsert.
  struct Rows {
    std::vector<int32_t> ids;
    std::vector<std::string> keys, images, buckets, lookups;
    std::vector<bool> image_null;
  } fresh, stored;
  std::vector<int32_t> del_ids;
  std::vector<std::string> del_keys;
  for (const auto& [ck, r] : rows_) {
    if (!r.dirty) continue;
    int32_t id;
    memcpy(&id, ck.data(), 4);
    std::string key = ck.substr(4);
    if (!r.exists) {
      if (!r.stored) continue;  // created and deleted within this batch
      del_ids.push_back(id);
      del_keys.push_back(std::move(key));
      continue;
    }
    Rows& out = r.stored ? stored : fresh;
    out.ids.push_back(id);
    out.keys.push_back(std::move(key));
    out.images.push_back(r.row_image.value_or(""));
    out.image_null.push_back(!r.row_image.has_value());
    out.buckets.push_back(wire::encode_bucket_refs(r.buckets));
    out.lookups.push_back(wire::encode_strings(r.lookups));
  }
  if (!del_ids.empty()) {
    Datum args[2] = {spi::int4_array(del_ids), spi::bytea_array(del_keys)};
    remove.run(args);
  }
  for (Rows* rows : {&fresh, &stored}) {
    if (rows->ids.empty()) continue;
    Datum args[5] = {spi::int4_array(rows->ids), spi::bytea_array(rows->keys),
                     spi::bytea_array(rows->images, &rows->image_null), spi::bytea_array(rows->buckets),
                     spi::bytea_array(rows->lookups)};
    (rows == &fresh ? insert : upsert).run(args);
  }
}

void ChangeBatch::write_records() {
  if (records_.empty()) return;
  static spi::Statement load_state("SELECT bucket, checksum, count FROM powersync.bucket_state WHERE bucket = ANY($1)",
                                   {TEXTARRAYOID});
  static spi::Statement insert_ops(
      "INSERT INTO powersync.bucket_data (bucket, op_id, sync_rules_id, op, object_type, object_id, subkey, data, "
      "checksum, cum_checksum, cum_count) SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], "
      "$5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[])",
      {TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
       INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID});
  static spi::Statement insert_lookups(
      "INSERT INTO powersync.bucket_parameters (id, sync_rules_id, source_table_id, source_key, lookup, "
      "bucket_parameters) SELECT * FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::bytea[], $5::text[], $6::text[])",
      {INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID, BYTEAARRAYOID, TEXTARRAYOID, TEXTARRAYOID});
  static spi::Statement save_state(
      "INSERT INTO powersync.bucket_state (bucket, sync_rules_id, last_op, checksum, count) "
      "SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) "
      "ON CONFLICT (bucket) DO UPDATE SET last_op = EXCLUDED.last_op, checksum = EXCLUDED.checksum, count = EXCLUDED.count",
      {TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID});

  struct State { int64_t version = 0, last_op = 0; uint32_t checksum = 0; int64_t count = 0; };
  std::unordered_map<std::string, State> states;
  std::vector<std::string> names;
  for (const auto& r : records_)
    if (r.kind != PendingRecord::Kind::Lookup && states.try_emplace(r.bucket).second) names.push_back(r.bucket);
  if (!names.empty()) {
    Datum arg = spi::text_array(names);
    uint64_t n = load_state.run(&arg);
    for (uint64_t i = 0; i < n; ++i) {
      State& s = states[spi::text(i, 0).value_or("")];
      s.checksum = static_cast<uint32_t>(spi::int64_at(i, 1));
      s.count = spi::int64_at(i, 2);
    }
    spi::release();
  }

  int64_t next_id = reserve_op_ids(op_id_sequence(), static_cast<int64_t>(records_.size()));
  std::vector<std::string> o_bucket, o_op, o_type, o_id, o_subkey, o_data, l_key, l_lookup, l_params;
  std::vector<int64_t> o_opid, o_version, o_checksum, o_cum, o_count, l_id, l_version;
  std::vector<int32_t> l_table;
  std::vector<bool> o_data_null;
  for (auto& r : records_) {
    int64_t op_id = next_id++;
    max_op_id_ = op_id;
    if (r.kind == PendingRecord::Kind::Lookup) {
      l_id.push_back(op_id);
      l_version.push_back(r.version);
      l_table.push_back(r.source_table_id);
      l_key.push_back(std::move(r.source_key));
      l_lookup.push_back(std::move(r.lookup));
      l_params.push_back(std::move(r.parameters));
      continue;
    }
    State& s = states[r.bucket];
    s.version = r.version;
    s.last_op = op_id;
    s.checksum += r.checksum;  // wrapping u32 sum
    s.count += 1;
    o_opid.push_back(op_id);
    o_version.push_back(r.version);
    o_op.push_back(r.kind == PendingRecord::Kind::Put ? "PUT" : "REMOVE");
    o_checksum.push_back(r.checksum);
    o_cum.push_back(s.checksum);
    o_count.push_back(s.count);
    o_data_null.push_back(r.kind != PendingRecord::Kind::Put);
    o_bucket.push_back(std::move(r.bucket));
    o_type.push_back(std::move(r.table));
    o_id.push_back(std::move(r.id));
    o_subkey.push_back(std::move(r.subkey));
    o_data.push_back(std::move(r.data));
  }
  if (!o_opid.empty()) {
    Datum args[11] = {spi::text_array(o_bucket), spi::int8_array(o_opid), spi::int8_array(o_version),
                      spi::text_array(o_op), spi::text_array(o_type), spi::text_array(o_id),
                      spi::text_array(o_subkey), spi::text_array(o_data, &o_data_null), spi::int8_array(o_checksum),
                      spi::int8_array(o_cum), spi::int8_array(o_count)};
    insert_ops.run(args);
    ops_written_ += static_cast<int64_t>(o_opid.size());
    std::vector<std::string> s_bucket;
    std::vector<int64_t> s_version, s_last, s_checksum, s_count;
    for (auto& [name, s] : states) {
      if (s.last_op == 0) continue;
      s_bucket.push_back(name);
      s_version.push_back(s.version);
      s_last.push_back(s.last_op);
      s_checksum.push_back(s.checksum);
      s_count.push_back(s.count);
    }
    Datum sargs[5] = {spi::text_array(s_bucket), spi::int8_array(s_version), spi::int8_array(s_last),
                      spi::int8_array(s_checksum), spi::int8_array(s_count)};
    save_state.run(sargs);
  }
  if (!l_id.empty()) {
    Datum args[6] = {spi::int8_array(l_id), spi::int8_array(l_version), spi::int4_array(l_table),
                     spi::bytea_array(l_key), spi::text_array(l_lookup), spi::text_array(l_params)};
    insert_lookups.run(args);
    ops_written_ += static_cast<int64_t>(l_id.size());
  }
}

}  // namespace powersync::pg
