// Exact NDJSON shapes of every sync line (spec §1.4) and parsing of the sync request (spec §1.2).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "powersync/error.h"
#include "powersync/protocol/json_writer.h"
#include "powersync/protocol/sync_lines.h"
#include "powersync/protocol/sync_request.h"

using namespace powersync::protocol;

TEST(SyncLines, CheckpointListsBucketsWithSignedChecksumAndStringOpIds) {
  std::vector<BucketState> b{{"1#todos[\"a\"]", 4201080675u, 2, 0}, {"global[]", 0, 0, 3}};
  EXPECT_EQ(checkpoint_line(2, std::nullopt, b),
            "{\"checkpoint\":{\"last_op_id\":\"2\",\"buckets\":[{\"bucket\":\"1#todos[\\\"a\\\"]\",\"checksum\":-93886621,"
            "\"count\":2,\"priority\":0},{\"bucket\":\"global[]\",\"checksum\":0,\"count\":0,\"priority\":3}]}}\n");
}

TEST(SyncLines, CheckpointCarriesWriteCheckpointAsString) {
  EXPECT_EQ(checkpoint_line(0, 5, {}), "{\"checkpoint\":{\"last_op_id\":\"0\",\"write_checkpoint\":\"5\",\"buckets\":[]}}\n");
}

TEST(SyncLines, CheckpointDiffHasUpdatedAndRemoved) {
  EXPECT_EQ(checkpoint_diff_line(4, 6, {{"b", 1, 1, 3}}, {"1#by_user[\"u2\"]"}),
            "{\"checkpoint_diff\":{\"last_op_id\":\"4\",\"write_checkpoint\":\"6\",\"updated_buckets\":[{\"bucket\":"
            "\"b\",\"checksum\":1,\"count\":1,\"priority\":3}],\"removed_buckets\":[\"1#by_user[\\\"u2\\\"]\"]}}\n");
}

TEST(SyncLines, DataLineShapesPutRemoveMoveClear) {
  std::vector<OpRecord> ops(4);
  ops[0] = {1, "PUT", "test", "t1", "sk", std::string("{\"id\":\"t1\",\"description\":\"Test 1\"}"), 920318466u, 0};
  ops[1] = {2, "REMOVE", "test", "t2", "sk2", std::nullopt, 123u, 0};
  ops[2] = {3, "MOVE", "", "", "", std::nullopt, 456u, 0};
  ops[3] = {4, "CLEAR", "", "", "", std::nullopt, 4201080675u, 0};
  std::string out;
  append_data_line(out, "1#mybucket[]", 0, false, ops, 0, 4, true);
  EXPECT_EQ(out,
            "{\"data\":{\"bucket\":\"1#mybucket[]\",\"after\":\"0\",\"next_after\":\"4\",\"has_more\":false,\"data\":["
            "{\"op_id\":\"1\",\"op\":\"PUT\",\"object_type\":\"test\",\"object_id\":\"t1\",\"data\":\"{\\\"id\\\":"
            "\\\"t1\\\",\\\"description\\\":\\\"Test 1\\\"}\",\"subkey\":\"sk\",\"checksum\":920318466},"
            "{\"op_id\":\"2\",\"op\":\"REMOVE\",\"object_type\":\"test\",\"object_id\":\"t2\",\"subkey\":\"sk2\","
            "\"checksum\":123},{\"op_id\":\"3\",\"op\":\"MOVE\",\"checksum\":456},"
            "{\"op_id\":\"4\",\"op\":\"CLEAR\",\"checksum\":4201080675}]}}\n");
}

// The data string of a PUT is encoded by a separate fast path; it must match JSON.stringify
// escaping (append_json_string) byte for byte, including control characters mid-string.
TEST(SyncLines, RowDataStringMatchesGeneralEscaping) {
  const std::string cases[] = {"", "{}", "{\"a\":\"b\\\\c\"}", std::string("x\0y", 3), "tab\there\nnl\u0001\u001f end \"q\"",
                               "\xc3\xa9\xe2\x82\xac\"", "\\\\\\", std::string(300, '"') + "\x7f\n"};
  for (const auto& data : cases) {
    std::vector<OpRecord> ops(1);
    ops[0] = {9, "PUT", "t", "1", "s", data, 1u, 0};
    std::string line, expected = "\"data\":";
    append_data_line(line, "b", 0, false, ops, 0, 1, true);
    powersync::protocol::append_json_string(expected, data);
    EXPECT_NE(line.find(expected + ",\"subkey\""), std::string::npos) << line;
    EXPECT_EQ(nlohmann::json::parse(line)["data"]["data"][0]["data"], data);
  }
}

