// NDJSON encoding of the sync lines a server sends on /sync/stream (spec §1.4). Each function
// returns or appends one complete line including its trailing '\n'.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace powersync::protocol {

// A bucket as listed in a checkpoint: its checksum (wrapping u32 sum of its ops up to the
// checkpoint), op count and priority (0..3).
struct BucketState {
  std::string bucket;
  uint32_t checksum = 0;
  int64_t count = 0;
  int priority = 3;
};

// One stored bucket operation (spec §2.1). data is the row's JSON text (PUT only). target_op is
// the op that superseded a MOVE/CLEAR (0 when unknown or not applicable).
struct OpRecord {
  int64_t op_id = 0;
  std::string op;
  std::string object_type;
  std::string object_id;
  std::string subkey;
  std::optional<std::string> data;
  uint32_t checksum = 0;
  int64_t target_op = 0;
};

std::string checkpoint_line(int64_t last_op_id, std::optional<int64_t> write_checkpoint,
                            const std::vector<BucketState>& buckets);
std::string checkpoint_diff_line(int64_t last_op_id, std::optional<int64_t> write_checkpoint,
                                 const std::vector<BucketState>& updated, const std::vector<std::string>& removed);
// One `data` line for ops[begin, end) of one bucket. raw_data=false nests each row as a JSON
// object (legacy clients, spec §1.4.5) instead of a JSON string.
void append_data_line(std::string& out, std::string_view bucket, int64_t after, bool has_more,
                      const std::vector<OpRecord>& ops, size_t begin, size_t end, bool raw_data);
std::string checkpoint_complete_line(int64_t last_op_id);
std::string partial_checkpoint_complete_line(int64_t last_op_id, int priority);
std::string token_expires_in_line(int64_t seconds);

}  // namespace powersync::protocol
