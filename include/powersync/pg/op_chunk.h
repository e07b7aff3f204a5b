// Binary encoding of an op chunk: consecutive ops of ONE bucket stored as one row of
// powersync.bucket_chunks (sql/install/20_storage.sql). Pure C++ (no Postgres headers): the worker's
// writer, the SQL unpack functions and unit tests share this one definition.
//
// Why: one heap tuple + one B-tree entry per chunk instead of per op cuts the storage cost per op by
// an order of magnitude; chunks stay small (kChunkBytes) so the row is stored inline, uncompressed.
//
// chunk := u8 version (1) | varint n_ops (>= 1) | varint first_op | u32 first_cum_checksum |
//          varint first_cum_count | n_ops * op
// op    := varint op_id delta (0 for the first op: its id is first_op; >= 1 after) | u8 flags |
//          [u8 more, if flags bit7] | u32 checksum | [u32 cum_checksum delta, more bit1] |
//          [varint cum_count delta, more bit2] | [str object_type, bit2 and not bit3] |
//          [str object_id, bit4] | [str subkey, bit5] | [str data, bit6] | [varint target_op, more bit0]
// flags : bits0-1 kind (0 PUT, 1 REMOVE, 2 MOVE, 3 CLEAR) | bit2 object_type not NULL |
//         bit3 object_type equals the previous op's (no bytes) | bit4 object_id | bit5 subkey | bit6 data |
//         bit7 `more` byte follows
// more  : bit0 target_op not NULL | bit1 explicit cum_checksum delta | bit2 explicit cum_count delta
// str   : varint length | bytes. varint: unsigned LEB128 (7 bits per byte, low first). u32: little-endian.
//
// Running totals: cum_checksum/cum_count of the first op are in the header; each further op adds its
// checksum (unless an explicit delta is given) and 1 (unless an explicit delta is given). Replication
// never needs the explicit deltas; rows written through the compatibility view (tests) and CLEAR rewrites
// of arbitrary data may.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "powersync/error.h"

namespace powersync::pg::chunk {

constexpr uint8_t kVersion = 1;
// Encoded bytes per chunk (plus the bucket id): the whole tuple stays under the TOAST threshold (~2 kB).
constexpr size_t kChunkBytes = 1800;

enum class OpKind : uint8_t { Put = 0, Remove = 1, Move = 2, Clear = 3 };

inline const char* op_kind_name(OpKind k) {
  static const char* const names[] = {"PUT", "REMOVE", "MOVE", "CLEAR"};
  return names[static_cast<uint8_t>(k) & 3];
}

inline std::optional<OpKind> op_kind_from_name(std::string_view s) {
  if (s == "PUT") return OpKind::Put;
  if (s == "REMOVE") return OpKind::Remove;
  if (s == "MOVE") return OpKind::Move;
  if (s == "CLEAR") return OpKind::Clear;
  return std::nullopt;
}

// One op as read from (views into the chunk bytes) or written to a chunk.
struct Op {
  int64_t op_id = 0;
  OpKind kind = OpKind::Put;
  uint32_t checksum = 0;
  std::optional<std::string_view> object_type, object_id, subkey, data;
  std::optional<int64_t> target_op;
  uint32_t cum_checksum = 0;  // running totals of the bucket up to and including this op
  int64_t cum_count = 0;
};

namespace detail {

inline void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void u32(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
  out.append(b, 4);
}

inline void str(std::string& out, std::string_view s) {
  varint(out, s.size());
  out.append(s.data(), s.size());
}

[[noreturn]] inline void corrupt(const char* what) {
  throw Error(Error::Kind::Internal, std::string("corrupt op chunk in powersync.bucket_chunks: ") + what,
              "", "The op log is damaged; redeploy the sync rules (powersync.deploy_sync_rules) to rebuild it.");
}

}  // namespace detail

// Builds one chunk. Ops must be appended in increasing op_id order with consistent running totals.
class Writer {
 public:
  void add(const Op& op) {
    std::string& o = body_;
    if (n_ == 0) {
      first_op_ = op.op_id;
      first_cum_checksum_ = op.cum_checksum;
      first_cum_count_ = op.cum_count;
      detail::varint(o, 0);
    } else {
      if (op.op_id <= last_op_) detail::corrupt("op ids not increasing while writing");
      detail::varint(o, static_cast<uint64_t>(op.op_id - last_op_));
    }
    bool same_type = op.object_type && have_type_ && *op.object_type == last_type_;
    uint32_t checksum_delta = op.cum_checksum - last_cum_checksum_;
    int64_t count_delta = op.cum_count - last_cum_count_;
    bool explicit_checksum = n_ > 0 && checksum_delta != op.checksum;
    bool explicit_count = n_ > 0 && count_delta != 1;
    if (explicit_count && count_delta < 0) detail::corrupt("cum_count decreasing while writing");
    uint8_t more = (op.target_op ? 1 : 0) | (explicit_checksum ? 2 : 0) | (explicit_count ? 4 : 0);
    uint8_t flags = static_cast<uint8_t>(op.kind) | (op.object_type ? 4 : 0) | (same_type ? 8 : 0) |
                    (op.object_id ? 16 : 0) | (op.subkey ? 32 : 0) | (op.data ? 64 : 0) | (more ? 128 : 0);
    o.push_back(static_cast<char>(flags));
    if (more) o.push_back(static_cast<char>(more));
    detail::u32(o, op.checksum);
    if (explicit_checksum) detail::u32(o, checksum_delta);
    if (explicit_count) detail::varint(o, static_cast<uint64_t>(count_delta));
    if (op.object_type && !same_type) detail::str(o, *op.object_type);
    if (op.object_id) detail::str(o, *op.object_id);
    if (op.subkey) detail::str(o, *op.subkey);
    if (op.data) detail::str(o, *op.data);
    if (op.target_op) detail::varint(o, static_cast<uint64_t>(*op.target_op));
    if (op.object_type) {
      last_type_.assign(op.object_type->data(), op.object_type->size());
      have_type_ = true;
    }
    last_op_ = op.op_id;
    last_cum_checksum_ = op.cum_checksum;
    last_cum_count_ = op.cum_count;
    ++n_;
  }

