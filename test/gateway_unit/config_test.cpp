// Gateway configuration: flags, YAML file, precedence and the errors users see.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "powersync/error.h"
#include "powersync/gateway/config.h"
#include "powersync/gateway/jwks_fetch.h"

using namespace powersync::gateway;

TEST(GatewayConfig, DefaultsFollowTheContract) {
  auto c = parse_gateway_args({});
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 8080);
  EXPECT_EQ(c.max_buckets, 1000u);
  EXPECT_FALSE(c.crud_upload);
}

TEST(GatewayConfig, ContractFlags) {
  auto c = parse_gateway_args({"--db", "postgres://u@127.0.0.1:5/db", "--listen", "127.0.0.1:9090", "--jwks", "k.json",
                               "--audience", "a,b", "--enable-crud-upload", "--crud-tables", "lists, todos",
                               "--crud-role", "app_user", "--max-connections=50"});
  EXPECT_EQ(c.db_url, "postgres://u@127.0.0.1:5/db");
  EXPECT_EQ(c.listen_port, 9090);
  EXPECT_EQ(c.audiences, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(c.crud_upload);
  EXPECT_EQ(c.crud_tables, (std::vector<std::string>{"lists", "todos"}));
  EXPECT_EQ(c.crud_role, "app_user");
  EXPECT_EQ(c.max_connections, 50u);
  EXPECT_NO_THROW(validate_config(c));
}

TEST(GatewayConfig, YamlFileWithFlagsOverriding) {
  std::string path = ::testing::TempDir() + "/gw_config.yaml";
  std::ofstream(path) << "db: dbname=x\nmax_connections: 7\naudience: [one, two]\ncrud-tables:\n  - a\n  - b\n";
  auto c = parse_gateway_args({"--max-connections", "9", "--config", path});
  EXPECT_EQ(c.db_url, "dbname=x");
  EXPECT_EQ(c.max_connections, 9u);
  EXPECT_EQ(c.audiences, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(c.crud_tables, (std::vector<std::string>{"a", "b"}));
  c = parse_gateway_args({"--config", path, "--audience", "three"});
  EXPECT_EQ(c.audiences, (std::vector<std::string>{"three"}));
  std::remove(path.c_str());
}

TEST(GatewayConfig, ErrorsNameTheProblem) {
  auto message = [](std::vector<std::string> args) {
    try {
      validate_config(parse_gateway_args(args));
    } catch (const powersync::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"--bogus"}).find("unknown flag --bogus"), std::string::npos);
  EXPECT_NE(message({"--listen", "nohost"}).find("--listen"), std::string::npos);
  EXPECT_NE(message({"--listen", "h:99999"}).find("--listen"), std::string::npos);
  EXPECT_NE(message({"--max-connections", "x"}).find("--max-connections"), std::string::npos);
  EXPECT_NE(message({"--db"}).find("needs a value"), std::string::npos);
  EXPECT_NE(message({"--jwks", "k", "--audience", "a"}).find("--db is required"), std::string::npos);
  EXPECT_NE(message({"--db", "d", "--jwks", "k", "--audience", "a", "--enable-crud-upload"}).find("--crud-tables"),
            std::string::npos);
  EXPECT_NE(message({"--config", "/nonexistent.yaml"}).find("cannot read"), std::string::npos);
  GatewayConfig c;
  EXPECT_THROW(apply_yaml_config(c, "nope: 1\n", "f.yaml"), powersync::Error);
  EXPECT_THROW(apply_yaml_config(c, "[1, 2]\n", "f.yaml"), powersync::Error);
  EXPECT_THROW(apply_yaml_config(c, "db: [unclosed\n", "f.yaml"), powersync::Error);
}

TEST(GatewayConfig, HelpDocumentsEveryContractFlag) {
  std::string help = gateway_usage();
  for (const char* flag : {"--db", "--listen", "--jwks", "--audience", "--enable-crud-upload", "--crud-tables", "--crud-role",
                           "--max-connections", "--config", "--help"})
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  EXPECT_TRUE(parse_gateway_args({"--help"}).show_help);
}

TEST(JwksUrl, SplitsHttpAndHttpsUrls) {
  auto a = parse_http_url("https://auth.example.com/.well-known/jwks.json");
  EXPECT_TRUE(a.tls);
  EXPECT_EQ(a.host, "auth.example.com");
  EXPECT_EQ(a.port, "443");
  EXPECT_EQ(a.target, "/.well-known/jwks.json");
  auto b = parse_http_url("http://127.0.0.1:8081");
  EXPECT_FALSE(b.tls);
  EXPECT_EQ(b.port, "8081");
  EXPECT_EQ(b.target, "/");
  auto c = parse_http_url("http://[::1]:9000/k?x=1");
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.target, "/k?x=1");
}

TEST(JwksUrl, RejectsWhatItCannotFetchWithAReason) {
  for (const char* bad : {"ftp://h/x", "http://", "http://u:p@h/x", "http://h:0/x", "http://h:99999/x", "http://h:ab/x",
                          "https://[::1/x", "jwks.json"}) {
    try {
      parse_http_url(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const powersync::Error& e) {
      EXPECT_NE(std::string(e.what()).find("--jwks-url"), std::string::npos) << e.what();
    }
  }
  try {
    validate_config(parse_gateway_args({"--db", "d", "--audience", "a"}));
    ADD_FAILURE() << "no key source accepted";
  } catch (const powersync::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--jwks or --jwks-url is required"), std::string::npos) << e.what();
  }
}
