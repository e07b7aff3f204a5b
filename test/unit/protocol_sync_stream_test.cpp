// The sync state machine (spec §1.5) against an in-memory storage: checkpoint/diff semantics,
// chunking, priorities, supersession, compaction invalidation, limits, and a randomized check
// that a client summing what it receives always validates every completed checkpoint.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "memory_sync_storage.h"
#include "powersync/error.h"
#include "powersync/protocol/sync_stream.h"

using namespace powersync::protocol;
using powersync::protocol::testing::MemorySyncStorage;
using json = nlohmann::json;

namespace {

std::string key(const json& line) { return line.begin().key(); }

// Drives a stream until it waits for a newer checkpoint (or ends); returns the lines produced.
std::vector<json> pump(SyncStream& s, MemorySyncStorage& st, const SyncIdentity& who = {}, int max_steps = 100000) {
  std::vector<json> lines;
  for (int i = 0; i < max_steps; ++i) {
    auto need = s.need();
    if (need == SyncStream::Need::Resolve) s.on_resolved(resolve_checkpoint(st, who, s.resolve_target()));
    else if (need == SyncStream::Need::Ops) {
      auto q = s.ops_query();
      s.on_ops(st.bucket_ops(q.bucket, q.after, q.at_checkpoint, q.max_ops));
    } else break;
    std::string out = s.take_output();
    for (size_t p = 0, nl; (nl = out.find('\n', p)) != std::string::npos; p = nl + 1)
      lines.push_back(json::parse(out.substr(p, nl - p)));
  }
  return lines;
}

// One step (one storage answer) at a time, for interleaving new checkpoints.
std::vector<json> step(SyncStream& s, MemorySyncStorage& st) { return pump(s, st, {}, 1); }

std::vector<std::string> kinds(const std::vector<json>& lines) {
  std::vector<std::string> k;
  for (const auto& l : lines) k.push_back(key(l));
  return k;
}

SyncRequest raw_request() {
  SyncRequest r;
  r.raw_data = true;
  return r;
}

SyncStream connect(MemorySyncStorage& st, SyncRequest req = raw_request(), SyncLimits limits = {}) {
  SyncStream s(req, limits);
  s.on_checkpoint(st.checkpoint());
  return s;
}

}  // namespace

TEST(SyncStream, FirstCheckpointIsFullThenDataThenComplete) {
  MemorySyncStorage st;
  st.bucket_set = {{"b", 3}, {"a", 3}};
  st.put("a", "1");
  st.put("b", "2");
  st.put("a", "3");
  st.commit();
  auto s = connect(st);
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint", "data", "data", "checkpoint_complete"}));
  EXPECT_EQ(lines[0]["checkpoint"]["last_op_id"], "3");
  EXPECT_EQ(lines[0]["checkpoint"]["buckets"].size(), 2u);
  EXPECT_EQ(lines[0]["checkpoint"]["buckets"][0]["bucket"], "a");  // stable name order
  EXPECT_EQ(lines[0]["checkpoint"]["buckets"][0]["count"], 2);
  EXPECT_FALSE(lines[0]["checkpoint"].contains("write_checkpoint"));
  EXPECT_EQ(lines[1]["data"]["bucket"], "a");
  EXPECT_EQ(lines[1]["data"]["data"].size(), 2u);
  EXPECT_EQ(lines[1]["data"]["data"][1]["op_id"], "3");
  EXPECT_EQ(lines[2]["data"]["bucket"], "b");
  EXPECT_EQ(lines[3]["checkpoint_complete"]["last_op_id"], "3");
  EXPECT_EQ(s.need(), SyncStream::Need::WaitCheckpoint);
  EXPECT_EQ(s.completed_checkpoints(), 1);
}

TEST(SyncStream, EmptyBucketSetStillCompletes) {
  MemorySyncStorage st;
  st.commit();
  auto s = connect(st);
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint", "checkpoint_complete"}));
  EXPECT_EQ(lines[0]["checkpoint"]["last_op_id"], "0");
  EXPECT_TRUE(lines[0]["checkpoint"]["buckets"].empty());
}

