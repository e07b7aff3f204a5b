// The change batch of a replication round: a current_data cache (prefetched in bulk) and the pending
// ops/lookups, written in bulk at flush time (ops packed into per-bucket chunks, chunk_store.h). Op ids are taken
// from powersync.op_id_sequence as one block per flush, in generation order; cumulative checksums
// continue bucket_state.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
}

#include <algorithm>
#include <unordered_map>

#include "powersync/pg/bulk_write.h"
#include "powersync/pg/chunk_store.h"
#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"

namespace powersync::pg {
namespace {

std::string cache_key(int32_t table_id, const std::string& key) {
  std::string k(reinterpret_cast<const char*>(&table_id), 4);
  k += key;
  return k;
}

std::string varlena_bytes(Datum d) {
  const struct varlena* v = reinterpret_cast<const struct varlena*>(DatumGetPointer(d));
  return std::string(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
}

// One primary-key probe per key through a single index scan descriptor (bulk_write.cpp). `slots[i]` is
// the cache entry of keys[i], created (absent) by the caller: found rows fill it, the rest stay absent, so
// that they are not looked up again.
void load_rows(const std::vector<CurrentRow*>& slots, const std::vector<int32_t>& ids,
               const std::vector<std::string>& keys) {
  std::vector<const char*> data(keys.size());
  std::vector<size_t> lengths(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    data[i] = keys[i].data();
    lengths[i] = keys[i].size();
  }
  bulk::FoundRow* found = nullptr;
  size_t n = bulk::probe_current_data(keys.size(), ids.data(), data.data(), lengths.data(), &found);
  for (size_t i = 0; i < n; ++i) {
    const bulk::FoundRow& f = found[i];
    CurrentRow& r = *slots[f.key];
    r.exists = true;
    r.stored = true;
    r.tid = f.tid;
    if (!f.nulls[2]) r.row_image = varlena_bytes(f.values[2]);
    r.buckets = wire::decode_bucket_refs(f.nulls[3] ? std::string() : varlena_bytes(f.values[3]));
    r.lookups = wire::decode_strings(f.nulls[4] ? std::string() : varlena_bytes(f.values[4]));
  }
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

bool ChangeBatch::probe_everything = false;

// One hash lookup per key: the entry is created here (absent) and filled in place by the probe (entries
// of an unordered_map keep their address).
void ChangeBatch::prefetch(const std::vector<std::pair<int32_t, std::string>>& keys) {
  std::vector<int32_t> ids;
  std::vector<std::string> wanted;
  std::vector<CurrentRow*> slots;
  rows_.reserve(rows_.size() + keys.size());
  for (const auto& [id, key] : keys) {
    auto [it, added] = rows_.try_emplace(cache_key(id, key));
    if (!added) continue;
    ids.push_back(id);
    wanted.push_back(key);
    slots.push_back(&it->second);
  }
  if (ids.empty()) return;
  try {
    in_flush_context([&] { load_rows(slots, ids, wanted); });
  } catch (...) {
    for (size_t i = 0; i < ids.size(); ++i) rows_.erase(cache_key(ids[i], wanted[i]));  // not loaded after all
    throw;
  }
}

CurrentRow& ChangeBatch::row(int32_t table_id, const std::string& key) {
  auto [it, added] = rows_.try_emplace(cache_key(table_id, key));
  if (added) {
    try {
      in_flush_context([&] { load_rows({&it->second}, {table_id}, {key}); });
    } catch (...) {
      rows_.erase(it);
      throw;
    }
  }
  return it->second;
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

namespace {

Datum varlena_datum(const std::string& s) {  // bytea and text share the representation
  struct varlena* v = static_cast<struct varlena*>(palloc(s.size() + VARHDRSZ));
  SET_VARSIZE(v, s.size() + VARHDRSZ);
  memcpy(VARDATA(v), s.data(), s.size());
  return PointerGetDatum(v);
}

// current_data rows to insert or update, in column order.
struct CurrentDataRows : bulk::RowSource {
  std::vector<int32_t> ids;
  std::vector<std::string> keys, images, buckets, lookups;
  std::vector<bool> image_null;
  std::vector<uint64_t> tids;
  void fill(size_t i, Datum* values, bool* nulls) noexcept override {
    values[0] = Int32GetDatum(ids[i]);
    values[1] = varlena_datum(keys[i]);
    values[2] = image_null[i] ? Datum(0) : varlena_datum(images[i]);
    values[3] = varlena_datum(buckets[i]);
    values[4] = varlena_datum(lookups[i]);
    nulls[0] = nulls[1] = nulls[3] = nulls[4] = false;
    nulls[2] = image_null[i];
  }
};

}  // namespace

// New rows are appended, stored rows are updated or deleted in place by the tid their probe found.
void ChangeBatch::write_current_data() {
  CurrentDataRows fresh, stored;
  std::vector<uint64_t> deleted;
  for (const auto& [ck, r] : rows_) {
    if (!r.dirty) continue;
    if (!r.exists) {
      if (r.stored) deleted.push_back(r.tid);  // else created and deleted within this batch
      continue;
    }
    int32_t id;
    memcpy(&id, ck.data(), 4);
    CurrentDataRows& out = r.stored ? stored : fresh;
    out.ids.push_back(id);
    out.keys.push_back(ck.substr(4));
    out.images.push_back(r.row_image.value_or(""));
    out.image_null.push_back(!r.row_image.has_value());
    out.buckets.push_back(wire::encode_bucket_refs(r.buckets));
    out.lookups.push_back(wire::encode_strings(r.lookups));
    out.tids.push_back(r.tid);
  }
  bulk::delete_rows("current_data", deleted.size(), deleted.data());
  bulk::update_rows("current_data", 5, stored.ids.size(), stored.tids.data(), stored);
  try {
    bulk::insert_rows("current_data", 5, fresh.ids.size(), fresh);
  } catch (const PgError& e) {
    if (e.data() && e.data()->sqlerrcode == ERRCODE_UNIQUE_VIOLATION) probe_everything = true;
    throw;
  }
}

namespace {

// Ops of a flush with their op ids and running totals, before they are packed into chunks.
struct OpRows {
  std::vector<const PendingRecord*> records;
  std::vector<int64_t> op_ids, cum_checksums, cum_counts;
};

// Lookup rows in bucket_parameters column order: id, sync_rules_id, source_table_id, source_key,
// lookup, bucket_parameters.
struct LookupRows : bulk::RowSource {
  std::vector<const PendingRecord*> records;
  std::vector<int64_t> ids;
  void fill(size_t i, Datum* values, bool* nulls) noexcept override {
    const PendingRecord& r = *records[i];
    for (int c = 0; c < 6; ++c) nulls[c] = false;
    values[0] = Int64GetDatum(ids[i]);
    values[1] = Int64GetDatum(r.version);
    values[2] = Int32GetDatum(r.source_table_id);
    values[3] = varlena_datum(r.source_key);
    values[4] = varlena_datum(r.lookup);
    values[5] = varlena_datum(r.parameters);
  }
};

// Packs the ops into chunks of one bucket each (op_chunk.h), in (bucket, op_id) order: each bucket's
// ops of a flush are consecutive op-id-wise within the bucket, so one chunk row carries many of them.
std::vector<chunk::ChunkRow>& pack_chunks(const OpRows& ops, chunk::Builder& builder) {
  std::vector<size_t> order(ops.records.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ops.records[a]->bucket < ops.records[b]->bucket; });
  for (size_t i : order) {
    const PendingRecord& r = *ops.records[i];
    bool put = r.kind == PendingRecord::Kind::Put;
    chunk::Op op;
    op.op_id = ops.op_ids[i];
    op.kind = put ? chunk::OpKind::Put : chunk::OpKind::Remove;
    op.checksum = r.checksum;
    op.object_type = std::string_view(r.table);
    op.object_id = std::string_view(r.id);
    op.subkey = std::string_view(r.subkey);
    if (put) op.data = std::string_view(r.data);
    op.cum_checksum = static_cast<uint32_t>(ops.cum_checksums[i]);
    op.cum_count = ops.cum_counts[i];
    builder.add(r.bucket, r.version, op);
  }
  return builder.finish();
}

}  // namespace

// Op ids in generation order, cumulative checksums continuing bucket_state, then one bucket_state
// upsert per touched bucket.
void ChangeBatch::write_records() {
  if (records_.empty()) return;
  static spi::Statement load_state("SELECT bucket, checksum, count FROM powersync.bucket_state WHERE bucket = ANY($1)",
                                   {TEXTARRAYOID});
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
  OpRows ops;
  LookupRows lookups;
  ops.records.reserve(records_.size());
  for (const auto& r : records_) {
    int64_t op_id = next_id++;
    max_op_id_ = op_id;
    if (r.kind == PendingRecord::Kind::Lookup) {
      lookups.records.push_back(&r);
      lookups.ids.push_back(op_id);
      continue;
    }
    State& s = states[r.bucket];
    s.version = r.version;
    s.last_op = op_id;
    s.checksum += r.checksum;  // wrapping u32 sum
    s.count += 1;
    ops.records.push_back(&r);
    ops.op_ids.push_back(op_id);
    ops.cum_checksums.push_back(s.checksum);
    ops.cum_counts.push_back(s.count);
  }
  if (!ops.records.empty()) {
    chunk::Builder builder;
    chunk::insert_chunks(pack_chunks(ops, builder));
    ops_written_ += static_cast<int64_t>(ops.records.size());
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
  if (!lookups.records.empty()) {
    bulk::insert_rows("bucket_parameters", 6, lookups.records.size(), lookups);
    ops_written_ += static_cast<int64_t>(lookups.records.size());
  }
}

}  // namespace powersync::pg
