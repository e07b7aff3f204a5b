// Gateway configuration parsing: flags and YAML share one table of settings so both stay in step.
#include "powersync/gateway/config.h"
#include "powersync/gateway/jwks_fetch.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "powersync/error.h"

namespace powersync::gateway {

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  std::stringstream ss(text);
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

uint64_t parse_count(const std::string& name, const std::string& v, uint64_t min, uint64_t max) {
  try {
    size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used == v.size() && n >= static_cast<long long>(min) && static_cast<uint64_t>(n) <= max) return static_cast<uint64_t>(n);
  } catch (...) {
  }
  throw invalid_input("--" + name + " must be a whole number between " + std::to_string(min) + " and " +
                      std::to_string(max) + ", got \"" + v + "\"");
}

void set_listen(GatewayConfig& c, const std::string& v) {
  size_t colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0) throw invalid_input("--listen must be host:port, got \"" + v + "\"");
  c.listen_host = v.substr(0, colon);
  c.listen_port = static_cast<uint16_t>(parse_count("listen", v.substr(colon + 1), 0, 65535));
}

struct Setting {
  const char* name;
  bool takes_value;
  const char* help;
  std::function<void(GatewayConfig&, const std::string&)> apply;
};

const std::vector<Setting>& settings() {
  static const std::vector<Setting> table = {
      {"db", true, "Postgres connection (URL or libpq string) of the database with the extension",
       [](GatewayConfig& c, const std::string& v) { c.db_url = v; }},
      {"listen", true, "host:port to listen on (default 127.0.0.1:8080)", set_listen},
      {"jwks", true, "JWKS file with the keys that sign client tokens (kty oct for HS*, RSA, EC, OKP)",
       [](GatewayConfig& c, const std::string& v) { c.jwks_file = v; }},
      {"jwks-url", true, "URL (http or https) of a JWKS document, fetched at start and every --jwks-refresh-seconds; its keys join --jwks's",
       [](GatewayConfig& c, const std::string& v) { c.jwks_url = v; }},
      {"jwks-refresh-seconds", true, "interval between --jwks-url fetches (default 300; failures retry after 5 s)",
       [](GatewayConfig& c, const std::string& v) { c.jwks_refresh_seconds = static_cast<int>(parse_count("jwks-refresh-seconds", v, 1, 86400)); }},
      {"audience", true, "accepted token audience (repeat or comma-separate for several)",
       [](GatewayConfig& c, const std::string& v) {
         for (auto& a : split_list(v)) c.audiences.push_back(a);
       }},
      {"enable-crud-upload", false, "enable POST /api/crud (off by default)",
       [](GatewayConfig& c, const std::string& v) { c.crud_upload = v != "false" && v != "0"; }},
      {"crud-tables", true, "comma-separated tables /api/crud may write (\"table\" or \"schema.table\")",
       [](GatewayConfig& c, const std::string& v) { c.crud_tables = split_list(v); }},
      {"crud-role", true, "database role the upload transaction runs as (SET LOCAL ROLE)",
       [](GatewayConfig& c, const std::string& v) { c.crud_role = v; }},
      {"max-connections", true, "maximum concurrent sync streams; more get HTTP 429 (default 200)",
       [](GatewayConfig& c, const std::string& v) { c.max_connections = parse_count("max-connections", v, 1, 1000000); }},
      {"max-buckets", true, "maximum buckets per connection; more end the stream with PSYNC_S2305 (default 1000)",
       [](GatewayConfig& c, const std::string& v) { c.max_buckets = parse_count("max-buckets", v, 1, 1000000); }},
      {"max-body-bytes", true, "maximum request body size; larger bodies get HTTP 413 (default 4194304)",
       [](GatewayConfig& c, const std::string& v) { c.max_body_bytes = parse_count("max-body-bytes", v, 1024, 1ull << 31); }},
      {"db-pool-size", true, "Postgres connections for queries, besides the LISTEN one (default 4)",
       [](GatewayConfig& c, const std::string& v) { c.db_pool_size = parse_count("db-pool-size", v, 1, 256); }},
      {"max-token-lifetime", true, "maximum exp - iat of accepted tokens in seconds (default 86400)",
       [](GatewayConfig& c, const std::string& v) { c.max_token_lifetime = static_cast<int64_t>(parse_count("max-token-lifetime", v, 1, 1ull << 40)); }},
      {"keepalive-seconds", true, "interval of token_expires_in lines (default 20)",
       [](GatewayConfig& c, const std::string& v) { c.keepalive_seconds = static_cast<int>(parse_count("keepalive-seconds", v, 1, 3600)); }},
      {"bson-streams", false, "send application/vnd.powersync.bson-stream to clients whose Accept prefers it (as the JS SDK's "
                               "does); off by default: NDJSON is ~2.5x cheaper here and every SDK reads it",
       [](GatewayConfig& c, const std::string& v) { c.bson_streams = v != "false" && v != "0"; }},
      {"ops-fetch-limit", true, "ops fetched per storage query during downloads (default 1000)",
       [](GatewayConfig& c, const std::string& v) { c.ops_fetch_limit = static_cast<int>(parse_count("ops-fetch-limit", v, 1, 100000)); }},
  };
  return table;
}

