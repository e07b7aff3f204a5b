// WalStream: the worker's replication connection to its own server (see message_source.h). It uses the
// server's walreceiver library (libpqwalreceiver), like the logical replication apply worker, so the
// extension does not link libpq. Framing (CopyBoth): 'w' XLogData (start, end, send time, payload),
// 'k' keepalive (end, send time, reply requested); we send 'r' status updates (write, flush, apply, time,
// reply requested).
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "replication/walreceiver.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "commands/dbcommands.h"
}

#include <algorithm>

#include "powersync/error.h"
#include "powersync/pg/boundary.h"
#include "powersync/pg/change_format.h"
#include "powersync/pg/message_source.h"

namespace powersync::pg {
namespace {

constexpr uint64_t kRoundMessages = 200000;  // a round ends at the next commit after that many messages
constexpr int64_t kRoundMicros = 500000;     // ... or after that long, so checkpoints keep coming
constexpr int64_t kLingerAfterMicros = 2000;   // rounds shorter than this never wait for more
constexpr int64_t kMaxLingerMicros = 10000;    // longest wait for the next transaction within a round
constexpr int64_t kLingerRoundMicros = 50000;  // no lingering once a round has been reading this long
constexpr int64_t kStatusMicros = 1000000;   // status update at least this often while waiting
constexpr int64_t kBusyStatusMicros = 10000000;  // ... and while applying (wal_sender_timeout is 60 s)

uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void put_u64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}

// A libpq keyword value in single quotes (backslash and quote escaped).
std::string quoted_value(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string sql_literal(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// The own server: first Unix socket directory, else 127.0.0.1; our port, database and user.
std::string own_conninfo() {
  std::string host;
  if (Unix_socket_directories) {
    std::string dirs = Unix_socket_directories;
    std::string first = dirs.substr(0, dirs.find(','));
    size_t b = first.find_first_not_of(" \t"), e = first.find_last_not_of(" \t");
    if (b != std::string::npos) host = first.substr(b, e - b + 1);
  }
  if (host.empty()) host = "127.0.0.1";
  // Catalog lookups: the caller is outside a transaction.
  std::string db, user;
  pg_call([&] {
    StartTransactionCommand();
    db = get_database_name(MyDatabaseId);
    user = GetUserNameFromId(GetUserId(), false);
    CommitTransactionCommand();
  });
  return "host=" + quoted_value(host) + " port=" + std::to_string(PostPortNumber) + " dbname=" + quoted_value(db) +
         " user=" + quoted_value(user) + " application_name=powersync_worker";
}

WalReceiverConn* open_connection(const std::string& conninfo, std::string& why) {
  pg_call([] { load_file("libpqwalreceiver", false); });
  char* err = nullptr;
  // The connection struct is palloc'd: it must outlive the transaction that may be open now.
  MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
  WalReceiverConn* conn = nullptr;
  try {
    conn = pg_call([&] { return walrcv_connect(conninfo.c_str(), true, "powersync_worker", &err); });
  } catch (...) {
    MemoryContextSwitchTo(old);
    throw;
  }
  MemoryContextSwitchTo(old);
  if (!conn) why = err ? err : "unknown error";
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  return conn;
}

}  // namespace

WalStream* WalStream::connect(std::string& why) {
  std::string conninfo = own_conninfo();
  WalReceiverConn* conn = open_connection(conninfo, why);
  if (!conn) return nullptr;
  WalStream* stream = new WalStream(conn);
  stream->conninfo_ = conninfo;
  return stream;
}

WalStream::~WalStream() {
  free_wait_set();
  if (!conn_) return;
  try {
    pg_call([&] { walrcv_disconnect(conn_); });
  } catch (...) {
  }
}

void WalStream::start(const std::string& slot, uint64_t from, const std::string& patterns, uint32_t origin) {
  if (streaming_ || !conn_) {  // the walsender holds the slot until it leaves streaming: new connection
    streaming_ = false;
    free_wait_set();  // its socket closes with the connection
    if (conn_) pg_call([&] { walrcv_disconnect(conn_); });
    conn_ = nullptr;
    std::string why;
    conn_ = open_connection(conninfo_, why);
    if (!conn_) throw Error(Error::Kind::Internal, "powersync: replication connection lost and not restored: " + why);
  }
  have_ = in_txn_ = false;
  lookahead_.clear();
  batch_.clear();
  batch_pos_ = 0;
  fd_ = -1;
  char pos[32];
  snprintf(pos, sizeof pos, "%X/%X", static_cast<uint32_t>(from >> 32), static_cast<uint32_t>(from));
  std::string cmd = "START_REPLICATION SLOT \"" + slot + "\" LOGICAL " + pos + " (\"tables\" " + sql_literal(patterns);
  if (origin != 0) cmd += ", \"origin\" '" + std::to_string(origin) + "'";
  cmd += ", \"batch\" '1'";  // several length-prefixed messages per CopyData (change_format.h)
  cmd += ")";
  // A walsender that served this slot a moment ago (our previous connection) may still hold it.
  std::string err;
  for (int attempt = 0; attempt < 100; ++attempt) {
    WalRcvExecResult* res = pg_call([&] { return walrcv_exec(conn_, cmd.c_str(), 0, nullptr); });
    bool ok = res->status == WALRCV_OK_COPY_BOTH;
    err = res->err ? res->err : "";
    pg_call([&] { walrcv_clear_result(res); });
    if (ok) {
      streaming_ = true;
      patterns_ = patterns;
      sender_pid_ = pg_call([&] { return walrcv_get_backend_pid(conn_); });
      received_ = std::max(received_, from);
      flushed_ = std::max(flushed_, from);
      last_status_ = GetCurrentTimestamp();
      return;
    }
    if (err.find("is active for PID") == std::string::npos) break;
    pg_call([] {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 50, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
    });
  }
  throw Error(Error::Kind::Internal, "powersync: START_REPLICATION on slot " + slot + " failed: " + err);
}

void WalStream::handle_keepalive(const char* buf, int len) {
  if (len < 18) return;
  uint64_t end = get_u64(buf + 1);
  received_ = std::max(received_, end);
  // Outside a transaction everything the sender decoded before `end` has reached us: a round that
  // commits what it read may record `end` (the WAL in between was nothing of ours to apply).
  if (!in_txn_ && !have_) idle_end_ = std::max(idle_end_, end);
  if (buf[17]) send_status(false);
}

// The next message of the last CopyData received (a batch of u32 length | message) into lookahead_.
bool WalStream::take_batched() {
  if (batch_pos_ + 4 > batch_.size()) return false;
  uint32_t len;
  memcpy(&len, batch_.data() + batch_pos_, 4);
  if (batch_pos_ + 4 + len > batch_.size()) {
    streaming_ = false;
    throw Error(Error::Kind::Internal, "powersync: truncated message in the replication stream");
  }
  lookahead_.assign(batch_.data() + batch_pos_ + 4, len);
  batch_pos_ += 4 + len;
  have_ = true;
  return true;
}

bool WalStream::poll() {
  if (!streaming_) return false;
  if (have_) return true;
  if (take_batched()) return true;
  for (;;) {
    char* buf = nullptr;
    pgsocket fd = PGINVALID_SOCKET;
    int len = pg_call([&] { return walrcv_receive(conn_, &buf, &fd); });
    if (len == 0) {
      if (fd != PGINVALID_SOCKET) fd_ = fd;
      return false;
    }
    if (len < 0) {
      streaming_ = false;
      throw Error(Error::Kind::Internal, "powersync: the server ended the replication stream");
    }
    if (buf[0] == 'w' && len >= 25) {
      received_ = std::max(received_, get_u64(buf + 9));
      batch_.assign(buf + 25, len - 25);
      batch_pos_ = 0;
      if (take_batched()) return true;
      continue;
    }
    if (buf[0] == 'k') handle_keepalive(buf, len);
  }
}

void WalStream::begin_round() {
  round_done_ = false;
  round_count_ = 0;
  round_started_ = GetCurrentTimestamp();
  round_lingered_ = 0;
}

// Time spent lingering does not count: otherwise one lingering round would make the next one linger.
void WalStream::end_round() { last_round_micros_ = GetCurrentTimestamp() - round_started_ - round_lingered_; }

bool WalStream::next(std::string& out) {
  if (round_done_) return false;
  if (!in_txn_) {
    int64_t elapsed = GetCurrentTimestamp() - round_started_;
    bool more = round_count_ < kRoundMessages && elapsed <= kRoundMicros && (poll() || linger(elapsed));
    if (!more) {
      round_done_ = true;
      return false;
    }
    if (!visible_to_round()) {
      // Committed after the round's snapshot was taken: wait until it is visible, then read on with
      // a new snapshot (our own writes so far stay visible; this is READ COMMITTED).
      await_visible();
      pg_call([] {
        PopActiveSnapshot();
        PushActiveSnapshot(GetTransactionSnapshot());
      });
    }
  } else {
    if ((round_count_ & 1023) == 0 && GetCurrentTimestamp() - last_status_ > kBusyStatusMicros) send_status(false);
    while (!poll()) wait(1000);
  }
  out.swap(lookahead_);
  lookahead_.clear();
  have_ = false;
  if (!out.empty() && out[0] == 'B') in_txn_ = true;
  else if (!out.empty() && out[0] == 'C') in_txn_ = false;
  ++count_;
  ++round_count_;
  return true;
}

// The transaction id of the waiting message if it is a 'B' (begin), else 0.
uint32_t WalStream::waiting_xid() const {
  if (!have_ || lookahead_.empty() || lookahead_[0] != 'B') return InvalidTransactionId;
  wire::Reader r(lookahead_);
  r.u8();
  r.u64();
  return r.u32();
}

// A round applies only transactions its snapshot sees: it reads catalogs and table rows (TOAST
// re-reads) as of the changes applied. A transaction that committed after the round began waits for
// the next round.
bool WalStream::visible_to_round() const {
  TransactionId xid = waiting_xid();
  if (xid == InvalidTransactionId || !ActiveSnapshotSet()) return true;
  return !pg_call([&] { return XidInMVCCSnapshot(xid, GetActiveSnapshot()); });
}

// Decoding sends a transaction once its commit record is flushed, a moment before the committing backend
// leaves the proc array; a walsender woken by that very flush hits the window easily. Called before the
// round's snapshot is taken, so that the snapshot sees the waiting transaction.
void WalStream::await_visible() {
  TransactionId xid = waiting_xid();
  if (xid == InvalidTransactionId) return;
  for (int i = 0; i < 100000 && pg_call([&] { return TransactionIdIsInProgress(xid); }); ++i) pg_usleep(100);
}

// Between transactions of a busy round, wait a little for the next one: every round pays for its
// checkpoint, bucket_state writes and one chunk row per bucket it touches, so back-to-back source
// transactions should share one. Busy = this round has been running for a while, or the previous round
// (read + apply + commit) took that long: a round reads its transactions before applying them, so its
// own elapsed time stays short for small transactions even when the worker is the bottleneck. A source of
// a few quick commits meets short rounds and ends each at once (latency stays sub-millisecond); lingering
// stops after kLingerRoundMicros of reading, so a busy source still gets a checkpoint that often.
bool WalStream::linger(int64_t elapsed) {
  int64_t busy = std::max(elapsed, last_round_micros_);
  if (round_count_ == 0 || busy < kLingerAfterMicros || elapsed >= kLingerRoundMicros) return false;
  int64_t start = GetCurrentTimestamp();
  int64_t until = start + std::min(busy, kMaxLingerMicros);
  bool more = false;
  for (;;) {
    int64_t left = until - GetCurrentTimestamp();
    if (left <= 0) break;
    wait(std::max<long>(1, static_cast<long>(left / 1000)));
    if ((more = poll())) break;
  }
  round_lingered_ += GetCurrentTimestamp() - start;
  return more;
}

void WalStream::confirm(uint64_t lsn) {
  if (lsn <= flushed_) return;
  flushed_ = lsn;
  send_status(false);
}

void WalStream::send_status(bool request_reply) {
  if (!streaming_) return;
  char msg[34];
  int64_t now = GetCurrentTimestamp();
  msg[0] = 'r';
  put_u64(msg + 1, std::max(received_, flushed_));
  put_u64(msg + 9, flushed_);
  put_u64(msg + 17, flushed_);
  put_u64(msg + 25, static_cast<uint64_t>(now));
  msg[33] = request_reply ? 1 : 0;
  pg_call([&] { walrcv_send(conn_, msg, sizeof msg); });
  last_status_ = now;
}

void WalStream::free_wait_set() {
  if (wait_set_) FreeWaitEventSet(wait_set_);
  wait_set_ = nullptr;
  wait_fd_ = -1;
}

void WalStream::wait(long ms) {
  bool socket = streaming_ && fd_ != PGINVALID_SOCKET;
  if (socket && (!wait_set_ || wait_fd_ != fd_)) {
    free_wait_set();
    wait_set_ = pg_call([&] {
      WaitEventSet* set = CreateWaitEventSet(TopMemoryContext, 3);
      AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
      AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
      AddWaitEventToSet(set, WL_SOCKET_READABLE, fd_, nullptr, nullptr);
      return set;
    });
    wait_fd_ = fd_;
  }
  pg_call([&] {
    if (socket) {
      WaitEvent event;
      (void)WaitEventSetWait(wait_set_, ms, &event, 1, PG_WAIT_EXTENSION);
    } else {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
    }
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  });
  // Idle: ask for a keepalive now and then, whose position lets the slot move past WAL we do not apply.
  if (streaming_ && GetCurrentTimestamp() - last_status_ > kStatusMicros) send_status(!in_txn_);
}

}  // namespace powersync::pg
