// powersync.bucket_chunks from C: the chunk builder used by the replication worker, the unpack SRF
// behind bucket_ops and the compatibility view powersync.bucket_data, and _write_ops, which packs rows
// of that view's type into chunks (compaction rewrites, writes through the view).
extern "C" {
#include "postgres.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "utils/array.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(powersync_chunk_ops);
PG_FUNCTION_INFO_V1(powersync_write_ops);
PG_FUNCTION_INFO_V1(powersync_bucket_ops);
}

#include <algorithm>
#include <optional>

#include "powersync/pg/boundary.h"
#include "powersync/pg/bulk_write.h"
#include "powersync/pg/chunk_store.h"

namespace powersync::pg::chunk {

namespace {

size_t estimated_size(const Op& op) {
  size_t n = 24;
  for (const auto* s : {&op.object_type, &op.object_id, &op.subkey, &op.data})
    if (*s) n += (*s)->size() + 2;
  return n;
}

Datum varlena_datum(const std::string& s) {  // bytea and text share the representation
  struct varlena* v = static_cast<struct varlena*>(palloc(s.size() + VARHDRSZ));
  SET_VARSIZE(v, s.size() + VARHDRSZ);
  memcpy(VARDATA(v), s.data(), s.size());
  return PointerGetDatum(v);
}

// bucket_chunks column order: bucket, first_op, last_op, sync_rules_id, op_count, first_count,
// cum_checksum, cum_count, ops.
struct ChunkRows : bulk::RowSource {
  std::vector<ChunkRow>* rows;
  void fill(size_t i, Datum* values, bool* nulls) noexcept override {
    const ChunkRow& r = (*rows)[i];
    for (int c = 0; c < 9; ++c) nulls[c] = false;
    values[0] = varlena_datum(r.bucket);
    values[1] = Int64GetDatum(r.first_op);
    values[2] = Int64GetDatum(r.last_op);
    values[3] = Int64GetDatum(r.sync_rules_id);
    values[4] = Int32GetDatum(r.op_count);
    values[5] = Int64GetDatum(r.first_count);
    values[6] = Int64GetDatum(static_cast<int64_t>(r.cum_checksum));
    values[7] = Int64GetDatum(r.cum_count);
    values[8] = varlena_datum(r.bytes);
  }
};

}  // namespace

void Builder::add(const std::string& bucket, int64_t sync_rules_id, const Op& op, int64_t group) {
  bool fits = writer_.body_size() + estimated_size(op) + bucket.size() <= kChunkBytes;
  if (writer_.ops() > 0 && (bucket != bucket_ || sync_rules_id != version_ || group != group_ || !fits)) close();
  if (writer_.ops() == 0) {
    bucket_ = bucket;
    version_ = sync_rules_id;
    group_ = group;
  }
  writer_.add(op);
}

void Builder::close() {
  if (writer_.ops() == 0) return;
  ChunkRow r;
  r.bucket = bucket_;
  r.sync_rules_id = version_;
  r.first_op = writer_.first_op();
  r.last_op = writer_.last_op();
  r.first_count = writer_.first_cum_count();
  r.cum_count = writer_.cum_count();
  r.cum_checksum = writer_.cum_checksum();
  r.op_count = static_cast<int32_t>(writer_.ops());
  r.bytes = writer_.finish();
  rows_.push_back(std::move(r));
  writer_.clear();
}

std::vector<ChunkRow>& Builder::finish() {
  close();
  return rows_;
}

void insert_chunks(std::vector<ChunkRow>& rows) {
  ChunkRows source;
  source.rows = &rows;
  bulk::insert_rows("bucket_chunks", 9, rows.size(), source);
}

}  // namespace powersync::pg::chunk

using namespace powersync;
using namespace powersync::pg;

