// Benchmark of the SQL pull API hot path (issue 3): stream all ops of one large bucket through
// powersync.bucket_ops() in pages, as the gateway does (ops stored in chunks, powersync.bucket_chunks), and
// compare with the same paged query against a plain table of one row per op with a (bucket, op_id)
// primary key (the layout before chunks: baseline) in the same run; also time bucket_checksums()
// over 1,000 buckets. Needs a database with the extension and no active sync rules (it installs a
// fake version with generated ops inside a transaction it rolls back at the end).
//   pull_bench "<libpq conninfo>" [ops=1000000] [page=10000]
#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

PGconn* conn = nullptr;

void die(const std::string& what, PGresult* res = nullptr) {
  std::fprintf(stderr, "pull_bench: %s: %s\n", what.c_str(), res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
  if (res) PQclear(res);
  PQfinish(conn);
  std::exit(1);
}

void exec(const std::string& sql) {
  PGresult* res = PQexec(conn, sql.c_str());
  if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) die(sql.substr(0, 60), res);
  PQclear(res);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Pages through the bucket with the prepared statement `name` ($1 bucket, $2 after, $3 checkpoint,
// $4 limit); reads every field like a gateway would. Returns ops received and bytes of data.
long stream(const char* name, const std::string& bucket, long checkpoint, int page, long* bytes) {
  long after = 0, total = 0;
  *bytes = 0;
  for (;;) {
    std::string a = std::to_string(after), c = std::to_string(checkpoint), l = std::to_string(page);
    const char* params[4] = {bucket.c_str(), a.c_str(), c.c_str(), l.c_str()};
    PGresult* res = PQexecPrepared(conn, name, 4, params, nullptr, nullptr, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) die(name, res);
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
      for (int f = 0; f < 7; f++) *bytes += PQgetlength(res, r, f);
    }
    if (rows > 0) after = std::atol(PQgetvalue(res, rows - 1, 0));
    total += rows;
    PQclear(res);
    if (rows < page) break;
  }
  return total;
}

void prepare(const char* name, const char* sql) {
  PGresult* res = PQprepare(conn, name, sql, 4, nullptr);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) die(name, res);
  PQclear(res);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: pull_bench <conninfo> [ops] [page]\n");
    return 2;
  }
  long ops = argc > 2 ? std::atol(argv[2]) : 1000000;
  int page = argc > 3 ? std::atoi(argv[3]) : 10000;
  conn = PQconnectdb(argv[1]);
  if (PQstatus(conn) != CONNECTION_OK) die("connect");

  auto t0 = std::chrono::steady_clock::now();
  exec("BEGIN");
  exec("UPDATE powersync.sync_rules SET state = 'STOP' WHERE state = 'ACTIVE'");
  exec("INSERT INTO powersync.sync_rules (id, content, state, snapshot_done, last_checkpoint, last_checkpoint_lsn) "
       "VALUES (990000, 'bucket_definitions: {}', 'ACTIVE', true, " + std::to_string(ops + 2000) + ", '0/1')");
  // One big bucket of realistic PUTs (~110-byte rows), and 1,000 small buckets: generated into the baseline
  // table (the per-op layout), then packed into chunks of up to 1,000 ops each as a replication flush would.
  exec("CREATE TEMP TABLE op_rows (LIKE powersync.bucket_data, PRIMARY KEY (bucket, op_id))");
  exec("INSERT INTO op_rows (bucket, op_id, sync_rules_id, op, object_type, object_id, subkey, data, "
       "checksum, cum_checksum, cum_count) "
       "SELECT '990000#big[]', i, 990000, 'PUT', 'todos', 't' || i, '7/' || md5(i::text), "
       "'{\"id\":\"t' || i || '\",\"list_id\":\"l1\",\"description\":\"Todo item number ' || i || '\",\"completed\":0}', "
       "(i::bigint * 2654435761) % 4294967296, (i::bigint * 12345) % 4294967296, i FROM generate_series(1, " + std::to_string(ops) + ") i");
  exec("INSERT INTO op_rows (bucket, op_id, sync_rules_id, op, object_type, object_id, subkey, data, "
       "checksum, cum_checksum, cum_count) "
       "SELECT '990000#small[' || (i % 1000) || ']', " + std::to_string(ops) + " + i, 990000, 'PUT', 't', i::text, "
       "'1/' || i, '{}', i, i, i FROM generate_series(1, 2000) i");
  exec("ANALYZE op_rows");
  exec("SELECT powersync._write_ops(array_agg(ROW(r.bucket, r.op_id, r.sync_rules_id, r.op, r.object_type, r.object_id, "
       "r.subkey, r.data, r.checksum, r.target_op, r.cum_checksum, r.cum_count)::powersync.bucket_data), "
       "array_agg(r.op_id / 1000)) "
       "FROM op_rows r GROUP BY r.op_id / 20000");
  exec("ANALYZE powersync.bucket_chunks");
  std::printf("setup: %ld ops in one bucket + 2000 ops in 1000 buckets (%.1fs)\n", ops, seconds_since(t0));

  prepare("api", "SELECT * FROM powersync.bucket_ops($1, $2, $3, $4)");
  prepare("raw", "SELECT op_id, op, object_type, object_id, subkey, data, checksum FROM op_rows "
                 "WHERE bucket = $1 AND op_id > $2 AND op_id <= $3 ORDER BY op_id LIMIT $4");
  long checkpoint = ops + 2000;
  long bytes = 0;
  stream("api", "990000#big[]", checkpoint, page, &bytes);  // warm the cache
  double api_best = 1e9, raw_best = 1e9;
  for (int round = 0; round < 3; round++) {
    auto s = std::chrono::steady_clock::now();
    long n = stream("raw", "990000#big[]", checkpoint, page, &bytes);
    raw_best = std::min(raw_best, seconds_since(s));
    s = std::chrono::steady_clock::now();
    long m = stream("api", "990000#big[]", checkpoint, page, &bytes);
    api_best = std::min(api_best, seconds_since(s));
    if (n != ops || m != ops) {
      std::fprintf(stderr, "pull_bench: expected %ld ops, got raw %ld api %ld\n", ops, n, m);
      return 1;
    }
  }
  std::printf("bucket_ops: %ld ops in pages of %d: %.3fs = %.0f ops/s (%.1f MB/s); direct query baseline %.3fs = "
              "%.0f ops/s; ratio api/baseline %.2f\n",
              ops, page, api_best, ops / api_best, bytes / api_best / 1e6, raw_best, ops / raw_best, raw_best / api_best);

  std::string buckets = "ARRAY[";
  for (int i = 0; i < 1000; i++) buckets += (i ? ",'" : "'") + std::string("990000#small[") + std::to_string(i) + "]'";
  buckets += "]";
  auto s = std::chrono::steady_clock::now();
  const int calls = 50;
  for (int i = 0; i < calls; i++) {
    PGresult* res = PQexec(conn, ("SELECT * FROM powersync.bucket_checksums(" + buckets + ", NULL)").c_str());
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1000) die("bucket_checksums", res);
    PQclear(res);
  }
  double per_call = seconds_since(s) / calls;
  std::printf("bucket_checksums: 1000 buckets in %.2f ms per call (%.1f us per bucket)\n", per_call * 1e3, per_call * 1e6 / 1000);
  exec("ROLLBACK");
  PQfinish(conn);
  return 0;
}
