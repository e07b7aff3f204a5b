// The streaming NDJSON → BSON encoder of BSON sync streams gives, line by line, exactly the bytes of
// nlohmann's tree encoder (ordered_json::to_bson: same key order), for real sync lines and random
// JSON objects; input that BSON cannot hold is rejected without partial output.
#include <gtest/gtest.h>

#include <random>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "powersync/protocol/bson_lines.h"
#include "powersync/protocol/sync_lines.h"

using powersync::protocol::append_bson_documents;
using powersync::protocol::append_data_document;
using ordered = nlohmann::ordered_json;

namespace {

std::string reference(const std::string& ndjson) {
  std::string out;
  size_t start = 0;
  while (start < ndjson.size()) {
    size_t end = ndjson.find('\n', start);
    if (end == std::string::npos) end = ndjson.size();
    if (end > start) {
      auto doc = ordered::to_bson(ordered::parse(ndjson.substr(start, end - start)));
      out.append(reinterpret_cast<const char*>(doc.data()), doc.size());
    }
    start = end + 1;
  }
  return out;
}

std::string streamed(const std::string& ndjson) {
  std::string out = "prefix";
  append_bson_documents(out, ndjson);
  return out.substr(6);
}

ordered random_value(std::mt19937_64& rng, int depth) {
  switch (rng() % (depth > 3 ? 6 : 8)) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: return static_cast<int64_t>(rng()) >> (rng() % 64);  // every magnitude, both signs
    case 3: return static_cast<uint64_t>(rng() >> 1) >> (rng() % 63);
    case 4: return std::uniform_real_distribution<double>(-1e12, 1e12)(rng);
    case 5: {
      std::string s;
      static const char* const pieces[] = {"a", "Z", "\"", "\\", "\n", "\x01", "\xc3\xa9", "\xf0\x9f\x98\x80"};
      for (int n = static_cast<int>(rng() % 12); n > 0; --n) s += pieces[rng() % 8];
      return s;
    }
    case 6: {
      ordered a = ordered::array();
      for (int n = static_cast<int>(rng() % 5); n > 0; --n) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      ordered o = ordered::object();
      for (int n = static_cast<int>(rng() % 5); n > 0; --n) o["k" + std::to_string(rng() % 100)] = random_value(rng, depth + 1);
      return o;
    }
  }
}

}  // namespace

TEST(BsonLines, RealSyncLinesMatchNlohmann) {
  using namespace powersync::protocol;
  std::vector<OpRecord> ops(3);
  ops[0] = OpRecord{1, "PUT", "todos", "t1", "1/ab", std::string(R"({"id":"t1","n":1.5,"s":"é \"q\" \u0000"})"), 4294967295u, 0};
  ops[1] = OpRecord{9007199254740993LL, "REMOVE", "todos", "t2", "1/cd", std::nullopt, 7u, 0};
  ops[2] = OpRecord{9007199254740994LL, "MOVE", "", "", "", std::nullopt, 2147483648u, 9007199254740995LL};
  std::string lines = checkpoint_line(5, 3, {BucketState{"1#b[\"x\"]", 4294967295u, 3, 0}, BucketState{"2#c[]", 0, 0, 3}});
  lines += checkpoint_diff_line(6, std::nullopt, {BucketState{"1#b[\"x\"]", 1u, 4, 1}}, {"gone"});
  for (bool raw : {true, false}) append_data_line(lines, "1#b[\"x\"]", 0, true, ops, 0, ops.size(), raw);
  lines += partial_checkpoint_complete_line(6, 0) + checkpoint_complete_line(6) + token_expires_in_line(0);
  EXPECT_EQ(streamed(lines), reference(lines));
  EXPECT_EQ(streamed(lines).size(), reference(lines).size());
}

TEST(BsonLines, RandomObjectsMatchNlohmann) {
  std::mt19937_64 rng(20261121);
  for (int i = 0; i < 2000; ++i) {
    ordered doc = ordered::object();
    for (int n = static_cast<int>(rng() % 6); n > 0; --n) doc["f" + std::to_string(n)] = random_value(rng, 0);
    std::string line = doc.dump() + "\n";
    ASSERT_EQ(streamed(line), reference(line)) << line;
  }
}

TEST(BsonLines, EdgeValues) {
  for (const char* line : {R"({})", R"({"a":[]})", R"({"a":{}})", R"({"i":2147483647,"j":2147483648,"k":-2147483648,"l":-2147483649})",
                           R"({"u":9223372036854775807,"n":-9223372036854775808})", R"({"s":"\u0000x","e":""})",
                           R"({"d":1e300,"z":-0.0,"t":true,"f":false,"x":null})", "  {\"ws\" : [ 1 , 2 ] }  "}) {
    EXPECT_EQ(streamed(line), reference(line)) << line;
  }
  EXPECT_EQ(streamed("\n{\"a\":1}\n\n{\"b\":2}"), reference("{\"a\":1}\n{\"b\":2}"));  // blank lines skipped
}

TEST(BsonLines, RejectsWhatBsonCannotHold) {
  for (const char* line : {"[1,2]", "5", "\"s\"", "{\"a\":", "{\"a\":1} x", R"({"a\u0000b":1})", R"({"u":9223372036854775808})"}) {
    std::string out = "keep";
    EXPECT_THROW(append_bson_documents(out, std::string("{\"ok\":1}\n") + line), std::runtime_error) << line;
    EXPECT_EQ(out.substr(0, 4), "keep");
    EXPECT_EQ(out.substr(4), reference("{\"ok\":1}")) << "only the complete documents before the bad line stay";
  }
}

// Data lines encoded straight from op records equal the re-encoded NDJSON line, byte for byte.
TEST(BsonLines, DirectDataDocumentsMatchReencodedLines) {
  using namespace powersync::protocol;
  std::mt19937_64 rng(4242);
  const char* kinds[] = {"PUT", "REMOVE", "MOVE", "CLEAR"};
  for (int round = 0; round < 300; ++round) {
    std::vector<OpRecord> ops;
    for (int n = static_cast<int>(rng() % 6); n > 0; --n) {
      OpRecord op;
      op.op_id = static_cast<int64_t>(rng() >> (rng() % 63));
      op.op = kinds[rng() % 4];
      op.object_type = "t\"" + std::to_string(rng() % 10);
      op.object_id = "id\xc3\xa9" + std::to_string(rng() % 1000);
      op.subkey = "1/" + std::to_string(rng());
      if (op.op == "PUT") op.data = ordered{{"id", op.object_id}, {"v", random_value(rng, 2)}, {"s", "a\"\\\n"}}.dump();
      op.checksum = static_cast<uint32_t>(rng());
      ops.push_back(std::move(op));
    }
    size_t begin = ops.empty() ? 0 : rng() % ops.size();
    int64_t after = static_cast<int64_t>(rng() >> 2);
    std::string line;
    append_data_line(line, "1#b[\"x\"]", after, round % 2 == 0, ops, begin, ops.size(), true);
    std::string direct;
    append_data_document(direct, "1#b[\"x\"]", after, round % 2 == 0, ops, begin, ops.size());
    ASSERT_EQ(direct, reference(line)) << line;
  }
}