namespace {

std::string_view bytes_of(Datum d) {
  const struct varlena* v = reinterpret_cast<const struct varlena*>(DatumGetPointer(d));
  return std::string_view(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
}

Datum text_datum(std::string_view s) {
  return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
}

}  // namespace

// _chunk_ops(ops bytea, after bigint, upto bigint): the chunk's ops with after < op_id <= upto (NULL:
// unbounded) in op id order: op_id, op, object_type, object_id, subkey, data, checksum, target_op,
// cum_checksum, cum_count.
extern "C" Datum powersync_chunk_ops(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    pg_call([&] { InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC); });
    if (PG_ARGISNULL(0)) return Datum(0);
    int64_t after = PG_ARGISNULL(1) ? INT64_MIN : PG_GETARG_INT64(1);
    int64_t upto = PG_ARGISNULL(2) ? INT64_MAX : PG_GETARG_INT64(2);
    Datum raw = PG_GETARG_DATUM(0);
    Datum detoasted = pg_call([&] { return PointerGetDatum(PG_DETOAST_DATUM_PACKED(raw)); });
    chunk::Reader reader(bytes_of(detoasted));
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    while (reader.next()) {
      const chunk::Op& op = reader.op();
      if (op.op_id <= after) continue;
      if (op.op_id > upto) break;
      pg_call([&] {
        Datum values[10];
        bool nulls[10] = {false, false, !op.object_type, !op.object_id, !op.subkey, !op.data, false, !op.target_op,
                          false, false};
        values[0] = Int64GetDatum(op.op_id);
        values[1] = PointerGetDatum(cstring_to_text(chunk::op_kind_name(op.kind)));
        values[2] = op.object_type ? text_datum(*op.object_type) : Datum(0);
        values[3] = op.object_id ? text_datum(*op.object_id) : Datum(0);
        values[4] = op.subkey ? text_datum(*op.subkey) : Datum(0);
        values[5] = op.data ? text_datum(*op.data) : Datum(0);
        values[6] = Int64GetDatum(static_cast<int64_t>(op.checksum));
        values[7] = op.target_op ? Int64GetDatum(*op.target_op) : Datum(0);
        values[8] = Int64GetDatum(static_cast<int64_t>(op.cum_checksum));
        values[9] = Int64GetDatum(op.cum_count);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
      });
    }
    return Datum(0);
  });
}

namespace {

// One row of the view powersync.bucket_data, copied out of its composite datum.
struct ViewRow {
  std::string bucket;
  int64_t op_id = 0, sync_rules_id = 0, group = 0;
  chunk::OpKind kind = chunk::OpKind::Put;
  std::optional<std::string> object_type, object_id, subkey, data;
  int64_t checksum = 0, cum_checksum = 0, cum_count = 0;
  std::optional<int64_t> target_op;
};

// Column numbers of powersync.bucket_data (the view's row type).
enum Col { kBucket = 1, kOpId, kVersion, kOp, kType, kId, kSubkey, kData, kChecksum, kTarget, kCumChecksum, kCumCount };

std::optional<std::string> text_field(HeapTupleHeader t, int col) {
  bool isnull = false;
  Datum d = pg_call([&] { return GetAttributeByNum(t, static_cast<AttrNumber>(col), &isnull); });
  if (isnull) return std::nullopt;
  Datum plain = pg_call([&] { return PointerGetDatum(PG_DETOAST_DATUM_PACKED(d)); });
  return std::string(bytes_of(plain));
}

std::optional<int64_t> int_field(HeapTupleHeader t, int col) {
  bool isnull = false;
  Datum d = pg_call([&] { return GetAttributeByNum(t, static_cast<AttrNumber>(col), &isnull); });
  if (isnull) return std::nullopt;
  return DatumGetInt64(d);
}

[[noreturn]] void missing(const char* column) {
  throw Error(Error::Kind::InvalidInput, std::string("powersync.bucket_data: ") + column + " must not be NULL");
}

ViewRow read_row(HeapTupleHeader t) {
  ViewRow r;
  auto bucket = text_field(t, kBucket);
  auto op_id = int_field(t, kOpId), version = int_field(t, kVersion), checksum = int_field(t, kChecksum);
  auto cum_checksum = int_field(t, kCumChecksum), cum_count = int_field(t, kCumCount);
  auto op = text_field(t, kOp);
  if (!bucket) missing("bucket");
  if (!op_id) missing("op_id");
  if (!version) missing("sync_rules_id");
  if (!op) missing("op");
  if (!checksum) missing("checksum");
  if (!cum_checksum) missing("cum_checksum");
  if (!cum_count) missing("cum_count");
  auto kind = chunk::op_kind_from_name(*op);
  if (!kind) throw Error(Error::Kind::InvalidInput, "powersync.bucket_data: op must be PUT, REMOVE, MOVE or CLEAR, got " + *op);
  r.bucket = std::move(*bucket);
  r.op_id = *op_id;
  r.sync_rules_id = *version;
  r.kind = *kind;
  r.object_type = text_field(t, kType);
  r.object_id = text_field(t, kId);
  r.subkey = text_field(t, kSubkey);
  r.data = text_field(t, kData);
  r.checksum = *checksum;
  r.target_op = int_field(t, kTarget);
  r.cum_checksum = *cum_checksum;
  r.cum_count = *cum_count;
  return r;
}

std::optional<std::string_view> view_of(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  return std::string_view(*s);
}

}  // namespace

