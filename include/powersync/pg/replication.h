// The replication worker's model: rule versions and their source tables, decoded row changes, the
// per-round change batch (current_data cache + pending ops), and the Replicator that runs rounds.
// Implemented in src/pg/{rule_versions,row_ops,change_batch,replication_round,snapshot}.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "powersync/pg/change_format.h"
#include "powersync/pg/message_source.h"
#include "powersync/rules/sync_rules.h"

namespace powersync::pg {

using Lsn = uint64_t;
class Transaction;
struct ChangeEvaluation;
struct ChangePass;

// Flushes WAL inserted but not flushed yet (pings, async commits), so decoding sees it; the flush LSN.
Lsn flush_pending_wal();

// A table as described by the output plugin ('R' message) or the catalog (snapshot).
struct RelationInfo {
  uint32_t relid = 0;
  std::string schema, name;
  char identity = 'd';  // pg_class.relreplident
  std::vector<std::string> columns;
  std::vector<uint32_t> types;
  std::vector<bool> key;  // column is part of the replica identity
  std::vector<std::string> key_columns() const;
};

// A table a rule version replicates (row of powersync.source_tables).
struct SourceTable {
  int32_t id = 0;
  uint32_t relid = 0;
  std::string schema, name;
  char identity = 'd';
  std::vector<std::string> identity_columns;
  bool snapshot_done = false;
  int64_t next_block = 0, total_blocks = 0, rows = 0;
  // The snapshot started on a table without current_data rows and the stream has not touched it since
  // (in this process): copied rows are new unless the copy read a row twice (see apply_changes).
  bool snapshot_fresh = false;
  uint64_t snapshot_lsn = 0;  // source_tables.snapshot_lsn: WAL position after the copy (0: none/unknown)
};

struct RuleVersion {
  int64_t id = 0;
  std::string state;  // PROCESSING | ACTIVE
  bool snapshot_done = false;
  Lsn snapshot_lsn = 0;
  int64_t last_checkpoint = 0;
  Lsn last_checkpoint_lsn = 0;
  bool tables_listed = false;  // existing matching tables were registered
  std::unique_ptr<rules::SyncRules> rules;
  std::map<uint32_t, SourceTable> tables;  // by relid
};

struct RowChange {
  enum class Kind { Insert, Update, Delete };
  Kind kind = Kind::Insert;
  const RelationInfo* relation = nullptr;
  char old_kind = 'n';  // 'n' none, 'k' key columns, 'o' full old row
  wire::Tuple old_tuple, new_tuple;
  bool from_snapshot = false;  // snapshot rows never overwrite a row the stream already wrote
  uint64_t commit_lsn = 0;     // the transaction's commit record (stream changes)
  uint32_t xid = 0;            // the transaction's top-level xid (stream changes)
};

// Source keys of a change for one source table, and the new tuple completed where it can be.
struct Keys {
  std::optional<std::string> before, after;
  bool after_is_new = false;  // no current_data row can exist for `after`: no probe (see apply_changes)
  wire::Tuple merged;  // new tuple, unchanged-TOAST columns filled from the old row when it is complete
};

// Bytes appended once and freed all at once: views stay valid until clear() (blocks never move). Holds a
// batch's pending records (instead of one std::string per field) and a pass's evaluated PUTs (no
// allocation per row; change_evaluation.h).
class ByteArena {
 public:
  explicit ByteArena(size_t block_size = 256 * 1024) : block_size_(block_size) {}
  std::string_view copy(std::string_view s) {
    if (s.size() > left_) grow(s.size());
    char* p = next_;
    if (!s.empty()) memcpy(p, s.data(), s.size());
    next_ += s.size();
    left_ -= s.size();
    return std::string_view(p, s.size());
  }
  // Keeps one block for the next use (most batches fit in it).
  void clear() {
    if (blocks_.empty()) return;
    blocks_.erase(blocks_.begin() + 1, blocks_.end());
    next_ = blocks_.front().get();
    left_ = block_size_;  // the first block is at least that big
  }

