// An in-memory implementation of the protocol's SyncStorage interface for state machine tests:
// buckets are op lists, the bucket set is set directly, checkpoints advance explicitly.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "powersync/protocol/sync_storage.h"

namespace powersync::protocol::testing {

class MemorySyncStorage : public SyncStorage {
 public:
  int64_t next_op = 1;
  Checkpoint current;
  std::vector<BucketRequest> bucket_set;          // what request_buckets answers
  std::map<std::string, std::vector<OpRecord>> ops;
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> write_checkpoints;  // key -> (visible at, value)
  int ops_queries = 0;

  // Appends a PUT to a bucket with a fresh op id and a deterministic checksum.
  OpRecord& put(const std::string& bucket, const std::string& id, const std::string& data = "{}") {
    OpRecord op;
    op.op_id = next_op++;
    op.op = "PUT";
    op.object_type = "items";
    op.object_id = id;
    op.subkey = "s/" + id;
    op.data = data;
    op.checksum = static_cast<uint32_t>(op.op_id * 2654435761u);
    ops[bucket].push_back(op);
    return ops[bucket].back();
  }
  OpRecord& special(const std::string& bucket, const std::string& kind, int64_t target_op) {
    OpRecord op;
    op.op_id = next_op++;
    op.op = kind;
    op.checksum = 7;
    op.target_op = target_op;
    ops[bucket].push_back(op);
    return ops[bucket].back();
  }
  void commit() { current = Checkpoint{next_op - 1, "0/" + std::to_string(next_op)}; }

  Checkpoint checkpoint() override { return current; }
  std::vector<BucketRequest> request_buckets(const SyncIdentity&, int64_t) override { return bucket_set; }
  std::vector<BucketChecksum> bucket_checksums(const std::vector<std::string>& buckets, int64_t at) override {
    std::vector<BucketChecksum> out;
    for (const auto& b : buckets) {
      BucketChecksum c{b, 0, 0};
      for (const auto& op : ops[b])
        if (op.op_id <= at) {
          c.checksum += op.checksum;
          ++c.count;
        }
      out.push_back(c);
    }
    return out;
  }
  std::vector<OpRecord> bucket_ops(const std::string& bucket, int64_t after, int64_t at, int max_ops) override {
    ++ops_queries;
    std::vector<OpRecord> out;
    for (const auto& op : ops[bucket])
      if (op.op_id > after && op.op_id <= at && static_cast<int>(out.size()) < max_ops) out.push_back(op);
    return out;
  }
  std::optional<int64_t> write_checkpoint(const std::string& user, const std::string& client,
                                          const Checkpoint& at) override {
    std::optional<int64_t> v;
    for (auto [visible, value] : write_checkpoints[user + "/" + client])
      if (visible <= at.op_id) v = value;
    return v;
  }
};

}  // namespace powersync::protocol::testing
