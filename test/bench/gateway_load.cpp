// Load client of the gateway benchmarks (test/bench/gateway_bench.sh): many sync streams on one
// Asio thread, HTTP parsed by Beast, so the client is never what limits the gateway.
//   gateway_load download HOST PORT TOKEN
//       one stream; discards the data, counts ops until the first checkpoint_complete; prints JSON.
//   gateway_load fanout HOST PORT TOKENS_FILE CONNINFO
//       one stream per token; prints "READY <open> <failed> <seconds>" once every stream has its first
//       checkpoint_complete, then waits for "GO" on stdin. It LISTENs on powersync_checkpoint itself and
//       measures, per stream, the time from the NOTIFY of the first newer checkpoint to the stream's
//       checkpoint_complete for it (or a later one); prints JSON with p50/p99/all.
#include <libpq-fe.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The op id of a {"checkpoint_complete":{"last_op_id":"N"}} line, or -1 for any other line.
int64_t complete_op_id(const char* p, size_t n) {
  static const char kPrefix[] = "{\"checkpoint_complete\":{\"last_op_id\":\"";
  if (n < sizeof(kPrefix) - 1 || std::memcmp(p, kPrefix, sizeof(kPrefix) - 1) != 0) return -1;
  int64_t v = 0;
  for (size_t i = sizeof(kPrefix) - 1; i < n && p[i] >= '0' && p[i] <= '9'; ++i) v = v * 10 + (p[i] - '0');
  return v;
}

size_t count_ops(const char* p, size_t n) {
  static const char kOp[] = "\"op_id\":\"";
  size_t count = 0;
  const char* end = p + n;
  while (const void* hit = memmem(p, static_cast<size_t>(end - p), kOp, sizeof(kOp) - 1)) {
    ++count;
    p = static_cast<const char*>(hit) + sizeof(kOp) - 1;
  }
  return count;
}

struct Load;

// One POST /sync/stream; its chunked body is split into lines as it arrives.
struct Stream : std::enable_shared_from_this<Stream> {
  Stream(Load& load, size_t index, std::string token);
  void start(const tcp::endpoint& ep);
  void read();
  void on_line(const char* p, size_t n);

  Load& load;
  size_t index;
  tcp::socket socket;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  http::response_parser<http::empty_body> parser;
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_body;
  std::string carry;  // an incomplete line
  int64_t last_complete = -1;
  bool counted_first = false;
  size_t ops = 0, bytes = 0;
  int64_t reached_op = -1;
  Clock::time_point reached_at;
};

struct Load {
  asio::io_context io;
  tcp::endpoint endpoint;
  std::vector<std::shared_ptr<Stream>> streams;
  std::vector<std::string> tokens;
  size_t next_to_open = 0, in_flight = 0, max_in_flight = 256;
  size_t first_completes = 0, failures = 0, finished_streams = 0;
  bool download = false;
  bool go = false;
  int64_t baseline = 0;                           // highest checkpoint seen before GO
  std::map<int64_t, Clock::time_point> notified;  // checkpoint op id -> NOTIFY arrival
  size_t reached = 0;
  Clock::time_point started = Clock::now(), go_at;
  std::function<void()> on_all_open, on_all_reached;

  void open_more() {
    while (in_flight < max_in_flight && next_to_open < tokens.size()) {
      auto s = std::make_shared<Stream>(*this, next_to_open, tokens[next_to_open]);
      streams.push_back(s);
      ++next_to_open;
      ++in_flight;
      s->start(endpoint);
    }
  }
  void stream_settled(bool ok) {  // first complete received, or the stream failed before it
    --in_flight;
    if (ok) ++first_completes;
    else ++failures;
    open_more();
    if (first_completes + failures == tokens.size() && on_all_open) on_all_open();
  }
  void stream_reached(Stream& s, int64_t op) {
    if (!go || s.reached_op >= 0 || op <= baseline) return;
    s.reached_op = op;
    s.reached_at = Clock::now();
    if (++reached == first_completes && on_all_reached) on_all_reached();
  }
};

Stream::Stream(Load& l, size_t i, std::string token) : load(l), index(i), socket(l.io), request(http::verb::post, "/sync/stream", 11) {
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::authorization, "Token " + token);
  request.set(http::field::content_type, "application/json");
  request.body() = "{\"raw_data\":true}";
  request.prepare_payload();
  parser.body_limit(boost::none);
  on_body = [this](std::uint64_t, beast::string_view body, beast::error_code&) -> std::size_t {
    bytes += body.size();
    size_t start = 0;
    for (;;) {
      const void* nl = std::memchr(body.data() + start, '\n', body.size() - start);
      if (!nl) break;
      size_t end = static_cast<size_t>(static_cast<const char*>(nl) - body.data());
      if (carry.empty()) on_line(body.data() + start, end - start);
      else {
        carry.append(body.data() + start, end - start);
        on_line(carry.data(), carry.size());
        carry.clear();
      }
      start = end + 1;
    }
    carry.append(body.data() + start, body.size() - start);
    return body.size();
  };
  parser.on_chunk_body(on_body);  // the parser keeps a reference
}

void Stream::start(const tcp::endpoint& ep) {
  auto self = shared_from_this();
  socket.async_connect(ep, [self](beast::error_code ec) {
    if (ec) return self->load.stream_settled(false);
    http::async_write(self->socket, self->request, [self](beast::error_code ec, size_t) {
      if (ec) return self->load.stream_settled(false);
      self->read();
    });
  });
}