 private:
  void grow(size_t at_least) {
    size_t size = std::max(at_least, block_size_);
    blocks_.push_back(std::make_unique<char[]>(size));
    next_ = blocks_.back().get();
    left_ = size;
  }
  size_t block_size_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* next_ = nullptr;
  size_t left_ = 0;
};

// One op or lookup row waiting for its op id, in generation order. The strings are views into the
// batch's arena; the bucket is an index into the batch's bucket names (interned per flush).
struct PendingRecord {
  enum class Kind : uint8_t { Put, Remove, Lookup };
  Kind kind = Kind::Put;
  uint32_t bucket = 0;  // ops
  uint32_t checksum = 0;
  int32_t source_table_id = 0;  // lookups
  int64_t version = 0;
  std::string_view table, id, subkey, data;    // ops
  std::string_view source_key, lookup, parameters;  // lookups
};

// current_data of one source row as the batch sees it.
struct CurrentRow {
  bool exists = false;  // row present after the changes applied so far
  bool stored = false;  // row present in powersync.current_data (as loaded)
  bool dirty = false;   // must be written (insert/update if exists, delete if stored and gone)
  uint64_t tid = 0;     // where the stored row is (packed ItemPointer), valid while stored
  std::optional<std::string> row_image;
  // The row's (bucket, table, id) references and lookups, encoded as in current_data's buckets/lookups
  // columns (change_format.h: wire::for_each_bucket_ref, for_each_string): one string per list instead
  // of three per reference, compared byte-wise, written at flush as they are.
  std::string buckets = wire::empty_list(), lookups = wire::empty_list();
};

// Hash of a short byte key (a row cache key: 4 bytes table id + source key; a bucket name): 8 bytes per
// multiply, no per-byte loop as in std::hash's, with a final mix so the bucket index (modulo) sees every
// input bit.
struct ShortKeyHash {
  size_t operator()(std::string_view k) const noexcept {
    const char* p = k.data();
    size_t n = k.size();
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
    for (; n >= 8; p += 8, n -= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
      h ^= h >> 31;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, n);
    h = (h ^ tail) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};

// current_data cache + pending ops of a round; flushed in chunks inside the round's transaction.
class ChangeBatch {
 public:
  ChangeBatch() = default;
  ChangeBatch(const ChangeBatch&) = delete;
  ChangeBatch& operator=(const ChangeBatch&) = delete;
  ~ChangeBatch();
  // Loads the current_data rows of these (table id, key) pairs that are not cached yet.
  void prefetch(const std::vector<std::pair<int32_t, std::string>>& keys);
  // The cached row (loaded on a miss).
  CurrentRow& row(int32_t table_id, const std::string& key);
  // Room for `more` rows beyond those cached, so that the rows of an apply pass do not rehash the cache.
  // Only grows: unordered_map::reserve below the current bucket count would shrink (rehash) it. And grows
  // at least twofold: many passes between two flushes (a snapshot chunk is read in ~20 parts) would
  // otherwise rehash the whole cache once per pass (11 % of the snapshot's main thread).
  void reserve(size_t more) {
    size_t n = rows_.size() + more;
    if (n > rows_.bucket_count() * rows_.max_load_factor()) rows_.reserve(std::max(n, 2 * rows_.size()));
  }
  // A row known not to exist yet (random key of a table without identity): no lookup.
  CurrentRow& fresh_row(int32_t table_id, const std::string& key);
  // A PUT or REMOVE (data ignored) of one (bucket, row); its strings are copied into the batch.
  void add_op(PendingRecord::Kind kind, int64_t version, std::string_view bucket, std::string_view table,
              std::string_view id, std::string_view subkey, std::string_view data, uint32_t checksum);
  void add_lookup(int64_t version, int32_t table_id, std::string_view source_key, std::string_view lookup,
                  std::string_view parameters);
  size_t pending() const { return records_.size() + rows_.size(); }
  // Writes current_data, ops (op ids, cumulative checksums) and lookups; clears the batch. The buckets'
  // running totals stay in memory until write_bucket_state().
  void flush();
  // Writes the totals of the buckets the transaction's flushes touched to bucket_state, one row each, and
  // forgets them: once per round, before its transaction commits (a commit that would leave totals
  // unwritten fails instead). Readers in other sessions only see committed state, so this is the same to
  // them as writing at every flush.
  void write_bucket_state();
  // Forgets unwritten totals (their transaction aborted).
  void discard_bucket_totals() noexcept { totals_.clear(); }
  // Forgets cached rows of a table (after a TRUNCATE/retire wrote them directly).
  void drop_table(int32_t table_id);
  int64_t ops_written() const { return ops_written_; }
  // A current_data insert without probe met an existing row: probe every key from now on (process-wide).
  static bool probe_everything;
  int64_t max_op_id() const { return max_op_id_; }
  void set_max_op_id(int64_t v) { max_op_id_ = v; }

