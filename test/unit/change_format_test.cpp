// The plugin <-> worker binary format (include/powersync/pg/change_format.h): values, tuples, row
// images, bucket lists and lookup lists round-trip; truncated or unknown input is an error, not a crash.
#include <gtest/gtest.h>

#include "powersync/pg/change_format.h"

using namespace powersync;
using namespace powersync::pg::wire;
using rules::Value;

TEST(ChangeFormat, ValuesRoundTripWithUnchangedToastMarker) {
  std::string bytes;
  Writer w(bytes);
  w.u16(6);
  w.value(Value::null());
  w.value(Value::integer(-9007199254740993LL));
  w.value(Value::real(3.14));
  w.value(Value::text(std::string("a\0b", 3)));
  w.value(Value::blob("\xde\xad"));
  w.unchanged_toast();
  Reader r(bytes);
  Tuple t = read_tuple(r);
  ASSERT_EQ(t.values.size(), 6u);
  EXPECT_TRUE(t.values[0].is_null());
  EXPECT_EQ(t.values[1].as_integer(), -9007199254740993LL);
  EXPECT_DOUBLE_EQ(t.values[2].as_real(), 3.14);
  EXPECT_EQ(t.values[3].as_text(), std::string("a\0b", 3));
  EXPECT_EQ(t.values[4].as_blob(), "\xde\xad");
  EXPECT_TRUE(t.values[5].is_null());
  EXPECT_EQ(t.unchanged, (std::vector<bool>{false, false, false, false, false, true}));
  EXPECT_TRUE(r.at_end());
}

TEST(ChangeFormat, OutOfLineFlagRidesOnTheColumnCount) {
  std::string bytes;
  Writer w(bytes);
  w.u16(static_cast<uint16_t>(2 | kOutOfLine));
  w.value(Value::integer(7));
  w.unchanged_toast();
  w.u16(1);
  w.value(Value::text("x"));
  Reader r(bytes);
  Tuple flagged = read_tuple(r);
  EXPECT_TRUE(flagged.out_of_line);
  ASSERT_EQ(flagged.values.size(), 2u);
  EXPECT_EQ(flagged.values[0].as_integer(), 7);
  EXPECT_TRUE(flagged.unchanged[1]);
  Tuple plain = read_tuple(r);
  EXPECT_FALSE(plain.out_of_line);
  ASSERT_EQ(plain.values.size(), 1u);
  EXPECT_TRUE(r.at_end());
}

TEST(ChangeFormat, RowImageKeepsNamesAndOrder) {
  rules::Row row{{"id", Value::integer(1)}, {"name", Value::text("x")}, {"gone", Value::null()}};
  rules::Row back = decode_row_image(encode_row_image(row));
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].name, "id");
  EXPECT_EQ(back[1].value.as_text(), "x");
  EXPECT_TRUE(back[2].value.is_null());
  EXPECT_TRUE(decode_row_image("").empty());
}

TEST(ChangeFormat, BucketRefsAndLookupsRoundTrip) {
  std::vector<BucketRef> refs{{"1#by_user[\"u1\"]", "lists", "l1"}, {"1#global[]", "lists", ""}};
  EXPECT_EQ(decode_bucket_refs(encode_bucket_refs(refs)), refs);
  EXPECT_TRUE(decode_bucket_refs(encode_bucket_refs({})).empty());
  std::vector<std::string> lookups{"[\"by_org\",\"1\",\"u1\"]", ""};
  EXPECT_EQ(decode_strings(encode_strings(lookups)), lookups);
}

// The row cache keeps lists encoded: what it builds must be what current_data always held, and reading
// the bytes back must see the references in order.
TEST(ChangeFormat, BucketRefListBuildsTheStoredEncoding) {
  std::vector<BucketRef> refs{{"1#by_user[\"u1\"]", "lists", "l1"}, {"1#global[]", "lists", ""}};
  BucketRefList list;
  EXPECT_EQ(list.bytes(), encode_bucket_refs({}));
  EXPECT_EQ(list.bytes(), empty_list());
  for (const auto& r : refs) list.add(r.bucket, r.table, r.id);
  EXPECT_EQ(list.bytes(), encode_bucket_refs(refs));
  EXPECT_TRUE(list.contains({"1#global[]", "lists", ""}));
  EXPECT_FALSE(list.contains({"1#global[]", "lists", "l1"}));
  std::vector<BucketRef> seen;
  for_each_bucket_ref(list.bytes(), [&](const BucketRefView& v) {
    seen.push_back({std::string(v.bucket), std::string(v.table), std::string(v.id)});
  });
  EXPECT_EQ(seen, refs);
  int none = 0;
  for_each_bucket_ref("", [&](const BucketRefView&) { ++none; });
  std::vector<std::string> lookups{"[\"by_org\",\"1\",\"u1\"]", ""}, back;
  for_each_string(encode_strings(lookups), [&](std::string_view s) { back.emplace_back(s); });
  for_each_string("", [&](std::string_view) { ++none; });
  EXPECT_EQ(back, lookups);
  EXPECT_EQ(none, 0);
}

TEST(ChangeFormat, TruncatedInputThrows) {
  std::string bytes = encode_bucket_refs({{"bucket", "t", "id"}});
  for (size_t cut = 1; cut < bytes.size(); ++cut)
    EXPECT_THROW(decode_bucket_refs(bytes.substr(0, cut)), Error) << "cut at " << cut;
  std::string value("t\x05\x00\x00\x00" "ab", 7);  // claims 5 bytes, has 2
  Reader r(value);
  EXPECT_THROW(r.value(), Error);
}

TEST(ChangeFormat, UnknownValueTagThrows) {
  std::string bytes("z", 1);
  Reader r(bytes);
  EXPECT_THROW(r.value(), Error);
}
