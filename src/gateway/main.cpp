// powersync-gateway: parses the configuration, loads the keys and runs the event loop until
// SIGTERM/SIGINT, which ends all streams cleanly.
#include <boost/asio/signal_set.hpp>
#include <iostream>

#include "powersync/error.h"
#include "powersync/gateway/gateway.h"

using namespace powersync::gateway;

int main(int argc, char** argv) {
  GatewayConfig config;
  try {
    config = parse_gateway_args(std::vector<std::string>(argv + 1, argv + argc));
    if (config.show_help) {
      std::cout << gateway_usage();
      return 0;
    }
    validate_config(config);
  } catch (const powersync::Error& e) {
    std::cerr << "powersync-gateway: " << e.what() << "\n";
    if (!e.hint().empty()) std::cerr << "hint: " << e.hint() << "\n";
    return 2;
  }
  try {
    JwksKeySet keys = config.jwks_file.empty() ? JwksKeySet() : JwksKeySet::load_file(config.jwks_file);
    asio::io_context io(1);
    Gateway gateway(io, config, std::move(keys));
    gateway.start();
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (!ec) gateway.shutdown();
    });
    std::signal(SIGPIPE, SIG_IGN);
    std::cerr << "powersync-gateway: listening on http://" << config.listen_host << ":" << gateway.bound_port() << "\n";
    io.run();
    std::cerr << "powersync-gateway: stopped\n";
  } catch (const powersync::Error& e) {
    std::cerr << "powersync-gateway: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "powersync-gateway: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
