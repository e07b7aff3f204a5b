// Commit -> checkpoint NOTIFY latency of the replication worker: N single-row commits, each timed from
// the commit's return to the NOTIFY powersync_checkpoint whose LSN covers it. Prints p50/p99/mean/max.
//   replication_latency "<conninfo>" [commits]     (table bench_latency(v int) must be in the rules)
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

uint64_t parse_lsn(const char* text) {
  unsigned hi = 0, lo = 0;
  if (sscanf(text, "%X/%X", &hi, &lo) != 2) return 0;
  return (uint64_t(hi) << 32) | lo;
}

// LSN in a NOTIFY payload {"sync_rules":V,"op_id":N,"lsn":"X/Y"}.
uint64_t payload_lsn(const char* payload) {
  const char* p = strstr(payload, "\"lsn\":\"");
  return p ? parse_lsn(p + 7) : 0;
}

PGconn* connect_or_die(const char* conninfo) {
  PGconn* c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connection failed: %s", PQerrorMessage(c));
    exit(1);
  }
  return c;
}

void exec_or_die(PGconn* c, const char* sql) {
  PGresult* r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    exit(1);
  }
  PQclear(r);
}

// Waits until a checkpoint notification with lsn >= target arrives; false after 10 s.
bool wait_for_checkpoint(PGconn* listener, uint64_t target) {
  auto deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    PQconsumeInput(listener);
    while (PGnotify* n = PQnotifies(listener)) {
      bool covers = payload_lsn(n->extra) >= target;
      PQfreemem(n);
      if (covers) return true;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd fd{PQsocket(listener), POLLIN, 0};
    poll(&fd, 1, static_cast<int>(left));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <conninfo> [commits]\n", argv[0]);
    return 2;
  }
  int commits = argc > 2 ? atoi(argv[2]) : 1000;
  PGconn* listener = connect_or_die(argv[1]);
  PGconn* writer = connect_or_die(argv[1]);
  exec_or_die(listener, "LISTEN powersync_checkpoint");
  std::vector<double> ms;
  int lost = 0;
  for (int i = 0; i < commits; ++i) {
    PQconsumeInput(listener);
    while (PGnotify* n = PQnotifies(listener)) PQfreemem(n);  // drop older notices
    // The LSN returned inside the transaction is below its commit record, so the checkpoint that
    // contains the row has a larger LSN.
    PGresult* r = PQexec(writer, "INSERT INTO bench_latency(v) VALUES (1) RETURNING pg_current_wal_insert_lsn()::text");
    auto committed = Clock::now();
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      fprintf(stderr, "insert failed: %s", PQerrorMessage(writer));
      return 1;
    }
    uint64_t lsn = parse_lsn(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!wait_for_checkpoint(listener, lsn)) {
      ++lost;
      continue;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - committed).count());
  }
  std::sort(ms.begin(), ms.end());
  if (ms.empty()) {
    printf("latency: no checkpoint notifications (%d lost)\n", lost);
    return 1;
  }
  double sum = 0;
  for (double v : ms) sum += v;
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, size_t(p * ms.size()))]; };
  printf("commit->NOTIFY latency over %zu commits: p50 %.2f ms, p99 %.2f ms, mean %.2f ms, max %.2f ms, lost %d\n",
         ms.size(), pct(0.50), pct(0.99), sum / ms.size(), ms.back(), lost);
  PQfinish(listener);
  PQfinish(writer);
  return lost == 0 ? 0 : 1;
}