TEST(SyncStream, EmptyBucketsAreListedWithZeroChecksum) {
  MemorySyncStorage st;
  st.bucket_set = {{"global[]", 3}};
  st.commit();
  auto s = connect(st);
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint", "checkpoint_complete"}));
  EXPECT_EQ(lines[0]["checkpoint"]["buckets"][0]["checksum"], 0);
  EXPECT_EQ(lines[0]["checkpoint"]["buckets"][0]["count"], 0);
}

TEST(SyncStream, ClientPositionsSkipOpsItAlreadyHas) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}};
  for (int i = 0; i < 5; ++i) st.put("a", std::to_string(i));
  st.commit();
  SyncRequest req = raw_request();
  req.buckets = {{"a", 3}, {"gone", 2}};
  auto s = connect(st, req);
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint", "data", "checkpoint_complete"}));
  EXPECT_EQ(lines[1]["data"]["after"], "3");
  EXPECT_EQ(lines[1]["data"]["data"].size(), 2u);
  EXPECT_EQ(lines[1]["data"]["data"][0]["op_id"], "4");
}

TEST(SyncStream, UpToDateClientGetsNoData) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}};
  st.put("a", "1");
  st.commit();
  SyncRequest req = raw_request();
  req.buckets = {{"a", 1}};
  auto s = connect(st, req);
  EXPECT_EQ(kinds(pump(s, st)), (std::vector<std::string>{"checkpoint", "checkpoint_complete"}));
}

TEST(SyncStream, ChunksAtThousandOpsWithAfterChain) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}};
  for (int i = 0; i < 2500; ++i) st.put("a", std::to_string(i));
  st.commit();
  auto s = connect(st);
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint", "data", "data", "data", "checkpoint_complete"}));
  EXPECT_EQ(lines[1]["data"]["data"].size(), 1000u);
  EXPECT_EQ(lines[1]["data"]["after"], "0");
  EXPECT_EQ(lines[1]["data"]["next_after"], "1000");
  EXPECT_EQ(lines[1]["data"]["has_more"], true);
  EXPECT_EQ(lines[2]["data"]["after"], "1000");
  EXPECT_EQ(lines[3]["data"]["after"], "2000");
  EXPECT_EQ(lines[3]["data"]["next_after"], "2500");
  EXPECT_EQ(lines[3]["data"]["has_more"], false);
}

TEST(SyncStream, LargeFetchesAreSplitIntoLinesOfAtMostThousandOps) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}};
  for (int i = 0; i < 2500; ++i) st.put("a", std::to_string(i));
  st.commit();
  SyncLimits limits;
  limits.ops_fetch_limit = 5000;
  auto s = connect(st, raw_request(), limits);
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint", "data", "data", "data", "checkpoint_complete"}));
  EXPECT_EQ(st.ops_queries, 1);
  EXPECT_EQ(lines[2]["data"]["has_more"], true);
  EXPECT_EQ(lines[3]["data"]["has_more"], false);
}

TEST(SyncStream, LinesAreCutAtAboutOneMebibyteOfRowData) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}};
  std::string big = "{\"x\":\"" + std::string(300 * 1024, 'y') + "\"}";
  for (int i = 0; i < 8; ++i) st.put("a", std::to_string(i), big);
  st.commit();
  auto s = connect(st);
  auto lines = pump(s, st);
  size_t ops = 0, data_lines = 0;
  for (const auto& l : lines)
    if (key(l) == "data") {
      ++data_lines;
      ops += l["data"]["data"].size();
      EXPECT_LE(l["data"]["data"].size(), 4u);
    }
  EXPECT_EQ(ops, 8u);
  EXPECT_GE(data_lines, 2u);
}

