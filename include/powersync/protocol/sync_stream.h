// The per-connection sync state machine of spec §1.5, free of I/O: it says what it needs next
// (a checkpoint, a resolved checkpoint, a batch of ops), is fed the answers, and accumulates the
// NDJSON lines to send. The gateway drives it asynchronously, run_sync_pass() synchronously.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "powersync/protocol/sync_lines.h"
#include "powersync/protocol/sync_request.h"
#include "powersync/protocol/sync_storage.h"

namespace powersync::protocol {

struct SyncLimits {
  size_t max_buckets = 1000;          // per connection; beyond -> PSYNC_S2305
  int ops_fetch_limit = 1000;         // ops per storage query
  size_t max_ops_per_line = 1000;     // ops per data line
  size_t max_line_data_bytes = 1 << 20;  // a data line is cut once ~1 MiB of row data is in it
  int64_t supersede_after_ops = 1000;    // a newer checkpoint may interrupt a download after this many ops
};

// A protocol-level failure that ends the stream (code is a PSYNC_Sxxxx error code).
struct SyncFailure {
  std::string code;
  std::string message;
};

struct OpsQuery {
  std::string bucket;
  int64_t after = 0;
  int64_t at_checkpoint = 0;
  int max_ops = 0;
};

class SyncStream {
 public:
  enum class Need {
    WaitCheckpoint,  // nothing to do until on_checkpoint() reports a newer storage checkpoint
    Resolve,         // call on_resolved() for resolve_target()
    Ops,             // call on_ops() with the answer to ops_query()
    Finished,        // stream must end (see failure())
  };

  SyncStream(const SyncRequest& request, SyncLimits limits = {});

  Need need() const;
  // A storage checkpoint became known (at connect, and on every notification).
  void on_checkpoint(const Checkpoint& cp);
  const Checkpoint& resolve_target() const { return latest_; }
  void on_resolved(const ResolvedCheckpoint& resolved);
  const OpsQuery& ops_query() const { return ops_query_; }
  void on_ops(const std::vector<OpRecord>& ops);
  void fail(std::string code, std::string message);

  // BSON output (spec §1.3): every line as one BSON document instead of NDJSON. Set before use.
  void set_bson_output(bool bson) { bson_ = bson; }
  // Lines produced since the last call (concatenated NDJSON, or BSON documents), and how many
  // bytes are pending.
  std::string take_output();
  size_t pending_output() const { return out_.size(); }

  const std::optional<SyncFailure>& failure() const { return failure_; }
  // Number of checkpoint_complete lines sent so far (one complete protocol pass = 1).
  int completed_checkpoints() const { return completed_; }
  bool sent_first_checkpoint() const { return sent_first_; }
  // What the client was last told (valid once sent_first_checkpoint()): the checkpoint last
  // resolved, its bucket map and write checkpoint. A caller that knows nothing of the client's
  // buckets changed since may re-resolve from these without asking storage for everything.
  const Checkpoint& resolved_checkpoint() const { return resolved_; }
  const std::map<std::string, BucketState>& last_sent_buckets() const { return last_sent_; }
  const std::optional<int64_t>& last_write_checkpoint() const { return last_write_checkpoint_; }

 private:
  bool is_new(const Checkpoint& cp) const;
  bool wants_supersession() const;
  void start_download(std::vector<std::string> to_fetch);
  void prepare_ops_query();
  void finish_current_bucket();
  void emit_data(const std::vector<OpRecord>& ops, bool more);

  SyncLimits limits_;
  bool raw_data_ = true;
  std::map<std::string, int64_t> positions_;          // bucket -> op id the client has up to
  std::map<std::string, BucketState> last_sent_;      // the last sent checksum map
  std::optional<int64_t> last_write_checkpoint_;
  std::set<std::string> pending_;                     // buckets of an interrupted download
  bool sent_first_ = false;
  bool have_latest_ = false;
  Checkpoint latest_;    // newest storage checkpoint known
  Checkpoint resolved_;  // last checkpoint resolved (sent or found unchanged)
  Checkpoint current_;   // checkpoint whose data is being sent

  bool downloading_ = false;
  std::vector<std::pair<int, std::vector<std::string>>> groups_;  // priority -> buckets, ascending
  size_t group_ = 0;
  size_t bucket_ = 0;
  int64_t ops_sent_ = 0;
  bool invalidated_ = false;
  OpsQuery ops_query_;

  std::optional<SyncFailure> failure_;
  std::string out_;
  bool bson_ = false;
  void put_line(const std::string& ndjson);
  int completed_ = 0;
};

// One complete protocol pass (what powersync.sync_lines returns): the checkpoint line, data and
// the complete lines for the current storage checkpoint. Returns the NDJSON lines without their
// newlines. Throws powersync::Error on a protocol failure (e.g. too many buckets).
std::vector<std::string> run_sync_pass(SyncStorage& storage, const SyncIdentity& who, const SyncRequest& request,
                                       SyncLimits limits = {});

}  // namespace powersync::protocol
