// Non-blocking libpq driven by Asio readiness waits on the connection's socket.
#include "powersync/gateway/pg_async.h"

#include <boost/asio/post.hpp>

namespace powersync::gateway {

PgResult PgResult::failure(std::string message, std::string sqlstate) {
  PgResult r;
  r.ok_ = false;
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  r.error_ = std::move(message);
  r.sqlstate_ = std::move(sqlstate);
  return r;
}

PgResult PgResult::from(PGresult* res) {
  PgResult r;
  ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
    r.ok_ = true;
    r.res_.reset(res, PQclear);
    return r;
  }
  const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  r = failure(primary ? primary : PQresultErrorMessage(res), state ? state : "XX000");
  PQclear(res);
  return r;
}

PgConnection::PgConnection(asio::io_context& io, std::string conninfo)
    : io_(io), conninfo_(std::move(conninfo)), socket_(io) {}

PgConnection::~PgConnection() {
  if (socket_.is_open()) socket_.release();  // libpq owns the descriptor
  if (conn_) PQfinish(conn_);
}

void PgConnection::close() {
  if (socket_.is_open()) {
    boost::system::error_code ec;
    socket_.cancel(ec);
    socket_.release();
  }
  fd_ = -1;
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  open_ = false;
}

void PgConnection::track_socket() {
  int fd = PQsocket(conn_);
  if (fd == fd_) return;
  if (socket_.is_open()) socket_.release();
  fd_ = fd;
  if (fd >= 0) socket_.assign(fd);
}

void PgConnection::connect(std::function<void(bool, const std::string&)> done) {
  conn_ = PQconnectStart(conninfo_.c_str());
  if (!conn_ || PQstatus(conn_) == CONNECTION_BAD) {
    std::string err = conn_ ? PQerrorMessage(conn_) : "out of memory";
    asio::post(io_, [done, err] { done(false, err); });
    return;
  }
  PQsetnonblocking(conn_, 1);
  poll_connect(std::move(done));
}

void PgConnection::poll_connect(std::function<void(bool, const std::string&)> done) {
  PostgresPollingStatusType st = PQconnectPoll(conn_);
  track_socket();
  if (st == PGRES_POLLING_OK) {
    open_ = true;
    wait_readable();  // notices, notifications and EOF arrive while idle too
    done(true, {});
    return;
  }
  if (st == PGRES_POLLING_FAILED || fd_ < 0) {
    std::string err = PQerrorMessage(conn_);
    close();
    done(false, err);
    return;
  }
  auto self = shared_from_this();
  auto kind = st == PGRES_POLLING_READING ? asio::posix::stream_descriptor::wait_read
                                          : asio::posix::stream_descriptor::wait_write;
  socket_.async_wait(kind, [self, done](const boost::system::error_code& ec) {
    if (ec) {
      done(false, ec.message());
      return;
    }
    if (self->conn_) self->poll_connect(done);
  });
}

void PgConnection::query(std::string sql, PgParams params, PgCallback done) {
  if (!open_) {
    asio::post(io_, [done] { done(PgResult::failure("the database connection is not open")); });
    return;
  }
  queue_.push_back(Pending{std::move(sql), std::move(params), std::move(done)});
  if (!busy_) start_next();
}

void PgConnection::start_next() {
  if (busy_ || queue_.empty() || !open_) return;
  const Pending& p = queue_.front();
  std::vector<const char*> values;
  values.reserve(p.params.size());
  for (const auto& v : p.params) values.push_back(v ? v->c_str() : nullptr);
  if (!PQsendQueryParams(conn_, p.sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0)) {
    fail_all(PQerrorMessage(conn_));
    return;
  }
  busy_ = true;
  result_.reset();
  flush_output();
}

void PgConnection::flush_output() {
  int r = PQflush(conn_);
  if (r < 0) {
    fail_all(PQerrorMessage(conn_));
    return;
  }
  if (r == 0 || writing_) return;
  writing_ = true;
  auto self = shared_from_this();
  socket_.async_wait(asio::posix::stream_descriptor::wait_write, [self](const boost::system::error_code& ec) {
    self->writing_ = false;
    if (ec || !self->conn_) return;
    self->flush_output();
  });
}