const Setting* find_setting(std::string name) {
  for (char& ch : name) ch = ch == '_' ? '-' : ch;
  for (const auto& s : settings())
    if (name == s.name) return &s;
  return nullptr;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw invalid_input("cannot read the config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void apply_yaml_config(GatewayConfig& config, const std::string& yaml_text, const std::string& source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw invalid_input(source_name + ": invalid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw invalid_input(source_name + ": the config file must be a YAML mapping of setting: value");
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    const Setting* s = find_setting(key);
    if (!s) throw invalid_input(source_name + ": unknown setting \"" + key + "\"", {}, "see powersync-gateway --help");
    std::string value;
    if (kv.second.IsSequence()) {
      for (const auto& item : kv.second) value += (value.empty() ? "" : ",") + item.as<std::string>();
    } else if (kv.second.IsScalar()) {
      value = kv.second.as<std::string>();
    } else {
      throw invalid_input(source_name + ": setting \"" + key + "\" must be a scalar or a list");
    }
    try {
      s->apply(config, value);
    } catch (const Error& e) {
      throw invalid_input(source_name + ": " + e.what());
    }
  }
}

GatewayConfig parse_gateway_args(const std::vector<std::string>& args) {
  GatewayConfig config;
  // The YAML file is applied first so that flags override it regardless of their order.
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) throw invalid_input("--config needs a file name");
      apply_yaml_config(config, read_file(args[i + 1]), args[i + 1]);
    } else if (args[i].rfind("--config=", 0) == 0) {
      std::string path = args[i].substr(9);
      apply_yaml_config(config, read_file(path), path);
    }
  }
  bool audience_from_flags = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") {
      config.show_help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) throw invalid_input("unexpected argument \"" + arg + "\"", {}, "see --help");
    std::string name = arg.substr(2), value;
    bool inline_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (name == "config") {
      if (!inline_value) ++i;
      continue;
    }
    const Setting* s = find_setting(name);
    if (!s) throw invalid_input("unknown flag --" + name, {}, "see powersync-gateway --help");
    if (s->takes_value && !inline_value) {
      if (i + 1 >= args.size()) throw invalid_input("--" + name + " needs a value");
      value = args[++i];
    } else if (!s->takes_value && !inline_value) {
      value = "true";
    }
    if (name == "audience" && !audience_from_flags) {
      config.audiences.clear();  // flags replace audiences from the file
      audience_from_flags = true;
    }
    s->apply(config, value);
  }
  return config;
}

void validate_config(const GatewayConfig& config) {
  if (config.db_url.empty()) throw invalid_input("--db is required (the Postgres database with powersync_pg)");
  if (config.jwks_file.empty() && config.jwks_url.empty())
    throw invalid_input("--jwks or --jwks-url is required (the keys that sign client tokens)");
  if (!config.jwks_url.empty()) parse_http_url(config.jwks_url);  // throws naming what is wrong
  if (config.audiences.empty()) throw invalid_input("--audience is required (tokens must carry an accepted aud)");
  if (config.crud_upload) {
    if (config.crud_tables.empty())
      throw invalid_input("--enable-crud-upload needs --crud-tables (the tables clients may write)");
    if (config.crud_role.empty())
      throw invalid_input("--enable-crud-upload needs --crud-role (the role uploads run as)");
  }
}

std::string gateway_usage() {
  std::string out =
      "powersync-gateway: PowerSync-compatible HTTP sync endpoint in front of a Postgres database\n"
      "running the powersync_pg extension.\n\n"
      "usage: powersync-gateway --db URL (--jwks FILE | --jwks-url URL) --audience AUD [options]\n\n"
      "  --config FILE           YAML file with any of the settings below as keys (e.g. max_connections: 500,\n"
      "                          crud_tables: [lists, todos]); command-line flags override it\n";
  for (const auto& s : settings()) {
    std::string flag = std::string("--") + s.name + (s.takes_value ? " VALUE" : "");
    if (flag.size() < 24) flag.resize(24, ' ');
    out += "  " + flag + s.help + "\n";
  }
  out +=
      "  --help                  show this text\n\n"
      "Endpoints: POST /sync/stream (NDJSON), GET /write-checkpoint2.json?client_id=ID,\n"
      "POST /sync/checkpoint-request, GET /probes/liveness, GET /probes/readiness,\n"
      "POST /api/crud (only with --enable-crud-upload). Clients authenticate with\n"
      "'Authorization: Token <jwt>' (or Bearer). SIGTERM/SIGINT end streams cleanly and exit.\n";
  return out;
}

}  // namespace powersync::gateway
