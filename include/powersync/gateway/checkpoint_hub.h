// One LISTEN connection per gateway: on each `powersync_checkpoint` notice it reads the current
// storage checkpoint once and hands it to every open stream.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "powersync/gateway/pg_async.h"
#include "powersync/gateway/sync_queries.h"
#include "powersync/protocol/sync_storage.h"

namespace powersync::gateway {

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

 private:
  void connect();
  void refresh();
  void schedule_poll();
  void retry_later();

  asio::io_context& io_;
  std::string conninfo_;
  StorageFeatures& features_;
  std::shared_ptr<PgConnection> conn_;
  asio::steady_timer poll_timer_;
  std::optional<protocol::Checkpoint> latest_;
  std::map<uint64_t, Listener> listeners_;
  uint64_t next_id_ = 1;
  bool refreshing_ = false;
  bool refresh_again_ = false;
  bool stopped_ = false;
  std::string last_error_;
};

}  // namespace powersync::gateway
