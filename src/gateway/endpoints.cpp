// Write checkpoints (spec §1.8, §3.2) and the CRUD upload endpoint.
#include "powersync/gateway/endpoints.h"

#include "powersync/gateway/crud.h"

namespace powersync::gateway {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

http::status status_for_sqlstate(const std::string& state) {
  if (state == "42501") return http::status::forbidden;  // permission / row-level security
  if (state.rfind("08", 0) == 0 || state.rfind("57", 0) == 0 || state.rfind("53", 0) == 0)
    return http::status::service_unavailable;
  if (state.rfind("22", 0) == 0 || state.rfind("23", 0) == 0 || state.rfind("42", 0) == 0 || state.rfind("P0", 0) == 0)
    return http::status::bad_request;
  return http::status::internal_server_error;
}

}  // namespace

std::string query_parameter(const std::string& target, const std::string& name) {
  size_t q = target.find('?');
  if (q == std::string::npos) return {};
  std::string query = target.substr(q + 1);
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string pair = query.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    size_t eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq)) == name) return eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1));
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return {};
}

void handle_write_checkpoint(Gateway& gw, unsigned version, const VerifiedToken& token, const std::string& client_id,
                             Respond respond) {
  gw.pool().run("SELECT powersync.create_write_checkpoint($1, $2)::text", {token.user_id, client_id},
                [version, respond](PgResult r) {
                  if (!r.ok() || r.rows() != 1 || r.is_null(0, 0)) {
                    respond(error_response(version, http::status::internal_server_error, "PSYNC_S2001",
                                           "could not create a write checkpoint: " + (r.ok() ? "no value" : r.error())));
                    return;
                  }
                  nlohmann::json body = {{"data", {{"write_checkpoint", std::string(r.value(0, 0))}}}};
                  respond(json_response(version, http::status::ok, body.dump()));
                });
}

void handle_checkpoint_request(Gateway& gw, unsigned version, const VerifiedToken& token, const std::string& body,
                               const std::string& query_client_id, Respond respond) {
  auto doc = nlohmann::json::parse(body.empty() ? "{}" : body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    respond(error_response(version, http::status::bad_request, "PSYNC_S2001", "the body must be a JSON object"));
    return;
  }
  std::string client_id = doc.value("client_id", query_client_id);
  auto id_it = doc.find("checkpoint_request_id");
  int64_t request_id = 0;
  try {
    if (id_it != doc.end() && id_it->is_string()) request_id = std::stoll(id_it->get<std::string>());
    else if (id_it != doc.end() && id_it->is_number_integer()) request_id = id_it->get<int64_t>();
  } catch (...) {
    request_id = 0;
  }
  if (request_id < 1) {
    respond(error_response(version, http::status::bad_request, "PSYNC_S2001",
                           "checkpoint_request_id must be an integer between 1 and 2^63-1"));
    return;
  }
  // Storage keeps the highest requested id per user/client (spec §3.2 step 3).
  gw.pool().run("SELECT powersync.request_write_checkpoint($1, $2, $3::bigint)::text",
                {token.user_id, client_id, std::to_string(request_id)}, [version, respond](PgResult r) {
                  if (!r.ok() || r.rows() != 1 || r.is_null(0, 0)) {
                    respond(error_response(version, http::status::internal_server_error, "PSYNC_S2001",
                                           "could not record the checkpoint request: " + r.error()));
                    return;
                  }
                  nlohmann::json out = {{"data", {{"checkpoint_request_id", std::string(r.value(0, 0))}}}};
                  respond(json_response(version, http::status::ok, out.dump()));
                });
}

namespace {

// One upload transaction: BEGIN, role, claims, the entries in order, COMMIT. Any failure rolls
// back and reports the entry at fault.
struct CrudRun : std::enable_shared_from_this<CrudRun> {
  Gateway& gw;
  unsigned version;
  Respond respond;
  std::shared_ptr<PgConnection> conn;
  std::vector<CrudEntry> entries;
  std::map<std::string, std::string> allowed;  // client type -> allow-list entry
  std::map<std::string, TableInfo> tables;     // allow-list entry -> catalog facts
  std::string claims_json;
  size_t next = 0;

  CrudRun(Gateway& g, unsigned v, Respond r) : gw(g), version(v), respond(std::move(r)) {}

  void fail(CrudError e) {
    nlohmann::json details = {{"reason", e.message}};
    if (e.index) {
      details["index"] = *e.index;
      details["entry"] = entries[*e.index].raw;
    }
    if (!e.sqlstate.empty()) details["sqlstate"] = e.sqlstate;
    std::string description = e.index ? "upload entry " + std::to_string(*e.index) + " failed: " + e.message : e.message;
    auto self = shared_from_this();
    auto reply = [self, e, description, details] {
      self->gw.pool().release(self->conn);
      self->respond(error_response(self->version, static_cast<http::status>(e.status), "PSYNC_S2001", description, details));
    };
    if (!conn->is_open()) {
      reply();
      return;
    }
    conn->query("ROLLBACK", {}, [reply](PgResult) { reply(); });
  }

