// Rule versions as the worker sees them: loading deployed versions, registering/retiring their source
// tables (new tables, renames, identity changes, drops), activation and dropping stopped versions' data.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
extern "C" {
#include "postgres.h"
#include "catalog/pg_type.h"
#include "utils/timestamp.h"
}

#include <tuple>

#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"
#include "powersync/pg/worker_log.h"

namespace powersync::pg {
namespace {

std::vector<std::string> parse_text_array(const std::string& text) {
  // Output of text[]: {a,"b c"} — identifiers here are simple enough for this small parser.
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, any = false;
  for (size_t i = 1; i + 1 < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '\\' && i + 2 < text.size()) cur.push_back(text[++i]);
      else if (c == '"') quoted = false;
      else cur.push_back(c);
    } else if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
      any = false;
    } else {
      cur.push_back(c);
      any = true;
    }
  }
  if (any || !cur.empty()) out.push_back(cur);
  return out;
}

void load_tables(RuleVersion& v) {
  static spi::Statement select(
      "SELECT id, relid, schema_name, table_name, replica_identity::text, identity_columns::text, snapshot_done, "
      "snapshot_next_block, coalesce(snapshot_total, 0), snapshot_rows, snapshot_lsn FROM powersync.source_tables "
      "WHERE sync_rules_id = $1",
      {INT8OID});
  Datum arg = Int64GetDatum(v.id);
  uint64_t n = select.run(&arg);
  for (uint64_t i = 0; i < n; ++i) {
    SourceTable t;
    t.id = static_cast<int32_t>(spi::int64_at(i, 0));
    t.relid = static_cast<uint32_t>(spi::int64_at(i, 1));
    t.schema = spi::text(i, 2).value_or("");
    t.name = spi::text(i, 3).value_or("");
    t.identity = spi::text(i, 4).value_or("d")[0];
    t.identity_columns = parse_text_array(spi::text(i, 5).value_or("{}"));
    t.snapshot_done = spi::bool_at(i, 6);
    t.next_block = spi::int64_at(i, 7);
    t.total_blocks = spi::int64_at(i, 8);
    t.rows = spi::int64_at(i, 9);
    t.snapshot_lsn = spi::lsn_at(i, 10);
    v.tables[t.relid] = std::move(t);
  }
  spi::release();
}

bool rules_read(const RuleVersion& v, const std::string& schema, const std::string& name) {
  rules::SourceTable st{schema, name};
  return v.rules->is_data_table(st) || v.rules->is_parameter_table(st);
}

bool same_identity(const SourceTable& t, const RelationInfo& rel) {
  if (t.identity != rel.identity) return false;
  return rel.identity == 'f' || t.identity_columns == rel.key_columns();
}

}  // namespace

RelationInfo catalog_relation(uint32_t relid) {
  static spi::Statement select(
      "SELECT n.nspname::text, c.relname::text, c.relreplident::text, a.attname::text, a.atttypid, "
      "CASE c.relreplident WHEN 'f' THEN true WHEN 'n' THEN false ELSE EXISTS (SELECT 1 FROM pg_index i "
      "WHERE i.indrelid = c.oid AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND "
      "i.indisreplident)) AND a.attnum = ANY (i.indkey)) END FROM pg_class c JOIN pg_namespace n ON n.oid = "
      "c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND "
      "a.attgenerated = '' WHERE c.oid = $1 ORDER BY a.attnum",
      {OIDOID});
  Datum arg = ObjectIdGetDatum(relid);
  uint64_t n = select.run(&arg);
  RelationInfo rel;
  rel.relid = relid;
  for (uint64_t i = 0; i < n; ++i) {
    if (i == 0) {
      rel.schema = spi::text(i, 0).value_or("");
      rel.name = spi::text(i, 1).value_or("");
      rel.identity = spi::text(i, 2).value_or("d")[0];
    }
    rel.columns.push_back(spi::text(i, 3).value_or(""));
    rel.types.push_back(static_cast<uint32_t>(spi::int64_at(i, 4)));
    rel.key.push_back(spi::bool_at(i, 5));
  }
  spi::release();
  return rel;
}

