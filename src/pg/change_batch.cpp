// The change batch of a replication round: a current_data cache (prefetched in bulk) and the pending
// ops/lookups, written in bulk at flush time (ops packed into per-bucket chunks, chunk_store.h). Op ids are taken
// from powersync.op_id_sequence as one block per flush, in generation order; cumulative checksums continue
// the buckets' running totals, kept in memory across the flushes of a transaction and written to
// bucket_state once, at its end.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
}

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "powersync/pg/bulk_write.h"
#include "powersync/pg/chunk_store.h"
#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"

namespace powersync::pg {
namespace {

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
    r.buckets = f.nulls[3] ? wire::empty_list() : varlena_bytes(f.values[3]);
    r.lookups = f.nulls[4] ? wire::empty_list() : varlena_bytes(f.values[4]);
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

const std::string& ChangeBatch::cache_key(int32_t table_id, const std::string& key) {
  key_buf_.assign(reinterpret_cast<const char*>(&table_id), 4);
  key_buf_ += key;
  return key_buf_;
}

// A find first (no key copy for cached rows); a missing key's entry is created here (absent) and filled in
// place by the probe (entries of an unordered_map keep their address).
void ChangeBatch::prefetch(const std::vector<std::pair<int32_t, std::string>>& keys) {
  std::vector<int32_t> ids;
  std::vector<std::string> wanted;
  std::vector<CurrentRow*> slots;
  reserve(keys.size());
  for (const auto& [id, key] : keys) {
    if (rows_.find(cache_key(id, key)) != rows_.end()) continue;
    auto it = rows_.try_emplace(key_buf_).first;
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
  auto it = rows_.find(cache_key(table_id, key));
  if (it != rows_.end()) return it->second;
  it = rows_.try_emplace(key_buf_).first;
  try {
    in_flush_context([&] { load_rows({&it->second}, {table_id}, {key}); });
  } catch (...) {
    rows_.erase(it);
    throw;
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

void ChangeBatch::add_op(PendingRecord::Kind kind, int64_t version, std::string_view bucket, std::string_view table,
                         std::string_view id, std::string_view subkey, std::string_view data, uint32_t checksum) {
  PendingRecord r;
  r.kind = kind;
  r.version = version;
  auto it = bucket_slot_.find(bucket);
  if (it == bucket_slot_.end()) {
    it = bucket_slot_.emplace(bytes_.copy(bucket), static_cast<uint32_t>(bucket_names_.size())).first;
    bucket_names_.emplace_back(bucket);
  }
  r.bucket = it->second;
  r.checksum = checksum;
  r.table = bytes_.copy(table);
  r.id = bytes_.copy(id);
  r.subkey = bytes_.copy(subkey);
  if (kind == PendingRecord::Kind::Put) r.data = bytes_.copy(data);
  records_.push_back(r);
}

void ChangeBatch::add_lookup(int64_t version, int32_t table_id, std::string_view source_key, std::string_view lookup,
                             std::string_view parameters) {
  PendingRecord r;
  r.kind = PendingRecord::Kind::Lookup;
  r.version = version;
  r.source_table_id = table_id;
  r.source_key = bytes_.copy(source_key);
  r.lookup = bytes_.copy(lookup);
  r.parameters = bytes_.copy(parameters);
  records_.push_back(r);
}

void ChangeBatch::flush() {
  if (rows_.empty() && records_.empty()) return;
  in_flush_context([&] {
    write_current_data();
    write_records();
  });
  RowCache(&row_memory_).swap(rows_);  // the old entries are destroyed before their memory is released
  row_memory_.release();
  records_.clear();
  bucket_slot_.clear();
  bucket_names_.clear();
  bytes_.clear();
}

namespace {

Datum varlena_datum(const char* data, size_t size) {  // bytea and text share the representation
  struct varlena* v = static_cast<struct varlena*>(palloc(size + VARHDRSZ));
  SET_VARSIZE(v, size + VARHDRSZ);
  memcpy(VARDATA(v), data, size);
  return PointerGetDatum(v);
}

Datum varlena_datum(std::string_view s) { return varlena_datum(s.data(), s.size()); }

// current_data rows to insert or update, in column order: views of the cache entries (key: 4 bytes table
// id + source key; bucket and lookup lists already encoded).
struct CurrentDataRows : bulk::RowSource {
  std::vector<const std::string*> keys;
  std::vector<const CurrentRow*> rows;
  std::vector<uint64_t> tids;
  void add(const std::string& ck, const CurrentRow& r) {
    keys.push_back(&ck);
    rows.push_back(&r);
    tids.push_back(r.tid);
  }
  void fill(size_t i, Datum* values, bool* nulls) noexcept override {
    const std::string& ck = *keys[i];
    const CurrentRow& r = *rows[i];
    int32_t id;
    memcpy(&id, ck.data(), 4);
    values[0] = Int32GetDatum(id);
    values[1] = varlena_datum(ck.data() + 4, ck.size() - 4);
    values[2] = r.row_image ? varlena_datum(*r.row_image) : Datum(0);
    values[3] = varlena_datum(r.buckets);
    values[4] = varlena_datum(r.lookups);
    nulls[0] = nulls[1] = nulls[3] = nulls[4] = false;
    nulls[2] = !r.row_image;
  }
};

// A new current_data row's place in primary key order, (table id, source key bytes), as two integers
// compared before the key bytes: most keys differ within their first 12 bytes (integer keys have 9, hashed
// ones 16 random bytes), so the sort compares words instead of calling memcmp on every comparison.
struct InsertOrder {
  uint64_t hi = 0, lo = 0;  // table id (sign flipped) and key bytes 0-3 | key bytes 4-11; zero-padded
  const std::pair<const std::string, CurrentRow>* entry = nullptr;
  static InsertOrder of(const std::pair<const std::string, CurrentRow>* e) {
    const std::string& ck = e->first;  // 4 bytes table id + source key
    int32_t id;
    memcpy(&id, ck.data(), 4);
    unsigned char key[12] = {0};
    memcpy(key, ck.data() + 4, std::min<size_t>(ck.size() - 4, 12));
    InsertOrder o;
    o.hi = static_cast<uint64_t>(static_cast<uint32_t>(id) ^ 0x80000000u) << 32;
    for (int b = 0; b < 4; ++b) o.hi |= static_cast<uint64_t>(key[b]) << (24 - 8 * b);
    for (int b = 0; b < 8; ++b) o.lo |= static_cast<uint64_t>(key[4 + b]) << (56 - 8 * b);
    o.entry = e;
    return o;
  }
  bool operator<(const InsertOrder& o) const {
    if (hi != o.hi) return hi < o.hi;
    if (lo != o.lo) return lo < o.lo;
    return std::string_view(entry->first).substr(4) < std::string_view(o.entry->first).substr(4);
  }
};

}  // namespace

// New rows are appended, stored rows are updated or deleted in place by the tid their probe found.
void ChangeBatch::write_current_data() {
  using Entry = std::pair<const std::string, CurrentRow>;
  std::vector<const Entry*> inserts, updates;
  std::vector<uint64_t> deleted;
  for (const Entry& e : rows_) {
    const CurrentRow& r = e.second;
    if (!r.dirty) continue;
    if (!r.exists) {
      if (r.stored) deleted.push_back(r.tid);  // else created and deleted within this batch
      continue;
    }
    (r.stored ? updates : inserts).push_back(&e);
  }
  // New rows in primary key order (table id, then source key bytes): the index entries of a batch of
  // increasing keys then append to the right edge of the B-tree instead of splitting pages all over the
  // batch's key range in hash order. Updates and deletes in heap order.
  std::vector<InsertOrder> order(inserts.size());
  for (size_t i = 0; i < inserts.size(); ++i) order[i] = InsertOrder::of(inserts[i]);
  std::sort(order.begin(), order.end());
  std::sort(updates.begin(), updates.end(), [](const Entry* a, const Entry* b) { return a->second.tid < b->second.tid; });
  std::sort(deleted.begin(), deleted.end());
  CurrentDataRows fresh, stored;
  for (const InsertOrder& o : order) fresh.add(o.entry->first, o.entry->second);
  for (const Entry* e : updates) stored.add(e->first, e->second);
  bulk::delete_rows("current_data", deleted.size(), deleted.data());
  bulk::update_rows("current_data", 5, stored.rows.size(), stored.tids.data(), stored);
  try {
    bulk::insert_rows("current_data", 5, fresh.rows.size(), fresh);
  } catch (const PgError& e) {
    if (e.data() && e.data()->sqlerrcode == ERRCODE_UNIQUE_VIOLATION) probe_everything = true;
    throw;
  }
}

namespace {

// Ops of a flush with their op ids and running totals, before they are packed into chunks. `rank`: the
// position of the op's bucket in bucket name order (one rank per bucket of the flush).
struct OpRows {
  std::vector<const PendingRecord*> records;
  std::vector<int64_t> op_ids, cum_checksums, cum_counts;
  std::vector<uint32_t> rank;
  size_t buckets = 0;
  const std::vector<std::string>& names;  // bucket names by PendingRecord::bucket
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
// A counting sort by bucket rank (stable: op ids stay increasing) instead of comparing bucket names.
std::vector<chunk::ChunkRow>& pack_chunks(const OpRows& ops, chunk::Builder& builder) {
  std::vector<size_t> start(ops.buckets + 1, 0);
  for (uint32_t r : ops.rank) ++start[r + 1];
  for (size_t b = 0; b < ops.buckets; ++b) start[b + 1] += start[b];
  std::vector<size_t> order(ops.records.size());
  for (size_t i = 0; i < order.size(); ++i) order[start[ops.rank[i]]++] = i;
  for (size_t i : order) {
    const PendingRecord& r = *ops.records[i];
    bool put = r.kind == PendingRecord::Kind::Put;
    chunk::Op op;
    op.op_id = ops.op_ids[i];
    op.kind = put ? chunk::OpKind::Put : chunk::OpKind::Remove;
    op.checksum = r.checksum;
    op.object_type = r.table;
    op.object_id = r.id;
    op.subkey = r.subkey;
    if (put) op.data = r.data;
    op.cum_checksum = static_cast<uint32_t>(ops.cum_checksums[i]);
    op.cum_count = ops.cum_counts[i];
    builder.add(ops.names[r.bucket], r.version, op);
  }
  return builder.finish();
}


// bucket_state rows in column order: bucket, sync_rules_id, last_op, checksum, count.
template <typename Totals>
struct StateRows : bulk::RowSource {
  std::vector<const std::string*> names;
  std::vector<const Totals*> totals;
  void add(const std::string& name, const Totals& t) {
    names.push_back(&name);
    totals.push_back(&t);
  }
  void fill(size_t i, Datum* values, bool* nulls) noexcept override {
    const Totals& t = *totals[i];
    for (int c = 0; c < 5; ++c) nulls[c] = false;
    values[0] = varlena_datum(*names[i]);
    values[1] = Int64GetDatum(t.version);
    values[2] = Int64GetDatum(t.last_op);
    values[3] = Int64GetDatum(static_cast<int64_t>(t.checksum));
    values[4] = Int64GetDatum(t.count);
  }
};

// The tid column `col` of result row `row` of the current SPI_tuptable, packed (bulk_write.h).
uint64_t row_tid(uint64_t row, int col) {
  bool isnull = false;
  Datum d = pg_call([&] { return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col + 1, &isnull); });
  if (isnull) throw Error(Error::Kind::Internal, "bucket_state row without ctid");
  return bulk::pack_tid(DatumGetPointer(d));
}

// The batch whose bucket totals the current transaction has not written yet. Committing with totals
// unwritten would leave bucket_state behind the chunks just written: the commit fails instead (a worker
// bug, never data); an abort forgets them.
ChangeBatch* unwritten_totals = nullptr;

void check_totals_at_commit(XactEvent event, void*) {
  if (!unwritten_totals) return;
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
    unwritten_totals->discard_bucket_totals();
    unwritten_totals = nullptr;
  } else if (event == XACT_EVENT_PRE_COMMIT) {
    unwritten_totals->discard_bucket_totals();
    unwritten_totals = nullptr;
    ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                    errmsg("powersync: bucket totals of this replication round were not written before its commit"),
                    errhint("This is a bug in the replication worker; the round is retried.")));
  }
}

void expect_totals_written(ChangeBatch* batch) {
  static bool registered = false;
  if (!registered) {
    pg_call([] { RegisterXactCallback(check_totals_at_commit, nullptr); });
    registered = true;
  }
  unwritten_totals = batch;
}

}  // namespace

ChangeBatch::~ChangeBatch() {
  if (unwritten_totals == this) unwritten_totals = nullptr;
}

// Buckets seen before in this transaction keep their running totals in memory; the others are read from
// bucket_state once (one statement for all of them).
std::vector<ChangeBatch::BucketTotals*> ChangeBatch::load_totals() {
  static spi::Statement load_state(
      "SELECT bucket, checksum, count, ctid, sync_rules_id FROM powersync.bucket_state WHERE bucket = ANY($1)", {TEXTARRAYOID});
  const std::vector<std::string>& names = bucket_names_;
  std::vector<BucketTotals*> totals(names.size());
  std::vector<std::string> missing;
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = totals_.find(names[i]);
    if (it != totals_.end()) totals[i] = &it->second;
    else missing.push_back(names[i]);
  }
  if (missing.empty()) return totals;
  Datum arg = spi::text_array(missing);
  uint64_t n = load_state.run(&arg);
  for (uint64_t i = 0; i < n; ++i) {
    std::string name = spi::text(i, 0).value_or("");
    auto slot = bucket_slot_.find(std::string_view(name));
    if (slot == bucket_slot_.end()) continue;
    BucketTotals& t = totals_[name];
    t.checksum = static_cast<uint32_t>(spi::int64_at(i, 1));
    t.count = spi::int64_at(i, 2);
    t.stored = true;
    t.tid = row_tid(i, 3);
    t.version = spi::int64_at(i, 4);
    totals[slot->second] = &t;
  }
  spi::release();
  for (size_t i = 0; i < names.size(); ++i)
    if (!totals[i]) totals[i] = &totals_[names[i]];  // no bucket_state row yet
  return totals;
}

// Op ids in generation order, cumulative checksums continuing the buckets' running totals.
void ChangeBatch::write_records() {
  if (records_.empty()) return;
  const std::vector<std::string>& names = bucket_names_;
  std::vector<BucketTotals*> totals = load_totals();
  // Chunks are written in (bucket name, op id) order, as they always were: rank = position by name.
  std::vector<uint32_t> by_name(names.size()), rank(names.size());
  for (uint32_t i = 0; i < by_name.size(); ++i) by_name[i] = i;
  std::sort(by_name.begin(), by_name.end(), [&](uint32_t a, uint32_t b) { return names[a] < names[b]; });
  for (uint32_t i = 0; i < by_name.size(); ++i) rank[by_name[i]] = i;

  int64_t next_id = reserve_op_ids(op_id_sequence(), static_cast<int64_t>(records_.size()));
  OpRows ops{{}, {}, {}, {}, {}, 0, names};
  LookupRows lookups;
  ops.records.reserve(records_.size());
  ops.op_ids.reserve(records_.size());
  ops.cum_checksums.reserve(records_.size());
  ops.cum_counts.reserve(records_.size());
  ops.rank.reserve(records_.size());
  ops.buckets = names.size();
  for (size_t i = 0; i < records_.size(); ++i) {
    const PendingRecord& r = records_[i];
    int64_t op_id = next_id++;
    max_op_id_ = op_id;
    if (r.kind == PendingRecord::Kind::Lookup) {
      lookups.records.push_back(&r);
      lookups.ids.push_back(op_id);
      continue;
    }
    BucketTotals& t = *totals[r.bucket];
    if (!t.stored && !t.changed) t.version = r.version;
    t.changed = true;
    t.last_op = op_id;
    t.checksum += r.checksum;  // wrapping u32 sum
    t.count += 1;
    ops.records.push_back(&r);
    ops.op_ids.push_back(op_id);
    ops.cum_checksums.push_back(t.checksum);
    ops.cum_counts.push_back(t.count);
    ops.rank.push_back(rank[r.bucket]);
  }
  if (!ops.records.empty()) {
    chunk::Builder builder;
    chunk::insert_chunks(pack_chunks(ops, builder));
    ops_written_ += static_cast<int64_t>(ops.records.size());
    expect_totals_written(this);
  }
  if (!lookups.records.empty()) {
    bulk::insert_rows("bucket_parameters", 6, lookups.records.size(), lookups);
    ops_written_ += static_cast<int64_t>(lookups.records.size());
  }
}

// bucket_state rows written directly (the worker is their only writer): existing ones replaced at the tid
// read at their first touch in this transaction, new ones appended; both in bucket name order.
void ChangeBatch::write_bucket_state() {
  if (totals_.empty()) return;
  using Entry = std::pair<const std::string, BucketTotals>;
  std::vector<const Entry*> changed;
  for (const Entry& e : totals_)
    if (e.second.changed) changed.push_back(&e);
  std::sort(changed.begin(), changed.end(), [](const Entry* a, const Entry* b) { return a->first < b->first; });
  StateRows<BucketTotals> updated, added;
  std::vector<uint64_t> tids;
  for (const Entry* e : changed) {
    if (e->second.stored) tids.push_back(e->second.tid);
    (e->second.stored ? updated : added).add(e->first, e->second);
  }
  in_flush_context([&] {
    bulk::update_rows("bucket_state", 5, tids.size(), tids.data(), updated);
    bulk::insert_rows("bucket_state", 5, added.totals.size(), added);
  });
  totals_.clear();  // the rows moved (new tids); the next transaction reads them again
  if (unwritten_totals == this) unwritten_totals = nullptr;
}

}  // namespace powersync::pg
