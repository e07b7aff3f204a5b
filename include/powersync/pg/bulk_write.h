// Direct table access for the replication worker's hot path: bulk heap + index insertion, updates and
// deletes by ctid, and primary-key probes of powersync tables, without SQL (no parse/plan/unnest).
#pragma once

extern "C" {
#include "postgres.h"
}

#include <cstddef>
#include <cstdint>

namespace powersync::pg::bulk {

// Produces the column values of row `row` (Postgres calls only, e.g. cstring_to_text_with_len; runs
// inside pg_call, so it must not throw C++ exceptions or create non-trivial C++ objects: noexcept).
class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual void fill(size_t row, Datum* values, bool* nulls) noexcept = 0;
};

// Appends n rows to powersync.<table> with table_multi_insert and inserts their index entries (unique
// indexes are checked as usual). No triggers or CHECK constraints run: the worker is the only writer
// of these tables and produces valid rows. Makes the rows visible to later commands of the transaction.
// `columns` is the table's column count as the caller fills it (checked against the catalog).
void insert_rows(const char* table, int columns, size_t n, RowSource& rows);

// Replaces the row at `tid` (from a probe) with new values; index entries are added unless the update
// is HOT. A missing or concurrently changed row raises an error.
void update_rows(const char* table, int columns, size_t n, const uint64_t* tids, RowSource& rows);

// A tid (ItemPointerData*) packed into 64 bits: block << 16 | offset.
uint64_t pack_tid(const void* item_pointer);

// Deletes the rows at these tids.
void delete_rows(const char* table, size_t n, const uint64_t* tids);

// A powersync.current_data row found by a primary-key probe: the index of its key in the request, its
// tid, and its columns (varlena values detoasted and copied into the current memory context).
struct FoundRow {
  size_t key;
  uint64_t tid;
  Datum values[5];
  bool nulls[5];
};

// Probes powersync.current_data (primary key source_table_id, source_key) for n keys with one index
// scan descriptor, seeing everything this transaction wrote. Returns the number of rows found, stored in
// a palloc'd array at *found.
size_t probe_current_data(size_t n, const int32_t* table_ids, const char* const* keys, const size_t* key_lengths,
                          FoundRow** found);

}  // namespace powersync::pg::bulk