TEST(SyncStream, PriorityGroupsInOrderWithPartialCompletes) {
  MemorySyncStorage st;
  st.bucket_set = {{"low", 3}, {"high", 0}, {"mid", 1}, {"mid2", 1}};
  st.put("low", "1");
  st.put("mid2", "2");
  st.put("high", "3");
  st.put("mid", "4");
  st.commit();
  auto s = connect(st);
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint", "data", "partial_checkpoint_complete", "data", "data",
                                                    "partial_checkpoint_complete", "data", "checkpoint_complete"}));
  EXPECT_EQ(lines[1]["data"]["bucket"], "high");
  EXPECT_EQ(lines[2]["partial_checkpoint_complete"]["priority"], 0);
  EXPECT_EQ(lines[2]["partial_checkpoint_complete"]["last_op_id"], "4");
  EXPECT_EQ(lines[3]["data"]["bucket"], "mid");
  EXPECT_EQ(lines[4]["data"]["bucket"], "mid2");
  EXPECT_EQ(lines[5]["partial_checkpoint_complete"]["priority"], 1);
  EXPECT_EQ(lines[6]["data"]["bucket"], "low");
  EXPECT_EQ(lines[0]["checkpoint"]["buckets"][0]["priority"], 0);
}

TEST(SyncStream, DuplicateBucketKeepsHighestPriority) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}, {"a", 1}};
  st.commit();
  auto s = connect(st);
  auto lines = pump(s, st);
  ASSERT_EQ(lines[0]["checkpoint"]["buckets"].size(), 1u);
  EXPECT_EQ(lines[0]["checkpoint"]["buckets"][0]["priority"], 1);
}

TEST(SyncStream, UnchangedNewCheckpointSendsNothing) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}};
  st.put("a", "1");
  st.commit();
  auto s = connect(st);
  pump(s, st);
  st.put("other", "x");  // op outside this client's buckets
  st.commit();
  s.on_checkpoint(st.checkpoint());
  EXPECT_EQ(s.need(), SyncStream::Need::Resolve);
  EXPECT_TRUE(pump(s, st).empty());
  EXPECT_EQ(s.need(), SyncStream::Need::WaitCheckpoint);
}

TEST(SyncStream, DiffListsOnlyChangedBucketsAndSendsTheirNewOps) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}, {"b", 3}};
  st.put("a", "1");
  st.put("b", "2");
  st.commit();
  auto s = connect(st);
  pump(s, st);
  st.put("b", "3");
  st.commit();
  s.on_checkpoint(st.checkpoint());
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint_diff", "data", "checkpoint_complete"}));
  const auto& diff = lines[0]["checkpoint_diff"];
  EXPECT_EQ(diff["last_op_id"], "3");
  ASSERT_EQ(diff["updated_buckets"].size(), 1u);
  EXPECT_EQ(diff["updated_buckets"][0]["bucket"], "b");
  EXPECT_EQ(diff["updated_buckets"][0]["count"], 2);
  EXPECT_TRUE(diff["removed_buckets"].empty());
  EXPECT_EQ(lines[1]["data"]["after"], "2");
  EXPECT_EQ(lines[1]["data"]["data"].size(), 1u);
  EXPECT_EQ(lines[2]["checkpoint_complete"]["last_op_id"], "3");
}

TEST(SyncStream, RemovedBucketIsReportedAndReaddedBucketStartsOver) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}, {"b", 3}};
  st.put("a", "1");
  st.put("b", "2");
  st.commit();
  auto s = connect(st);
  pump(s, st);
  st.bucket_set = {{"a", 3}};
  st.commit();
  st.current.lsn = "later";
  s.on_checkpoint(st.checkpoint());
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint_diff", "checkpoint_complete"}));
  EXPECT_EQ(lines[0]["checkpoint_diff"]["removed_buckets"], json::array({"b"}));
  EXPECT_TRUE(lines[0]["checkpoint_diff"]["updated_buckets"].empty());

  st.bucket_set = {{"a", 3}, {"b", 3}};
  st.current.lsn = "later still";
  s.on_checkpoint(st.checkpoint());
  lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint_diff", "data", "checkpoint_complete"}));
  EXPECT_EQ(lines[1]["data"]["after"], "0");
}