 private:
  void write_current_data();
  void write_records();
  // The cache key of (table id, key) in key_buf_ (reused: a lookup of a cached row allocates nothing).
  const std::string& cache_key(int32_t table_id, const std::string& key);
  using RowCache = std::pmr::unordered_map<std::string, CurrentRow, ShortKeyHash>;
  // The cache's nodes and bucket array come from one arena that a flush releases at once, instead of
  // one free per row (declared before rows_, which uses it).
  std::pmr::monotonic_buffer_resource row_memory_{size_t{1} << 20};
  RowCache rows_{&row_memory_};  // key: 4 bytes table id + source key
  std::string key_buf_;
  std::vector<PendingRecord> records_;
  ByteArena bytes_;  // the records' strings and the bucket names' keys
  std::unordered_map<std::string_view, uint32_t, ShortKeyHash> bucket_slot_;  // bucket -> index into bucket_names_
  std::vector<std::string> bucket_names_;
  int64_t ops_written_ = 0;
  int64_t max_op_id_ = 0;
  // A bucket's running totals in this transaction; `tid`: its bucket_state row, if `stored`. `version`:
  // the sync_rules_id its row keeps (the stored one, else that of the bucket's first op).
  struct BucketTotals {
    int64_t version = 0, last_op = 0, count = 0;
    uint32_t checksum = 0;
    bool stored = false, changed = false;
    uint64_t tid = 0;
  };
  std::unordered_map<std::string, BucketTotals, ShortKeyHash> totals_;  // by bucket name
  // The totals of this flush's buckets (by PendingRecord::bucket), loaded from bucket_state at first touch.
  std::vector<BucketTotals*> load_totals();
};

// The source keys a copied chunk wrote, kept flat: one append per copied row (no node or string per key),
// sorted only when the stream first looks a key up, which most chunks never see (a chunk is dropped once
// the stream passes its horizon, and only stream changes of the chunk's table before that look).
// A key may be held twice (REPLICA IDENTITY FULL tables can hold identical rows).
class CopiedKeys {
 public:
  void insert(std::string_view key);
  bool contains(std::string_view key);  // sorts on first use
  void erase(std::string_view key);     // forgets every copy of the key

 private:
  std::string_view key(uint32_t i) const {
    uint32_t begin = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(bytes_).substr(begin, ends_[i] - begin);
  }
  // The indexes of the keys equal to `k` in sorted_ (sorted again first if keys were added since).
  std::pair<const uint32_t*, const uint32_t*> equal(std::string_view k);
  std::string bytes_;              // the keys back to back, in copy order
  std::vector<uint32_t> ends_;     // end of key i in bytes_
  std::vector<uint32_t> sorted_;   // key indexes in key order; covers the keys held at the last lookup
  std::vector<bool> forgotten_;    // by key index; sized at the first erase
};

// One copied snapshot chunk whose snapshot may be ahead of the stream: the keys it wrote to current_data.
// A stream change of such a key that the chunk's snapshot already saw is not applied again (the copy
// emitted that state or a newer one); see Replicator::copy_reflects.
struct CopiedChunk {
  Lsn horizon = 0;  // WAL insert position read after the snapshot: commits from here on are not in it
  uint32_t xmin = 0, xmax = 0;
  std::vector<uint32_t> running;  // the snapshot's in-progress xids
  CopiedKeys keys;
  // Whether a committed transaction is visible in the chunk's snapshot.
  bool sees(uint32_t xid) const {
    if (static_cast<int32_t>(xid - xmin) < 0) return true;
    if (static_cast<int32_t>(xid - xmax) >= 0) return false;
    for (uint32_t r : running)
      if (r == xid) return false;
    return true;
  }
};

class Replicator {
 public:
  // Out of line (row_ops.cpp), where ChangePass is complete.
  explicit Replicator(std::string slot_name);
  ~Replicator();  // waits for a pass still on the evaluation thread
  // Reads the stored state (replicated LSN, op id), creates the slot if needed and opens the replication
  // connection (or falls back to peeking, see read_mode). Own transactions.
  void start();
  // One round: read what is new (stream or peek), apply, commit ops + LSN + checkpoint, then confirm
  // the LSN to the slot. Returns whether it did work.
  bool round();
  // Waits up to `ms` for new changes (the stream's socket) or the latch.
  void wait(long ms);
  // One snapshot chunk of one table, if any version needs it. Own transaction. Returns whether it did work.
  bool snapshot_step();
  Lsn replicated_lsn() const { return applied_lsn_; }