void Stream::read() {
  auto self = shared_from_this();
  http::async_read_some(socket, buffer, parser, [self](beast::error_code ec, size_t) {
    if (!ec && self->parser.is_header_done() && self->parser.get().result() != http::status::ok) {
      ec = http::error::bad_target;  // any non-200 answer counts as a failed stream
    }
    if (ec || self->parser.is_done()) {
      if (!self->counted_first) {
        self->counted_first = true;
        self->load.stream_settled(false);
      }
      ++self->load.finished_streams;
      return;
    }
    self->read();
  });
}

void Stream::on_line(const char* p, size_t n) {
  if (load.download) ops += count_ops(p, n);
  int64_t op = complete_op_id(p, n);
  if (op < 0) return;
  last_complete = op;
  if (!counted_first) {
    counted_first = true;
    load.stream_settled(true);
  }
  load.stream_reached(*this, op);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

int run_download(Load& load, const std::string& token) {
  load.download = true;
  load.tokens = {token};
  Clock::time_point done_at;
  load.on_all_open = [&] {
    done_at = Clock::now();
    load.io.stop();
  };
  load.open_more();
  load.io.run();
  if (load.first_completes != 1) {
    std::cerr << "gateway_load: the download stream failed\n";
    return 1;
  }
  const Stream& s = *load.streams.front();
  double seconds = ms_between(load.started, done_at) / 1000.0;
  std::printf("{\"ops\": %zu, \"bytes\": %zu, \"seconds\": %.3f, \"ops_per_second\": %.0f}\n", s.ops, s.bytes, seconds,
              s.ops / seconds);
  return 0;
}

// Listens for checkpoint notices on its own connection: the time origin of the fan-out figures.
struct NoticeWatch {
  NoticeWatch(Load& load, const std::string& conninfo) : load(load), fd(load.io) {
    conn = PQconnectdb(conninfo.c_str());
    if (PQstatus(conn) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn));
    PQclear(PQexec(conn, "LISTEN powersync_checkpoint"));
    fd.assign(PQsocket(conn));
    wait();
  }
  ~NoticeWatch() {
    fd.release();
    PQfinish(conn);
  }
  void wait() {
    fd.async_wait(asio::posix::stream_descriptor::wait_read, [this](beast::error_code ec) {
      if (ec) return;
      Clock::time_point now = Clock::now();
      PQconsumeInput(conn);
      while (PGnotify* n = PQnotifies(conn)) {
        const char* at = std::strstr(n->extra, "\"op_id\":");
        int64_t op = at ? std::strtoll(at + 8, nullptr, 10) : -1;
        if (load.go && op > load.baseline) load.notified.emplace(op, now);
        PQfreemem(n);
      }
      wait();
    });
  }
  Load& load;
  PGconn* conn = nullptr;
  asio::posix::stream_descriptor fd;
};

int run_fanout(Load& load, const std::string& tokens_file, const std::string& conninfo) {
  load.tokens = read_lines(tokens_file);
  NoticeWatch notices(load, conninfo);
  asio::posix::stream_descriptor input(load.io, ::dup(0));
  asio::streambuf input_buf;
  asio::steady_timer deadline(load.io);
  auto finish = [&] { load.io.stop(); };
  load.on_all_open = [&] {
    std::printf("READY %zu %zu %.2f\n", load.first_completes, load.failures, ms_between(load.started, Clock::now()) / 1000.0);
    std::fflush(stdout);
    asio::async_read_until(input, input_buf, '\n', [&](beast::error_code ec, size_t) {
      if (ec) return finish();
      for (const auto& s : load.streams) load.baseline = std::max(load.baseline, s->last_complete);
      load.go = true;
      load.go_at = Clock::now();
      deadline.expires_after(std::chrono::seconds(120));
      deadline.async_wait([&](beast::error_code ec) {
        if (!ec) finish();
      });
    });
  };
  load.on_all_reached = finish;
  load.open_more();
  load.io.run();

  // Each stream's latency counts from the NOTIFY of the checkpoint it completed (or of the first
  // notice, if the stream completed a checkpoint whose notice this client never saw).
  std::vector<double> ms;
  double notice_after_go = -1;
  if (!load.notified.empty()) notice_after_go = ms_between(load.go_at, load.notified.begin()->second);
  for (const auto& s : load.streams) {
    if (s->reached_op < 0 || load.notified.empty()) continue;
    auto it = load.notified.find(s->reached_op);
    Clock::time_point origin = it != load.notified.end() ? it->second : load.notified.begin()->second;
    ms.push_back(ms_between(origin, s->reached_at));
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms.empty() ? -1.0 : ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
  std::printf(
      "{\"streams\": %zu, \"failures\": %zu, \"notified\": %zu, \"checkpoints_noticed\": %zu, \"go_to_notice_ms\": %.1f, "
      "\"ms_p50\": %.1f, \"ms_p99\": %.1f, \"ms_all\": %.1f}\n",
      load.first_completes, load.failures, ms.size(), load.notified.size(), notice_after_go, pct(0.5), pct(0.99),
      ms.empty() ? -1.0 : ms.back());
  std::fflush(stdout);
  return ms.size() == load.first_completes ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || (std::string(argv[1]) == "fanout" && argc < 6)) {
    std::cerr << "usage: gateway_load download HOST PORT TOKEN\n"
                 "       gateway_load fanout HOST PORT TOKENS_FILE CONNINFO\n";
    return 2;
  }
  try {
    Load load;
    load.endpoint = tcp::endpoint(asio::ip::make_address(argv[2]), static_cast<unsigned short>(std::stoi(argv[3])));
    if (std::string(argv[1]) == "download") return run_download(load, argv[4]);
    return run_fanout(load, argv[4], argv[5]);
  } catch (const std::exception& e) {
    std::cerr << "gateway_load: " << e.what() << "\n";
    return 1;
  }
}
