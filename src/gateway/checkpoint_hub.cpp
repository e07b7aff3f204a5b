// Checkpoint fan-out. Notices are coalesced: while a checkpoint read is running, further notices
// only cause one more read afterwards. A slow poll covers notices lost during reconnects.
#include "powersync/gateway/checkpoint_hub.h"

#include <iostream>
#include <vector>

namespace powersync::gateway {

namespace {
const char* kCheckpointSql =
    "SELECT cp.op_id, cp.lsn::text,"
    " to_regprocedure('powersync.write_checkpoint_at(text,text,bigint)') IS NOT NULL"
    " FROM powersync.checkpoint() cp";
constexpr auto kPollInterval = std::chrono::seconds(5);
}  // namespace

CheckpointHub::CheckpointHub(asio::io_context& io, std::string conninfo, StorageFeatures& features)
    : io_(io), conninfo_(std::move(conninfo)), features_(features), poll_timer_(io) {}

void CheckpointHub::start() { connect(); }

void CheckpointHub::stop() {
  stopped_ = true;
  poll_timer_.cancel();
  if (conn_) conn_->close();
}

uint64_t CheckpointHub::subscribe(Listener listener) {
  uint64_t id = next_id_++;
  if (latest_) listener(*latest_);
  listeners_.emplace(id, std::move(listener));
  return id;
}

void CheckpointHub::unsubscribe(uint64_t id) { listeners_.erase(id); }

void CheckpointHub::connect() {
  if (stopped_) return;
  conn_ = std::make_shared<PgConnection>(io_, conninfo_);
  conn_->on_notify = [this](const std::string& channel, const std::string&) {
    if (channel == "powersync_checkpoint") refresh();
  };
  conn_->on_broken = [this](const std::string& error) {
    last_error_ = error;
    retry_later();
  };
  auto conn = conn_;
  conn_->connect([this, conn](bool ok, const std::string& error) {
    if (!ok) {
      last_error_ = error;
      std::cerr << "powersync-gateway: cannot connect for checkpoint notices: " << error;
      retry_later();
      return;
    }
    conn->query("LISTEN powersync_checkpoint", {}, [this](PgResult r) {
      if (!r.ok()) last_error_ = r.error();
      refresh();
      schedule_poll();
    });
  });
}

void CheckpointHub::retry_later() {
  if (stopped_) return;
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(1));
  timer->async_wait([this, timer](const boost::system::error_code&) { connect(); });
}

void CheckpointHub::schedule_poll() {
  poll_timer_.expires_after(kPollInterval);
  poll_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    refresh();
    schedule_poll();
  });
}

void CheckpointHub::refresh() {
  if (!conn_ || !conn_->is_open()) return;
  if (refreshing_) {
    refresh_again_ = true;
    return;
  }
  refreshing_ = true;
  conn_->query(kCheckpointSql, {}, [this](PgResult r) {
    refreshing_ = false;
    if (!r.ok() || r.rows() < 1) {
      last_error_ = r.ok() ? "powersync.checkpoint() returned no row" : r.error();
    } else {
      last_error_.clear();
      features_.write_checkpoint_at = r.value(0, 2)[0] == 't';
      protocol::Checkpoint cp{std::stoll(r.value(0, 0)), r.value(0, 1)};
      if (!latest_ || cp != *latest_) {
        latest_ = cp;
        // Listeners may unsubscribe while being called; iterate over a snapshot of the ids.
        std::vector<uint64_t> ids;
        ids.reserve(listeners_.size());
        for (const auto& [id, l] : listeners_) ids.push_back(id);
        for (uint64_t id : ids)
          if (auto it = listeners_.find(id); it != listeners_.end()) it->second(cp);
      }
    }
    if (refresh_again_) {
      refresh_again_ = false;
      refresh();
    }
  });
}

}  // namespace powersync::gateway
