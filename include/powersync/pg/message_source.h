// Where a replication round's decoded messages come from: the slot peeked inside the worker (PeekCursor)
// or a replication connection to the own server whose walsender decodes on another core (WalStream).
#pragma once

#include <cstdint>
#include <string>

struct WalReceiverConn;
struct WaitEventSet;

namespace powersync::pg {

class MessageSource {
 public:
  virtual ~MessageSource() = default;
  // The next message of the round into `out`; false at the round's end.
  virtual bool next(std::string& out) = 0;
  // Messages handed out so far.
  virtual uint64_t count() const = 0;
};

// START_REPLICATION ... LOGICAL over a walreceiver (libpqwalreceiver) connection to this server. Rounds
// end at a transaction boundary when the stream is momentarily idle or enough was read; the slot's
// flush position is reported only through confirm(), after the round's ops are committed.
class WalStream : public MessageSource {
 public:
  // Connects (no streaming yet). On failure returns nullptr and sets `why` to the server's reason.
  static WalStream* connect(std::string& why);
  ~WalStream() override;
  WalStream(const WalStream&) = delete;
  WalStream& operator=(const WalStream&) = delete;

  // (Re)starts streaming slot `slot` from `from` with the plugin's "tables" option (reconnects if the
  // stream ran before: a walsender serves one START_REPLICATION per slot acquisition).
  void start(const std::string& slot, uint64_t from, const std::string& patterns, uint32_t origin);
  bool streaming() const { return streaming_; }
  const std::string& patterns() const { return patterns_; }
  // Is a message waiting (reads what the socket has; answers keepalives)? Never blocks.
  bool poll();
  // Begins a round: next() hands out messages until a transaction boundary where the stream is idle
  // or the round is big or old enough.
  void begin_round();
  // The round is committed: its duration (read + apply + commit) tells the next one whether to linger.
  void end_round();
  // Waits until the transaction whose begin is waiting has left the proc array (call before the round's
  // snapshot is taken: the round stops at a transaction its snapshot does not see).
  void await_visible();
  bool next(std::string& out) override;
  uint64_t count() const override { return count_; }
  // Ops up to `lsn` are committed in our tables: report it as the flush position.
  void confirm(uint64_t lsn);
  // The sender's position from the last keepalive seen outside a transaction: everything it decoded
  // before that has been received, so once what was read is committed, the slot may move there.
  uint64_t idle_end() const { return idle_end_; }
  uint64_t flushed() const { return flushed_; }
  // Waits for data, the latch or `ms`; sends a status update when one is due.
  void wait(long ms);
  int sender_pid() const { return sender_pid_; }

 private:
  explicit WalStream(WalReceiverConn* conn) : conn_(conn) {}
  void send_status(bool request_reply);
  void handle_keepalive(const char* buf, int len);
  uint32_t waiting_xid() const;
  bool take_batched();
  bool visible_to_round() const;
  bool linger(int64_t elapsed);
  void free_wait_set();
  WalReceiverConn* conn_ = nullptr;
  int fd_ = -1;
  // Latch + postmaster death + the socket fd_ (wait_fd_ when built): kept for the connection's lifetime
  // instead of one epoll set created and closed per wait as WaitLatchOrSocket does.
  WaitEventSet* wait_set_ = nullptr;
  int wait_fd_ = -1;
  int sender_pid_ = 0;
  bool streaming_ = false;
  std::string conninfo_, patterns_, lookahead_;
  std::string batch_;       // the last CopyData: u32 length | message, ...; batch_pos_ = next one
  size_t batch_pos_ = 0;
  bool have_ = false;       // lookahead_ holds a message
  bool in_txn_ = false;     // between 'B' and 'C'
  bool round_done_ = false;
  uint64_t count_ = 0, round_count_ = 0;
  int64_t round_started_ = 0;
  int64_t round_lingered_ = 0;     // time this round spent in linger()
  int64_t last_round_micros_ = 0;  // busy time (without lingering) of the previous round with data
  uint64_t received_ = 0;   // highest position the sender reported
  uint64_t flushed_ = 0;    // confirmed by us
  uint64_t idle_end_ = 0;
  int64_t last_status_ = 0;
};

}  // namespace powersync::pg
