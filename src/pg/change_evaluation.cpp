// The pure part of op generation (spec §2.2): source keys and rule results of one row change. Runs on
// the worker's evaluation thread, so it must not call Postgres (no palloc, elog or catalog access).
#include "powersync/pg/change_evaluation.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <random>

#include "powersync/protocol/checksum.h"

namespace powersync::pg {
namespace {

int column_index(const RelationInfo& rel, const std::string& name) {
  for (size_t i = 0; i < rel.columns.size(); ++i)
    if (rel.columns[i] == name) return static_cast<int>(i);
  return -1;
}

std::string random_key() {
  thread_local std::mt19937_64 rng{std::random_device{}()};  // keys are computed on the evaluation thread too
  std::string key(16, '\0');
  for (int i = 0; i < 16; i += 8) {
    uint64_t r = rng();
    memcpy(&key[i], &r, 8);
  }
  return key;
}

constexpr char kHex[] = "0123456789abcdef";

// Writes the subkey "<table id>/<source key in hex>" at `p` (room for subkey_room(key) bytes); returns its end.
size_t subkey_room(std::string_view source_key) { return 12 + 2 * source_key.size(); }  // an int32 has <= 11 chars
char* write_subkey(char* p, int32_t table_id, std::string_view source_key) {
  p = std::to_chars(p, p + 11, table_id).ptr;
  *p++ = '/';
  for (unsigned char c : source_key) {
    *p++ = kHex[c >> 4];
    *p++ = kHex[c & 15];
  }
  return p;
}

// Values kept in the per-thread scratch row and buffers up to this size; larger ones are let go after use.
constexpr size_t kKeptScratch = 64 * 1024;

// A growing byte buffer written in place (std::string::append is an out-of-line call per piece).
class ScratchBytes {
 public:
  char* extend(size_t n) {
    if (size_ + n > capacity_) grow(size_ + n);
    char* p = bytes_.get() + size_;
    size_ += n;
    return p;
  }
  void put_u32(char*& p, uint32_t v) {
    std::memcpy(p, &v, 4);
    p += 4;
  }
  void put_str(char*& p, std::string_view s) {  // u32 size | bytes, as wire::Writer::str
    put_u32(p, static_cast<uint32_t>(s.size()));
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
  void clear() { size_ = 0; }
  void resize(size_t n) { size_ = n; }  // only to shrink what extend() reserved
  std::string_view view() const { return std::string_view(bytes_.get(), size_); }
  char* data() { return bytes_.get(); }
  // A huge row's buffer is not kept for the rest of the thread's life.
  void trim() {
    if (capacity_ > kKeptScratch) *this = ScratchBytes();
  }

 private:
  void grow(size_t at_least) {
    size_t capacity = std::max<size_t>({at_least, 2 * capacity_, 256});
    std::unique_ptr<char[]> bytes(new char[capacity]);
    if (size_ > 0) std::memcpy(bytes.get(), bytes_.get(), size_);
    bytes_ = std::move(bytes);
    capacity_ = capacity;
  }
  std::unique_ptr<char[]> bytes_;
  size_t size_ = 0, capacity_ = 0;
};

// Per-thread scratch space of evaluate_tuple, reused; one thread_local object (each costs a lookup call in
// a shared library).
struct Scratch {
  rules::Row row;          // the new row as the rules see it (see row_of)
  rules::SourceTable table;
  ScratchBytes puts;       // RowPuts' bytes, copied out once complete
  ScratchBytes refs;       // encoded (bucket, table, id) references of the PUTs
};

// The new row as a rules::Row. One per thread, reused: its column names are set once per layout and its
// values are copy-assigned, which reuses their buffers (no allocation per row for the row or its values).
rules::Row& row_of(rules::Row& row, const RelationInfo& rel, const wire::Tuple& t) {
  const size_t n = std::min(rel.columns.size(), t.values.size());
  if (row.size() != n) row.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (row[i].name != rel.columns[i]) row[i].name = rel.columns[i];
    row[i].value = t.values[i];
  }
  return row;
}

void trim_scratch_row(rules::Row& row) {
  for (rules::Column& c : row) {
    const rules::Value& v = c.value;
    if ((v.is_text() && v.as_text().capacity() > kKeptScratch) || (v.is_blob() && v.as_blob().capacity() > kKeptScratch))
      c.value = rules::Value();
  }
}

// Collects a row's PUTs: checksums computed here, on the evaluating thread; subkey, data and checksums go
// into one per-thread buffer, the (bucket, table, id) references into another, and both are copied out
// once at the end with their final sizes.
class PutCollector final : public rules::RowSink {
 public:
  PutCollector(ScratchBytes& puts, ScratchBytes& refs, std::vector<std::string>& warnings, const RelationInfo& rel)
      : puts_(puts), refs_(refs), warnings_(warnings), rel_(rel) {}
  void put(std::string_view bucket, std::string_view table, std::string_view id, std::string_view data) override {
    char* p = puts_.extend(8 + data.size());
    puts_.put_u32(p, protocol::put_checksum(table, id, data));
    puts_.put_str(p, data);
    char* r = refs_.extend(12 + bucket.size() + table.size() + id.size());
    refs_.put_str(r, bucket);
    refs_.put_str(r, table);
    refs_.put_str(r, id);
    ++count_;
  }
  void error(std::string message) override {
    warnings_.push_back("powersync: sync rules error on " + rel_.schema + "." + rel_.name + ": " + message);
  }
  size_t count() const { return count_; }