// _write_ops(ops powersync.bucket_data[], groups bigint[] DEFAULT NULL): packs the ops into new chunks
// (sorted by bucket and op id; ops of different groups never share a chunk). Returns the chunk count.
extern "C" Datum powersync_write_ops(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    if (PG_ARGISNULL(0)) return Int64GetDatum(0);
    ArrayType* arr = pg_call([&] { return PG_GETARG_ARRAYTYPE_P(0); });
    Datum* elems = nullptr;
    bool* elem_nulls = nullptr;
    int n = 0;
    pg_call([&] {
      int16 typlen;
      bool typbyval;
      char typalign;
      get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
      deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign, &elems, &elem_nulls, &n);
    });
    Datum* groups = nullptr;
    bool* group_nulls = nullptr;
    int ngroups = 0;
    if (!PG_ARGISNULL(1)) {
      ArrayType* garr = pg_call([&] { return PG_GETARG_ARRAYTYPE_P(1); });
      pg_call([&] { deconstruct_array(garr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &groups, &group_nulls, &ngroups); });
    }
    std::vector<ViewRow> rows;
    rows.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      if (elem_nulls[i]) continue;
      rows.push_back(read_row(reinterpret_cast<HeapTupleHeader>(DatumGetPointer(elems[i]))));
      if (i < ngroups && !group_nulls[i]) rows.back().group = DatumGetInt64(groups[i]);
    }
    std::stable_sort(rows.begin(), rows.end(), [](const ViewRow& a, const ViewRow& b) {
      return a.bucket != b.bucket ? a.bucket < b.bucket : a.op_id < b.op_id;
    });
    chunk::Builder builder;
    int64_t chunk_group = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      const ViewRow& r = rows[i];
      if (i > 0 && rows[i - 1].bucket == r.bucket && rows[i - 1].op_id == r.op_id)
        throw Error(Error::Kind::InvalidInput, "powersync.bucket_data: op " + std::to_string(r.op_id) +
                                                   " appears twice in bucket " + r.bucket);
      chunk::Op op;
      op.op_id = r.op_id;
      op.kind = r.kind;
      op.checksum = static_cast<uint32_t>(r.checksum);
      op.object_type = view_of(r.object_type);
      op.object_id = view_of(r.object_id);
      op.subkey = view_of(r.subkey);
      op.data = view_of(r.data);
      op.target_op = r.target_op;
      op.cum_checksum = static_cast<uint32_t>(r.cum_checksum);
      op.cum_count = r.cum_count;
      // A new group (the builder also cuts at a new bucket or version), and a new chunk wherever
      // cum_count goes down (arbitrary rows written through the view): it may only grow inside a chunk.
      if (i > 0 && (rows[i - 1].group != r.group || r.cum_count < rows[i - 1].cum_count)) ++chunk_group;
      builder.add(r.bucket, r.sync_rules_id, op, chunk_group);
    }
    std::vector<chunk::ChunkRow>& chunks = builder.finish();
    chunk::insert_chunks(chunks);
    return Int64GetDatum(static_cast<int64_t>(chunks.size()));
  });
}

// _bucket_ops(bucket text, after bigint, upto bigint, max_ops int): the hot read path behind
// powersync.bucket_ops, one call per bucket instead of an executor node per chunk. Two scans of
// bucket_chunks' primary key with the statement's snapshot: backward for the chunk holding `after` (the
// greatest first_op <= after, used if its last_op > after), then forward over first_op in (after, upto];
// ops after < op_id <= upto are emitted in op id order until max_ops (NULL: all). MOVE/CLEAR get data
// {"target":"N"}.
namespace {

struct OpsOut {
  ReturnSetInfo* rsinfo;
  int64_t after, upto, limit, emitted = 0;
};

// Emits the chunk's ops in range; false once the limit is reached or an op past upto was seen.
bool emit_chunk(Datum ops_datum, OpsOut& out) {
  Datum plain = pg_call([&] { return PointerGetDatum(PG_DETOAST_DATUM_PACKED(ops_datum)); });
  chunk::Reader reader(bytes_of(plain));
  while (reader.next()) {
    const chunk::Op& op = reader.op();
    if (op.op_id <= out.after) continue;
    if (op.op_id > out.upto) return false;
    if (out.emitted >= out.limit) return false;
    std::string target;
    if (op.target_op) target = "{\"target\":\"" + std::to_string(*op.target_op) + "\"}";
    pg_call([&] {
      Datum values[7];
      bool nulls[7] = {false, false, !op.object_type, !op.object_id, !op.subkey, !op.data && !op.target_op, false};
      values[0] = Int64GetDatum(op.op_id);
      values[1] = PointerGetDatum(cstring_to_text(chunk::op_kind_name(op.kind)));
      values[2] = op.object_type ? text_datum(*op.object_type) : Datum(0);
      values[3] = op.object_id ? text_datum(*op.object_id) : Datum(0);
      values[4] = op.subkey ? text_datum(*op.subkey) : Datum(0);
      values[5] = op.target_op ? text_datum(target) : op.data ? text_datum(*op.data) : Datum(0);
      values[6] = Int64GetDatum(static_cast<int64_t>(op.checksum));
      tuplestore_putvalues(out.rsinfo->setResult, out.rsinfo->setDesc, values, nulls);
    });
    ++out.emitted;
  }
  if (plain != ops_datum) pg_call([&] { pfree(DatumGetPointer(plain)); });
  return true;
}

}  // namespace

