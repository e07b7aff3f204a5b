// Unit tests of the allocation-lean evaluation path used by replication: SyncRules::evaluate_row into a
// RowSink (per-thread reused buffers) and op checksums of long inputs (hashed in pieces, not joined).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "powersync/protocol/checksum.h"
#include "powersync/rules/sync_rules.h"

namespace rules = powersync::rules;
namespace protocol = powersync::protocol;

namespace {

struct Recorded final : rules::RowSink {
  std::vector<std::string> rows;
  std::vector<std::string> errors;
  void put(std::string_view bucket, std::string_view table, std::string_view id, std::string_view data) override {
    rows.push_back(std::string(bucket) + " " + std::string(table) + " " + std::string(id) + " " + std::string(data));
  }
  void error(std::string message) override { errors.push_back(std::move(message)); }
};

std::vector<std::string> collected(const rules::RowEvaluation& ev) {
  std::vector<std::string> out;
  for (const auto& r : ev.rows) out.push_back(r.bucket + " " + r.table + " " + r.id + " " + r.data);
  return out;
}

const char* kRules = R"(
bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner
    data:
      - SELECT id, owner, body FROM items WHERE owner = bucket.owner
  everything:
    data:
      - SELECT id, body AS b FROM items
)";

}  // namespace

TEST(RowSink, HandsOverTheSameRowsAsTheCollectingApiAcrossReusedBuffers) {
  std::vector<rules::RuleIssue> issues;
  auto parsed = rules::SyncRules::parse(kRules, rules::ParseOptions{"7#", "public"}, issues);
  ASSERT_TRUE(parsed);
  const rules::SourceTable table{"public", "items"};
  // Integer, TEXT and REAL ids; a row larger than the kept scratch buffers, then small rows again.
  std::vector<rules::Row> rows = {
      {{"id", rules::Value::integer(-42)}, {"owner", rules::Value::text("u1")}, {"body", rules::Value::text("short")}},
      {{"id", rules::Value::text("a-much-longer-text-id-0123456789")}, {"owner", rules::Value::text("u\"2")},
       {"body", rules::Value::text(std::string(200000, 'x'))}},
      {{"id", rules::Value::real(2.5)}, {"owner", rules::Value::text("u3")}, {"body", rules::Value::null()}},
      {{"id", rules::Value::integer(7)}, {"owner", rules::Value::null()}, {"body", rules::Value::text("tab\there")}},
  };
  for (const auto& row : rows) {
    Recorded sink;
    parsed->evaluate_row(table, row, sink);
    EXPECT_EQ(sink.rows, collected(parsed->evaluate_row(table, row)));
    EXPECT_TRUE(sink.errors.empty());
  }
  Recorded sink;
  parsed->evaluate_row(table, rows[0], sink);
  ASSERT_EQ(sink.rows.size(), 2u);
  EXPECT_EQ(sink.rows[0], R"(7#by_owner["u1"] items -42 {"id":-42,"owner":"u1","body":"short"})");
  EXPECT_EQ(sink.rows[1], R"(7#everything[] items -42 {"id":-42,"b":"short"})");
}

TEST(OpChecksum, LongInputsHashTheSameBytesAsShortOnes) {
  for (size_t size : {0u, 1u, 40u, 499u, 500u, 501u, 4096u}) {
    const std::string data(size, 'd');
    EXPECT_EQ(protocol::put_checksum("lists", "l1", data), protocol::hash_checksum("put.lists.l1." + data)) << size;
    EXPECT_EQ(protocol::remove_checksum(data), protocol::hash_checksum("delete." + data)) << size;
  }
  // SHA-256("abc") starts with ba 78 16 bf: little-endian 0xbf1678ba.
  EXPECT_EQ(protocol::hash_checksum("abc"), 0xbf1678bau);
  unsigned char digest[32];
  protocol::sha256("abc", digest);
  EXPECT_EQ(digest[0], 0xba);
  EXPECT_EQ(digest[31], 0xad);
}
