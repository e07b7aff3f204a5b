// Non-blocking libpq on Boost.Asio: one PgConnection runs its queries one after another without
// blocking the event loop; PgPool hands idle connections out and reconnects broken ones.
#pragma once

#include <libpq-fe.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace powersync::gateway {

namespace asio = boost::asio;

// The outcome of one statement: rows (text format) or an error with its SQLSTATE.
class PgResult {
 public:
  PgResult() = default;
  static PgResult failure(std::string message, std::string sqlstate = "08006");
  static PgResult from(PGresult* res);  // takes ownership

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& sqlstate() const { return sqlstate_; }
  int rows() const { return res_ ? PQntuples(res_.get()) : 0; }
  int column(const char* name) const { return res_ ? PQfnumber(res_.get(), name) : -1; }
  bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col); }
  const char* value(int row, int col) const { return PQgetvalue(res_.get(), row, col); }
  int length(int row, int col) const { return PQgetlength(res_.get(), row, col); }

 private:
  bool ok_ = false;
  std::string error_;
  std::string sqlstate_;
  std::shared_ptr<PGresult> res_;
};

using PgParams = std::vector<std::optional<std::string>>;
using PgCallback = std::function<void(PgResult)>;

class PgConnection : public std::enable_shared_from_this<PgConnection> {
 public:
  PgConnection(asio::io_context& io, std::string conninfo);
  ~PgConnection();

  void connect(std::function<void(bool ok, const std::string& error)> done);
  // Queues a statement; callbacks run on the io_context in submission order.
  void query(std::string sql, PgParams params, PgCallback done);
  bool is_open() const { return open_; }
  bool idle() const { return queue_.empty() && !busy_; }
  void close();

  // Called for each NOTIFY received (LISTEN connections) and once when the connection breaks.
  std::function<void(const std::string& channel, const std::string& payload)> on_notify;
  std::function<void(const std::string& error)> on_broken;

 private:
  struct Pending {
    std::string sql;
    PgParams params;
    PgCallback done;
  };
  void poll_connect(std::function<void(bool, const std::string&)> done);
  void track_socket();
  void start_next();
  void flush_output();
  void wait_readable();
  void on_readable();
  void drain_notifications();
  void fail_all(const std::string& error);

  asio::io_context& io_;
  std::string conninfo_;
  PGconn* conn_ = nullptr;
  int fd_ = -1;
  asio::posix::stream_descriptor socket_;
  bool open_ = false;
  bool busy_ = false;
  bool reading_ = false;
  bool writing_ = false;
  std::deque<Pending> queue_;
  std::optional<PgResult> result_;  // the current statement's result, until libpq says it is done
};

class PgPool {
 public:
  PgPool(asio::io_context& io, std::string conninfo, size_t size);
  void start();
  void stop();
  // Calls `use` with an idle connection as soon as one is free; the user must release() it.
  void acquire(std::function<void(std::shared_ptr<PgConnection>)> use);
  void release(std::shared_ptr<PgConnection> conn);
  // One statement on any free connection.
  void run(std::string sql, PgParams params, PgCallback done);
  size_t open_connections() const;
  const std::string& last_error() const { return last_error_; }

 private:
  void open_slot(size_t slot);
  void serve_waiters();

  asio::io_context& io_;
  std::string conninfo_;
  std::vector<std::shared_ptr<PgConnection>> slots_;
  std::vector<bool> leased_;
  std::deque<std::function<void(std::shared_ptr<PgConnection>)>> waiters_;
  std::string last_error_;
  bool stopped_ = false;
};

// Quotes a Postgres identifier ("a""b"); qualified names are quoted part by part by the caller.
std::string quote_identifier(const std::string& name);
// A text[]/jsonb[] array literal with every element quoted.
std::string pg_array_literal(const std::vector<std::string>& items);

}  // namespace powersync::gateway
