// One HTTP/1.1 connection: reads requests with Beast's parser (body size limited), routes them,
// and hands the socket over to a SyncSession for /sync/stream.
#include <boost/beast/core/flat_buffer.hpp>
#include <ctime>

#include "powersync/error.h"
#include "powersync/gateway/endpoints.h"
#include "powersync/gateway/gateway.h"
#include "powersync/gateway/sync_session.h"

namespace powersync::gateway {

namespace {

using Request = http::request<http::string_body>;
constexpr auto kReadTimeout = std::chrono::seconds(30);

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Gateway& gw, tcp::socket socket) : gw_(gw), stream_(std::move(socket)) {}

  void read() {
    parser_.emplace();
    parser_->body_limit(gw_.config().max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(kReadTimeout);
    auto self = shared_from_this();
    http::async_read(stream_, buffer_, *parser_, [self](const boost::system::error_code& ec, size_t) { self->on_read(ec); });
  }

 private:
  void on_read(const boost::system::error_code& ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      close();
      return;
    }
    if (ec == http::error::body_limit) {
      reply(error_response(11, http::status::payload_too_large, "PSYNC_S2001",
                           "the request body exceeds " + std::to_string(gw_.config().max_body_bytes) + " bytes"),
            false);
      return;
    }
    if (ec) {
      reply(error_response(11, http::status::bad_request, "PSYNC_S2001", "malformed HTTP request: " + ec.message()), false);
      return;
    }
    request_ = parser_->release();
    route();
  }

  void reply(StringResponse res, bool keep_alive) {
    res.keep_alive(keep_alive && request_.keep_alive() && !gw_.shutting_down());
    response_ = std::move(res);
    stream_.expires_after(kReadTimeout);
    auto self = shared_from_this();
    http::async_write(stream_, response_, [self](const boost::system::error_code& ec, size_t) {
      if (ec || !self->response_.keep_alive()) {
        self->close();
        return;
      }
      self->read();
    });
  }

  void close() {
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  // Verifies the Authorization header; on failure answers 401 and returns false.
  bool authenticate(VerifiedToken& token) {
    auto it = request_.find(http::field::authorization);
    if (it == request_.end() || it->value().empty()) {
      reply(error_response(request_.version(), http::status::unauthorized, "PSYNC_S2106",
                           "Authentication required: send 'Authorization: Token <jwt>'"),
            true);
      return false;
    }
    std::string jwt;
    if (!token_from_authorization(std::string(it->value()), jwt)) {
      reply(error_response(request_.version(), http::status::unauthorized, "PSYNC_S2106",
                           "The Authorization header must be 'Token <jwt>' or 'Bearer <jwt>'"),
            true);
      return false;
    }
    AuthError err;
    if (!gw_.keys().verify(jwt, gw_.jwt_policy(), static_cast<int64_t>(std::time(nullptr)), token, err)) {
      reply(error_response(request_.version(), http::status::unauthorized, err.code, err.message), true);
      return false;
    }
    return true;
  }

  void route() {
    std::string target(request_.target());
    std::string path = target.substr(0, target.find('?'));
    auto method = request_.method();
    unsigned v = request_.version();
    auto self = shared_from_this();
    Respond respond = [self](StringResponse res) { self->reply(std::move(res), true); };

    if (method == http::verb::options) {
      StringResponse res{http::status::no_content, v};
      add_cors_headers(res);
      res.prepare_payload();
      reply(std::move(res), true);
      return;
    }
    if (path == "/probes/liveness" || path == "/probes/startup") {
      reply(json_response(v, http::status::ok, R"({"ready":true,"started":true,"touched_at":)" + std::to_string(std::time(nullptr)) + "}"),
            true);
      return;
    }
    if (path == "/probes/readiness") {
      bool ready = gw_.ready();
      nlohmann::json body = {{"ready", ready}, {"started", true}, {"streams", gw_.active_streams()}};
      if (const auto& cp = gw_.hub().latest()) body["checkpoint"] = std::to_string(cp->op_id) + "@" + cp->lsn;
      if (!ready)
        body["reason"] = gw_.shutting_down()           ? "shutting down"
                         : gw_.jwks_pending()          ? "waiting for the first JWKS document from --jwks-url"
                         : gw_.hub().last_error().empty() ? "waiting for the database"
                                                          : gw_.hub().last_error();
      reply(json_response(v, ready ? http::status::ok : http::status::bad_request, body.dump()), true);
      return;
    }
    bool known = (path == "/sync/stream" && method == http::verb::post) ||
                 (path == "/write-checkpoint2.json" && method == http::verb::get) ||
                 (path == "/sync/checkpoint-request" && method == http::verb::post) ||
                 (path == "/api/crud" && method == http::verb::post);
    if (!known) {
      reply(error_response(v, http::status::not_found, "PSYNC_S2002", "no route " + std::string(request_.method_string()) + " " + path),
            true);
      return;
    }
    if (gw_.shutting_down()) {
      reply(error_response(v, http::status::service_unavailable, "PSYNC_S2003", "the gateway is shutting down"), false);
      return;
    }
    if (path == "/api/crud" && !gw_.config().crud_upload) {
      handle_crud_upload(gw_, v, VerifiedToken{}, request_.body(), respond);  // answers 404 "disabled"
      return;
    }
    VerifiedToken token;
    if (!authenticate(token)) return;
    if (path == "/write-checkpoint2.json") {
      handle_write_checkpoint(gw_, v, token, query_parameter(target, "client_id"), respond);
    } else if (path == "/sync/checkpoint-request") {
      handle_checkpoint_request(gw_, v, token, request_.body(), query_parameter(target, "client_id"), respond);
    } else if (path == "/api/crud") {
      handle_crud_upload(gw_, v, token, request_.body(), respond);
    } else {
      start_stream(std::move(token));
    }
  }

  void start_stream(VerifiedToken token) {
    unsigned v = request_.version();
    protocol::SyncRequest req;
    try {
      req = protocol::parse_sync_request(request_.body());
    } catch (const Error& e) {
      reply(error_response(v, http::status::bad_request, "PSYNC_S2001", std::string("invalid sync request: ") + e.what()), true);
      return;
    }
    if (!gw_.try_admit_stream()) {
      reply(error_response(v, http::status::too_many_requests, "PSYNC_S2304",
                           "Maximum active concurrent connections limit has been reached"),
            false);
      return;
    }
    bool bson = gw_.config().bson_streams && prefers_bson(std::string_view(request_[http::field::accept].data(), request_[http::field::accept].size()));
    auto session = std::make_shared<SyncSession>(gw_, std::move(stream_), v, std::move(token), std::move(req), bson);
    session->start();
  }

  Gateway& gw_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;
  StringResponse response_;
};

}  // namespace

void serve_http(Gateway& gateway, tcp::socket socket) { std::make_shared<HttpSession>(gateway, std::move(socket))->read(); }

}  // namespace powersync::gateway
