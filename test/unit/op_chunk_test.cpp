// The op chunk encoding of powersync.bucket_chunks (include/powersync/pg/op_chunk.h): ops round-trip with
// their running totals (also explicit ones after compaction), and every truncated or damaged chunk is an
// Error, never a crash or an out-of-bounds read.
#include <gtest/gtest.h>

#include <vector>

#include "powersync/pg/op_chunk.h"

using namespace powersync;
using namespace powersync::pg::chunk;

namespace {

struct Owned {  // an op with owned strings (Op holds views)
  int64_t op_id;
  OpKind kind;
  uint32_t checksum;
  std::optional<std::string> type, id, subkey, data;
  std::optional<int64_t> target;
  uint32_t cum_checksum;
  int64_t cum_count;
};

Op view(const Owned& o) {
  Op op;
  op.op_id = o.op_id;
  op.kind = o.kind;
  op.checksum = o.checksum;
  if (o.type) op.object_type = *o.type;
  if (o.id) op.object_id = *o.id;
  if (o.subkey) op.subkey = *o.subkey;
  if (o.data) op.data = *o.data;
  op.target_op = o.target;
  op.cum_checksum = o.cum_checksum;
  op.cum_count = o.cum_count;
  return op;
}

std::vector<Owned> sample() {
  return {
      {7, OpKind::Clear, 0xfffffff0u, std::nullopt, std::nullopt, std::nullopt, std::nullopt, 6, 0xfffffff0u, 5},
      {9, OpKind::Put, 0x20u, "todos", "t1", "3/69", "{\"id\":\"t1\"}", std::nullopt, 0x10u, 6},
      {10, OpKind::Remove, 5u, "todos", "t2", "3/70", std::nullopt, std::nullopt, 0x15u, 7},
      {11, OpKind::Move, 9u, std::nullopt, std::nullopt, std::nullopt, std::nullopt, 12, 0x1eu, 8},
      {300000, OpKind::Put, 1u, "lists", std::string("a\0b", 3), "", "", std::nullopt, 0x1fu, 9},
      {300001, OpKind::Put, 2u, "lists", "x", "y", "{}", std::nullopt, 0x99u, 20},  // explicit totals
  };
}

std::string encode(const std::vector<Owned>& ops) {
  Writer w;
  for (const auto& o : ops) w.add(view(o));
  return w.finish();
}

size_t count_ops(const std::string& bytes) {
  Reader r(bytes);
  size_t n = 0;
  while (r.next()) ++n;
  return n;
}

}  // namespace

TEST(OpChunk, OpsRoundTripWithRunningTotals) {
  auto ops = sample();
  Writer w;
  for (const auto& o : ops) w.add(view(o));
  EXPECT_EQ(w.first_op(), 7);
  EXPECT_EQ(w.last_op(), 300001);
  EXPECT_EQ(w.first_cum_count(), 5);
  EXPECT_EQ(w.cum_count(), 20);
  EXPECT_EQ(w.cum_checksum(), 0x99u);
  std::string bytes = w.finish();
  Reader r(bytes);
  for (const auto& o : ops) {
    ASSERT_TRUE(r.next());
    const Op& op = r.op();
    EXPECT_EQ(op.op_id, o.op_id);
    EXPECT_EQ(op.kind, o.kind);
    EXPECT_EQ(op.checksum, o.checksum);
    EXPECT_EQ(op.object_type.has_value(), o.type.has_value());
    if (o.type) { EXPECT_EQ(*op.object_type, *o.type); }
    EXPECT_EQ(op.object_id.has_value(), o.id.has_value());
    if (o.id) { EXPECT_EQ(*op.object_id, *o.id); }
    EXPECT_EQ(op.subkey.has_value(), o.subkey.has_value());
    if (o.subkey) { EXPECT_EQ(*op.subkey, *o.subkey); }
    EXPECT_EQ(op.data.has_value(), o.data.has_value());
    if (o.data) { EXPECT_EQ(*op.data, *o.data); }
    EXPECT_EQ(op.target_op, o.target);
    EXPECT_EQ(op.cum_checksum, o.cum_checksum);
    EXPECT_EQ(op.cum_count, o.cum_count);
  }
  EXPECT_FALSE(r.next());
}

TEST(OpChunk, ReplicationOpsCostAFewBytesBeyondTheirStrings) {
  Writer w;
  uint32_t sum = 0;
  size_t strings = 0;
  for (int i = 0; i < 20; ++i) {
    std::string id = "t" + std::to_string(i), subkey = "3/" + std::to_string(1000 + i), data = "{\"id\":\"" + id + "\"}";
    sum += 77u * i;
    Op op;
    op.op_id = 1000 + i;
    op.checksum = 77u * i;
    op.object_type = "todos";
    op.object_id = id;
    op.subkey = subkey;
    op.data = data;
    op.cum_checksum = sum;
    op.cum_count = i + 1;
    w.add(op);
    strings += id.size() + subkey.size() + data.size();
  }
  // object_type once, then per op: id delta, flags, checksum and three lengths.
  EXPECT_LE(w.finish().size(), strings + 5 + 20 * 9 + 24);
}

TEST(OpChunk, DamagedChunksAreErrors) {
  std::string good = encode(sample());
  EXPECT_EQ(count_ops(good), sample().size());
  for (size_t cut = 0; cut < good.size(); ++cut)
    EXPECT_THROW(count_ops(good.substr(0, cut)), Error) << "truncated at " << cut;
  EXPECT_THROW(count_ops(good + "x"), Error);
  std::string bad_version = good;
  bad_version[0] = 2;
  EXPECT_THROW(count_ops(bad_version), Error);
  // Every single-byte corruption either still decodes or is an Error (no crash, no overread).
  for (size_t i = 0; i < good.size(); ++i) {
    for (int v : {0x00, 0x7f, 0x80, 0xff}) {
      std::string bytes = good;
      bytes[i] = static_cast<char>(v);
      try {
        count_ops(bytes);
      } catch (const Error&) {
      }
    }
  }
  EXPECT_THROW(count_ops(std::string("\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12)), Error);
}

TEST(OpChunk, RepeatedObjectTypeNeedsAPreviousOne) {
  // version 1, one op, first_op 5, totals 0/1, delta 0, flags PUT|type|same-type, checksum.
  std::string bytes("\x01\x01\x05\x00\x00\x00\x00\x01\x00\x0c\x00\x00\x00\x00", 14);
  EXPECT_THROW(count_ops(bytes), Error);
}
