// One LISTEN connection per gateway: on each `powersync_checkpoint` notice it reads the current
// storage checkpoint once and hands it to every open stream.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "powersync/gateway/pg_async.h"
#include "powersync/gateway/sync_queries.h"
#include "powersync/protocol/sync_storage.h"

namespace powersync::gateway {

// What may have changed between two checkpoints: buckets with new ops, write-checkpoint keys whose
// visibility may differ, and whether any parameter-lookup rows were written (dynamic bucket sets
// may differ). Always a superset of the real change.
struct BucketTotals {
  uint32_t checksum = 0;
  int64_t count = 0;
};
struct CheckpointChanges {
  bool parameters_changed = false;
  std::unordered_set<std::string> buckets;
  // Checksum/count of the changed buckets at the new checkpoint, as bucket_checksums() reports them
  // (one-step changes only: merged multi-step changes carry none).
  std::unordered_map<std::string, BucketTotals> totals;
  std::unordered_set<std::string> write_checkpoint_keys;
};

class CheckpointHub {
 public:
  using Listener = std::function<void(const protocol::Checkpoint&)>;

  CheckpointHub(asio::io_context& io, std::string conninfo, StorageFeatures& features);
  void start();
  void stop();

  // Registers a listener; it is called at once if a checkpoint is known, then on every new one.
  uint64_t subscribe(Listener listener);
  void unsubscribe(uint64_t id);

  const std::optional<protocol::Checkpoint>& latest() const { return latest_; }
  bool connected() const { return conn_ && conn_->is_open(); }
  const std::string& last_error() const { return last_error_; }
  size_t subscribers() const { return listeners_.size(); }
  // The changes from `from` to `to` when every step in between is known (the last few
  // checkpoints), else null: the caller must resolve in full.
  std::shared_ptr<const CheckpointChanges> changes_between(const protocol::Checkpoint& from, const protocol::Checkpoint& to) const;

 private:
  void connect();
  void refresh();
  void schedule_poll();
  void retry_later();
  void read_changes(const protocol::Checkpoint& cp);
  void publish(const protocol::Checkpoint& cp);
  void finish_refresh();

  struct Transition {
    protocol::Checkpoint from, to;
    std::shared_ptr<const CheckpointChanges> changes;  // null: unknown (resolve in full)
  };

  asio::io_context& io_;
  std::string conninfo_;
  StorageFeatures& features_;
  std::shared_ptr<PgConnection> conn_;
  asio::steady_timer poll_timer_;
  std::optional<protocol::Checkpoint> latest_;
  std::string latest_version_;                 // active sync rules id at latest_ (change tracking)
  std::vector<Transition> transitions_;        // the newest few, oldest first
  std::map<uint64_t, Listener> listeners_;
  uint64_t next_id_ = 1;
  bool refreshing_ = false;
  bool refresh_again_ = false;
  bool stopped_ = false;
  std::string last_error_;
  bool changes_error_logged_ = false;
};

}  // namespace powersync::gateway
