// One replication round (DESIGN decision 1): peek the slot up to the flush LSN taken at the start,
// apply every committed change to every rule version, write ops + replicated LSN + checkpoint in one
// transaction, commit, then advance the slot. Transactions already applied (before a crash) are skipped.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "catalog/pg_type.h"
#include "storage/procarray.h"
#include "storage/standby.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include <algorithm>

#include "powersync/pg/peek_cursor.h"
#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"
#include "powersync/pg/transaction.h"
#include "powersync/pg/worker_log.h"

namespace powersync::pg {
namespace {

constexpr int64_t kPeekLimit = 200000;    // rows per peek; a round stops at a commit after that many
constexpr size_t kApplyChunk = 2000;      // row changes per prefetch
constexpr size_t kFlushRecords = 50000;   // pending ops/rows before writing them
constexpr Lsn kRestartLagMax = 1 << 20;  // WAL re-read per decoding call before we log running xacts

RelationInfo read_relation(wire::Reader& r) {
  RelationInfo rel;
  rel.relid = r.u32();
  rel.schema = r.str();
  rel.name = r.str();
  rel.identity = static_cast<char>(r.u8());
  uint16_t n = r.u16();
  for (uint16_t i = 0; i < n; ++i) {
    rel.columns.emplace_back(r.str());
    rel.types.push_back(r.u32());
    rel.key.push_back((r.u8() & 1) != 0);
  }
  return rel;
}

bool same_shape(const RelationInfo& a, const RelationInfo& b) {
  return a.schema == b.schema && a.name == b.name && a.identity == b.identity && a.columns == b.columns &&
         a.types == b.types && a.key == b.key;
}

// Logical decoding logs "starting logical decoding for slot" at LOG level on every call; a worker
// polling every few milliseconds would flood the server log (LOG outranks ERROR there), so those calls
// run with log_min_messages = fatal; their errors still reach the worker, which logs them itself.
template <typename F>
auto quietly(F&& fn) {
  pg_call([] { SetConfigOption("log_min_messages", "fatal", PGC_SUSET, PGC_S_SESSION); });
  try {
    auto result = fn();
    pg_call([] { SetConfigOption("log_min_messages", nullptr, PGC_SUSET, PGC_S_SESSION); });
    return result;
  } catch (...) {
    throw;
  }
}

// Decoding sends a transaction once its commit record is flushed, which is a moment before the
// committing backend leaves the proc array: until then our queries (catalog lookups, TOAST re-reads of
// rows) would not see it yet. A walsender woken by that very flush hits this window easily.
void wait_until_visible(TransactionId xid) {
  for (int i = 0; i < 100000 && pg_call([&] { return TransactionIdIsInProgress(xid); }); ++i) pg_usleep(100);
}

}  // namespace

void Replicator::handle_relation(RelationInfo rel) {
  uint32_t relid = rel.relid;
  auto it = relations_.find(relid);
  if (it != relations_.end() && same_shape(it->second, rel)) return;
  relations_[relid] = std::move(rel);  // same node: pending changes were applied before this
}

// Queues the changes as a pass (applying the one before, see apply_changes); `drain`: applies them all
// now, for what needs the main thread's state up to here (a relation message, TRUNCATE, the round's end).
void Replicator::apply_pending(std::vector<RowChange>& changes, bool drain) {
  if (!changes.empty()) apply_changes(std::move(changes), nullptr, drain);
  changes.clear();
  if (drain) drain_changes();
  if (batch_.pending() >= kFlushRecords) batch_.flush();
}

// WAL that nobody flushes (a non-transactional logical message, async commits) would stay invisible
// to decoding until some later flush; flush it ourselves so pings and such commits are seen at once.
Lsn flush_pending_wal() {
  Lsn inserted = GetXLogInsertRecPtr();
  // The insert position of an empty page points past the page header, which is not written yet.
  if (inserted % wal_segment_size == SizeOfXLogLongPHD) inserted -= SizeOfXLogLongPHD;
  else if (inserted % XLOG_BLCKSZ == SizeOfXLogShortPHD) inserted -= SizeOfXLogShortPHD;
  if (inserted > GetFlushRecPtr(nullptr)) pg_call([&] { XLogFlush(inserted); });
  return GetFlushRecPtr(nullptr);
}

bool Replicator::round() { return stream_ ? stream_round() : peek_round(); }

// Catalog-side work of a round without new changes (in its transaction, which it commits).
bool Replicator::catalog_round(Transaction& xact) {
  int64_t ops_before = batch_.ops_written();
  check_dropped_tables();
  bool activated = maybe_activate(applied_lsn_);
  bool wrote = batch_.ops_written() != ops_before;
  if (activated || wrote) write_checkpoint(applied_lsn_);
  xact.commit();
  return activated || wrote;
}

// The end of a round that read changes: checkpoint (or heartbeat) at new_lsn, commit.
bool Replicator::finish_round(Transaction& xact, Lsn new_lsn, bool saw_ping, int64_t ops_before) {
  check_dropped_tables();
  bool activated = maybe_activate(new_lsn);
  bool wrote = batch_.ops_written() != ops_before;
  if (wrote || saw_ping || activated) {
    write_checkpoint(new_lsn);
  } else if (GetCurrentTimestamp() - last_state_write_ > 10 * 1000000L) {
    // Idle: only an occasional heartbeat row, so that our own WAL does not keep the worker busy.
    write_state(new_lsn);
  }
  xact.commit();
  applied_lsn_ = new_lsn;
  return wrote || saw_ping || activated;
}

// Applies the round's messages in order (whole source transactions) inside the round's transaction.
Replicator::RoundRead Replicator::apply_messages(MessageSource& messages) {
  // Whatever the apply path pallocs outside its own flush contexts (rule values, SPI arguments, result
  // copies) would otherwise land in the SPI procedure context, which lives until the round commits: it
  // goes here instead and is dropped after every applied batch, so a huge round stays bounded.
  MemoryContext round_ctx = CurrentMemoryContext;
  MemoryContext batch_ctx = pg_call([] {
    return AllocSetContextCreate(CurrentMemoryContext, "powersync round batch", ALLOCSET_DEFAULT_SIZES);
  });
  MemoryContextSwitchTo(batch_ctx);
  ChangesScope scope{*this};
  auto apply_batch = [&](std::vector<RowChange>& changes, bool drain = true) {
    apply_pending(changes, drain);
    MemoryContextSwitchTo(batch_ctx);  // SPI calls return in their procedure context
    MemoryContextReset(batch_ctx);
  };

  RoundRead read;
  bool skip = false;
  Lsn commit_lsn = 0;
  uint32_t xid = 0;
  std::vector<RowChange> pending;
  std::string m;
  while (messages.next(m)) {
    wire::Reader r(m);
    char kind = static_cast<char>(r.u8());
    switch (kind) {
      case 'B':  // committed before the stored LSN: applied already
        commit_lsn = r.u64();
        xid = r.u32();
        skip = commit_lsn < applied_lsn_;
        if (!skip) wait_until_visible(xid);
        break;
      case 'C':
        read.last_commit_end = r.u64();
        if (pending.size() >= kApplyChunk) apply_batch(pending, false);
        break;
      case 'R': {
        apply_batch(pending);  // pending changes point at the current description
        handle_relation(read_relation(r));
        break;
      }
      case 'I': case 'U': case 'D': {
        if (skip) break;
        RowChange c;
        uint32_t relid = r.u32();
        c.relation = &relations_.at(relid);
        c.commit_lsn = commit_lsn;
        c.xid = xid;
        c.kind = kind == 'I' ? RowChange::Kind::Insert : kind == 'U' ? RowChange::Kind::Update : RowChange::Kind::Delete;
        if (kind != 'I') {
          c.old_kind = static_cast<char>(r.u8());
          if (c.old_kind != 'n') c.old_tuple = wire::read_tuple(r);
        }
        if (kind != 'D') c.new_tuple = wire::read_tuple(r);
        pending.push_back(std::move(c));
        if (pending.size() >= kApplyChunk * 4) apply_batch(pending, false);
        break;
      }
      case 'T': {
        apply_batch(pending);
        if (skip) break;
        uint16_t count = r.u16();
        for (uint16_t i = 0; i < count; ++i) {
          uint32_t relid = r.u32();
          for (auto& [id, v] : versions_)
            if (SourceTable* t = source_table_for(v, relations_.at(relid))) apply_truncate(v, *t);
        }
        break;
      }
      case 'M': {
        r.u8();
        Lsn at = r.u64();
        if (at >= applied_lsn_) read.saw_ping = true;
        read.message_lsn = std::max(read.message_lsn, at);
        break;
      }
      default: throw Error(Error::Kind::Internal, std::string("powersync: unknown change message kind ") + kind);
    }
    m.clear();
    if (m.capacity() > (1 << 16)) m.shrink_to_fit();
  }
  apply_batch(pending);
  batch_.flush();
  MemoryContextSwitchTo(round_ctx);
  MemoryContextDelete(batch_ctx);
  return read;
}

bool Replicator::peek_round() {
  Lsn upto = flush_pending_wal();
  int64_t now = GetCurrentTimestamp();
  // No new WAL: still look at the deployed versions now and then (a deploy that committed before our
  // slot existed brings no WAL we would see).
  Lsn done = std::max(applied_lsn_, slot_lsn_);
  if (upto <= done && now - last_refresh_ < 1000000) return false;
  Transaction xact;
  refresh_versions();
  last_refresh_ = now;
  if (upto <= done) return catalog_round(xact);  // no new WAL
  int64_t ops_before = batch_.ops_written();
  // Read in slices, so a huge transaction never sits in memory whole; it still commits as one round.
  PeekCursor messages(slot_, upto, kPeekLimit, table_patterns());
  RoundRead read = apply_messages(messages);
  messages.close();
  Lsn new_lsn = static_cast<int64_t>(messages.count()) >= kPeekLimit && read.last_commit_end ? read.last_commit_end : upto;
  new_lsn = std::max(new_lsn, applied_lsn_);  // a limited peek may end inside transactions applied before
  bool worked = finish_round(xact, new_lsn, read.saw_ping, ops_before);
  advance_slot(new_lsn);
  return worked;
}

void Replicator::write_state(Lsn lsn) {
  static spi::Statement update(
      "UPDATE powersync.replication_state SET replicated_lsn = $1, replicated_at = now(), status = 'running', "
      "worker_pid = pg_backend_pid(), last_error = NULL",
      {LSNOID});
  Datum arg = LSNGetDatum(lsn);
  update.run(&arg);
  last_state_write_ = GetCurrentTimestamp();
}

// Checkpoint of the ACTIVE version: (highest op id written, lsn), NOTIFY in the same transaction.
void Replicator::write_checkpoint(Lsn lsn) {
  write_state(lsn);
  for (auto& [id, v] : versions_) {
    if (v.state != "ACTIVE") continue;
    int64_t op_id = batch_.max_op_id();
    if (op_id == v.last_checkpoint && lsn <= v.last_checkpoint_lsn) continue;
    static spi::Statement insert(
        "INSERT INTO powersync.checkpoints (sync_rules_id, op_id, lsn) VALUES ($1, $2, $3) ON CONFLICT "
        "(sync_rules_id, op_id) DO UPDATE SET lsn = EXCLUDED.lsn, created_at = now()",
        {INT8OID, INT8OID, LSNOID});
    static spi::Statement update(
        "UPDATE powersync.sync_rules SET last_checkpoint = $2, last_checkpoint_lsn = $3 WHERE id = $1", {INT8OID, INT8OID, LSNOID});
    static spi::Statement notify("SELECT pg_notify('powersync_checkpoint', $1)", {TEXTOID});
    Datum args[3] = {Int64GetDatum(id), Int64GetDatum(op_id), LSNGetDatum(lsn)};
    insert.run(args);
    update.run(args);
    std::string payload = "{\"sync_rules\":" + std::to_string(id) + ",\"op_id\":" + std::to_string(op_id) +
                          ",\"lsn\":\"" + spi::lsn_text(lsn) + "\"}";
    Datum p = spi::text_datum(payload);
    notify.run(&p);
    spi::release();
    v.last_checkpoint = op_id;
    v.last_checkpoint_lsn = lsn;
  }
}

// Moves the slot only after our ops are committed, so it never passes what our tables hold.
// Advancing decodes again, so it is batched: at most every 250 ms unless 1 MB of WAL piled up. Until
// then the next peek returns the applied transactions again and the LSN check skips them.
void Replicator::advance_slot(Lsn lsn) {
  if (lsn <= slot_lsn_) return;
  if (lsn - slot_lsn_ < (1 << 20) && GetCurrentTimestamp() - last_advance_ < 250000) return;
  last_advance_ = GetCurrentTimestamp();
  Lsn restart = 0;
  {
    Transaction xact;
    static spi::Statement advance("SELECT pg_replication_slot_advance($1::name, $2)", {TEXTOID, LSNOID});
    static spi::Statement slot("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = $1::name", {TEXTOID});
    Datum args[2] = {spi::text_datum(slot_), LSNGetDatum(lsn)};
    quietly([&] { return advance.run(args); });
    spi::release();
    if (slot.run(args) == 1) restart = spi::lsn_at(0, 0);
    spi::release();
    xact.commit();
  }
  slot_lsn_ = lsn;
  // Every decoding call re-reads the WAL from the slot's restart_lsn, which only moves at running-xacts
  // records (logged every 15 s when busy). When it lags, log one now so the next rounds start later.
  int64_t now = GetCurrentTimestamp();
  if (restart != 0 && lsn - restart > kRestartLagMax && now - last_standby_snapshot_ > 200000) {
    pg_call([] { LogStandbySnapshot(); });
    last_standby_snapshot_ = now;
  }
}

}  // namespace powersync::pg

