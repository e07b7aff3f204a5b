// The compact binary format between the output plugin "powersync_pg" and the replication worker (its
// only reader), also used for row images / bucket lists / lookup lists in powersync.current_data.
// Pure C++ (no Postgres headers) so that both sides and tests share one definition.
//
// Stream: every output row of the plugin is one message, first byte = MessageKind. With the plugin option
// "batch" '1' (honoured in a walsender only), an output row (CopyData) is instead a sequence of
// u32 length | message, in order; a transaction's messages may span several rows.
//   'B' begin     u64 final_lsn (commit record start) | u32 xid
//   'C' commit    u64 end_lsn (commit record end)
//   'R' relation  u32 relid | str schema | str name | u8 replica_identity (d/i/f/n) | u16 ncols |
//                 per column: str name | u32 type_oid | u8 flags (bit0: part of the replica identity)
//   'I' insert    u32 relid | tuple new
//   'U' update    u32 relid | u8 old_kind ('n' none, 'k' key columns, 'o' full old row) | [tuple old] | tuple new
//   'D' delete    u32 relid | u8 old_kind | [tuple old]
//   'T' truncate  u16 n | n * u32 relid
//   'M' message   u8 transactional | u64 lsn | str prefix | str content
// tuple: u16 ncols (bit 15 set: a value of the row is stored out of line, see kOutOfLine) |
//        per column (in relation column order): value
// value: u8 tag | payload — 'n' null, 'u' unchanged TOAST (value not in WAL), 'i' i64, 'r' f64,
//        't' str (UTF-8 text), 'b' str (raw bytes)
// str: u32 length | bytes. All integers little-endian.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "powersync/error.h"
#include "powersync/rules/value.h"

namespace powersync::pg::wire {

enum class MessageKind : char {
  Begin = 'B', Commit = 'C', Relation = 'R', Insert = 'I', Update = 'U', Delete = 'D', Truncate = 'T',
  Message = 'M',
};

enum class ValueTag : char { Null = 'n', UnchangedToast = 'u', Integer = 'i', Real = 'r', Text = 't', Blob = 'b' };

// Appends encoded data to a byte string.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) { put(&v, 2); }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void i64(int64_t v) { put(&v, 8); }
  void f64(double v) { put(&v, 8); }
  void str(std::string_view s) { u32(static_cast<uint32_t>(s.size())); out_.append(s.data(), s.size()); }
  void null_value() { u8('n'); }
  void unchanged_toast() { u8('u'); }
  void value(const rules::Value& v) {
    switch (v.type()) {
      case rules::ValueType::Null: u8('n'); break;
      case rules::ValueType::Integer: u8('i'); i64(v.as_integer()); break;
      case rules::ValueType::Real: u8('r'); f64(v.as_real()); break;
      case rules::ValueType::Text: u8('t'); str(v.as_text()); break;
      case rules::ValueType::Blob: u8('b'); str(v.as_blob()); break;
    }
  }
  std::string& buffer() { return out_; }

 private:
  void put(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }  // little-endian hosts only
  std::string& out_;
};

// Reads encoded data; throws powersync::Error(Internal) on truncated input.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool at_end() const { return pos_ >= in_.size(); }
  uint8_t u8() { need(1); return static_cast<uint8_t>(in_[pos_++]); }
  uint16_t u16() { return get<uint16_t>(); }
  uint32_t u32() { return get<uint32_t>(); }
  uint64_t u64() { return get<uint64_t>(); }
  int64_t i64() { return get<int64_t>(); }
  double f64() { return get<double>(); }
  std::string_view str() {
    uint32_t n = u32();
    need(n);
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // Decodes one value; sets `unchanged` for an unchanged-TOAST marker (value is then NULL).
  rules::Value value(bool* unchanged = nullptr) {
    char tag = static_cast<char>(u8());
    if (unchanged) *unchanged = false;
    switch (tag) {
      case 'n': return rules::Value::null();
      case 'u': if (unchanged) *unchanged = true; return rules::Value::null();
      case 'i': return rules::Value::integer(i64());
      case 'r': return rules::Value::real(f64());
      case 't': return rules::Value::text(std::string(str()));
      case 'b': return rules::Value::blob(std::string(str()));
    }
    throw Error(Error::Kind::Internal, std::string("powersync change stream: unknown value tag ") + tag);
  }

 private:
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  void need(size_t n) const {
    if (pos_ + n > in_.size()) throw Error(Error::Kind::Internal, "powersync change stream: truncated message");
  }
  std::string_view in_;
  size_t pos_ = 0;
};

// Flag in a tuple's column count: the row version has a value stored out of line (a TOAST pointer). Only
// such a value can come back as an unchanged-TOAST marker in the row's next update, so only these rows
// need their image kept in current_data. Postgres allows at most 1600 columns: bit 15 is free.
constexpr uint16_t kOutOfLine = 0x8000;

// A decoded tuple: values in relation column order; `unchanged[i]` marks unchanged-TOAST columns.
struct Tuple {
  std::vector<rules::Value> values;
  std::vector<bool> unchanged;
  bool out_of_line = false;  // see kOutOfLine
};

