// Initial snapshot (DESIGN decision 6): copies a source table in ctid block ranges, one transaction per
// chunk, resumable from source_tables.snapshot_next_block. Rows go through the same op generation as
// the stream, as inserts that never overwrite a row the stream already wrote.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
extern "C" {
#include "postgres.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
}

#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"
#include "powersync/pg/transaction.h"
#include "powersync/pg/value_mapping.h"

namespace powersync::pg {
namespace {

constexpr int64_t kChunkBlocks = 128;

std::string quoted(const std::string& ident) {
  const char* in = ident.c_str();
  const char* q = pg_call([&] { return quote_identifier(in); });
  return std::string(q);
}

// Reads heap blocks [first, end) and returns the rows encoded as change_format tuples, back to back.
std::string read_chunk(const RelationInfo& rel, int64_t first, int64_t end) {
  std::string sql = "SELECT ";
  for (size_t i = 0; i < rel.columns.size(); ++i) sql += (i ? ", " : "") + quoted(rel.columns[i]);
  if (rel.columns.empty()) sql += "1";
  sql += " FROM ONLY " + quoted(rel.schema) + "." + quoted(rel.name) + " WHERE ctid >= '(" + std::to_string(first) +
         ",0)'::tid AND ctid < '(" + std::to_string(end) + ",0)'::tid";
  spi::exec(sql);
  int ncols = static_cast<int>(rel.columns.size());
  StringInfo buf = pg_call([&] {
    StringInfo out = makeStringInfo();
    for (uint64 r = 0; r < SPI_processed; ++r) {
      HeapTuple tuple = SPI_tuptable->vals[r];
      put_u16(out, static_cast<uint16>(ncols));
      for (int c = 0; c < ncols; ++c) {
        bool isnull;
        Datum v = SPI_getbinval(tuple, SPI_tuptable->tupdesc, c + 1, &isnull);
        Oid type = SPI_gettypeid(SPI_tuptable->tupdesc, c + 1);
        if (!isnull && TupleDescAttr(SPI_tuptable->tupdesc, c)->attlen == -1) v = PointerGetDatum(PG_DETOAST_DATUM(v));
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
  int64_t end = std::min(t->next_block + kChunkBlocks, t->total_blocks);
  std::string encoded = t->next_block < end ? read_chunk(rel, t->next_block, end) : std::string();
  std::vector<RowChange> rows;
  wire::Reader reader(encoded);
  while (!reader.at_end()) {
    RowChange c;
    c.relation = &rel;
    c.from_snapshot = true;
    c.new_tuple = wire::read_tuple(reader);
    rows.push_back(std::move(c));
  }
  apply_changes(rows, v);
  batch_.flush();
  t->next_block = std::max(end, t->next_block);
  t->rows += static_cast<int64_t>(rows.size());
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
  return true;
}

}  // namespace powersync::pg