TEST(SyncStream, WriteCheckpointOnlyChangeSendsEmptyDiffAndComplete) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}};
  st.put("a", "1");
  st.commit();
  SyncIdentity who;
  who.user_id = "u";
  who.client_id = "c";
  auto s = connect(st);
  pump(s, st, who);
  st.write_checkpoints["u/c"].push_back({1, 5});
  st.current.lsn = "0/99";  // empty checkpoint: same op id, newer LSN
  s.on_checkpoint(st.checkpoint());
  auto lines = pump(s, st, who);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint_diff", "checkpoint_complete"}));
  EXPECT_EQ(lines[0]["checkpoint_diff"]["write_checkpoint"], "5");
  EXPECT_TRUE(lines[0]["checkpoint_diff"]["updated_buckets"].empty());
  EXPECT_TRUE(lines[0]["checkpoint_diff"]["removed_buckets"].empty());
  // Same write checkpoint again: nothing.
  st.current.lsn = "0/100";
  s.on_checkpoint(st.checkpoint());
  EXPECT_TRUE(pump(s, st, who).empty());
}

TEST(SyncStream, FirstCheckpointCarriesVisibleWriteCheckpoint) {
  MemorySyncStorage st;
  st.commit();
  st.write_checkpoints["u/c"].push_back({0, 3});
  SyncIdentity who;
  who.user_id = "u";
  who.client_id = "c";
  auto s = connect(st);
  auto lines = pump(s, st, who);
  EXPECT_EQ(lines[0]["checkpoint"]["write_checkpoint"], "3");
}

TEST(SyncStream, StaleCheckpointNotificationIsIgnored) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}};
  st.put("a", "1");
  st.put("a", "2");
  st.commit();
  auto s = connect(st);
  pump(s, st);
  s.on_checkpoint(Checkpoint{1, "old"});
  EXPECT_EQ(s.need(), SyncStream::Need::WaitCheckpoint);
}

TEST(SyncStream, NewerCheckpointSupersedesDownloadAfterThousandOps) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}, {"b", 3}};
  for (int i = 0; i < 1500; ++i) st.put("a", std::to_string(i));
  st.put("b", "b1");
  st.commit();  // checkpoint 1501
  auto s = connect(st);
  auto lines = step(s, st);  // checkpoint line
  lines = step(s, st);       // first 1000 ops of a
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"data"}));
  st.put("b", "b2");
  st.commit();  // checkpoint 1502
  s.on_checkpoint(st.checkpoint());
  EXPECT_EQ(s.need(), SyncStream::Need::Resolve);
  lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint_diff", "data", "data", "checkpoint_complete"}));
  EXPECT_EQ(lines[0]["checkpoint_diff"]["last_op_id"], "1502");
  EXPECT_EQ(lines[0]["checkpoint_diff"]["updated_buckets"][0]["bucket"], "b");
  EXPECT_EQ(lines[1]["data"]["bucket"], "a");  // the interrupted bucket continues where it stopped
  EXPECT_EQ(lines[1]["data"]["after"], "1000");
  EXPECT_EQ(lines[1]["data"]["data"].size(), 500u);
  EXPECT_EQ(lines[2]["data"]["bucket"], "b");
  EXPECT_EQ(lines[2]["data"]["data"].size(), 2u);
  EXPECT_EQ(lines[3]["checkpoint_complete"]["last_op_id"], "1502");
}

TEST(SyncStream, NoSupersessionBeforeThousandOps) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}, {"b", 3}};
  st.put("a", "1");
  st.put("b", "1");
  st.commit();
  auto s = connect(st);
  step(s, st);
  step(s, st);  // a's op
  st.put("b", "2");
  st.commit();
  s.on_checkpoint(st.checkpoint());
  EXPECT_EQ(s.need(), SyncStream::Need::Ops);
  auto lines = step(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"data", "checkpoint_complete"}));
  EXPECT_EQ(lines[1]["checkpoint_complete"]["last_op_id"], "2");
  EXPECT_EQ(lines[0]["data"]["data"].size(), 1u);  // only ops <= the checkpoint being completed
  lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint_diff", "data", "checkpoint_complete"}));
}

