// Rounds over the replication connection (DESIGN decision 1, streaming): the walsender decodes on
// another core while the worker applies; a round ends at a transaction boundary when the stream is
// idle (or big/old enough), commits ops + replicated LSN + checkpoint, then reports that LSN as the
// flush position. If no replication connection can be made, the worker peeks the slot instead.
#include "powersync/rules/sync_rules.h"  // first: Postgres headers redefine snprintf, which breaks nlohmann/json
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/timestamp.h"
}

#include <algorithm>

#include "powersync/pg/replication.h"
#include "powersync/pg/spi.h"
#include "powersync/pg/transaction.h"
#include "powersync/pg/worker.h"
#include "powersync/pg/worker_log.h"

namespace powersync::pg {
namespace {

// Connections made in this process whose START_REPLICATION did not succeed (refused, or the worker failed
// before); after a few in a row, the worker peeks until it restarts, so a stream that cannot start does
// not stop replication.
int stream_failures = 0;
constexpr int kMaxStreamFailures = 5;
std::string warned_reason;  // the fallback reason last logged (logged once per distinct reason)

void record_read_mode(const std::string& mode, const std::string& reason) {
  Transaction xact;
  static spi::Statement update("UPDATE powersync.replication_state SET read_mode = $1, read_mode_reason = $2",
                               {TEXTOID, TEXTOID});
  Datum args[2] = {spi::text_datum(mode), reason.empty() ? Datum(0) : spi::text_datum(reason)};
  const char nulls[2] = {' ', reason.empty() ? 'n' : ' '};
  update.run(args, nulls);
  xact.commit();
}

}  // namespace

void Replicator::choose_read_mode() {
  std::string why;
  if (stream_failures >= kMaxStreamFailures) {
    why = "streaming did not start after " + std::to_string(stream_failures) +
          " connections in a row (see the earlier errors in the server log)";
  } else {
    WalStream* s = WalStream::connect(why);
    if (s) {
      stream_.reset(s);
      ++stream_failures;  // cleared once START_REPLICATION succeeds
      record_read_mode("stream", "");
      return;
    }
  }
  std::string user;
  {
    Transaction xact;
    user = pg_call([] { return GetUserNameFromId(GetUserId(), false); });
    xact.commit();
  }
  std::string reason = "cannot open a replication connection to this server: " + why;
  if (why != warned_reason) {
    warned_reason = why;
    log_warning("powersync: " + reason +
                ". The worker reads changes by peeking the slot instead (decoding then runs inside the worker, "
                "serially with applying). To stream, let user \"" + user + "\" connect to this database over the "
                "local socket (pg_hba.conf: a line such as \"local all " + user + " peer\" or trust; a logical "
                "replication connection matches the database's lines, not \"replication\"; 127.0.0.1 if "
                "unix_socket_directories is empty), give it the REPLICATION attribute, and set max_wal_senders "
                "above 0, then restart the worker (or the server).");
  }
  record_read_mode("peek", reason);
}

bool Replicator::stream_round() {
  flush_pending_wal();  // the walsender sends only flushed WAL; pings are not flushed by themselves
  bool data = stream_->poll();
  int64_t now = GetCurrentTimestamp();
  if (!data && now - last_refresh_ < 1000000) {
    // Idle: every change sent before the sender's last keepalive is committed; let the slot move there.
    if (stream_->idle_end() > applied_lsn_) {
      applied_lsn_ = stream_->idle_end();
      stream_->confirm(applied_lsn_);
    }
    // A version that can become active now (copy done, stream past it) does not wait for the next refresh.
    if (!activation_due() || now - last_refresh_ < 10000) return false;
  }
  if (data) stream_->await_visible();
  Transaction xact;
  refresh_versions();
  last_refresh_ = now;
  std::string patterns = table_patterns();
  if (!stream_->streaming() || stream_->patterns() != patterns) {
    // The plugin's table filter is fixed per START_REPLICATION: restart from what is committed.
    stream_->start(slot_, applied_lsn_, patterns, worker_origin);
    stream_failures = 0;
    data = false;
  }
  if (!data) {
    bool worked = catalog_round(xact);
    if (!worked && GetCurrentTimestamp() - last_state_write_ > 10 * 1000000L) {
      Transaction beat;
      write_state(applied_lsn_);
      beat.commit();
    }
    return worked;
  }
  int64_t ops_before = batch_.ops_written();
  stream_->begin_round();
  uint64_t count_before = stream_->count();
  RoundRead read = apply_messages(*stream_);
  Lsn new_lsn = std::max({applied_lsn_, read.last_commit_end, read.message_lsn, stream_->idle_end()});
  bool worked = finish_round(xact, new_lsn, read.saw_ping, ops_before);
  // The slot may move only over what is durable in our tables (synchronous_commit may be off).
  if (XactLastCommitEnd > GetFlushRecPtr(nullptr)) pg_call([] { XLogFlush(XactLastCommitEnd); });
  stream_->confirm(new_lsn);
  stream_->end_round();
  return worked || stream_->count() != count_before;
}

void Replicator::wait(long ms) {
  if (stream_) {
    stream_->wait(ms);
    return;
  }
  pg_call([&] {
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  });
}

}  // namespace powersync::pg
