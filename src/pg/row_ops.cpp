// Op generation (spec §2.2): turns one decoded row change of one rule version into PUT/REMOVE ops,
// parameter lookup rows/tombstones and the new current_data state of the source row.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json

#include <atomic>

extern "C" {
#include "postgres.h"
#include "catalog/pg_type.h"
#include "storage/ipc.h"
#include "utils/guc.h"
}

#include "powersync/pg/change_evaluation.h"
#include "powersync/pg/evaluation_thread.h"
#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"
#include "powersync/pg/worker_log.h"
#include "powersync/protocol/checksum.h"

namespace powersync::pg {

std::vector<std::string> RelationInfo::key_columns() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < columns.size(); ++i)
    if (key[i]) out.push_back(columns[i]);
  return out;
}

namespace {

// Fills unchanged-TOAST columns from a stored row image (by column name).
void fill_from_image(const RelationInfo& rel, wire::Tuple& t, const std::string& image) {
  rules::Row stored = wire::decode_row_image(image);
  for (size_t i = 0; i < t.values.size(); ++i) {
    if (!t.unchanged[i]) continue;
    if (const rules::Value* v = rules::find_column(stored, rel.columns[i])) {
      t.values[i] = *v;
      t.unchanged[i] = false;
    }
  }
}

}  // namespace

namespace {

void add_remove(ChangeBatch& batch, int64_t version, const wire::BucketRefView& ref, std::string_view subkey) {
  batch.add_op(PendingRecord::Kind::Remove, version, ref.bucket, ref.table, ref.id, subkey, {},
               protocol::remove_checksum(subkey));
}

bool contains(const std::vector<std::string>& v, std::string_view x) {
  for (const auto& e : v)
    if (e == x) return true;
  return false;
}

}  // namespace

// A pass of changes: each change paired with every source table (per rule version) it reaches, and
// what the rules make of it. The pairing needs the catalog (main thread); the evaluation is pure.
struct ChangePass {
  struct Item {
    RuleVersion* version;
    SourceTable* table;
    const RowChange* change;
    ChangeEvaluation eval;
  };
  std::vector<RowChange> changes;
  std::vector<Item> items;
  std::atomic<size_t> next_item{0};
  // The items' PUT records: one arena per thread evaluating the pass (an arena is not thread-safe).
  PutArena thread_puts, main_puts;
  // Evaluates the items nobody has claimed yet. Both threads may run it on the same pass: the evaluation
  // thread as its job (with thread_puts), and the main thread when it needs the pass before the thread is
  // done (with main_puts; the second core also runs the walsender and the writing client: the main thread
  // helps instead of waiting).
  void evaluate(PutArena& puts) {
    for (size_t i; (i = next_item.fetch_add(1, std::memory_order_relaxed)) < items.size();)
      evaluate_change(*items[i].version->rules, *items[i].table, *items[i].change, items[i].eval, puts);
  }
};

namespace {

EvaluationThread evaluation_thread;

// Frees an applied pass's decoded changes (allocated by the main thread, which frees them fastest); its
// items' change pointers dangle from here on, the pass is only freed after this.
void release_changes(ChangePass& pass) { std::vector<RowChange>().swap(pass.changes); }

void stop_evaluation_thread(int, Datum) { evaluation_thread.stop(); }

}  // namespace

bool evaluation_thread_enabled = true;