TEST(SyncLines, LegacyNonRawDataNestsRowObject) {
  std::vector<OpRecord> ops(1);
  ops[0] = {7, "PUT", "t", "1", "s", std::string("{\"a\":1}"), 1u, 0};
  std::string out;
  append_data_line(out, "b", 5, true, ops, 0, 1, false);
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["data"]["data"][0]["data"]["a"], 1);
  EXPECT_EQ(j["data"]["after"], "5");
  EXPECT_EQ(j["data"]["next_after"], "7");
  EXPECT_EQ(j["data"]["has_more"], true);
}

TEST(SyncLines, CompleteAndPartialAndTokenLines) {
  EXPECT_EQ(checkpoint_complete_line(4), "{\"checkpoint_complete\":{\"last_op_id\":\"4\"}}\n");
  EXPECT_EQ(partial_checkpoint_complete_line(4, 1), "{\"partial_checkpoint_complete\":{\"last_op_id\":\"4\",\"priority\":1}}\n");
  EXPECT_EQ(token_expires_in_line(23), "{\"token_expires_in\":23}\n");
  EXPECT_EQ(token_expires_in_line(-5), "{\"token_expires_in\":0}\n");
}

TEST(SyncLines, JsonStringEscapesControlQuotesAndKeepsUtf8) {
  std::string out;
  append_json_string(out, std::string("a\"b\\c\n\x01\t\xc3\xa9", 10));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\\t\xc3\xa9\"");
  EXPECT_EQ(nlohmann::json::parse(out).get<std::string>(), std::string("a\"b\\c\n\x01\t\xc3\xa9", 10));
}

TEST(SyncLines, LargeOpIdsStayExact) {
  EXPECT_EQ(checkpoint_complete_line(9223372036854775807LL), "{\"checkpoint_complete\":{\"last_op_id\":\"9223372036854775807\"}}\n");
}

TEST(SyncRequestParse, RustCoreGoldenRequest) {
  auto r = parse_sync_request(
      R"({"buckets":[{"name":"1#mybucket[]","after":"42"}],"include_checksum":true,"raw_data":true,)"
      R"("binary_data":true,"client_id":"c-1","parameters":null,"streams":{"include_defaults":true,"subscriptions":[]}})");
  ASSERT_EQ(r.buckets.size(), 1u);
  EXPECT_EQ(r.buckets[0].first, "1#mybucket[]");
  EXPECT_EQ(r.buckets[0].second, 42);
  EXPECT_TRUE(r.raw_data);
  EXPECT_EQ(r.client_id, "c-1");
  EXPECT_EQ(r.parameters_json, "{}");
}

TEST(SyncRequestParse, EmptyBodyMeansDefaults) {
  auto r = parse_sync_request("  ");
  EXPECT_TRUE(r.buckets.empty());
  EXPECT_EQ(r.parameters_json, "{}");
}

TEST(SyncRequestParse, RawDataAbsentMeansLegacyNested) { EXPECT_FALSE(parse_sync_request("{}").raw_data); }

TEST(SyncRequestParse, ParametersObjectKept) {
  EXPECT_EQ(parse_sync_request(R"({"parameters":{"x":[1,2]}})").parameters_json, R"({"x":[1,2]})");
}

TEST(SyncRequestParse, AfterAsNumberAccepted) {
  EXPECT_EQ(parse_sync_request(R"({"buckets":[{"name":"a","after":7}]})").buckets[0].second, 7);
}

TEST(SyncRequestParse, RejectsMalformedBodies) {
  for (const char* bad : {"{", "[]", "\"x\"", R"({"buckets":{}})", R"({"buckets":[{"after":"1"}]})",
                          R"({"buckets":[{"name":"a","after":"x1"}]})", R"({"buckets":[{"name":"a","after":"-1"}]})",
                          R"({"buckets":[{"name":"a","after":"99999999999999999999"}]})", R"({"parameters":[1]})",
                          R"({"client_id":5})", R"({"raw_data":"yes"})"}) {
    EXPECT_THROW(parse_sync_request(bad), powersync::Error) << bad;
  }
}