void Replicator::refresh_versions() {
  static spi::Statement select(
      "SELECT id, state, snapshot_done, snapshot_lsn, last_checkpoint, last_checkpoint_lsn, content "
      "FROM powersync.sync_rules WHERE state <> 'STOP' ORDER BY id",
      {});
  uint64_t n = select.run(nullptr);
  std::map<int64_t, bool> seen;
  std::vector<std::pair<int64_t, std::string>> fresh;
  for (uint64_t i = 0; i < n; ++i) {
    int64_t id = spi::int64_at(i, 0);
    seen[id] = true;
    auto it = versions_.find(id);
    if (it == versions_.end()) {
      fresh.emplace_back(id, spi::text(i, 6).value_or(""));
      it = versions_.emplace(id, RuleVersion{}).first;
      it->second.id = id;
    }
    RuleVersion& v = it->second;
    v.state = spi::text(i, 1).value_or("");
    v.snapshot_done = spi::bool_at(i, 2);
    v.snapshot_lsn = spi::lsn_at(i, 3);
    v.last_checkpoint = spi::int64_at(i, 4);
    v.last_checkpoint_lsn = spi::lsn_at(i, 5);
  }
  spi::release();
  for (auto it = versions_.begin(); it != versions_.end();) {
    if (seen.count(it->first)) { ++it; continue; }
    drop_version_data(it->first);  // replaced by a newer deploy while processing
    it = versions_.erase(it);
  }
  for (auto& [id, content] : fresh) {
    RuleVersion& v = versions_[id];
    rules::ParseOptions options;
    options.bucket_prefix = std::to_string(id) + "#";
    std::vector<rules::RuleIssue> issues;
    v.rules = rules::SyncRules::parse(content, options, issues);
    if (!v.rules) {
      std::string msg = "powersync: sync rules version " + std::to_string(id) + " no longer parses; it is stopped";
      for (const auto& is : issues) msg += "\n" + is.message;
      log_warning(msg);
      Datum arg = Int64GetDatum(id);
      static spi::Statement stop("UPDATE powersync.sync_rules SET state = 'STOP', stopped_at = now() WHERE id = $1",
                                 {INT8OID});
      stop.run(&arg);
      versions_.erase(id);
      continue;
    }
    load_tables(v);
  }
  for (auto& [id, v] : versions_)
    if (v.state == "PROCESSING" && !v.snapshot_done && v.tables.empty()) list_existing_tables(v);
}

// Registers every existing table the version reads (they are then copied by snapshot_step).
void Replicator::list_existing_tables(RuleVersion& v) {
  spi::exec(
      "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'powersync') "
      "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY c.oid");
  std::vector<uint32_t> wanted;
  for (uint64_t i = 0; i < SPI_processed; ++i)
    if (rules_read(v, spi::text(i, 1).value_or(""), spi::text(i, 2).value_or("")))
      wanted.push_back(static_cast<uint32_t>(spi::int64_at(i, 0)));
  spi::release();
  for (uint32_t relid : wanted) {
    RelationInfo rel = catalog_relation(relid);
    if (!rel.name.empty()) register_table(v, rel, false);
  }
  if (wanted.empty()) {  // nothing to copy: the version only waits for the stream
    static spi::Statement done(
        "UPDATE powersync.sync_rules SET snapshot_done = true, snapshot_lsn = pg_current_wal_lsn() WHERE id = $1 "
        "RETURNING snapshot_lsn",
        {INT8OID});
    Datum arg = Int64GetDatum(v.id);
    done.run(&arg);
    v.snapshot_done = true;
    v.snapshot_lsn = spi::lsn_at(0, 0);
    spi::release();
  }
}