TEST(SyncStream, UnchangedNewerCheckpointDoesNotInterruptDownload) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}};
  for (int i = 0; i < 1500; ++i) st.put("a", std::to_string(i));
  st.commit();
  auto s = connect(st);
  step(s, st);
  step(s, st);
  st.put("elsewhere", "x");
  st.commit();
  s.on_checkpoint(st.checkpoint());
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"data", "checkpoint_complete"}));
  EXPECT_EQ(lines[1]["checkpoint_complete"]["last_op_id"], "1500");
}

TEST(SyncStream, CompactionTargetBeyondCheckpointOmitsComplete) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 0}, {"b", 3}};
  st.put("a", "1");
  st.special("b", "MOVE", 10);  // superseded by an op the checkpoint does not include yet
  st.commit();
  auto s = connect(st);
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint", "data", "partial_checkpoint_complete", "data"}));
  // The next checkpoint includes the target op: a diff, its data, and now the complete line.
  while (st.next_op <= 10) st.put("b", "x" + std::to_string(st.next_op));
  st.commit();
  s.on_checkpoint(st.checkpoint());
  lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint_diff", "data", "checkpoint_complete"}));
}

TEST(SyncStream, ClearWithinCheckpointStillCompletes) {
  MemorySyncStorage st;
  st.bucket_set = {{"b", 3}};
  st.special("b", "CLEAR", 0);
  st.put("b", "1");
  st.commit();
  auto s = connect(st);
  auto lines = pump(s, st);
  ASSERT_EQ(kinds(lines), (std::vector<std::string>{"checkpoint", "data", "checkpoint_complete"}));
  EXPECT_EQ(lines[1]["data"]["data"][0], json::parse(R"({"op_id":"1","op":"CLEAR","checksum":7})"));
}

TEST(SyncStream, TooManyBucketsFailsWithS2305) {
  MemorySyncStorage st;
  for (int i = 0; i < 11; ++i) st.bucket_set.push_back({"b" + std::to_string(i), 3});
  st.commit();
  SyncLimits limits;
  limits.max_buckets = 10;
  auto s = connect(st, raw_request(), limits);
  EXPECT_TRUE(pump(s, st).empty());
  EXPECT_EQ(s.need(), SyncStream::Need::Finished);
  EXPECT_EQ(s.failure()->code, "PSYNC_S2305");
  EXPECT_THROW(run_sync_pass(st, {}, raw_request(), limits), powersync::Error);
}

TEST(SyncStream, DefaultBucketLimitIsThousand) {
  MemorySyncStorage st;
  for (int i = 0; i < 1000; ++i) st.bucket_set.push_back({"b" + std::to_string(i), 3});
  st.commit();
  EXPECT_EQ(run_sync_pass(st, {}, raw_request()).size(), 2u);
  st.bucket_set.push_back({"one-too-many", 3});
  EXPECT_THROW(run_sync_pass(st, {}, raw_request()), powersync::Error);
}

TEST(SyncStream, StorageAnswerOutsideRangeEndsStream) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 3}};
  st.put("a", "1");
  st.commit();
  auto s = connect(st);
  step(s, st);
  OpRecord beyond;
  beyond.op_id = 99;
  beyond.op = "PUT";
  s.on_ops({beyond});
  EXPECT_EQ(s.need(), SyncStream::Need::Finished);
  EXPECT_TRUE(s.take_output().empty());
}

TEST(SyncStream, RunSyncPassReturnsOneCompletePass) {
  MemorySyncStorage st;
  st.bucket_set = {{"a", 1}, {"b", 3}};
  st.put("a", "1", "{\"id\":\"1\"}");
  st.put("b", "2");
  st.commit();
  auto lines = run_sync_pass(st, {}, raw_request());
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0].rfind("{\"checkpoint\":", 0), 0u);
  EXPECT_EQ(lines[2], "{\"partial_checkpoint_complete\":{\"last_op_id\":\"2\",\"priority\":1}}");
  EXPECT_EQ(lines[4], "{\"checkpoint_complete\":{\"last_op_id\":\"2\"}}");
}

