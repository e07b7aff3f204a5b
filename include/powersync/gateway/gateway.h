// The gateway process: HTTP listener, shared Postgres pool, checkpoint fan-out and the set of
// open sync streams. Everything runs on one io_context thread, so no locking is needed.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <memory>
#include <string>

#include "powersync/gateway/checkpoint_hub.h"
#include "powersync/gateway/config.h"
#include "powersync/gateway/jwks_fetch.h"
#include "powersync/gateway/jwt.h"
#include "powersync/gateway/pg_async.h"
#include "powersync/gateway/sync_queries.h"

namespace powersync::gateway {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

class SyncSession;

// HTTP response helpers shared by the endpoints.
using StringResponse = http::response<http::string_body>;
void add_cors_headers(http::response_header<>& h);
StringResponse json_response(unsigned version, http::status status, const std::string& body);
// The error envelope of spec §1.9.
StringResponse error_response(unsigned version, http::status status, const std::string& code, const std::string& description,
                              const nlohmann::json& details = nullptr);

class Gateway {
 public:
  Gateway(asio::io_context& io, GatewayConfig config, JwksKeySet keys);
  // Binds the listener (throws on failure) and starts the database side.
  void start();
  // Stops accepting, ends every stream cleanly, then stops the io_context.
  void shutdown();
  uint16_t bound_port() const { return bound_port_; }

  asio::io_context& io() { return io_; }
  const GatewayConfig& config() const { return config_; }
  const JwksKeySet& keys() const { return keys_; }
  JwtPolicy jwt_policy() const;
  PgPool& pool() { return pool_; }
  CheckpointHub& hub() { return hub_; }
  SyncQueries& queries() { return queries_; }
  bool shutting_down() const { return shutting_down_; }
  bool ready() const;
  bool jwks_pending() const { return jwks_fetcher_ && !jwks_fetcher_->loaded(); }

  // Stream bookkeeping (concurrency limit, graceful shutdown).
  bool try_admit_stream();
  uint64_t register_stream(std::weak_ptr<SyncSession> s);
  void stream_closed(uint64_t id);
  size_t active_streams() const { return streams_.size(); }

 private:
  void accept();
  std::string accept_remote_jwks(const std::string& body);
  void maybe_stop();

  asio::io_context& io_;
  GatewayConfig config_;
  JwksKeySet keys_;
  nlohmann::json file_keys_ = nlohmann::json::array();  // --jwks's keys, kept to merge remote ones in
  std::unique_ptr<JwksFetcher> jwks_fetcher_;
  StorageFeatures features_;
  PgPool pool_;
  CheckpointHub hub_;
  SyncQueries queries_;
  tcp::acceptor acceptor_;
  uint16_t bound_port_ = 0;
  bool shutting_down_ = false;
  uint64_t next_stream_id_ = 1;
  std::map<uint64_t, std::weak_ptr<SyncSession>> streams_;
};

// Serves one HTTP connection (keep-alive); hands the socket to a SyncSession for /sync/stream.
void serve_http(Gateway& gateway, tcp::socket socket);

}  // namespace powersync::gateway
