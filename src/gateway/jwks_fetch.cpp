// Remote JWKS download: one GET per refresh with a deadline, body size limit and (for https)
// certificate and host name verification; the keys are swapped only when the document parses.
#include "powersync/gateway/jwks_fetch.h"

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <iostream>
#include <memory>

#include "powersync/error.h"

namespace powersync::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kFetchTimeout = std::chrono::seconds(10);
constexpr auto kRetryAfterFailure = std::chrono::seconds(5);
constexpr size_t kMaxDocumentBytes = 1 << 20;

Error bad_url(const std::string& url, const std::string& why) {
  return invalid_input("--jwks-url \"" + url + "\": " + why, {}, "use http://host[:port]/path or https://host[:port]/path");
}

// One GET over a plain or TLS stream; calls back once with (error, body).
template <class Stream>
struct Fetch : std::enable_shared_from_this<Fetch<Stream>> {
  using Done = std::function<void(const std::string&, const std::string&)>;
  Fetch(Stream stream, HttpUrl url, Done done) : stream(std::move(stream)), url(std::move(url)), done(std::move(done)) {
    parser.body_limit(kMaxDocumentBytes);
  }
  tcp::socket& socket() { return beast::get_lowest_layer(stream).socket(); }
  void run(const tcp::resolver::results_type& endpoints) {
    auto self = this->shared_from_this();
    beast::get_lowest_layer(stream).expires_after(kFetchTimeout);
    beast::get_lowest_layer(stream).async_connect(endpoints, [self](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return self->fail("cannot connect: " + ec.message());
      self->handshake();
    });
  }
  void handshake();
  void send() {
    auto self = this->shared_from_this();
    request = {http::verb::get, url.target, 11};
    request.set(http::field::host, url.host);
    request.set(http::field::accept, "application/json");
    request.set(http::field::user_agent, "powersync-gateway");
    http::async_write(stream, request, [self](beast::error_code ec, size_t) {
      if (ec) return self->fail("cannot send the request: " + ec.message());
      http::async_read(self->stream, self->buffer, self->parser, [self](beast::error_code ec, size_t) {
        if (ec) return self->fail("cannot read the response: " + ec.message());
        auto& res = self->parser.get();
        if (res.result() != http::status::ok)
          return self->fail("HTTP status " + std::to_string(res.result_int()));
        self->done({}, res.body());
        beast::error_code ignored;
        self->socket().shutdown(tcp::socket::shutdown_both, ignored);
      });
    });
  }
  void fail(const std::string& why) { done(why, {}); }

  Stream stream;
  HttpUrl url;
  Done done;
  http::request<http::empty_body> request;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
};

template <>
void Fetch<beast::tcp_stream>::handshake() { send(); }

template <>
void Fetch<beast::ssl_stream<beast::tcp_stream>>::handshake() {
  // SNI and host name verification against the URL's host.
  if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()))
    return fail("cannot set the TLS server name");
  stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
  auto self = shared_from_this();
  stream.async_handshake(asio::ssl::stream_base::client, [self](beast::error_code ec) {
    if (ec) return self->fail("TLS handshake failed: " + ec.message());
    self->send();
  });
}

}  // namespace

HttpUrl parse_http_url(const std::string& url) {
  HttpUrl out;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    throw bad_url(url, "the scheme must be http or https");
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.find('@') != std::string::npos) throw bad_url(url, "credentials in the URL are not supported");
  size_t colon = authority.rfind(':');
  bool bracketed = !authority.empty() && authority.front() == '[';
  size_t close = authority.find(']');
  if (colon != std::string::npos && (!bracketed || colon > close)) {
    out.port = authority.substr(colon + 1);
    authority.resize(colon);
    if (out.port.empty() || out.port.find_first_not_of("0123456789") != std::string::npos || out.port.size() > 5 ||
        std::stoi(out.port) < 1 || std::stoi(out.port) > 65535)
      throw bad_url(url, "the port must be a number between 1 and 65535");
  } else {
    out.port = out.tls ? "443" : "80";
  }
  if (bracketed) {
    if (close != authority.size() - 1) throw bad_url(url, "unterminated [IPv6 address]");
    authority = authority.substr(1, authority.size() - 2);
  }
  if (authority.empty() || authority.find_first_of(" /?#") != std::string::npos) throw bad_url(url, "no valid host");
  out.host = authority;
  return out;
}

JwksFetcher::JwksFetcher(asio::io_context& io, const std::string& url, std::chrono::seconds refresh, Consumer on_document)
    : io_(io), url_text_(url), url_(parse_http_url(url)), refresh_(refresh), on_document_(std::move(on_document)), timer_(io) {}

void JwksFetcher::start() { fetch(); }

void JwksFetcher::stop() {
  stopped_ = true;
  timer_.cancel();
}

void JwksFetcher::fetch() {
  if (stopped_) return;
  auto resolver = std::make_shared<tcp::resolver>(io_);
  resolver->async_resolve(url_.host, url_.port, [this, resolver](beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return done("cannot resolve " + url_.host + ": " + ec.message(), {});
    auto on_done = [this](const std::string& error, const std::string& body) { done(error, body); };
    if (!url_.tls) {
      std::make_shared<Fetch<beast::tcp_stream>>(beast::tcp_stream(io_), url_, on_done)->run(results);
      return;
    }
    // One context per fetch keeps CA-store changes picked up; fetches are rare.
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_default_verify_paths();
    ctx->set_verify_mode(asio::ssl::verify_peer);
    auto fetch = std::make_shared<Fetch<beast::ssl_stream<beast::tcp_stream>>>(
        beast::ssl_stream<beast::tcp_stream>(io_, *ctx), url_, [ctx, on_done](const std::string& e, const std::string& b) { on_done(e, b); });
    fetch->run(results);
  });
}

void JwksFetcher::done(const std::string& error, const std::string& body) {
  if (stopped_) return;
  std::string why = error.empty() ? on_document_(body) : error;
  if (why.empty()) {
    loaded_ = true;
    schedule(refresh_);
    return;
  }
  std::cerr << "powersync-gateway: JWKS from " << url_text_ << " not loaded (" << why << "); "
            << (loaded_ ? "keeping the previous keys, " : "") << "retrying in " << kRetryAfterFailure.count() << " s\n";
  schedule(std::min(refresh_, std::chrono::seconds(kRetryAfterFailure)));
}

void JwksFetcher::schedule(std::chrono::seconds after) {
  if (stopped_) return;
  timer_.expires_after(after);
  timer_.async_wait([this](beast::error_code ec) {
    if (!ec) fetch();
  });
}

}  // namespace powersync::gateway
