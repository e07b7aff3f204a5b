// Initial snapshot (DESIGN decision 6): copies a source table in ctid block ranges, one transaction per
// chunk, resumable from source_tables.snapshot_next_block. Rows go through the same op generation as
// the stream, as inserts that never overwrite a row the stream already wrote.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
extern "C" {
#include "postgres.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "storage/lmgr.h"
}

#include <algorithm>

#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"
#include "powersync/pg/transaction.h"
#include "powersync/pg/value_mapping.h"
#include "powersync/pg/worker_log.h"

namespace powersync::pg {
namespace {

// A chunk (one transaction, one flush) covers up to kChunkBlocks heap blocks and ends early, at a block
// boundary, once it holds kChunkRows rows or kChunkBytes of encoded rows. Per-chunk costs (transaction,
// commit, catalog look-ups, progress row, and per bucket touched a bucket_state row and a short op chunk
// row) are spread over many rows: 32k rows per chunk instead of ~11k (128 blocks of narrow rows) cut the
// worker's CPU per copied row by ~5 %. The budgets bound a chunk's memory however wide its rows are, and
// the stream waits at most one chunk (~0.3 s) while a copy runs. 384 blocks reach the row budget for rows
// of ~90 per block and keep sparse tables (many dead rows) copied in several chunks.
constexpr int64_t kChunkBlocks = 384;
constexpr uint64 kChunkRows = 32768;
constexpr int kChunkBytes = 32 << 20;
// A chunk is read in parts of up to kPartBlocks blocks under the chunk's snapshot, so that the rules of
// one part run on the evaluation thread while the next part is read (see copy_rows and apply_changes).
constexpr int64_t kPartBlocks = 16;

std::string quoted(const std::string& ident) {
  const char* in = ident.c_str();
  const char* q = pg_call([&] { return quote_identifier(in); });
  return std::string(q);
}

// Sets wire::kOutOfLine in the column count written at `at` (little-endian u16): the row has a TOAST
// pointer, so its image is kept for the unchanged-TOAST markers of its next update.
void mark_out_of_line(StringInfo out, int at) { out->data[at + 1] |= static_cast<char>(wire::kOutOfLine >> 8); }

// Encodes the rows of the current SPI result as change_format tuples, back to back.
std::string encode_spi_rows(int ncols) {
  StringInfo buf = pg_call([&] {
    StringInfo out = makeStringInfo();
    for (uint64 r = 0; r < SPI_processed; ++r) {
      HeapTuple tuple = SPI_tuptable->vals[r];
      int count_at = out->len;
      put_u16(out, static_cast<uint16>(ncols));
      for (int c = 0; c < ncols; ++c) {
        bool isnull;
        Datum v = SPI_getbinval(tuple, SPI_tuptable->tupdesc, c + 1, &isnull);
        Oid type = SPI_gettypeid(SPI_tuptable->tupdesc, c + 1);
        if (!isnull && TupleDescAttr(SPI_tuptable->tupdesc, c)->attlen == -1) {
          if (VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(v))) mark_out_of_line(out, count_at);
          v = PointerGetDatum(PG_DETOAST_DATUM(v));
        }
        append_sync_value(out, type, v, isnull);
      }
    }
    return out;
  });
  std::string rows(buf->data, buf->len);
  pfree(buf->data);
  pfree(buf);
  spi::release();
  return rows;
}

std::string select_list(const RelationInfo& rel) {
  std::string sql;
  for (size_t i = 0; i < rel.columns.size(); ++i) sql += (i ? ", " : "") + quoted(rel.columns[i]);
  return rel.columns.empty() ? std::string("1") : sql;
}

// What a chunk's snapshot saw, and the WAL position after it was taken (every commit it sees lies before).
void remember_snapshot(Snapshot snapshot, CopiedChunk& chunk) {
  chunk.xmin = snapshot->xmin;
  chunk.xmax = snapshot->xmax;
  chunk.running.assign(snapshot->xip, snapshot->xip + snapshot->xcnt);
  chunk.horizon = GetXLogInsertRecPtr();
}

// The snapshot a table without row identity is copied under. It must see every transaction the stream
// skipped for the copy: one whose commit record was already decoded can still be finishing (not yet out
// of the running set), so wait for it to end and take the snapshot again.
Snapshot keyless_copy_snapshot(const std::unordered_set<uint32_t>& skipped, CopiedChunk& chunk) {
  for (;;) {
    Snapshot snapshot = pg_call([] { return RegisterSnapshot(GetLatestSnapshot()); });
    pg_call([&] { remember_snapshot(snapshot, chunk); });
    uint32_t unseen = 0;
    for (uint32_t xid : skipped)
      if (!chunk.sees(xid)) unseen = xid;
    if (unseen == 0) return snapshot;
    pg_call([&] {
      UnregisterSnapshot(snapshot);
      XactLockTableWait(unseen, nullptr, nullptr, XLTW_None);
    });
  }
}

// Reads heap blocks [first, end) through SPI (a ctid range query): for relations without heap storage
// of their own, where the query defines what "the rows" are.
std::string read_chunk_spi(const RelationInfo& rel, int64_t first, int64_t end, CopiedChunk& chunk, size_t& count,
                           Snapshot given) {
  std::string sql = "SELECT " + select_list(rel) + " FROM ONLY " + quoted(rel.schema) + "." + quoted(rel.name) +
                    " WHERE ctid >= '(" + std::to_string(first) + ",0)'::tid AND ctid < '(" + std::to_string(end) +
                    ",0)'::tid";
  pg_call([&] {
    // A read-only SPI query runs under the active snapshot: ours, so that the chunk knows what it saw.
    Snapshot snapshot = given ? given : RegisterSnapshot(GetLatestSnapshot());
    if (!given) remember_snapshot(snapshot, chunk);
    PushActiveSnapshot(snapshot);
    int rc = SPI_execute(sql.c_str(), true, 0);
    PopActiveSnapshot();
    if (!given) UnregisterSnapshot(snapshot);
    if (rc != SPI_OK_SELECT) elog(ERROR, "copying %s failed: %s", rel.name.c_str(), SPI_result_code_string(rc));
  });
  count = SPI_processed;
  return encode_spi_rows(static_cast<int>(rel.columns.size()));
}

// Reads heap blocks [first, end) and returns the rows encoded as change_format tuples, back to back.
// A plain table is read with a TID range scan in C under a fresh snapshot, which is what the ctid range
// query did through SPI (same rows, same visibility) without the executor and the SPI tuple copies; it
// stops at the first block boundary past the chunk's row/byte budget and lowers `end` to that block.
// Blocks past the table's end (truncated by VACUUM since the copy started) simply hold no rows.
// `count`: how many rows. `given`: read under this snapshot (already remembered by the caller) instead of
// a fresh one.
std::string read_chunk(const RelationInfo& rel, int64_t first, int64_t& end, CopiedChunk& copied, size_t& count,
                       Snapshot given = nullptr, uint64 max_rows = kChunkRows, int max_bytes = kChunkBytes) {
  std::vector<AttrNumber> attnums;
  for (const auto& column : rel.columns) {
    const char* name = column.c_str();
    attnums.push_back(pg_call([&] { return get_attnum(rel.relid, name); }));
  }
  bool plain = pg_call([&] { return get_rel_relkind(rel.relid) == RELKIND_RELATION; });
  for (AttrNumber a : attnums) plain = plain && a > 0;
  if (!plain) return read_chunk_spi(rel, first, end, copied, count, given);
  StringInfo buf = pg_call([&] {
    MemoryContext chunk = AllocSetContextCreate(CurrentMemoryContext, "powersync snapshot chunk", ALLOCSET_DEFAULT_SIZES);
    MemoryContext caller = MemoryContextSwitchTo(chunk);
    Relation r = table_open(rel.relid, AccessShareLock);
    Snapshot snapshot = given ? given : RegisterSnapshot(GetLatestSnapshot());
    if (!given) remember_snapshot(snapshot, copied);
    ItemPointerData lo, hi;
    ItemPointerSet(&lo, static_cast<BlockNumber>(first), FirstOffsetNumber);
    ItemPointerSet(&hi, static_cast<BlockNumber>(end - 1), MaxOffsetNumber);
    TableScanDesc scan = table_beginscan_tidrange(r, snapshot, &lo, &hi);
    TupleTableSlot* slot = table_slot_create(r, nullptr);
    TupleDesc desc = RelationGetDescr(r);
    int ncols = static_cast<int>(attnums.size());
    ColumnMapping* mappings = static_cast<ColumnMapping*>(palloc(sizeof(ColumnMapping) * std::max(ncols, 1)));
    for (int c = 0; c < ncols; ++c) init_column_mapping(&mappings[c], TupleDescAttr(desc, attnums[c] - 1)->atttypid);
    MemoryContextSwitchTo(caller);
    StringInfo out = makeStringInfo();
    MemoryContext per_row = AllocSetContextCreate(chunk, "powersync snapshot row", ALLOCSET_DEFAULT_SIZES);
    // Everything a row allocates (deformed values, detoasted copies, output functions) goes into
    // per_row; `out` keeps growing in the caller's context (repalloc keeps a chunk's context).
    uint64 rows = 0;
    BlockNumber block = InvalidBlockNumber;
    while (table_scan_getnextslot_tidrange(scan, ForwardScanDirection, slot)) {
      BlockNumber at = ItemPointerGetBlockNumber(&slot->tts_tid);
      if (at != block && (rows >= max_rows || out->len >= max_bytes)) {
        end = at;  // this block's rows belong to the next chunk (and its snapshot)
        break;
      }
      block = at;
      ++rows;
      MemoryContextSwitchTo(per_row);
      slot_getallattrs(slot);
      int count_at = out->len;
      put_u16(out, static_cast<uint16>(ncols));
      for (int c = 0; c < ncols; ++c) {
        AttrNumber a = attnums[c];
        bool isnull = slot->tts_isnull[a - 1];
        Datum v = slot->tts_values[a - 1];
        if (!isnull && TupleDescAttr(desc, a - 1)->attlen == -1) {
          if (VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(v))) mark_out_of_line(out, count_at);
          // Only out-of-line and compressed values need fetching; a short inline value maps as it is.
          v = PointerGetDatum(PG_DETOAST_DATUM_PACKED(v));
        }
        append_column_value(out, &mappings[c], v, isnull);
      }
      MemoryContextSwitchTo(caller);
      MemoryContextReset(per_row);
    }
    ExecDropSingleTupleTableSlot(slot);
    table_endscan(scan);
    if (!given) UnregisterSnapshot(snapshot);
    table_close(r, AccessShareLock);
    MemoryContextDelete(chunk);
    count = rows;
    return out;
  });
  std::string rows(buf->data, buf->len);
  pfree(buf->data);
  pfree(buf);
  return rows;
}

