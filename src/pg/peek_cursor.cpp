// PeekCursor: the decoded messages of a replication round in slices of kSlice (see peek_cursor.h).
extern "C" {
#include "postgres.h"
#include "catalog/pg_type.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
}

#include "powersync/pg/boundary.h"
#include "powersync/pg/peek_cursor.h"
#include "powersync/pg/spi.h"

namespace powersync::pg {
namespace {

constexpr long kSlice = 4000;  // messages held at a time

// Logical decoding logs "starting logical decoding for slot" at LOG level on every call; a worker
// polling every few milliseconds would flood the server log, so the call runs with
// log_min_messages = fatal (its errors still reach the worker, which logs them itself).
template <typename F>
void quietly(F&& fn) {
  pg_call([] { SetConfigOption("log_min_messages", "fatal", PGC_SUSET, PGC_S_SESSION); });
  try {
    fn();
  } catch (...) {
    pg_call([] { SetConfigOption("log_min_messages", nullptr, PGC_SUSET, PGC_S_SESSION); });
    throw;
  }
  pg_call([] { SetConfigOption("log_min_messages", nullptr, PGC_SUSET, PGC_S_SESSION); });
}

}  // namespace

PeekCursor::PeekCursor(const std::string& slot, uint64_t upto, int32_t limit, const std::string& patterns) {
  static SPIPlanPtr plan = nullptr;
  if (!plan)
    plan = pg_call([] {
      Oid types[4] = {TEXTOID, LSNOID, INT4OID, TEXTOID};
      SPIPlanPtr p = SPI_prepare(
          "SELECT data FROM pg_logical_slot_peek_binary_changes($1::name, $2, $3, 'tables', $4)", 4, types);
      if (!p) elog(ERROR, "preparing the peek cursor failed: %s", SPI_result_code_string(SPI_result));
      SPI_keepplan(p);
      return p;
    });
  Datum args[4] = {spi::text_datum(slot), LSNGetDatum(upto), Int32GetDatum(limit), spi::text_datum(patterns)};
  portal_ = pg_call([&] { return SPI_cursor_open(nullptr, plan, args, nullptr, false); });
}

void PeekCursor::close() {
  if (portal_) pg_call([&] { SPI_cursor_close(portal_); });
  portal_ = nullptr;
  slice_.clear();
  done_ = true;
}

void PeekCursor::fetch() {
  slice_.clear();
  pos_ = 0;
  // The first fetch runs the decoding itself.
  MemoryContext caller = CurrentMemoryContext;
  quietly([&] { pg_call([&] { SPI_cursor_fetch(portal_, true, kSlice); }); });
  MemoryContextSwitchTo(caller);
  uint64_t n = SPI_processed;
  slice_.reserve(n);
  // Reading a bytea value detoasts it into the current memory context, which lives until the round
  // ends: copy the slice out under a context of its own and drop that.
  MemoryContext scratch = pg_call([] {
    return AllocSetContextCreate(CurrentMemoryContext, "powersync peek slice", ALLOCSET_DEFAULT_SIZES);
  });
  MemoryContext old = MemoryContextSwitchTo(scratch);
  try {
    for (uint64_t i = 0; i < n; ++i) slice_.push_back(spi::bytes(i, 0).value_or(""));
  } catch (...) {
    MemoryContextSwitchTo(old);
    throw;
  }
  MemoryContextSwitchTo(old);
  MemoryContextDelete(scratch);
  spi::release();
  if (n == 0) done_ = true;
}

bool PeekCursor::next(std::string& out) {
  if (pos_ >= slice_.size()) {
    if (done_ || !portal_) return false;
    fetch();
    if (slice_.empty()) return false;
  }
  out = std::move(slice_[pos_++]);
  ++count_;
  return true;
}

}  // namespace powersync::pg
