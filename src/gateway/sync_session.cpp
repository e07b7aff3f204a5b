// A sync stream over HTTP/1.1 chunked encoding. Headers go out with the first line, so failures
// before any line (e.g. too many buckets) still get a proper error response.
#include "powersync/gateway/sync_session.h"
#include "powersync/protocol/bson_lines.h"

#include <algorithm>
#include <boost/asio/write.hpp>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <random>

namespace powersync::gateway {

bool prefers_bson(std::string_view accept) {
  double bson_q = 0, ndjson_q = -1, wildcard_q = -1;
  size_t pos = 0;
  while (pos <= accept.size()) {
    size_t comma = accept.find(',', pos);
    if (comma == std::string_view::npos) comma = accept.size();
    std::string range(accept.substr(pos, comma - pos));
    pos = comma + 1;
    for (char& c : range) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    range.erase(std::remove(range.begin(), range.end(), ' '), range.end());
    range.erase(std::remove(range.begin(), range.end(), '\t'), range.end());
    double q = 1;
    size_t semi = range.find(';');
    std::string type = range.substr(0, semi);
    if (semi != std::string::npos) {
      size_t qpos = range.find(";q=", semi);
      if (qpos != std::string::npos) q = std::strtod(range.c_str() + qpos + 3, nullptr);
    }
    if (type == "application/vnd.powersync.bson-stream") bson_q = std::max(bson_q, q);
    else if (type == "application/x-ndjson") ndjson_q = std::max(ndjson_q, q);
    else if (type == "application/*" || type == "*/*") wildcard_q = std::max(wildcard_q, q);
  }
  if (ndjson_q < 0) ndjson_q = wildcard_q;
  return bson_q > 0 && bson_q > ndjson_q;
}

namespace {
constexpr size_t kMaxBacklogBytes = 256 * 1024;  // stop fetching while this much is unsent
constexpr auto kWriteTimeout = std::chrono::seconds(60);

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

http::status status_for(const std::string& code) {
  if (code == "PSYNC_S2305") return http::status::bad_request;
  return http::status::internal_server_error;
}
}  // namespace

SyncSession::SyncSession(Gateway& gateway, beast::tcp_stream stream, unsigned http_version, VerifiedToken token,
                         protocol::SyncRequest request, bool bson)
    : gw_(gateway),
      bson_(bson),
      stream_(std::move(stream)),
      http_version_(http_version),
      token_(std::move(token)),
      machine_(request,
               [&] {
                 protocol::SyncLimits limits;
                 limits.max_buckets = gateway.config().max_buckets;
                 limits.ops_fetch_limit = gateway.config().ops_fetch_limit;
                 return limits;
               }()),
      token_timer_(gateway.io()) {
  machine_.set_bson_output(bson);  // the machine's output is then BSON already (see emit)
  who_.token_claims_json = token_.claims_json;
  who_.parameters_json = request.parameters_json;
  who_.user_id = token_.user_id;
  who_.client_id = request.client_id;
  write_checkpoint_key_ = request.client_id.empty() ? token_.user_id : token_.user_id + "/" + request.client_id;
}

// Every normal end goes through close(); a session destroyed without it is one whose handlers were
// dropped with the io_context at process exit, when the gateway object may already be gone.
SyncSession::~SyncSession() = default;

void SyncSession::start() {
  stream_.expires_never();
  stream_id_ = gw_.register_stream(weak_from_this());
  // A token already past exp (accepted within the clock tolerance) gets only the expiry line.
  if (token_.expires_at <= unix_now()) {
    emit(protocol::token_expires_in_line(0));
    end();
    return;
  }
  auto self = shared_from_this();
  subscription_ = gw_.hub().subscribe([self](const protocol::Checkpoint& cp) { self->on_checkpoint(cp); });
  schedule_token_line();
  watch_disconnect();
}

void SyncSession::on_checkpoint(const protocol::Checkpoint& cp) {
  if (closed_ || ending_) return;
  machine_.on_checkpoint(cp);
  pump();
}

void SyncSession::pump() {
  while (!closed_ && !ending_ && !query_in_flight_) {
    if (pending_.size() + writing_.size() > kMaxBacklogBytes) return;  // resumed when writes drain
    auto self = shared_from_this();
    switch (machine_.need()) {
      case protocol::SyncStream::Need::Resolve:
        if (resolve_from_changes()) continue;  // answered at once, or its query is in flight
        query_in_flight_ = true;
        gw_.queries().resolve(who_, machine_.resolve_target(), [self](ResolveOutcome out) {
          self->query_in_flight_ = false;
          if (self->closed_) return;
          if (out.ok) self->machine_.on_resolved(out.resolved);
          else self->machine_.fail(out.code, out.message);
          self->emit(self->machine_.take_output(), true);
          self->pump();
        });
        return;
      case protocol::SyncStream::Need::Ops:
        query_in_flight_ = true;
        request_ops();
        return;
      case protocol::SyncStream::Need::WaitCheckpoint:
        return;
      case protocol::SyncStream::Need::Finished:
        finish_with_error();
        return;
    }
  }
}

// Re-resolves from what the client was last told when the hub knows what changed since: no query
// if none of the stream's buckets changed or the hub read their new totals, else checksums of just
// the changed ones. False when a
// full resolve is needed (first checkpoint, parameter rows written, write checkpoint may differ,
// unknown history).
bool SyncSession::resolve_from_changes() {
  if (!machine_.sent_first_checkpoint()) return false;
  const protocol::Checkpoint target = machine_.resolve_target();
  auto changes = gw_.hub().changes_between(machine_.resolved_checkpoint(), target);
  if (!changes || changes->parameters_changed || changes->write_checkpoint_keys.count(write_checkpoint_key_)) return false;
  std::vector<std::string> stale;
  for (const auto& [name, b] : machine_.last_sent_buckets())
    if (changes->buckets.count(name)) stale.push_back(name);
  std::vector<protocol::BucketState> known;  // totals the hub already read with the changes
  for (const auto& name : stale) {
    auto it = changes->totals.find(name);
    if (it == changes->totals.end()) break;
    protocol::BucketState b;
    b.bucket = name;
    b.checksum = it->second.checksum;
    b.count = it->second.count;
    known.push_back(std::move(b));
  }
  if (known.size() == stale.size()) {
    apply_resolved(target, known);
    return true;
  }
  query_in_flight_ = true;
  auto self = shared_from_this();
  gw_.queries().checksums(std::move(stale), target, [self, target](ChecksumsOutcome out) {
    self->query_in_flight_ = false;
    if (self->closed_) return;
    if (out.ok) self->apply_resolved(target, out.buckets);
    else self->machine_.fail(out.code, out.message);
    self->emit(self->machine_.take_output(), true);
    self->pump();
  });
  return true;
}

// The last sent bucket map with `updated` checksums/counts, as a resolve result for `target`.
void SyncSession::apply_resolved(const protocol::Checkpoint& target, const std::vector<protocol::BucketState>& updated) {
  protocol::ResolvedCheckpoint r;
  r.checkpoint = target;
  r.write_checkpoint = machine_.last_write_checkpoint();
  const auto& sent = machine_.last_sent_buckets();
  r.buckets.reserve(sent.size());
  for (const auto& [name, b] : sent) r.buckets.push_back(b);
  for (const auto& u : updated)
    for (auto& b : r.buckets)
      if (b.bucket == u.bucket) {
        b.checksum = u.checksum;
        b.count = u.count;
      }
  machine_.on_resolved(r);
  emit(machine_.take_output(), true);
}

namespace {
bool same_query(const protocol::OpsQuery& a, const protocol::OpsQuery& b) {
  return a.bucket == b.bucket && a.after == b.after && a.at_checkpoint == b.at_checkpoint && a.max_ops == b.max_ops;
}
}  // namespace

void SyncSession::request_ops() {
  const protocol::OpsQuery& q = machine_.ops_query();
  if (prefetch_ && same_query(prefetch_->query, q)) {
    auto p = std::move(prefetch_);
    prefetch_.reset();
    if (p->ready) {
      prefetch_after(p->query, p->result);
      deliver_ops(std::move(p->result));
    } else {
      p->wanted = true;
      prefetch_ = p;  // deliver_ops runs when it arrives
    }
    return;
  }
  prefetch_.reset();  // a stale guess (new checkpoint, other bucket): its answer is dropped
  auto self = shared_from_this();
  protocol::OpsQuery query = q;
  gw_.queries().ops(query, [self, query](OpsOutcome out) {
    self->prefetch_after(query, out);
    self->deliver_ops(std::move(out));
  });
}

void SyncSession::prefetch_after(const protocol::OpsQuery& q, const OpsOutcome& out) {
  if (closed_ || !out.ok || out.ops.size() < static_cast<size_t>(q.max_ops)) return;
  auto p = std::make_shared<Prefetch>();
  p->query = q;
  p->query.after = out.ops.back().op_id;
  prefetch_ = p;
  auto self = shared_from_this();
  std::weak_ptr<Prefetch> weak = p;
  gw_.queries().ops(p->query, [self, weak](OpsOutcome next) {
    auto p = weak.lock();
    if (!p || self->prefetch_ != p) return;
    if (p->wanted) {
      self->prefetch_.reset();
      self->prefetch_after(p->query, next);  // stay one page ahead
      self->deliver_ops(std::move(next));
    } else {
      p->ready = true;
      p->result = std::move(next);
    }
  });
}

void SyncSession::deliver_ops(OpsOutcome out) {
  query_in_flight_ = false;
  if (closed_) return;
  if (out.ok) machine_.on_ops(out.ops);
  else machine_.fail(out.code, out.message);
  emit(machine_.take_output(), true);
  pump();
}

void SyncSession::finish_with_error() {
  const auto& f = machine_.failure();
  std::string code = f ? f->code : "PSYNC_S2001", message = f ? f->message : "sync stream failed";
  std::cerr << "powersync-gateway: stream of user " << token_.user_id << " ends: " << code << " " << message << "\n";
  if (!headers_started_ && pending_.empty()) {
    error_ = error_response(http_version_, status_for(code), code, message);
    error_->keep_alive(false);
  }
  end();
}

void SyncSession::emit(std::string lines, bool encoded) {
  if (lines.empty() || closed_) return;
  if (bson_ && !encoded) {
    try {
      std::string documents;
      documents.reserve(lines.size() + lines.size() / 8);
      protocol::append_bson_documents(documents, lines);  // spec §1.3: one BSON document per line
      lines.swap(documents);
    } catch (const std::exception& e) {  // never expected: every line is JSON we wrote
      std::cerr << "powersync-gateway: cannot encode a sync line as BSON: " << e.what() << "\n";
      end();
      return;
    }
  }
  if (pending_.empty()) pending_.swap(lines);
  else pending_ += lines;
  kick_writes();
}

void SyncSession::end() {
  if (ending_) return;
  ending_ = true;
  token_timer_.cancel();
  if (subscription_) gw_.hub().unsubscribe(subscription_);
  subscription_ = 0;
  kick_writes();
}

void SyncSession::kick_writes() {
  if (write_in_flight_ || closed_) return;
  auto self = shared_from_this();
  auto done = [self](const boost::system::error_code& ec, size_t) {
    self->write_in_flight_ = false;
    self->writing_.clear();
    if (ec) {
      self->close();
      return;
    }
    self->kick_writes();
    self->pump();
  };
  stream_.expires_after(kWriteTimeout);
  if (error_) {
    write_in_flight_ = true;
    http::async_write(stream_, *error_, [self](const boost::system::error_code&, size_t) { self->close(); });
    return;
  }
  if (!headers_started_) {
    if (pending_.empty() && !ending_) return;
    headers_started_ = true;
    header_.emplace(http::status::ok, http_version_);
    header_->set(http::field::content_type, bson_ ? "application/vnd.powersync.bson-stream" : "application/x-ndjson");
    header_->set("X-Accel-Buffering", "no");
    header_->set(http::field::cache_control, "no-cache");
    add_cors_headers(*header_);
    header_->chunked(true);
    header_->keep_alive(false);
    serializer_.emplace(*header_);
    write_in_flight_ = true;
    http::async_write_header(stream_, *serializer_, done);
    return;
  }
  if (!pending_.empty()) {
    writing_.swap(pending_);
    write_in_flight_ = true;
    asio::async_write(stream_, http::make_chunk(asio::buffer(writing_)), done);
    return;
  }
  if (ending_) {
    write_in_flight_ = true;
    asio::async_write(stream_, http::make_chunk_last(), [self](const boost::system::error_code&, size_t) { self->close(); });
    return;
  }
  stream_.expires_never();
}

void SyncSession::close() {
  if (closed_) return;
  closed_ = true;
  token_timer_.cancel();
  if (subscription_) gw_.hub().unsubscribe(subscription_);
  subscription_ = 0;
  boost::system::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
  gw_.stream_closed(stream_id_);
}

// token_expires_in every keepalive interval (±10% jitter), more often near expiry; the stream
// ends after {"token_expires_in":0} (spec §1.6).
void SyncSession::schedule_token_line() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  int64_t now = unix_now(), exp = token_.expires_at;
  double keepalive = gw_.config().keepalive_seconds * (0.9 + 0.2 * (rng() % 1000) / 1000.0);
  double wait = now < exp - 20 ? std::min<double>(keepalive, exp - 20 - now) : std::min<double>(keepalive, exp - now);
  if (wait < 0) wait = 0;
  token_timer_.expires_after(std::chrono::milliseconds(static_cast<int64_t>(wait * 1000)));
  auto self = shared_from_this();
  token_timer_.async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->closed_ || self->ending_) return;
    int64_t left = self->token_.expires_at - unix_now();
    self->emit(protocol::token_expires_in_line(left));
    if (left <= 0) self->end();
    else self->schedule_token_line();
  });
}

// Clients never send anything after the request; readability means EOF (or junk): either way
// the stream is over and its slot is freed at once.
void SyncSession::watch_disconnect() {
  auto self = shared_from_this();
  stream_.socket().async_wait(tcp::socket::wait_read, [self](const boost::system::error_code& ec) {
    if (ec || self->closed_) return;
    boost::system::error_code ignored;
    if (self->stream_.socket().available(ignored) == 0) {
      self->close();
      return;
    }
    char sink[512];
    self->stream_.socket().non_blocking(true, ignored);
    self->stream_.socket().read_some(asio::buffer(sink), ignored);
    self->watch_disconnect();
  });
}

}  // namespace powersync::gateway
