// Checkpoint fan-out. Notices are coalesced: while a checkpoint read is running, further notices
// only cause one more read afterwards. A slow poll covers notices lost during reconnects. Before a
// new checkpoint is handed out, the hub reads what changed since the previous one
// (powersync.checkpoint_changes()), so streams whose buckets did not change need no query at all;
// when that read fails every stream resolves in full.
#include "powersync/gateway/checkpoint_hub.h"

#include <iostream>
#include <vector>

namespace powersync::gateway {

namespace {
const char* kCheckpointSql =
    "SELECT cp.op_id, cp.lsn::text,"
    " to_regprocedure('powersync.write_checkpoint_at(text,text,bigint)') IS NOT NULL"
    " FROM powersync.checkpoint() cp";
// What changed since the previous checkpoint ($1/$2: its op id/LSN) up to the new one ($3), through
// the pull API: the active version, whether parameter rows were written, buckets with new ops (with
// checksum and count at $3 as bucket_checksums() reports them) and write-checkpoint keys that became
// visible. Called in FROM so that Postgres inlines it and plans with the actual values.
const char* kChangesSql =
    "SELECT c.kind, c.name, c.checksum, c.count"
    " FROM powersync.checkpoint_changes($1::bigint, $2::pg_lsn, $3::bigint) c";
constexpr auto kPollInterval = std::chrono::seconds(5);
constexpr size_t kTransitionsKept = 16;
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
    if (!r.ok() || r.rows() < 1) {
      last_error_ = r.ok() ? "powersync.checkpoint() returned no row" : r.error();
      return finish_refresh();
    }
    last_error_.clear();
    features_.write_checkpoint_at = r.value(0, 2)[0] == 't';
    protocol::Checkpoint cp{std::stoll(r.value(0, 0)), r.value(0, 1)};
    if (latest_ && cp == *latest_) return finish_refresh();
    read_changes(cp);
  });
}

void CheckpointHub::read_changes(const protocol::Checkpoint& cp) {
  const protocol::Checkpoint& prev = latest_ ? *latest_ : cp;
  conn_->query(kChangesSql, {std::to_string(prev.op_id), prev.lsn, std::to_string(cp.op_id)}, [this, cp](PgResult r) {
    std::shared_ptr<CheckpointChanges> changes;
    std::string version;
    if (r.ok()) {
      changes = std::make_shared<CheckpointChanges>();
      for (int row = 0; row < r.rows(); ++row) {
        const std::string kind = r.value(row, 0);
        std::string value(r.value(row, 1), static_cast<size_t>(r.length(row, 1)));
        if (kind == "version") version = std::move(value);
        else if (kind == "parameters") changes->parameters_changed = true;
        else if (kind == "bucket") {
          changes->totals.emplace(value, BucketTotals{static_cast<uint32_t>(std::stoll(r.value(row, 2))),
                                                      std::stoll(r.value(row, 3))});
          changes->buckets.insert(std::move(value));
        } else if (kind == "write_checkpoint") changes->write_checkpoint_keys.insert(std::move(value));
      }
    } else if (!changes_error_logged_) {
      changes_error_logged_ = true;  // once: it fails on every checkpoint until the extension is updated
      std::cerr << "powersync-gateway: powersync.checkpoint_changes() failed, every stream resolves in full on "
                   "each checkpoint: " << r.error() << "\n";
    }
    // A new rules version (or no change tracking) makes every stream resolve in full.
    if (version.empty() || version != latest_version_) changes.reset();
    if (latest_) {
      transitions_.push_back(Transition{*latest_, cp, std::move(changes)});
      if (transitions_.size() > kTransitionsKept) transitions_.erase(transitions_.begin());
    }
    latest_version_ = version;
    publish(cp);
    finish_refresh();
  });
}

void CheckpointHub::publish(const protocol::Checkpoint& cp) {
  latest_ = cp;
  // Listeners may unsubscribe while being called; iterate over a snapshot of the ids.
  std::vector<uint64_t> ids;
  ids.reserve(listeners_.size());
  for (const auto& [id, l] : listeners_) ids.push_back(id);
  for (uint64_t id : ids)
    if (auto it = listeners_.find(id); it != listeners_.end()) it->second(cp);
}

void CheckpointHub::finish_refresh() {
  refreshing_ = false;
  if (refresh_again_) {
    refresh_again_ = false;
    refresh();
  }
}

std::shared_ptr<const CheckpointChanges> CheckpointHub::changes_between(const protocol::Checkpoint& from,
                                                                       const protocol::Checkpoint& to) const {
  size_t first = 0;
  while (first < transitions_.size() && transitions_[first].from != from) ++first;
  if (first == transitions_.size()) return nullptr;
  if (transitions_[first].to == to) return transitions_[first].changes;  // the common case: one step
  auto all = std::make_shared<CheckpointChanges>();
  for (size_t i = first; i < transitions_.size(); ++i) {
    const Transition& t = transitions_[i];
    if (!t.changes || (i > first && t.from != transitions_[i - 1].to)) return nullptr;
    all->parameters_changed |= t.changes->parameters_changed;
    all->buckets.insert(t.changes->buckets.begin(), t.changes->buckets.end());
    all->write_checkpoint_keys.insert(t.changes->write_checkpoint_keys.begin(), t.changes->write_checkpoint_keys.end());
    if (t.to == to) return all;
  }
  return nullptr;
}

}  // namespace powersync::gateway