void define_evaluation_thread_setting() {
  DefineCustomBoolVariable("powersync.evaluation_thread",
                           "Evaluates sync rules and op checksums on a second thread of the replication worker.",
                           "Off: the worker evaluates every change on its main thread, between its Postgres work.",
                           &evaluation_thread_enabled, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
}

Replicator::Replicator(std::string slot_name) : slot_(std::move(slot_name)) {}

Replicator::~Replicator() { abandon_changes(); }

// Queues a pass. With the evaluation thread, its rules run there while the main thread applies the
// pass before it (and then reads the next one): passes are applied strictly in order, so op ids and
// checksums come out as with inline evaluation. Everything that reads main-thread state (current_data,
// copied chunks, op ids) happens at apply time. Whatever the thread reads (versions_, their tables,
// relations_) changes only at drain points: relation messages, TRUNCATE, the end of a round or chunk.
void Replicator::apply_changes(std::vector<RowChange> changes, RuleVersion* only, bool last) {
  auto pass = std::make_unique<ChangePass>();
  pass->changes = std::move(changes);
  pass->items.reserve(pass->changes.size());
  for (const RowChange& c : pass->changes)
    for (auto& [id, v] : versions_) {
      if (only && only != &v) continue;
      SourceTable* t = only ? &only->tables.at(c.relation->relid) : source_table_for(v, *c.relation);
      if (t) pass->items.push_back({&v, t, &c, {}});
    }
  // The last pass before a drain with nothing on the thread could overlap with nothing (a round of a
  // few transactions): handing it over would only add the hand-off and cross-core cache misses.
  if (!evaluation_thread_enabled || (last && !evaluating_)) {
    drain_changes();
    pass->evaluate(pass->main_puts);
    apply_pass(*pass);
    return;
  }
  std::unique_ptr<ChangePass> previous;
  if (evaluating_) {
    evaluating_->evaluate(evaluating_->main_puts);  // what the thread has not started yet
    evaluation_thread.wait();
    previous = std::move(evaluating_);
  }
  static bool exit_hook = false;
  if (!exit_hook) {
    pg_call([] { before_shmem_exit(stop_evaluation_thread, 0); });
    exit_hook = true;
  }
  // Applied passes are freed by the thread: their results come (mostly) from its malloc arena, and freeing them
  // on the main thread cost it ~8 % (a free into another thread's arena takes that arena's lock). The
  // decoded changes come from the main thread's arena: it frees them itself (see release_changes).
  ChangePass* next = pass.get();
  ChangePass* applied = applied_.get();
  evaluation_thread.submit([next, applied] {
    delete applied;
    next->evaluate(next->thread_puts);
  });
  applied_.release();
  evaluating_ = std::move(pass);
  if (previous) {
    apply_pass(*previous);
    release_changes(*previous);
    applied_ = std::move(previous);
  }
}

// Applies the pass still on the evaluation thread, if any; the thread frees it (and the one before).
void Replicator::drain_changes() {
  if (!evaluating_) return;
  evaluating_->evaluate(evaluating_->main_puts);  // what the thread has not started yet
  evaluation_thread.wait();
  apply_pass(*evaluating_);
  release_changes(*evaluating_);
  ChangePass* applied[2] = {applied_.get(), evaluating_.get()};
  evaluation_thread.submit([applied] {
    delete applied[0];
    delete applied[1];
  });
  applied_.release();
  evaluating_.release();
}

// Unwinding (an error in the round, or the Replicator going away): the thread must be done with the
// pass before its inputs die; its results are not wanted (the round is retried).
void Replicator::abandon_changes() noexcept {
  evaluation_thread.abandon();
  evaluating_.reset();
  applied_.reset();
}

// Decides which rows skip the current_data probe, loads the current_data rows of all the pass's keys
// in one probe pass, then applies the changes in order.
void Replicator::apply_pass(ChangePass& pass) {
  for (ChangePass::Item& i : pass.items) {
    const RowChange& c = *i.change;
    SourceTable* t = i.table;
    Keys& k = i.eval.keys;
    // Rows that must be new skip the current_data probe: a stream INSERT into a table keyed by a primary
    // key or unique replica-identity index, committed after the table's copy ended (the copy cannot have
    // seen it, and an earlier delete or key change of that key committed and was applied first), and
    // rows copied into a fresh snapshot. Should a row
    // exist after all (a deferrable key, a row the copy read twice), the insert fails on the primary key,
    // the round is retried, and ChangeBatch::probe_everything keeps probing from then on.
    bool unique_key = (t->identity == 'd' || t->identity == 'i') && !t->identity_columns.empty();
    if (c.from_snapshot) k.after_is_new = t->snapshot_fresh;
    else {
      t->snapshot_fresh = false;
      k.after_is_new = c.kind == RowChange::Kind::Insert && unique_key && t->snapshot_done &&
                       c.commit_lsn > t->snapshot_lsn;
    }
    if (ChangeBatch::probe_everything) k.after_is_new = false;
  }
  batch_.reserve(pass.items.size());
  std::vector<std::pair<int32_t, std::string>> wanted;
  wanted.reserve(pass.items.size());
  for (const ChangePass::Item& i : pass.items) {
    const Keys& k = i.eval.keys;
    if (i.table->identity == 'n' || (i.table->identity_columns.empty() && i.table->identity != 'f')) continue;
    if (k.before) wanted.emplace_back(i.table->id, *k.before);
    if (k.after && k.after != k.before && !k.after_is_new) wanted.emplace_back(i.table->id, *k.after);
  }
  batch_.prefetch(wanted);
  for (ChangePass::Item& i : pass.items) apply_change(*i.version, *i.table, *i.change, i.eval);
}

void Replicator::apply_change(RuleVersion& v, SourceTable& t, const RowChange& c, ChangeEvaluation& e) {
  const RelationInfo& rel = *c.relation;
  Keys& k = e.keys;
  bool keyed = t.identity == 'f' || !t.identity_columns.empty();
  int64_t version = v.id;
  // A copied chunk whose snapshot already saw this change wrote that row state (or a newer one): applying
  // the change again would repeat the copy's PUT, or put an older state after it.
  bool skip_after = false;
  if (!c.from_snapshot && !keyed && keyless_copy_saw(t, c)) return;
  if (!c.from_snapshot && !copied_.empty()) {
    if (k.before && copy_reflects(t.id, *k.before, c)) k.before.reset();
    skip_after = k.after && copy_reflects(t.id, *k.after, c);
  }
  // 1. A delete or key change removes everything the old row produced (spec §2.2 step 2).
  if (k.before) {
    CurrentRow& b = batch_.row(t.id, *k.before);
    if (has_unchanged(k.merged) && b.row_image) fill_from_image(rel, k.merged, *b.row_image);
    if (b.exists && (!k.after || *k.after != *k.before)) {
      std::string subkey = subkey_of(t.id, *k.before);
      wire::for_each_bucket_ref(b.buckets, [&](const wire::BucketRefView& ref) { add_remove(batch_, version, ref, subkey); });
      wire::for_each_string(b.lookups, [&](std::string_view l) { batch_.add_lookup(version, t.id, *k.before, l, "[]"); });
      bool stored = b.stored;
      uint64_t tid = b.tid;
      b = CurrentRow{};
      b.stored = stored;
      b.tid = tid;
      b.dirty = true;
    }
  }
  if (!k.after || skip_after) return;
  // 2. The new row: PUT for every result, REMOVE for every previous (bucket, row) not produced again.
  CurrentRow& a = keyed && !k.after_is_new ? batch_.row(t.id, *k.after) : batch_.fresh_row(t.id, *k.after);
  if (c.from_snapshot && a.exists) return;  // the stream already wrote a newer version of this row
  if (c.from_snapshot && copying_ && keyed) copying_->keys.insert(*k.after);
  if (!e.evaluated) {  // unchanged-TOAST columns: complete the row first
    if (has_unchanged(k.merged) && a.row_image) fill_from_image(rel, k.merged, *a.row_image);
    if (has_unchanged(k.merged) && !reread_unchanged(t, rel, *k.after, k.merged))
      report_unresolved_toast(rel, subkey_of(t.id, *k.after));
    evaluate_new_row(*v.rules, t, rel, e);
  }
  for (const auto& w : e.warnings) log_warning(w);
  const std::string_view subkey = e.puts.subkey();
  for_each_put(e, [&](const wire::BucketRefView& ref, std::string_view data, uint32_t checksum) {
    batch_.add_op(PendingRecord::Kind::Put, version, ref.bucket, ref.table, ref.id, subkey, data, checksum);
  });
  if (a.exists)
    wire::for_each_bucket_ref(a.buckets, [&](const wire::BucketRefView& ref) {
      if (!e.now.contains(ref)) add_remove(batch_, version, ref, subkey);
    });
  for (size_t i = 0; i < e.lookups.size(); ++i) batch_.add_lookup(version, t.id, *k.after, e.lookups[i], e.params[i]);
  if (a.exists)
    wire::for_each_string(a.lookups, [&](std::string_view l) {
      if (!contains(e.lookups, l)) batch_.add_lookup(version, t.id, *k.after, l, "[]");
    });
  // An update that leaves the stored state as it was (same buckets, lookups and image: the common case
  // of a row changing within its buckets) does not rewrite its current_data row at all.
  if (!a.exists || a.buckets != e.now.bytes() || a.lookups != e.lookup_list || a.row_image != e.image) a.dirty = true;
  a.exists = true;
  a.buckets = e.now.take();
  a.lookups = std::move(e.lookup_list);
  a.row_image = std::move(e.image);
}

// Whether a copied chunk wrote this key under a snapshot that saw the change's transaction. A chunk that
// wrote the key but did not see it no longer describes the row once the change is applied: forgotten.
// Chunks whose horizon the stream has passed are dropped (no later commit can be in their snapshots).
bool Replicator::copy_reflects(int32_t table_id, const std::string& key, const RowChange& c) {
  auto it = copied_.find(table_id);
  if (it == copied_.end()) return false;
  std::deque<CopiedChunk>& chunks = it->second;
  while (!chunks.empty() && chunks.front().horizon <= c.commit_lsn && &chunks.front() != copying_) chunks.pop_front();
  bool reflected = false;
  for (CopiedChunk& chunk : chunks) {
    if (!chunk.keys.contains(key)) continue;
    if (chunk.sees(c.xid)) reflected = true;
    else chunk.keys.erase(key);
  }
  if (chunks.empty()) copied_.erase(it);
  return reflected;
}

// A table without row identity is copied under one snapshot (snapshot_step): a stream change that
// snapshot saw, or that reaches a table not copied yet (its copy will see it), is in the copy already.
bool Replicator::keyless_copy_saw(SourceTable& t, const RowChange& c) {
  if (!t.snapshot_done) {
    skipped_for_copy_[t.id].insert(c.xid);
    return true;
  }
  auto it = copied_.find(t.id);
  if (it == copied_.end()) return false;
  std::deque<CopiedChunk>& chunks = it->second;
  while (!chunks.empty() && chunks.front().horizon <= c.commit_lsn) chunks.pop_front();
  bool saw = false;
  for (const CopiedChunk& chunk : chunks) saw = saw || chunk.sees(c.xid);
  if (chunks.empty()) copied_.erase(it);
  return saw;
}

void Replicator::apply_truncate(RuleVersion& v, SourceTable& t) {
  copied_.erase(t.id);  // the rows the chunks wrote are gone: the stream re-adds what follows
  batch_.flush();
  static spi::Statement select_rows(
      "SELECT source_key, buckets, lookups FROM powersync.current_data WHERE source_table_id = $1", {INT4OID});
  static spi::Statement delete_rows("DELETE FROM powersync.current_data WHERE source_table_id = $1", {INT4OID});
  Datum arg = Int32GetDatum(t.id);
  uint64_t n = select_rows.run(&arg);
  for (uint64_t i = 0; i < n; ++i) {
    std::string key = spi::bytes(i, 0).value_or("");
    std::string subkey = subkey_of(t.id, key);
    wire::for_each_bucket_ref(spi::bytes(i, 1).value_or(""),
                              [&](const wire::BucketRefView& ref) { add_remove(batch_, v.id, ref, subkey); });
    wire::for_each_string(spi::bytes(i, 2).value_or(""), [&](std::string_view l) { batch_.add_lookup(v.id, t.id, key, l, "[]"); });
  }
  spi::release();
  delete_rows.run(&arg);
  batch_.flush();
}

}  // namespace powersync::pg