 private:
  // rule_versions.cpp
  void refresh_versions();
  void list_existing_tables(RuleVersion& v);
  SourceTable* source_table_for(RuleVersion& v, const RelationInfo& rel);
  SourceTable& register_table(RuleVersion& v, const RelationInfo& rel, bool snapshot_done);
  void retire_table(RuleVersion& v, uint32_t relid);
  void check_dropped_tables();  // also registers tables that appeared (check_new_tables)
  void check_new_tables();
  void drop_version_data(int64_t version);
  bool maybe_activate(Lsn lsn);
  std::string table_patterns() const;
  // row_ops.cpp. apply_changes queues a pass; it may be applied only at the next call or drain_changes
  // (`last`: the caller drains next).
  void apply_changes(std::vector<RowChange> changes, RuleVersion* only = nullptr, bool last = false);
  void drain_changes();
  void abandon_changes() noexcept;
  // Abandons a queued pass when a scope using apply_changes is left by an exception.
  struct ChangesScope {
    Replicator& r;
    ~ChangesScope() { r.abandon_changes(); }
  };
  void apply_pass(ChangePass& pass);
  void apply_change(RuleVersion& v, SourceTable& t, const RowChange& c, ChangeEvaluation& e);
  void apply_truncate(RuleVersion& v, SourceTable& t);
  bool copy_reflects(int32_t table_id, const std::string& key, const RowChange& c);
  bool keyless_copy_saw(SourceTable& t, const RowChange& c);
  // replication_round.cpp
  struct RoundRead {
    bool saw_ping = false;
    Lsn last_commit_end = 0;  // end of the last commit read
    Lsn message_lsn = 0;      // highest powersync message (ping) position read
  };
  RoundRead apply_messages(MessageSource& messages);
  bool peek_round();
  bool catalog_round(Transaction& xact);  // no new changes: drops, renames, activation
  bool finish_round(Transaction& xact, Lsn new_lsn, bool saw_ping, int64_t ops_before);
  void apply_pending(std::vector<RowChange>& changes, bool drain);
  bool known_relation(const RelationInfo& rel) const;
  void handle_relation(RelationInfo rel);
  void write_checkpoint(Lsn lsn);
  void write_state(Lsn lsn);
  void advance_slot(Lsn lsn);
  // snapshot.cpp: a version's copy is done and the stream has passed its end (maybe_activate would activate it)
  bool activation_due() const;
  // stream_round.cpp
  void choose_read_mode();
  void find_or_create_slot();
  bool stream_round();

  std::string slot_;
  Lsn applied_lsn_ = 0;       // everything before it is committed in our tables
  Lsn slot_lsn_ = 0;          // slot confirmed position as we last set it
  Lsn last_written_lsn_ = 0;  // replication_state.replicated_lsn
  int64_t last_drop_check_ = 0;
  int64_t last_state_write_ = 0;
  int64_t last_standby_snapshot_ = 0;
  int64_t last_refresh_ = 0;
  int64_t last_advance_ = 0;
  std::map<int64_t, RuleVersion> versions_;
  std::unordered_map<uint32_t, RelationInfo> relations_;
  ChangeBatch batch_;
  std::unordered_map<int32_t, std::deque<CopiedChunk>> copied_;  // by source table id, in copy order
  CopiedChunk* copying_ = nullptr;                                // the chunk snapshot_step is applying
  // Transactions of a table without row identity that the stream skipped because its copy had not run
  // yet: the copy's snapshot must see every one of them (snapshot_step waits for those still finishing).
  std::unordered_map<int32_t, std::unordered_set<uint32_t>> skipped_for_copy_;
  std::unique_ptr<WalStream> stream_;  // null: peek mode
  std::unique_ptr<ChangePass> evaluating_;  // the pass on the evaluation thread (row_ops.cpp)
  std::unique_ptr<ChangePass> applied_;     // applied, to be freed by the thread with its next job
};

// Source key of a row: for a single integer identity column 'i' + its value as 8 order-preserving bytes,
// otherwise 16 bytes of SHA-256 over the encoded identity values; 16 random bytes when the table has no
// identity columns. subkey = "<table id>/<hex key>".
std::string source_key_of(const RelationInfo& rel, const wire::Tuple& tuple, const std::vector<std::string>& key_columns);
std::string subkey_of(int32_t table_id, const std::string& source_key);

// The table as the output plugin would describe it, read from the catalog. Empty name if it is gone.
RelationInfo catalog_relation(uint32_t relid);

// snapshot.cpp: an update's unchanged-TOAST columns without a stored image, read from the table as it is
// now (false if the row cannot be read again safely); and the warning + count when that fails too.
bool reread_unchanged(const SourceTable& t, const RelationInfo& rel, const std::string& source_key, wire::Tuple& merged);
void report_unresolved_toast(const RelationInfo& rel, const std::string& subkey);

}  // namespace powersync::pg