 private:
  ScratchBytes& puts_;
  ScratchBytes& refs_;
  std::vector<std::string>& warnings_;
  const RelationInfo& rel_;
  size_t count_ = 0;
};

void add_errors(std::vector<std::string>& warnings, const RelationInfo& rel, const std::vector<std::string>& errors) {
  for (const auto& e : errors) warnings.push_back("powersync: sync rules error on " + rel.schema + "." + rel.name + ": " + e);
}

void evaluate_parameters(const rules::SyncRules& rules, const rules::SourceTable& st, const rules::Row& row,
                         const RelationInfo& rel, ChangeEvaluation& out) {
  rules::ParameterEvaluation pe = rules.evaluate_parameter_row(st, row);
  add_errors(out.warnings, rel, pe.errors);
  for (const auto& p : pe.lookups) {
    size_t i = 0;
    while (i < out.lookups.size() && out.lookups[i] != p.lookup) ++i;
    if (i == out.lookups.size()) {
      out.lookups.push_back(p.lookup);
      out.params.push_back("[" + p.bucket_parameters + "]");
    } else {
      out.params[i].insert(out.params[i].size() - 1, "," + p.bucket_parameters);
    }
  }
}

// Evaluates the complete new row `tuple` of source table `t` into `out`.
void evaluate_tuple(const rules::SyncRules& rules, const SourceTable& t, const RelationInfo& rel,
                    const wire::Tuple& tuple, ChangeEvaluation& out, PutArena* arena) {
  thread_local Scratch scratch;
  rules::Row& row = row_of(scratch.row, rel, tuple);
  rules::SourceTable& st = scratch.table;
  st.schema = rel.schema;
  st.name = rel.name;
  scratch.puts.clear();
  scratch.refs.clear();
  scratch.refs.extend(4);  // the count, set below
  char* subkey = scratch.puts.extend(2 + subkey_room(*out.keys.after)) + 2;  // u16 size | subkey
  const uint16_t subkey_size = static_cast<uint16_t>(write_subkey(subkey, t.id, *out.keys.after) - subkey);
  std::memcpy(scratch.puts.data(), &subkey_size, 2);
  scratch.puts.resize(2 + subkey_size);
  PutCollector collector(scratch.puts, scratch.refs, out.warnings, rel);
  rules.evaluate_row(st, row, collector);  // nothing for a table no data query reads
  if (collector.count() > 0) {
    const uint32_t count = static_cast<uint32_t>(collector.count());
    std::memcpy(scratch.refs.data(), &count, 4);
    out.now = wire::BucketRefList(std::string(scratch.refs.view()));
  }
  out.puts.assign(scratch.puts.view(), arena);
  if (rules.is_parameter_table(st)) evaluate_parameters(rules, st, row, rel, out);
  out.lookup_list = wire::encode_strings(out.lookups);
  // The image only serves the unchanged-TOAST markers of the row's next update, and only a value stored
  // out of line in this version can become one (REPLICA IDENTITY FULL sends the complete old row).
  if (t.identity != 'f' && tuple.out_of_line) out.image = wire::encode_row_image(row);
  out.evaluated = true;
  trim_scratch_row(row);
  scratch.puts.trim();
  scratch.refs.trim();
}

}  // namespace

std::string source_key_of(const RelationInfo& rel, const wire::Tuple& tuple, const std::vector<std::string>& key_columns) {
  if (key_columns.empty()) return random_key();
  if (key_columns.size() == 1) {
    // A single integer key keeps its order (9 bytes: 'i', big-endian with the sign bit flipped), so rows
    // with increasing ids append to the right of current_data's primary key instead of landing at random
    // places in it. The hashed form below has 16 bytes, so the two never collide.
    int i = column_index(rel, key_columns[0]);
    if (i >= 0 && i < static_cast<int>(tuple.values.size()) && tuple.values[i].type() == rules::ValueType::Integer) {
      uint64_t v = static_cast<uint64_t>(tuple.values[i].as_integer()) ^ (uint64_t{1} << 63);
      std::string key(9, 'i');
      for (int b = 0; b < 8; ++b) key[1 + b] = static_cast<char>(v >> (56 - 8 * b));
      return key;
    }
  }
  std::string encoded;
  wire::Writer w(encoded);
  for (const auto& name : key_columns) {
    int i = column_index(rel, name);
    w.str(name);
    if (i < 0 || i >= static_cast<int>(tuple.values.size())) w.null_value();
    else w.value(tuple.values[i]);
  }
  unsigned char digest[32];
  protocol::sha256(encoded, digest);
  return std::string(reinterpret_cast<const char*>(digest), 16);
}

std::string subkey_of(int32_t table_id, const std::string& source_key) {
  std::string s(subkey_room(source_key), '\0');
  s.resize(static_cast<size_t>(write_subkey(s.data(), table_id, source_key) - s.data()));
  return s;
}

bool has_unchanged(const wire::Tuple& t) {
  for (bool u : t.unchanged)
    if (u) return true;
  return false;
}

void evaluate_change(const rules::SyncRules& rules, const SourceTable& t, const RowChange& c, ChangeEvaluation& out,
                     PutArena& arena) {
  const RelationInfo& rel = *c.relation;
  const std::vector<std::string>& key_cols = t.identity == 'f' ? rel.columns : t.identity_columns;
  Keys& k = out.keys;
  if (c.kind != RowChange::Kind::Insert && c.old_kind != 'n' && !key_cols.empty())
    k.before = source_key_of(rel, c.old_tuple, key_cols);
  if (c.kind == RowChange::Kind::Delete) return;
  // The new row as the rules see it: the new tuple itself unless it has unchanged-TOAST columns (then a
  // copy, completed from the old row when that is complete: REPLICA IDENTITY FULL).
  const wire::Tuple* row = &c.new_tuple;
  bool unchanged = has_unchanged(c.new_tuple);
  if (unchanged) {
    k.merged = c.new_tuple;
    if (c.old_kind == 'o') {
      for (size_t i = 0; i < k.merged.values.size() && i < c.old_tuple.values.size(); ++i)
        if (k.merged.unchanged[i]) {
          k.merged.values[i] = c.old_tuple.values[i];
          k.merged.unchanged[i] = false;
        }
    }
    row = &k.merged;
    unchanged = has_unchanged(k.merged);
  }
  k.after = source_key_of(rel, *row, key_cols);
  if (c.kind == RowChange::Kind::Update && !k.before && !key_cols.empty()) k.before = k.after;
  if (!unchanged) evaluate_tuple(rules, t, rel, *row, out, &arena);
}

void evaluate_new_row(const rules::SyncRules& rules, const SourceTable& t, const RelationInfo& rel,
                      ChangeEvaluation& out) {
  evaluate_tuple(rules, t, rel, out.keys.merged, out, nullptr);
}

}  // namespace powersync::pg
