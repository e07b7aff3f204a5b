// Gateway configuration: command-line flags and an optional YAML file (flags win).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace powersync::gateway {

struct GatewayConfig {
  std::string db_url;                  // libpq connection string or postgres:// URL
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  std::string jwks_file;
  std::string jwks_url;                  // remote JWKS (http/https), merged with jwks_file's keys
  int jwks_refresh_seconds = 300;
  std::vector<std::string> audiences;
  bool crud_upload = false;
  std::vector<std::string> crud_tables;  // allow-list for /api/crud ("table" or "schema.table")
  std::string crud_role;                 // role the upload transaction runs as (SET LOCAL ROLE)
  size_t max_connections = 200;          // concurrent sync streams; beyond -> 429
  size_t max_buckets = 1000;             // per connection; beyond -> PSYNC_S2305
  size_t max_body_bytes = 4 << 20;       // request bodies beyond -> 413
  size_t db_pool_size = 4;               // query connections (plus one LISTEN connection)
  int64_t max_token_lifetime = 86400;    // seconds (exp - iat)
  int keepalive_seconds = 20;            // token_expires_in interval
  int ops_fetch_limit = 1000;            // ops per storage query
  bool bson_streams = false;             // answer BSON to clients whose Accept prefers it
  bool show_help = false;
};

// Parses argv (without argv[0]). `--config FILE` loads YAML first; flags given on the command line
// override it. Throws powersync::Error with a message naming the flag or key at fault.
GatewayConfig parse_gateway_args(const std::vector<std::string>& args);
// Applies a YAML document (same keys as the long flags, with '-' or '_').
void apply_yaml_config(GatewayConfig& config, const std::string& yaml_text, const std::string& source_name);
// Checks the combination (required flags, CRUD settings); throws powersync::Error.
void validate_config(const GatewayConfig& config);
std::string gateway_usage();

}  // namespace powersync::gateway