// A client that sums op checksums per bucket (spec §2.3) must validate every completed
// checkpoint, whatever the interleaving of commits, bucket-set changes and downloads.
TEST(SyncStream, RandomizedClientAlwaysValidatesCompletedCheckpoints) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 40; ++round) {
    MemorySyncStorage st;
    std::vector<std::string> names{"a", "b", "c", "d"};
    auto reshuffle = [&] {
      st.bucket_set.clear();
      for (const auto& n : names)
        if (rng() % 3) st.bucket_set.push_back({n, static_cast<int>(rng() % 4)});
    };
    reshuffle();
    for (int i = 0; i < 300; ++i) st.put(names[rng() % 4], std::to_string(i));
    st.commit();
    SyncLimits limits;
    limits.ops_fetch_limit = 1 + rng() % 700;
    limits.supersede_after_ops = rng() % 400;
    auto s = connect(st, raw_request(), limits);
    std::map<std::string, uint32_t> local;                 // client-side sums
    std::map<std::string, std::pair<uint32_t, int>> target;  // bucket -> checksum, priority
    int64_t target_op = -1, completes = 0;
    auto apply = [&](const json& line) {
      std::string k = key(line);
      const auto& v = line[k];
      if (k == "checkpoint" || k == "checkpoint_diff") {
        if (k == "checkpoint") target.clear();
        for (const auto& b : v[k == "checkpoint" ? "buckets" : "updated_buckets"])
          target[b["bucket"]] = {static_cast<uint32_t>(b["checksum"].get<int64_t>()), b["priority"].get<int>()};
        if (k == "checkpoint_diff") {
          for (const auto& r : v["removed_buckets"]) {
            target.erase(r.get<std::string>());
            local.erase(r.get<std::string>());
          }
        }
        target_op = std::stoll(v["last_op_id"].get<std::string>());
      } else if (k == "data") {
        for (const auto& op : v["data"]) {
          EXPECT_LE(std::stoll(op["op_id"].get<std::string>()), target_op);
          local[v["bucket"]] += static_cast<uint32_t>(op["checksum"].get<int64_t>());
        }
      } else if (k == "checkpoint_complete" || k == "partial_checkpoint_complete") {
        int prio = k == "checkpoint_complete" ? 3 : v["priority"].get<int>();
        EXPECT_EQ(std::stoll(v["last_op_id"].get<std::string>()), target_op);
        for (const auto& [b, t] : target) {
          if (t.second <= prio) { EXPECT_EQ(local[b], t.first) << "bucket " << b << " round " << round; }
        }
        if (k == "checkpoint_complete") ++completes;
      }
    };
    for (int i = 0; i < 400 && s.need() != SyncStream::Need::Finished; ++i) {
      if (rng() % 5 == 0) {
        for (int k = rng() % 40; k > 0; --k) st.put(names[rng() % 4], "n" + std::to_string(k));
        if (rng() % 4 == 0) reshuffle();
        st.commit();
        st.current.lsn += "+";
        s.on_checkpoint(st.checkpoint());
      }
      for (const auto& line : step(s, st)) apply(line);
    }
    int64_t completes_before = completes;
    auto tail = pump(s, st);  // no more commits: the stream must settle on a complete checkpoint
    for (const auto& line : tail) apply(line);
    EXPECT_TRUE(completes > 0);
    if (!tail.empty()) {
      EXPECT_EQ(key(tail.back()), "checkpoint_complete");
      EXPECT_GT(completes, completes_before);
    }
    for (const auto& [b, t] : target) EXPECT_EQ(local[b], t.first) << "final, bucket " << b << " round " << round;
  }
}

TEST(CompactionTarget, ParsedFromMoveData) {
  EXPECT_EQ(compaction_target(R"({"target":"42"})"), 42);
  EXPECT_EQ(compaction_target(R"({"target":7})"), 7);
  EXPECT_EQ(compaction_target(R"({"other":1})"), 0);
  EXPECT_EQ(compaction_target("garbage"), 0);
  EXPECT_EQ(compaction_target(R"({"target":"x"})"), 0);
}