// Key column types whose sync value's text form casts back to the column type exactly.
bool text_round_trips(uint32_t type) {
  switch (type) {
    case INT2OID: case INT4OID: case INT8OID: case TEXTOID: case VARCHAROID: case BPCHAROID: case NAMEOID:
    case UUIDOID: case NUMERICOID: return true;
    default: return false;
  }
}

int64_t relation_blocks(uint32_t relid) {
  static spi::Statement size("SELECT pg_relation_size($1) / current_setting('block_size')::int8", {OIDOID});
  Datum arg = ObjectIdGetDatum(relid);
  size.run(&arg);
  int64_t blocks = spi::int64_at(0, 0);
  spi::release();
  return blocks;
}

bool has_current_rows(int32_t table_id) {
  static spi::Statement any("SELECT EXISTS (SELECT 1 FROM powersync.current_data WHERE source_table_id = $1)", {INT4OID});
  Datum arg = Int32GetDatum(table_id);
  any.run(&arg);
  bool found = spi::bool_at(0, 0);
  spi::release();
  return found;
}

}  // namespace

void CopiedKeys::insert(std::string_view key) {
  bytes_.append(key.data(), key.size());
  ends_.push_back(static_cast<uint32_t>(bytes_.size()));
}

std::pair<const uint32_t*, const uint32_t*> CopiedKeys::equal(std::string_view k) {
  if (sorted_.size() != ends_.size()) {
    sorted_.resize(ends_.size());
    for (uint32_t i = 0; i < sorted_.size(); ++i) sorted_[i] = i;
    std::sort(sorted_.begin(), sorted_.end(), [this](uint32_t a, uint32_t b) { return key(a) < key(b); });
  }
  const uint32_t* begin = sorted_.data();
  const uint32_t* end = begin + sorted_.size();
  const uint32_t* first =
      std::lower_bound(begin, end, k, [this](uint32_t i, std::string_view v) { return key(i) < v; });
  const uint32_t* last =
      std::upper_bound(first, end, k, [this](std::string_view v, uint32_t i) { return v < key(i); });
  return {first, last};
}

