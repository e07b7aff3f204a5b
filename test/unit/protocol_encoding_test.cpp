// Unit tests of the protocol encoding primitives: JS-compatible JSON writing, row JSON, bucket ids
// and op checksums (spec §2.3, §4.6, §4.10).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include "powersync/protocol/checksum.h"
#include "powersync/protocol/json_writer.h"

namespace powersync::protocol {
namespace {

using rules::Value;

std::string js(double v) { return js_number_to_string(v); }

TEST(JsNumberFormat, MatchesNumberToString) {
  EXPECT_EQ(js(3.14), "3.14");
  EXPECT_EQ(js(1e21), "1e+21");
  EXPECT_EQ(js(1e20), "100000000000000000000");
  EXPECT_EQ(js(1.5e-7), "1.5e-7");
  EXPECT_EQ(js(0.000001), "0.000001");
  EXPECT_EQ(js(1e-7), "1e-7");
  EXPECT_EQ(js(-0.0), "0");
  EXPECT_EQ(js(0.0), "0");
  EXPECT_EQ(js(1.0), "1");
  EXPECT_EQ(js(-2.5), "-2.5");
  EXPECT_EQ(js(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(js(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(js(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(js(5e-324), "5e-324");
  EXPECT_EQ(js(9007199254740993.0), "9007199254740992");
  EXPECT_EQ(js(std::nan("")), "NaN");
  EXPECT_EQ(js(std::numeric_limits<double>::infinity()), "Infinity");
  EXPECT_EQ(js(-std::numeric_limits<double>::infinity()), "-Infinity");
  EXPECT_EQ(js(1.5e300), "1.5e+300");
  EXPECT_EQ(js(-1e-10), "-1e-10");
}

TEST(JsonString, EscapesLikeJsonStringify) {
  std::string out;
  append_json_string(out, std::string("a\"b\\c\n\r\t\b\f\x01\x1f\x7f", 13));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\"");
  out.clear();
  append_json_string(out, "héllo € 😀 \u2028/");
  EXPECT_EQ(out, "\"héllo € 😀 \u2028/\"");
  out.clear();
  append_json_string(out, std::string("\0", 1));
  EXPECT_EQ(out, "\"\\u0000\"");
}

// Byte-at-a-time reference for the word-at-a-time escaper.
std::string naive_json_string(const std::string& s) {
  std::string out = "\"";
  char buf[8];
  for (unsigned char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == '\b') out += "\\b";
    else if (c == '\f') out += "\\f";
    else if (c < 0x20) std::snprintf(buf, sizeof buf, "\\u%04x", c), out += buf;
    else out.push_back(static_cast<char>(c));
  }
  return out + "\"";
}

TEST(JsonString, WordAtATimeScanMatchesBytewiseEscaping) {
  uint32_t seed = 12345;
  auto next = [&seed]() { return seed = seed * 1103515245u + 12345u; };
  const unsigned char interesting[] = {0, 1, 0x1f, 0x20, '"', '\\', 'a', 0x7f, 0x80, 0x9f, 0xa0, 0xc3, 0xa9, 0xff, '\n', 0x21, 0x5b, 0x5d};
  for (int round = 0; round < 2000; ++round) {
    std::string s;
    size_t len = next() % 40;
    for (size_t i = 0; i < len; ++i) s.push_back(static_cast<char>(interesting[(next() >> 8) % sizeof interesting]));
    std::string out;
    append_json_string(out, s);
    ASSERT_EQ(out, naive_json_string(s)) << "round " << round;
  }
}

// Mostly clean strings of every length up to 70 (16-byte blocks, overlapping tails) with one
// escape-worthy byte at every position, scanned from every start offset.
TEST(JsonString, NextEscapeFindsTheFirstEscapeFromEveryOffset) {
  const unsigned char dirty[] = {0, 0x1f, '"', '\\', '\n'};
  const unsigned char clean[] = {'a', 0x20, 0x7f, 0x80, 0xff, 0x21, 0x5b, 0x5d, 0xc3};
  for (size_t len = 0; len <= 70; ++len) {
    for (size_t at = 0; at <= len; ++at) {  // at == len: no escape at all
      std::string s;
      for (size_t i = 0; i < len; ++i) s.push_back(static_cast<char>(clean[(i * 7 + len) % sizeof clean]));
      if (at < len) s[at] = static_cast<char>(dirty[(at + len) % sizeof dirty]);
      for (size_t from = 0; from <= len; ++from) {
        const size_t expected = from <= at ? at : len;
        ASSERT_EQ(next_escape(s, from), expected) << "len " << len << " escape at " << at << " from " << from;
      }
    }
  }
}

TEST(RowJson, KeepsOrderDropsBlobsAndMarksIntegralReals) {
  rules::Row row = {{"id", Value::text("t1")},      {"n", Value::integer(9007199254740993)},
                    {"r", Value::real(314.0)},      {"f", Value::real(3.14)},
                    {"b", Value::blob("\x01\x02")}, {"z", Value::null()},
                    {"big", Value::real(1e21)},     {"neg0", Value::real(-0.0)},
                    {"nan", Value::real(std::nan(""))}, {"min", Value::integer(INT64_MIN)}};
  EXPECT_EQ(encode_row_json(row),
            "{\"id\":\"t1\",\"n\":9007199254740993,\"r\":314.0,\"f\":3.14,\"z\":null,\"big\":1e+21,"
            "\"neg0\":0.0,\"nan\":null,\"min\":-9223372036854775808}");
  EXPECT_EQ(encode_row_json({}), "{}");
  EXPECT_EQ(encode_row_json({{"b", Value::blob("x")}}), "{}");
}

TEST(BucketId, SerializesParametersLikeJsonStringify) {
  EXPECT_EQ(bucket_id("", "global", {}), "global[]");
  EXPECT_EQ(bucket_id("1#", "by_user", {Value::text("u1")}), "1#by_user[\"u1\"]");
  EXPECT_EQ(bucket_id("", "p", {Value::real(1.0)}), "p[1]");
  EXPECT_EQ(bucket_id("", "p", {Value::integer(1)}), "p[1]");
  EXPECT_EQ(bucket_id("", "p", {Value::real(1.5), Value::null(), Value::text("a\"b")}), "p[1.5,null,\"a\\\"b\"]");
  EXPECT_EQ(serialize_bucket_parameters({Value::integer(INT64_MAX)}), "[9223372036854775807]");
}

TEST(Checksum, SpecTestVectors) {
  EXPECT_EQ(put_checksum("test", "t1", "{\"id\":\"t1\",\"description\":\"Test 1\"}"), 920318466u);
  EXPECT_EQ(put_checksum("test", "t2", "{\"id\":\"t2\",\"description\":\"Test 2\"}"), 3280762209u);
  EXPECT_EQ(put_checksum("lists", "list1", "{\"id\":\"list1\",\"user_id\":\"user1\",\"name\":\"User 1\"}"),
            1418351250u);
  uint32_t sum = add_checksums(920318466u, 3280762209u);
  EXPECT_EQ(sum, 4201080675u);
  EXPECT_EQ(checksum_to_signed(sum), -93886621);
  EXPECT_EQ(checksum_from_signed(-93886621), 4201080675u);
}

TEST(Checksum, WorkedExampleOfSpec2_4a) {
  std::string d1 = encode_row_json({{"id", Value::text("l1")}, {"name", Value::text("A")}, {"owner_id", Value::text("u1")}});
  EXPECT_EQ(d1, "{\"id\":\"l1\",\"name\":\"A\",\"owner_id\":\"u1\"}");
  EXPECT_EQ(put_checksum("lists", "l1", d1), 2614962282u);
  std::string d2 = encode_row_json({{"id", Value::text("l1")}, {"name", Value::text("A")}, {"owner_id", Value::text("u2")}});
  EXPECT_EQ(put_checksum("lists", "l1", d2), 2401747071u);
  uint32_t remove = remove_checksum("t1/9b2c6d0e-0000-5000-8000-000000000001");
  EXPECT_EQ(remove, 3880324444u);
  EXPECT_EQ(add_checksums(2614962282u, remove), 2200319430u);
  EXPECT_EQ(checksum_to_signed(2200319430u), -2094647866);
  EXPECT_EQ(checksum_to_signed(2401747071u), -1893220225);
}

}  // namespace
}  // namespace powersync::protocol