SourceTable& Replicator::register_table(RuleVersion& v, const RelationInfo& rel, bool snapshot_done) {
  static spi::Statement insert(
      "INSERT INTO powersync.source_tables (sync_rules_id, relid, schema_name, table_name, replica_identity, "
      "identity_columns, snapshot_done) VALUES ($1, $2, $3, $4, $5::\"char\", $6, $7) RETURNING id",
      {INT8OID, OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, BOOLOID});
  SourceTable t;
  t.relid = rel.relid;
  t.schema = rel.schema;
  t.name = rel.name;
  t.identity = rel.identity;
  t.identity_columns = rel.identity == 'f' ? std::vector<std::string>{} : rel.key_columns();
  t.snapshot_done = snapshot_done;
  Datum args[7] = {Int64GetDatum(v.id), ObjectIdGetDatum(rel.relid), spi::text_datum(rel.schema),
                   spi::text_datum(rel.name), spi::text_datum(std::string(1, rel.identity)),
                   spi::text_array(t.identity_columns), BoolGetDatum(snapshot_done)};
  insert.run(args);
  t.id = static_cast<int32_t>(spi::int64_at(0, 0));
  spi::release();
  if (!snapshot_done) {  // a table that needs copying keeps the version from activating until copied
    static spi::Statement undone("UPDATE powersync.sync_rules SET snapshot_done = false WHERE id = $1 AND state = 'PROCESSING'",
                                 {INT8OID});
    Datum arg = Int64GetDatum(v.id);
    undone.run(&arg);
  }
  return v.tables[rel.relid] = std::move(t);
}

// The version's source table for a relation seen in the stream: registers tables that appeared after the
// deploy, and retires + re-registers (re-snapshot) a table that was renamed or changed its identity.
SourceTable* Replicator::source_table_for(RuleVersion& v, const RelationInfo& rel) {
  auto it = v.tables.find(rel.relid);
  if (it != v.tables.end()) {
    SourceTable& t = it->second;
    if (t.schema == rel.schema && t.name == rel.name && same_identity(t, rel)) return &t;
    log_info("powersync: table " + t.schema + "." + t.name + " was renamed or changed its replica identity; "
             "sync rules version " + std::to_string(v.id) + " copies it again");
    retire_table(v, rel.relid);
    if (!rules_read(v, rel.schema, rel.name)) return nullptr;
    return &register_table(v, rel, false);
  }
  if (!rules_read(v, rel.schema, rel.name)) return nullptr;
  // Appeared after the deploy. Created then filled, its rows all stream; but a table renamed or moved
  // (SET SCHEMA) into a name the rules read brings rows that never streamed under that name, so it is
  // copied too (only it, in the background; the copy skips rows the stream already wrote). A table
  // without row identity is copied under one snapshot, and the stream skips what that snapshot saw.
  return &register_table(v, rel, false);
}

// Tables the rules read that exist but are not registered: renamed or moved into a name the rules read,
// or created (CREATE TABLE AS, SELECT INTO included) and not written since. A rename alone produces no
// change in the stream, so they are found here, in the catalog, with the drop check.
void Replicator::check_new_tables() {
  spi::exec(
      "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'powersync') "
      "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY c.oid");
  std::vector<std::tuple<uint32_t, std::string, std::string>> tables;
  for (uint64_t i = 0; i < SPI_processed; ++i)
    tables.emplace_back(static_cast<uint32_t>(spi::int64_at(i, 0)), spi::text(i, 1).value_or(""),
                        spi::text(i, 2).value_or(""));
  spi::release();
  for (auto& [id, v] : versions_) {
    if (v.state == "PROCESSING" && !v.snapshot_done && v.tables.empty()) continue;  // not listed yet
    for (const auto& [relid, schema, name] : tables) {
      if (v.tables.count(relid) || !rules_read(v, schema, name)) continue;
      RelationInfo rel = catalog_relation(relid);
      if (rel.name.empty()) continue;
      log_info("powersync: table " + rel.schema + "." + rel.name + " appeared; sync rules version " +
               std::to_string(v.id) + " copies it");
      register_table(v, rel, false);
    }
  }
}

void Replicator::retire_table(RuleVersion& v, uint32_t relid) {
  auto it = v.tables.find(relid);
  if (it == v.tables.end()) return;
  apply_truncate(v, it->second);
  batch_.write_bucket_state();  // retiring runs outside rounds too (catalog checks, snapshot steps)
  batch_.drop_table(it->second.id);
  static spi::Statement remove("DELETE FROM powersync.source_tables WHERE id = $1", {INT4OID});
  Datum arg = Int32GetDatum(it->second.id);
  remove.run(&arg);
  v.tables.erase(it);
}