bool CopiedKeys::contains(std::string_view k) {
  auto [first, last] = equal(k);
  for (const uint32_t* i = first; i != last; ++i)
    if (*i >= forgotten_.size() || !forgotten_[*i]) return true;
  return false;
}

void CopiedKeys::erase(std::string_view k) {
  auto [first, last] = equal(k);
  if (first == last) return;
  forgotten_.resize(ends_.size());
  for (const uint32_t* i = first; i != last; ++i) forgotten_[*i] = true;
}

bool Replicator::snapshot_step() {
  auto needs_copy = [this]() -> std::pair<RuleVersion*, SourceTable*> {
    for (auto& [id, v] : versions_)
      for (auto& [relid, t] : v.tables)
        if (!t.snapshot_done) return {&v, &t};
    return {nullptr, nullptr};
  };
  if (!needs_copy().first) return false;
  Transaction xact;
  refresh_versions();
  auto [v, t] = needs_copy();
  if (!v) { xact.commit(); return false; }
  RelationInfo rel = catalog_relation(t->relid);
  if (rel.name.empty()) {  // dropped before it was copied
    retire_table(*v, t->relid);
    xact.commit();
    return true;
  }
  if (source_table_for(*v, rel) != t) {  // renamed/identity changed: registered again, copied next step
    xact.commit();
    return true;
  }
  if (t->next_block == 0 && t->total_blocks == 0) {
    t->total_blocks = relation_blocks(t->relid);
    t->snapshot_fresh = !has_current_rows(t->id);
  }
  // Chunks the stream has passed can no longer be ahead of it.
  for (auto it = copied_.begin(); it != copied_.end();) {
    while (!it->second.empty() && it->second.front().horizon <= applied_lsn_) it->second.pop_front();
    it = it->second.empty() ? copied_.erase(it) : std::next(it);
  }
  // The chunk's keys count only once its transaction commits: an error on the way forgets the chunk.
  struct Forget {
    Replicator* r;
    int32_t table;
    bool armed = false;
    ~Forget() {
      r->copying_ = nullptr;
      if (armed) r->copied_.erase(table);
    }
  } forget{this, t->id};
  std::deque<CopiedChunk>& chunks = copied_[t->id];
  chunks.emplace_back();
  copying_ = &chunks.back();
  forget.armed = true;
  // Applies the rows of blocks [first, end) under `snapshot` as copied rows (never over a row the stream
  // wrote); returns how many. Read in parts, so that the rules of one part run on the evaluation thread
  // while the next part is read (see apply_changes). Stops at the first block boundary past the chunk's
  // row/byte budget and lowers `end` to that block.
  auto copy_rows = [this](RuleVersion* version, const RelationInfo& relation, int64_t first, int64_t& end,
                          Snapshot snapshot) {
    ChangesScope scope{*this};
    uint64 count = 0;
    int bytes = 0;
    for (int64_t part = first; part < end;) {
      int64_t part_end = std::min(part + kPartBlocks, end);
      int64_t requested = part_end;
      size_t rows_read = 0;
      std::string encoded = read_chunk(relation, part, part_end, *copying_, rows_read, snapshot,
                                       kChunkRows - count, kChunkBytes - bytes);
      count += rows_read;
      bytes += static_cast<int>(encoded.size());
      if (part_end < requested || count >= kChunkRows || bytes >= kChunkBytes) end = part_end;
      std::vector<RowChange> rows;
      rows.reserve(rows_read);
      wire::Reader reader(encoded);
      while (!reader.at_end()) {
        RowChange c;
        c.relation = &relation;
        c.from_snapshot = true;
        c.new_tuple = wire::read_tuple(reader);
        rows.push_back(std::move(c));
      }
      apply_changes(std::move(rows), version, part_end >= end);
      part = part_end;
    }
    drain_changes();
    batch_.flush();
    return count;
  };
  if (t->identity != 'f' && t->identity_columns.empty()) {
    // No row identity: copied rows cannot be matched with streamed ones, so the whole table is read under
    // one snapshot (in chunks, in this transaction) and the stream skips exactly what that snapshot saw.
    Snapshot snapshot = keyless_copy_snapshot(skipped_for_copy_[t->id], *copying_);
    for (int64_t first = t->next_block, end; first < t->total_blocks; first = end) {
      end = std::min(first + kChunkBlocks, t->total_blocks);
      t->rows += copy_rows(v, rel, first, end, snapshot);
    }
    pg_call([&] { UnregisterSnapshot(snapshot); });
    t->next_block = t->total_blocks;
    skipped_for_copy_.erase(t->id);
  } else {
    int64_t end = std::min(t->next_block + kChunkBlocks, t->total_blocks);
    if (t->next_block < end) {
      // One snapshot for the chunk's parts, taken under the table's lock as read_chunk would take it.
      Snapshot snapshot = pg_call([&] {
        LockRelationOid(rel.relid, AccessShareLock);
        Snapshot s = RegisterSnapshot(GetLatestSnapshot());
        remember_snapshot(s, *copying_);
        return s;
      });
      t->rows += copy_rows(v, rel, t->next_block, end, snapshot);
      pg_call([&] { UnregisterSnapshot(snapshot); });
    }
    t->next_block = std::max(end, t->next_block);
  }
  copying_ = nullptr;
  t->snapshot_done = t->next_block >= t->total_blocks;
  static spi::Statement progress(
      "UPDATE powersync.source_tables SET snapshot_next_block = $2, snapshot_rows = $3, snapshot_total = $4, "
      "snapshot_done = $5, snapshot_lsn = CASE WHEN $5 THEN pg_current_wal_lsn() END WHERE id = $1 "
      "RETURNING snapshot_lsn",
      {INT4OID, INT8OID, INT8OID, INT8OID, BOOLOID});
  Datum args[5] = {Int32GetDatum(t->id), Int64GetDatum(t->next_block), Int64GetDatum(t->rows),
                   Int64GetDatum(t->total_blocks), BoolGetDatum(t->snapshot_done)};
  if (progress.run(args) == 1) t->snapshot_lsn = spi::lsn_at(0, 0);
  spi::release();
  if (t->snapshot_done && v->state == "PROCESSING") {
    static spi::Statement version_done(
        "UPDATE powersync.sync_rules SET snapshot_done = true, snapshot_lsn = pg_current_wal_lsn() WHERE id = $1 "
        "AND NOT EXISTS (SELECT 1 FROM powersync.source_tables WHERE sync_rules_id = $1 AND NOT snapshot_done) "
        "RETURNING snapshot_lsn",
        {INT8OID});
    Datum arg = Int64GetDatum(v->id);
    if (version_done.run(&arg) == 1) {
      v->snapshot_done = true;
      v->snapshot_lsn = spi::lsn_at(0, 0);
    }
    spi::release();
  }
  xact.commit();
  forget.armed = false;
  return true;
}