inline Tuple read_tuple(Reader& r) {
  Tuple t;
  uint16_t n = r.u16();
  t.out_of_line = (n & kOutOfLine) != 0;
  n &= static_cast<uint16_t>(~kOutOfLine);
  t.values.reserve(n);
  t.unchanged.reserve(n);
  for (uint16_t i = 0; i < n; ++i) {
    bool u = false;
    t.values.push_back(r.value(&u));
    t.unchanged.push_back(u);
  }
  return t;
}

// Row images in current_data carry names so that they survive ADD/DROP COLUMN:
//   u16 n | per column: str name | value
inline std::string encode_row_image(const rules::Row& row) {
  std::string out;
  Writer w(out);
  w.u16(static_cast<uint16_t>(row.size()));
  for (const auto& c : row) {
    w.str(c.name);
    w.value(c.value);
  }
  return out;
}

inline rules::Row decode_row_image(std::string_view bytes) {
  rules::Row row;
  if (bytes.empty()) return row;
  Reader r(bytes);
  uint16_t n = r.u16();
  row.reserve(n);
  for (uint16_t i = 0; i < n; ++i) {
    std::string name(r.str());
    row.push_back({std::move(name), r.value()});
  }
  return row;
}

// (bucket, object_type, object_id) a source row is in: u32 n | n * (str bucket | str type | str id)
struct BucketRef {
  std::string bucket, table, id;
  bool operator==(const BucketRef& o) const { return bucket == o.bucket && table == o.table && id == o.id; }
};

inline std::string encode_bucket_refs(const std::vector<BucketRef>& refs) {
  std::string out;
  Writer w(out);
  w.u32(static_cast<uint32_t>(refs.size()));
  for (const auto& b : refs) {
    w.str(b.bucket);
    w.str(b.table);
    w.str(b.id);
  }
  return out;
}

inline std::vector<BucketRef> decode_bucket_refs(std::string_view bytes) {
  std::vector<BucketRef> refs;
  if (bytes.empty()) return refs;
  Reader r(bytes);
  uint32_t n = r.u32();
  refs.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    BucketRef b;
    b.bucket = r.str();
    b.table = r.str();
    b.id = r.str();
    refs.push_back(std::move(b));
  }
  return refs;
}

// A bucket list as the worker's row cache keeps it: its encoded bytes, the same as current_data.buckets
// holds, so a row loaded from current_data needs no decoding and a flush writes the bytes as they are.
// An empty list is 4 zero bytes (what encode_bucket_refs writes), so equal lists have equal bytes.
struct BucketRefView {
  std::string_view bucket, table, id;
  bool operator==(const BucketRefView& o) const { return bucket == o.bucket && table == o.table && id == o.id; }
};

inline std::string empty_list() { return std::string(4, '\0'); }

// Calls f(BucketRefView) for each reference of an encoded bucket list (empty bytes: no references).
template <typename F>
void for_each_bucket_ref(std::string_view bytes, F&& f) {
  if (bytes.empty()) return;
  Reader r(bytes);
  for (uint32_t n = r.u32(); n > 0; --n) {
    BucketRefView b;
    b.bucket = r.str();
    b.table = r.str();
    b.id = r.str();
    f(b);
  }
}

// Builds an encoded bucket list one reference at a time (the count is written at the end).
class BucketRefList {
 public:
  BucketRefList() : bytes_(empty_list()) {}
  // A list encoded in one piece elsewhere (the format above: u32 count | references).
  explicit BucketRefList(std::string encoded) {
    if (encoded.size() < 4) return;  // not a list: stays empty
    std::memcpy(&count_, encoded.data(), 4);
    bytes_ = std::move(encoded);
  }
  void reserve(size_t refs) { bytes_.reserve(4 + refs * 64); }
  void add(std::string_view bucket, std::string_view table, std::string_view id) {
    Writer w(bytes_);
    w.str(bucket);
    w.str(table);
    w.str(id);
    ++count_;
    std::memcpy(bytes_.data(), &count_, 4);
  }
  bool contains(const BucketRefView& ref) const {
    bool found = false;
    for_each_bucket_ref(bytes_, [&](const BucketRefView& b) { found = found || b == ref; });
    return found;
  }
  const std::string& bytes() const { return bytes_; }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
  uint32_t count_ = 0;
};

// Calls f(std::string_view) for each item of an encoded string list (encode_strings; empty bytes: none).
template <typename F>
void for_each_string(std::string_view bytes, F&& f) {
  if (bytes.empty()) return;
  Reader r(bytes);
  for (uint32_t n = r.u32(); n > 0; --n) f(r.str());
}

// Lookup keys a source row produced: u32 n | n * str
inline std::string encode_strings(const std::vector<std::string>& items) {
  std::string out;
  Writer w(out);
  w.u32(static_cast<uint32_t>(items.size()));
  for (const auto& s : items) w.str(s);
  return out;
}

inline std::vector<std::string> decode_strings(std::string_view bytes) {
  std::vector<std::string> items;
  if (bytes.empty()) return items;
  Reader r(bytes);
  uint32_t n = r.u32();
  items.reserve(n);
  for (uint32_t i = 0; i < n; ++i) items.emplace_back(r.str());
  return items;
}

}  // namespace powersync::pg::wire
