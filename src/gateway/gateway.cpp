// The gateway process object: listener, readiness, stream registry and graceful shutdown.
#include "powersync/gateway/gateway.h"

#include <fstream>
#include <sstream>

#include <boost/asio/post.hpp>
#include <iostream>

#include "powersync/gateway/sync_session.h"

namespace powersync::gateway {

void add_cors_headers(http::response_header<>& h) {
  h.set(http::field::access_control_allow_origin, "*");
  h.set(http::field::access_control_allow_headers, "authorization, content-type, x-user-agent");
  h.set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
  h.set(http::field::access_control_max_age, "86400");
}

StringResponse json_response(unsigned version, http::status status, const std::string& body) {
  StringResponse res{status, version};
  res.set(http::field::content_type, "application/json");
  add_cors_headers(res);
  res.body() = body;
  res.prepare_payload();
  return res;
}

StringResponse error_response(unsigned version, http::status status, const std::string& code, const std::string& description,
                              const nlohmann::json& details) {
  nlohmann::json err = {{"name", "PowerSyncError"}, {"code", code}, {"status", static_cast<int>(status)},
                        {"description", description}};
  if (!details.is_null()) err["details"] = details;
  return json_response(version, status, nlohmann::json{{"error", err}}.dump());
}

Gateway::Gateway(asio::io_context& io, GatewayConfig config, JwksKeySet keys)
    : io_(io),
      config_(std::move(config)),
      keys_(std::move(keys)),
      pool_(io, config_.db_url, config_.db_pool_size),
      hub_(io, config_.db_url, features_),
      queries_(pool_, features_),
      acceptor_(io) {}

JwtPolicy Gateway::jwt_policy() const {
  JwtPolicy p;
  p.audiences = config_.audiences;
  p.max_lifetime_seconds = config_.max_token_lifetime;
  return p;
}

void Gateway::start() {
  tcp::endpoint ep(asio::ip::make_address(config_.listen_host), config_.listen_port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  bound_port_ = acceptor_.local_endpoint().port();
  pool_.start();
  hub_.start();
  if (!config_.jwks_url.empty()) {
    if (!config_.jwks_file.empty()) {
      std::ifstream in(config_.jwks_file);
      std::stringstream text;
      text << in.rdbuf();
      file_keys_ = nlohmann::json::parse(text.str(), nullptr, false).value("keys", nlohmann::json::array());
    }
    jwks_fetcher_ = std::make_unique<JwksFetcher>(io_, config_.jwks_url, std::chrono::seconds(config_.jwks_refresh_seconds),
                                                  [this](const std::string& body) { return accept_remote_jwks(body); });
    jwks_fetcher_->start();
  }
  accept();
}

// The key set becomes --jwks's keys plus the fetched document's; a bad document changes nothing.
std::string Gateway::accept_remote_jwks(const std::string& body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) return "not a JWKS document ({\"keys\": [...]})";
  nlohmann::json merged = {{"keys", file_keys_}};
  for (const auto& k : doc["keys"]) merged["keys"].push_back(k);
  try {
    keys_ = JwksKeySet::parse(merged.dump());
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

void Gateway::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || shutting_down_) return;
    if (!ec) {
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      serve_http(*this, std::move(socket));
    } else if (ec == asio::error::no_descriptors) {
      std::cerr << "powersync-gateway: out of file descriptors; raise the limit (ulimit -n)\n";
    }
    accept();
  });
}

bool Gateway::ready() const {
  return !shutting_down_ && hub_.latest().has_value() && pool_.open_connections() > 0 &&
         (!jwks_fetcher_ || jwks_fetcher_->loaded());
}

bool Gateway::try_admit_stream() { return !shutting_down_ && streams_.size() < config_.max_connections; }

uint64_t Gateway::register_stream(std::weak_ptr<SyncSession> s) {
  uint64_t id = next_stream_id_++;
  streams_.emplace(id, std::move(s));
  return id;
}

void Gateway::stream_closed(uint64_t id) {
  streams_.erase(id);
  maybe_stop();
}

void Gateway::shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  std::vector<std::shared_ptr<SyncSession>> open;
  for (auto& [id, weak] : streams_)
    if (auto s = weak.lock()) open.push_back(s);
  for (auto& s : open) s->end();
  // Streams that cannot flush (stalled clients) do not hold the process hostage.
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(5));
  timer->async_wait([this, timer](const boost::system::error_code&) { io_.stop(); });
  maybe_stop();
}

void Gateway::maybe_stop() {
  if (!shutting_down_ || !streams_.empty()) return;
  hub_.stop();
  if (jwks_fetcher_) jwks_fetcher_->stop();
  pool_.stop();
  asio::post(io_, [this] { io_.stop(); });
}

}  // namespace powersync::gateway