bool Replicator::activation_due() const {
  for (const auto& [id, v] : versions_)
    if (v.state == "PROCESSING" && v.snapshot_done && applied_lsn_ >= v.snapshot_lsn) return true;
  return false;
}

// An update whose unchanged-TOAST columns have no stored image to come from (the row is not in
// current_data, e.g. its copy has not reached it yet): read those columns from the table as it is now.
// Later changes of the row are still ahead in the stream, so the row converges as a copied row does.
// Only by a key whose values cast back exactly, and only while the table still has those columns.
bool reread_unchanged(const SourceTable& t, const RelationInfo& rel, const std::string& source_key, wire::Tuple& merged) {
  if (t.identity_columns.empty()) return false;
  const RelationInfo now = catalog_relation(rel.relid);
  if (now.name.empty()) return false;
  std::string where;
  std::vector<std::string> params;
  for (const auto& key : t.identity_columns) {
    size_t i = 0, j = 0;
    while (i < rel.columns.size() && rel.columns[i] != key) ++i;
    while (j < now.columns.size() && now.columns[j] != key) ++j;
    if (i == rel.columns.size() || j == now.columns.size() || i >= merged.values.size() || merged.unchanged[i] ||
        rel.types[i] != now.types[j] || !text_round_trips(rel.types[i]))
      return false;
    const rules::Value& v = merged.values[i];
    if (v.is_integer()) params.push_back(std::to_string(v.as_integer()));
    else if (v.is_text()) params.push_back(v.as_text());
    else return false;
    where += std::string(params.size() > 1 ? " AND " : "") + quoted(key) + " = $" + std::to_string(params.size()) +
             "::text::" + std::string(pg_call([&] { return format_type_be(rel.types[i]); }));
  }
  for (size_t i = 0; i < rel.columns.size(); ++i) {
    size_t j = 0;
    while (j < now.columns.size() && now.columns[j] != rel.columns[i]) ++j;
    if (j == now.columns.size() || now.types[j] != rel.types[i]) return false;  // column dropped or retyped since
  }
  std::string sql = "SELECT " + select_list(rel) + " FROM ONLY " + quoted(now.schema) + "." + quoted(now.name) +
                    " WHERE " + where;
  std::vector<Oid> types(params.size(), TEXTOID);
  std::vector<Datum> values;
  for (const auto& p : params) values.push_back(spi::text_datum(p));
  uint64_t n = pg_call([&] {
    int rc = SPI_execute_with_args(sql.c_str(), static_cast<int>(values.size()), types.data(), values.data(), nullptr,
                                   true, 2);
    if (rc != SPI_OK_SELECT) elog(ERROR, "re-reading a row of %s failed: %s", now.name.c_str(), SPI_result_code_string(rc));
    return SPI_processed;
  });
  if (n != 1) {
    spi::release();
    return false;  // deleted (or its key changed) since: the stream brings that change later
  }
  std::string encoded = encode_spi_rows(static_cast<int>(rel.columns.size()));
  wire::Reader reader(encoded);
  wire::Tuple current = wire::read_tuple(reader);
  if (source_key_of(rel, current, t.identity_columns) != source_key) return false;
  for (size_t i = 0; i < merged.values.size() && i < current.values.size(); ++i)
    if (merged.unchanged[i]) {
      merged.values[i] = current.values[i];
      merged.unchanged[i] = false;
    }
  return true;
}

// Unchanged-TOAST columns that could not be completed are synced as NULL: say which row, and count it
// in powersync.replication_state (status() shows it) in the round's transaction.
void report_unresolved_toast(const RelationInfo& rel, const std::string& subkey) {
  log_warning("powersync: unchanged TOAST value of " + rel.schema + "." + rel.name + " row " + subkey +
              " has no stored row image and the row could not be read again; the column is synced as NULL "
              "until the row changes");
  spi::exec("UPDATE powersync.replication_state SET unresolved_toast = unresolved_toast + 1");
}

}  // namespace powersync::pg