void PgConnection::wait_readable() {
  if (reading_ || !open_) return;
  reading_ = true;
  auto self = shared_from_this();
  socket_.async_wait(asio::posix::stream_descriptor::wait_read, [self](const boost::system::error_code& ec) {
    self->reading_ = false;
    if (ec || !self->conn_) return;
    self->on_readable();
  });
}

void PgConnection::on_readable() {
  if (!PQconsumeInput(conn_)) {
    fail_all(PQerrorMessage(conn_));
    return;
  }
  drain_notifications();
  while (busy_ && !PQisBusy(conn_)) {
    PGresult* res = PQgetResult(conn_);
    if (res) {
      // Keep the first result (or the first error) of the statement; later ones are dropped.
      if (!result_ || (result_->ok() && PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK))
        result_ = PgResult::from(res);
      else
        PQclear(res);
      continue;
    }
    busy_ = false;
    Pending done = std::move(queue_.front());
    queue_.pop_front();
    PgResult r = result_ ? std::move(*result_) : PgResult::failure("no result");
    result_.reset();
    start_next();
    done.done(std::move(r));
    if (!conn_) return;  // the callback closed us
  }
  if (PQstatus(conn_) == CONNECTION_BAD) {
    fail_all("the database connection was lost");
    return;
  }
  wait_readable();
}

void PgConnection::drain_notifications() {
  while (PGnotify* n = PQnotifies(conn_)) {
    std::string channel = n->relname, payload = n->extra ? n->extra : "";
    PQfreemem(n);
    if (on_notify) on_notify(channel, payload);
  }
}

void PgConnection::fail_all(const std::string& error) {
  std::deque<Pending> pending;
  pending.swap(queue_);
  busy_ = false;
  close();
  for (auto& p : pending) p.done(PgResult::failure(error));
  if (on_broken) on_broken(error);
}

PgPool::PgPool(asio::io_context& io, std::string conninfo, size_t size)
    : io_(io), conninfo_(std::move(conninfo)), slots_(size), leased_(size, false) {}

void PgPool::start() {
  for (size_t i = 0; i < slots_.size(); ++i) open_slot(i);
}

void PgPool::stop() {
  stopped_ = true;
  for (auto& c : slots_)
    if (c) c->close();
}

void PgPool::open_slot(size_t slot) {
  if (stopped_) return;
  auto conn = std::make_shared<PgConnection>(io_, conninfo_);
  slots_[slot] = conn;
  leased_[slot] = false;
  conn->on_broken = [this, slot](const std::string& error) {
    last_error_ = error;
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(1));
    timer->async_wait([this, slot, timer](const boost::system::error_code&) { open_slot(slot); });
  };
  conn->connect([this, slot, conn](bool ok, const std::string& error) {
    if (slots_[slot] != conn) return;
    if (!ok) {
      last_error_ = error;
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(1));
      timer->async_wait([this, slot, timer](const boost::system::error_code&) { open_slot(slot); });
      return;
    }
    serve_waiters();
  });
}

void PgPool::acquire(std::function<void(std::shared_ptr<PgConnection>)> use) {
  waiters_.push_back(std::move(use));
  serve_waiters();
}

void PgPool::release(std::shared_ptr<PgConnection> conn) {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i] == conn) leased_[i] = false;
  serve_waiters();
}

void PgPool::serve_waiters() {
  for (size_t i = 0; i < slots_.size() && !waiters_.empty(); ++i) {
    if (leased_[i] || !slots_[i] || !slots_[i]->is_open()) continue;
    leased_[i] = true;
    auto use = std::move(waiters_.front());
    waiters_.pop_front();
    auto conn = slots_[i];
    asio::post(io_, [use = std::move(use), conn] { use(conn); });
  }
}

void PgPool::run(std::string sql, PgParams params, PgCallback done) {
  acquire([this, sql = std::move(sql), params = std::move(params), done = std::move(done)](std::shared_ptr<PgConnection> c) mutable {
    c->query(std::move(sql), std::move(params), [this, c, done = std::move(done)](PgResult r) {
      release(c);
      done(std::move(r));
    });
  });
}

size_t PgPool::open_connections() const {
  size_t n = 0;
  for (const auto& c : slots_) n += c && c->is_open();
  return n;
}

std::string quote_identifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string pg_array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace powersync::gateway
