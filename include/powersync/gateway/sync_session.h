// One open POST /sync/stream: drives the protocol state machine with batched storage queries,
// writes each produced line as an HTTP chunk, and ends on token expiry, errors or shutdown.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <optional>

#include "powersync/gateway/gateway.h"
#include "powersync/protocol/sync_stream.h"

namespace powersync::gateway {

// True when an Accept header prefers the BSON stream over NDJSON (q-values; wildcards count for
// NDJSON only, so BSON is sent only to clients that name it).
bool prefers_bson(std::string_view accept);

class SyncSession : public std::enable_shared_from_this<SyncSession> {
 public:
  SyncSession(Gateway& gateway, beast::tcp_stream stream, unsigned http_version, VerifiedToken token,
              protocol::SyncRequest request, bool bson = false);
  ~SyncSession();
  void start();
  // Ends the stream cleanly (pending lines, then the terminating chunk).
  void end();

 private:
  void on_checkpoint(const protocol::Checkpoint& cp);
  void request_ops();
  bool resolve_from_changes();
  void apply_resolved(const protocol::Checkpoint& target, const std::vector<protocol::BucketState>& updated);
  void deliver_ops(OpsOutcome out);
  void prefetch_after(const protocol::OpsQuery& q, const OpsOutcome& out);
  void pump();
  // NDJSON lines (re-encoded for BSON streams), or `encoded` output of the machine, which is in
  // the stream's format already.
  void emit(std::string lines, bool encoded = false);
  void kick_writes();
  void finish_with_error();
  void close();
  void schedule_token_line();
  void watch_disconnect();

  Gateway& gw_;
  bool bson_;  // application/vnd.powersync.bson-stream instead of NDJSON
  beast::tcp_stream stream_;
  unsigned http_version_;
  VerifiedToken token_;
  protocol::SyncIdentity who_;
  std::string write_checkpoint_key_;  // user_id[/client_id], as in powersync.write_checkpoints
  protocol::SyncStream machine_;
  asio::steady_timer token_timer_;
  uint64_t stream_id_ = 0;
  uint64_t subscription_ = 0;

  bool query_in_flight_ = false;
  bool headers_started_ = false;
  bool write_in_flight_ = false;
  bool ending_ = false;   // no more lines; terminate after the pending ones
  bool closed_ = false;
  std::string pending_;   // lines not yet handed to the socket
  std::string writing_;   // the chunk being written
  std::optional<http::response<http::empty_body>> header_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;
  std::optional<StringResponse> error_;

  // While one page of a large bucket is being encoded and sent, the next page is already being
  // read: downloads overlap database time with network time.
  struct Prefetch {
    protocol::OpsQuery query;
    bool ready = false;
    bool wanted = false;  // the state machine already asked for it
    OpsOutcome result;
  };
  std::shared_ptr<Prefetch> prefetch_;
};

}  // namespace powersync::gateway