extern "C" Datum powersync_bucket_ops(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    pg_call([&] { InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC); });
    if (PG_ARGISNULL(0) || PG_ARGISNULL(2)) return Datum(0);
    OpsOut out;
    out.rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    out.after = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
    out.upto = PG_GETARG_INT64(2);
    out.limit = PG_ARGISNULL(3) ? INT64_MAX : PG_GETARG_INT32(3);
    if (out.limit < 0)  // as the SQL LIMIT this replaced
      pg_call([] {
        ereport(ERROR, (errcode(ERRCODE_INVALID_ROW_COUNT_IN_LIMIT_CLAUSE), errmsg("LIMIT must not be negative")));
      });
    if (out.limit <= 0 || out.upto <= out.after) return Datum(0);
    Datum bucket = PG_GETARG_DATUM(0);
    Relation heap = pg_call([] {
      return table_openrv(makeRangeVar(const_cast<char*>("powersync"), const_cast<char*>("bucket_chunks"), -1),
                          AccessShareLock);
    });
    Relation index = pg_call([&] {
      Oid pk = RelationGetPrimaryKeyIndex(heap);
      if (!OidIsValid(pk)) elog(ERROR, "powersync.bucket_chunks has no primary key: reinstall the extension");
      return index_open(pk, AccessShareLock);
    });
    TupleTableSlot* slot = pg_call([&] { return table_slot_create(heap, nullptr); });
    ScanKeyData keys[3];
    // Btree scans keep the key count given at beginscan, so each probe gets its own scan.
    auto next_chunk = [&](IndexScanDesc scan, ScanDirection dir, Datum* ops, int64_t* last_op) {
      return pg_call([&] {
        if (!index_getnext_slot(scan, dir, slot)) return false;
        bool isnull;
        *last_op = DatumGetInt64(slot_getattr(slot, 3, &isnull));
        *ops = slot_getattr(slot, 9, &isnull);
        return true;
      });
    };
    Datum ops;
    int64_t last_op;
    // The chunk holding `after`, if it runs past it.
    IndexScanDesc scan = pg_call([&] {
      IndexScanDesc s = index_beginscan(heap, index, GetActiveSnapshot(), 2, 0);
      ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ, bucket);
      ScanKeyInit(&keys[1], 2, BTLessEqualStrategyNumber, F_INT8LE, Int64GetDatum(out.after));
      index_rescan(s, keys, 2, nullptr, 0);
      return s;
    });
    bool more = true;
    if (next_chunk(scan, BackwardScanDirection, &ops, &last_op) && last_op > out.after) more = emit_chunk(ops, out);
    pg_call([&] { index_endscan(scan); });
    if (more) {
      scan = pg_call([&] {
        IndexScanDesc s = index_beginscan(heap, index, GetActiveSnapshot(), 3, 0);
        ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ, bucket);
        ScanKeyInit(&keys[1], 2, BTGreaterStrategyNumber, F_INT8GT, Int64GetDatum(out.after));
        ScanKeyInit(&keys[2], 2, BTLessEqualStrategyNumber, F_INT8LE, Int64GetDatum(out.upto));
        index_rescan(s, keys, 3, nullptr, 0);
        return s;
      });
      while (next_chunk(scan, ForwardScanDirection, &ops, &last_op))
        if (!emit_chunk(ops, out)) break;
      pg_call([&] { index_endscan(scan); });
    }
    pg_call([&] {
      ExecDropSingleTupleTableSlot(slot);
      index_close(index, AccessShareLock);
      table_close(heap, AccessShareLock);
    });
    return Datum(0);
  });
}
