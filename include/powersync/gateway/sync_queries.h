// The storage side of sync streams in the gateway: resolves checkpoints (bucket set, checksums,
// write checkpoint) and fetches ops through the powersync.* pull functions. Requests from many
// streams are batched into one statement, so a checkpoint that wakes 10,000 streams costs a
// handful of round trips, not tens of thousands.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "powersync/gateway/pg_async.h"
#include "powersync/protocol/sync_storage.h"
#include "powersync/protocol/sync_stream.h"

namespace powersync::gateway {

struct StorageFeatures {
  bool write_checkpoint_at = false;  // powersync.write_checkpoint_at(text, text, bigint) exists
};

struct ResolveOutcome {
  bool ok = false;
  std::string code;  // PSYNC_Sxxxx when !ok
  std::string message;
  protocol::ResolvedCheckpoint resolved;
};

struct OpsOutcome {
  bool ok = false;
  std::string code;
  std::string message;
  std::vector<protocol::OpRecord> ops;
};

// Checksum and count of some buckets at a checkpoint, in the order asked for.
struct ChecksumsOutcome {
  bool ok = false;
  std::string code;
  std::string message;
  std::vector<protocol::BucketState> buckets;  // bucket, checksum, count (priority untouched)
};

class SyncQueries {
 public:
  SyncQueries(PgPool& pool, const StorageFeatures& features, size_t max_batch = 500)
      : pool_(pool), features_(features), max_batch_(max_batch) {}

  void resolve(const protocol::SyncIdentity& who, const protocol::Checkpoint& at, std::function<void(ResolveOutcome)> done);
  void ops(const protocol::OpsQuery& query, std::function<void(OpsOutcome)> done);
  // Checksums of known buckets only (a stream whose bucket set cannot have changed); requests of
  // many streams for the same checkpoint share one bucket_checksums call.
  void checksums(std::vector<std::string> buckets, const protocol::Checkpoint& at,
                 std::function<void(ChecksumsOutcome)> done);

  // Parses bucket_ops rows (any column order; target_op optional) into op records.
  static bool parse_ops(const PgResult& r, int first_row, int end_row, std::vector<protocol::OpRecord>& out,
                        std::string& error);

 private:
  struct ResolveItem {
    protocol::SyncIdentity who;
    protocol::Checkpoint at;
    std::function<void(ResolveOutcome)> done;
  };
  struct OpsItem {
    protocol::OpsQuery query;
    std::vector<std::function<void(OpsOutcome)>> waiters;  // identical queries share one fetch
  };
  void schedule_resolve();
  void run_resolve_batch(std::shared_ptr<PgConnection> conn, std::vector<ResolveItem> batch);
  struct ChecksumsItem {
    std::vector<std::string> buckets;
    protocol::Checkpoint at;
    std::function<void(ChecksumsOutcome)> done;
  };
  void schedule_checksums();
  void run_checksums_batch(std::shared_ptr<PgConnection> conn, std::vector<ChecksumsItem> batch);
  void schedule_ops();
  void run_ops_batch(std::shared_ptr<PgConnection> conn, std::vector<OpsItem> batch);

  PgPool& pool_;
  const StorageFeatures& features_;
  size_t max_batch_;
  std::vector<ResolveItem> resolve_pending_;
  bool resolve_acquiring_ = false;
  std::map<std::string, OpsItem> ops_pending_;  // key: bucket/after/checkpoint/limit
  bool ops_acquiring_ = false;
  std::vector<ChecksumsItem> checksums_pending_;
  bool checksums_acquiring_ = false;
};

// Maps a Postgres error from the pull functions to a protocol error code (PSYNC_S2305 for the
// bucket / parameter limits, PSYNC_S2001 otherwise).
std::string sync_error_code(const std::string& message);

}  // namespace powersync::gateway
