// Remote JWKS (--jwks-url): fetched over HTTP or HTTPS (Beast + OpenSSL, peer verified against the
// system's CA store) at start and then periodically; a failed fetch keeps the previous keys.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <string>

namespace powersync::gateway {

namespace asio = boost::asio;

struct HttpUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;  // path and query, at least "/"
};
// Splits an http:// or https:// URL; throws powersync::Error naming what is wrong with it.
HttpUrl parse_http_url(const std::string& url);

class JwksFetcher {
 public:
  // `on_document` receives each fetched body; it returns an empty string when the document was
  // accepted, else why not (logged; the fetch is retried sooner).
  using Consumer = std::function<std::string(const std::string& body)>;
  JwksFetcher(asio::io_context& io, const std::string& url, std::chrono::seconds refresh, Consumer on_document);
  void start();
  void stop();
  bool loaded() const { return loaded_; }  // at least one document accepted

 private:
  void fetch();
  void done(const std::string& error, const std::string& body);
  void schedule(std::chrono::seconds after);

  asio::io_context& io_;
  std::string url_text_;
  HttpUrl url_;
  std::chrono::seconds refresh_;
  Consumer on_document_;
  asio::steady_timer timer_;
  bool loaded_ = false;
  bool stopped_ = false;
};

}  // namespace powersync::gateway
