// Writing powersync.bucket_chunks: groups ops (sorted by bucket, then op id) into chunks of one bucket
// (encoding: op_chunk.h) and appends them with the bulk heap/index writer (bulk_write.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "powersync/pg/op_chunk.h"

namespace powersync::pg::chunk {

// One row of powersync.bucket_chunks, in the making.
struct ChunkRow {
  std::string bucket;
  int64_t sync_rules_id = 0;
  int64_t first_op = 0, last_op = 0, first_count = 0, cum_count = 0;
  int32_t op_count = 0;
  uint32_t cum_checksum = 0;
  std::string bytes;
};

// Collects ops into chunk rows: a new chunk starts when the bucket, the version or the group changes
// (a group keeps rewritten chunks apart, see _write_ops), or when the chunk would outgrow kChunkBytes.
class Builder {
 public:
  void add(const std::string& bucket, int64_t sync_rules_id, const Op& op, int64_t group = 0);
  std::vector<ChunkRow>& finish();

 private:
  void close();
  std::vector<ChunkRow> rows_;
  Writer writer_;
  std::string bucket_;
  int64_t version_ = 0, group_ = 0;
};

// Appends the rows to powersync.bucket_chunks (table_multi_insert + index entries).
void insert_chunks(std::vector<ChunkRow>& rows);

}  // namespace powersync::pg::chunk