  void load_tables(std::vector<std::string> names) {
    if (names.empty()) {
      begin();
      return;
    }
    std::string name = names.back();
    names.pop_back();
    auto self = shared_from_this();
    conn->query(
        "SELECT a.attname, t.typcategory, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
        {quote_qualified(name)}, [self, name, names](PgResult r) {
          if (!r.ok() || r.rows() == 0) {
            CrudError e;
            e.message = "table " + name + " does not exist or cannot be read" + (r.ok() ? "" : ": " + r.error());
            e.status = 500;
            self->gw.pool().release(self->conn);
            self->respond(error_response(self->version, http::status::internal_server_error, "PSYNC_S2001", e.message));
            return;
          }
          TableInfo info;
          info.qualified = quote_qualified(name);
          for (int i = 0; i < r.rows(); ++i) {
            ColumnInfo c;
            c.array = r.value(i, 1)[0] == 'A';
            std::string type = r.value(i, 2);
            c.json_like = type == "json" || type == "jsonb";
            info.columns[r.value(i, 0)] = c;
          }
          self->tables[name] = std::move(info);
          self->load_tables(names);
        });
  }

  void begin() {
    std::vector<std::pair<std::string, PgParams>> setup = {
        {"BEGIN", {}},
        {"SET LOCAL ROLE " + quote_identifier(gw.config().crud_role), {}},
        {"SELECT set_config('request.jwt.claims', $1, true)", {claims_json}},
    };
    run_setup(std::move(setup), 0);
  }

  void run_setup(std::vector<std::pair<std::string, PgParams>> steps, size_t i) {
    if (i == steps.size()) {
      apply_next();
      return;
    }
    auto self = shared_from_this();
    std::string sql = steps[i].first;
    PgParams params = steps[i].second;
    conn->query(std::move(sql), std::move(params), [self, steps, i](PgResult r) {
      if (!r.ok()) {
        CrudError e;
        e.status = 500;
        e.message = "could not start the upload transaction: " + r.error();
        e.sqlstate = r.sqlstate();
        self->fail(e);
        return;
      }
      self->run_setup(steps, i + 1);
    });
  }

  void apply_next() {
    auto self = shared_from_this();
    while (next < entries.size()) {
      const CrudEntry& entry = entries[next];
      std::optional<CrudStatement> st;
      try {
        st = build_crud_statement(entry, tables.at(allowed.at(entry.table)));
      } catch (const CrudError& e) {
        fail(e);
        return;
      }
      ++next;
      if (!st) continue;
      size_t index = entry.index;
      conn->query(st->sql, {st->row_json}, [self, index](PgResult r) {
        if (!r.ok()) {
          CrudError e;
          e.index = index;
          e.message = r.error();
          e.sqlstate = r.sqlstate();
          e.status = static_cast<int>(status_for_sqlstate(r.sqlstate()));
          self->fail(e);
          return;
        }
        self->apply_next();
      });
      return;
    }
    conn->query("COMMIT", {}, [self](PgResult r) {
      if (!r.ok()) {
        CrudError e;
        e.message = "the upload transaction could not commit: " + r.error();
        e.sqlstate = r.sqlstate();
        e.status = static_cast<int>(status_for_sqlstate(r.sqlstate()));
        self->fail(e);
        return;
      }
      self->gw.pool().release(self->conn);
      self->respond(json_response(self->version, http::status::ok, R"({"data":{"applied":)" +
                                                                        std::to_string(self->entries.size()) + "}}"));
    });
  }
};

}  // namespace

void handle_crud_upload(Gateway& gw, unsigned version, const VerifiedToken& token, const std::string& body, Respond respond) {
  if (!gw.config().crud_upload) {
    respond(error_response(version, http::status::not_found, "PSYNC_S2002",
                           "uploads are disabled; start the gateway with --enable-crud-upload"));
    return;
  }
  auto run = std::make_shared<CrudRun>(gw, version, std::move(respond));
  run->claims_json = token.claims_json;
  try {
    run->entries = parse_crud_batch(body);
  } catch (const CrudError& e) {
    nlohmann::json details = {{"reason", e.message}};
    if (e.index) details["index"] = *e.index;
    run->respond(error_response(version, http::status::bad_request, "PSYNC_S2001", e.message, details));
    return;
  }
  std::vector<std::string> names;
  for (const auto& entry : run->entries) {
    auto allowed = allowed_table(entry.table, gw.config().crud_tables);
    if (!allowed) {
      std::string msg = "table \"" + entry.table + "\" is not open for uploads (see --crud-tables)";
      run->respond(error_response(version, http::status::forbidden, "PSYNC_S2001", "upload entry " + std::to_string(entry.index) + " failed: " + msg,
                                  {{"index", entry.index}, {"entry", entry.raw}, {"reason", msg}}));
      return;
    }
    if (!run->allowed.count(entry.table)) {
      run->allowed[entry.table] = *allowed;
      if (std::find(names.begin(), names.end(), *allowed) == names.end()) names.push_back(*allowed);
    }
  }
  gw.pool().acquire([run, names](std::shared_ptr<PgConnection> conn) {
    run->conn = std::move(conn);
    run->load_tables(names);
  });
}

}  // namespace powersync::gateway