// Dropped tables produce no change at all, and a table renamed to a name the rules do not read no
// longer reaches us through the plugin: both are found here, in the catalog, once a second.
void Replicator::check_dropped_tables() {
  int64_t now = GetCurrentTimestamp();
  if (now - last_drop_check_ < 1000000) return;
  last_drop_check_ = now;
  spi::exec("SELECT DISTINCT st.relid, c.oid IS NULL FROM powersync.source_tables st LEFT JOIN pg_class c ON "
            "c.oid = st.relid LEFT JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid IS NULL OR "
            "c.relname <> st.table_name OR n.nspname <> st.schema_name");
  std::vector<std::pair<uint32_t, bool>> changed;
  for (uint64_t i = 0; i < SPI_processed; ++i)
    changed.emplace_back(static_cast<uint32_t>(spi::int64_at(i, 0)), spi::bool_at(i, 1));
  spi::release();
  for (auto [relid, gone] : changed) {
    RelationInfo rel = gone ? RelationInfo{} : catalog_relation(relid);
    for (auto& [id, v] : versions_) {
      if (gone || rel.name.empty()) retire_table(v, relid);
      else if (v.tables.count(relid)) source_table_for(v, rel);  // renamed: re-register or retire
    }
  }
  check_new_tables();
}

// Lock order with powersync.compact(): its advisory lock before any bucket row. compact() holds it while
// it rewrites ops of the active version; deleting that version's rows without it could deadlock.
namespace {
const char* kCompactLock = "hashtext('powersync.compact')";
}

void Replicator::drop_version_data(int64_t version) {
  std::string id = std::to_string(version);
  spi::exec(std::string("SELECT pg_advisory_xact_lock(") + kCompactLock + ")");
  spi::exec("DELETE FROM powersync.bucket_chunks WHERE sync_rules_id = " + id);
  spi::exec("DELETE FROM powersync.bucket_state WHERE sync_rules_id = " + id);
  spi::exec("DELETE FROM powersync.bucket_parameters WHERE sync_rules_id = " + id);
  spi::exec("DELETE FROM powersync.current_data WHERE source_table_id IN "
            "(SELECT id FROM powersync.source_tables WHERE sync_rules_id = " + id + ")");
  spi::exec("DELETE FROM powersync.source_tables WHERE sync_rules_id = " + id);
  spi::exec("DELETE FROM powersync.checkpoints WHERE sync_rules_id = " + id);
}

// A PROCESSING version whose copy is done and whose stream passed the copy's end LSN replaces the
// ACTIVE one (whose data is dropped). Returns whether a version was activated.
bool Replicator::maybe_activate(Lsn lsn) {
  for (auto& [id, v] : versions_) {
    if (v.state != "PROCESSING" || !v.snapshot_done || lsn < v.snapshot_lsn) continue;
    // A compaction running now holds rows of the active version: activate a round later instead of waiting.
    spi::exec(std::string("SELECT pg_try_advisory_xact_lock(") + kCompactLock + ")");
    bool locked = spi::bool_at(0, 0);
    spi::release();
    if (!locked) return false;
    for (auto it = versions_.begin(); it != versions_.end();) {
      if (it->second.state != "ACTIVE") { ++it; continue; }
      spi::exec("UPDATE powersync.sync_rules SET state = 'STOP', stopped_at = now() WHERE id = " + std::to_string(it->first));
      drop_version_data(it->first);
      it = versions_.erase(it);
    }
    spi::exec("UPDATE powersync.sync_rules SET state = 'ACTIVE', activated_at = now() WHERE id = " + std::to_string(id));
    v.state = "ACTIVE";
    log_info("powersync: sync rules version " + std::to_string(id) + " is active");
    return true;
  }
  return false;
}

std::string Replicator::table_patterns() const {
  std::string out;
  for (const auto& [id, v] : versions_)
    for (const auto& p : v.rules->source_tables()) out += p.schema + "\t" + p.name + "\n";
  return out.empty() ? std::string("\t") : out;  // "\t" matches no table
}

}  // namespace powersync::pg