  size_t ops() const { return n_; }
  size_t body_size() const { return body_.size(); }
  int64_t first_op() const { return first_op_; }
  int64_t last_op() const { return last_op_; }
  uint32_t cum_checksum() const { return last_cum_checksum_; }
  int64_t cum_count() const { return last_cum_count_; }
  int64_t first_cum_count() const { return first_cum_count_; }

  // The encoded chunk (header + ops).
  std::string finish() const {
    std::string out;
    out.reserve(body_.size() + 24);
    out.push_back(static_cast<char>(kVersion));
    detail::varint(out, n_);
    detail::varint(out, static_cast<uint64_t>(first_op_));
    detail::u32(out, first_cum_checksum_);
    detail::varint(out, static_cast<uint64_t>(first_cum_count_));
    out += body_;
    return out;
  }

  // Starts a new chunk, keeping the buffers' capacity (one chunk after another during a flush).
  void clear() {
    body_.clear();
    last_type_.clear();
    have_type_ = false;
    n_ = 0;
    first_op_ = last_op_ = first_cum_count_ = last_cum_count_ = 0;
    first_cum_checksum_ = last_cum_checksum_ = 0;
  }

 private:
  std::string body_, last_type_;
  bool have_type_ = false;
  size_t n_ = 0;
  int64_t first_op_ = 0, last_op_ = 0, first_cum_count_ = 0, last_cum_count_ = 0;
  uint32_t first_cum_checksum_ = 0, last_cum_checksum_ = 0;
};

// Iterates the ops of an encoded chunk; every malformed input raises Error (never reads out of bounds).
class Reader {
 public:
  explicit Reader(std::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {
    if (byte() != kVersion) detail::corrupt("unknown version");
    remaining_ = varint();
    if (remaining_ == 0) detail::corrupt("no ops");
    if (remaining_ > bytes.size()) detail::corrupt("op count larger than the chunk");
    op_.op_id = static_cast<int64_t>(varint());
    op_.cum_checksum = u32();
    op_.cum_count = static_cast<int64_t>(varint());
  }

  // Reads the next op into `op()`; false at the end. Views in op() point into the chunk bytes.
  bool next() {
    if (remaining_ == 0) {
      if (p_ != end_) detail::corrupt("trailing bytes");
      return false;
    }
    uint64_t delta = varint();
    bool first = index_ == 0;
    if (first ? delta != 0 : delta == 0) detail::corrupt("op id delta");
    op_.op_id += static_cast<int64_t>(delta);
    uint8_t flags = byte();
    uint8_t more = (flags & 128) ? byte() : 0;
    op_.kind = static_cast<OpKind>(flags & 3);
    op_.checksum = u32();
    uint32_t checksum_delta = (more & 2) ? u32() : op_.checksum;
    int64_t count_delta = (more & 4) ? static_cast<int64_t>(varint()) : 1;
    if (!first) {
      op_.cum_checksum += checksum_delta;
      op_.cum_count += count_delta;
    }
    if (flags & 4) {
      if (!(flags & 8)) last_type_ = str();
      else if (!have_type_) detail::corrupt("repeated object_type without a previous one");
      have_type_ = true;
      op_.object_type = last_type_;
    } else {
      op_.object_type.reset();
    }
    op_.object_id = (flags & 16) ? std::optional<std::string_view>(str()) : std::nullopt;
    op_.subkey = (flags & 32) ? std::optional<std::string_view>(str()) : std::nullopt;
    op_.data = (flags & 64) ? std::optional<std::string_view>(str()) : std::nullopt;
    op_.target_op = (more & 1) ? std::optional<int64_t>(static_cast<int64_t>(varint())) : std::nullopt;
    --remaining_;
    ++index_;
    return true;
  }

  const Op& op() const { return op_; }

 private:
  uint8_t byte() {
    if (p_ >= end_) detail::corrupt("truncated");
    return static_cast<uint8_t>(*p_++);
  }
  uint32_t u32() {
    if (end_ - p_ < 4) detail::corrupt("truncated");
    uint32_t v = static_cast<uint8_t>(p_[0]) | static_cast<uint32_t>(static_cast<uint8_t>(p_[1])) << 8 |
                 static_cast<uint32_t>(static_cast<uint8_t>(p_[2])) << 16 |
                 static_cast<uint32_t>(static_cast<uint8_t>(p_[3])) << 24;
    p_ += 4;
    return v;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = byte();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        if (v > static_cast<uint64_t>(INT64_MAX)) detail::corrupt("number out of range");
        return v;
      }
    }
    detail::corrupt("varint too long");
  }
  std::string_view str() {
    uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) detail::corrupt("string past the end");
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }

  const char* p_;
  const char* end_;
  uint64_t remaining_ = 0;
  uint64_t index_ = 0;
  std::string_view last_type_;
  bool have_type_ = false;
  Op op_;
};

}  // namespace powersync::pg::chunk
