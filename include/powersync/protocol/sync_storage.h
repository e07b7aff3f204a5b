// What the sync state machine needs from bucket storage (spec §1.5, §2.4, §3), as an abstract
// interface. The Postgres implementations call the powersync.* pull functions; tests use an
// in-memory storage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "powersync/protocol/sync_lines.h"

namespace powersync::protocol {

// A storage checkpoint: the highest op id persisted and the source LSN it corresponds to. A new
// checkpoint may keep the op id and only advance the LSN (makes write checkpoints visible).
struct Checkpoint {
  int64_t op_id = 0;
  std::string lsn;
  bool operator==(const Checkpoint& o) const { return op_id == o.op_id && lsn == o.lsn; }
  bool operator!=(const Checkpoint& o) const { return !(*this == o); }
};

// Who is syncing: the verified token claims and client parameters (JSON texts), the user id
// (`sub` as a string) and the client id, used for write checkpoints.
struct SyncIdentity {
  std::string token_claims_json = "{}";
  std::string parameters_json = "{}";
  std::string user_id;
  std::string client_id;
};

struct BucketRequest {
  std::string bucket;
  int priority = 3;
};

struct BucketChecksum {
  std::string bucket;
  uint32_t checksum = 0;
  int64_t count = 0;
};

// Everything the state machine needs to describe one checkpoint to one client.
struct ResolvedCheckpoint {
  Checkpoint checkpoint;
  std::vector<BucketState> buckets;
  std::optional<int64_t> write_checkpoint;
};

class SyncStorage {
 public:
  virtual ~SyncStorage() = default;
  virtual Checkpoint checkpoint() = 0;
  virtual std::vector<BucketRequest> request_buckets(const SyncIdentity& who, int64_t at_checkpoint) = 0;
  virtual std::vector<BucketChecksum> bucket_checksums(const std::vector<std::string>& buckets,
                                                       int64_t at_checkpoint) = 0;
  // Ops with after < op_id <= at_checkpoint in ascending order, at most max_ops.
  virtual std::vector<OpRecord> bucket_ops(const std::string& bucket, int64_t after, int64_t at_checkpoint,
                                           int max_ops) = 0;
  // The write checkpoint of user/client visible at this checkpoint, if any.
  virtual std::optional<int64_t> write_checkpoint(const std::string& user_id, const std::string& client_id,
                                                  const Checkpoint& at) = 0;
};

// The superseding op id a MOVE/CLEAR op carries in its data as {"target":"N"} (the storage's way
// of exposing target_op, spec §2.5); 0 when absent or unparsable.
int64_t compaction_target(const std::string& data);

// Resolves the bucket set, checksums and write checkpoint of `who` at `at` with three storage calls.
ResolvedCheckpoint resolve_checkpoint(SyncStorage& storage, const SyncIdentity& who, const Checkpoint& at);

}  // namespace powersync::protocol