namespace powersync::pg {

void Replicator::start() {
  {
    Transaction xact;
    spi::exec("SELECT replicated_lsn, (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM "
              "powersync.op_id_sequence) FROM powersync.replication_state");
    applied_lsn_ = spi::lsn_at(0, 0);
    batch_.set_max_op_id(spi::int64_at(0, 1));
    spi::release();
    // Versions stopped while no worker ran still hold data.
    spi::exec("SELECT id FROM powersync.sync_rules r WHERE state = 'STOP' AND (EXISTS (SELECT 1 FROM "
              "powersync.source_tables s WHERE s.sync_rules_id = r.id) OR EXISTS (SELECT 1 FROM "
              "powersync.bucket_state b WHERE b.sync_rules_id = r.id))");
    std::vector<int64_t> stopped;
    for (uint64_t i = 0; i < SPI_processed; ++i) stopped.push_back(spi::int64_at(i, 0));
    spi::release();
    for (int64_t id : stopped) drop_version_data(id);
    write_state(applied_lsn_);
    xact.commit();
  }
  find_or_create_slot();
  choose_read_mode();
}

void Replicator::find_or_create_slot() {
  Transaction xact;
  static spi::Statement find("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1", {TEXTOID});
  Datum name = spi::text_datum(slot_);
  if (find.run(&name) == 1) {
    slot_lsn_ = spi::lsn_at(0, 0);
    spi::release();
    xact.commit();
    return;
  }
  spi::release();
  xact.commit();
  // Created in a transaction of its own: slot creation refuses a transaction that has written.
  Transaction create;
  static spi::Statement make("SELECT lsn FROM pg_create_logical_replication_slot($1::name, 'powersync_pg')", {TEXTOID});
  Datum arg = spi::text_datum(slot_);
  make.run(&arg);
  slot_lsn_ = spi::lsn_at(0, 0);
  spi::release();
  create.commit();
  log_info("powersync: created replication slot " + slot_);
}

}  // namespace powersync::pg
