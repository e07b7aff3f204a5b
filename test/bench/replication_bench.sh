#!/usr/bin/env bash
# Replication benchmarks (issue 3): throughput from commit to the checkpoint containing the rows (1M rows
# in one transaction, in 1,000-row transactions, 1M updates), the raw decode rate of the same WAL with
# test_decoding side by side, the initial snapshot of 1M rows, and commit -> NOTIFY latency.
#   PS_PG_PREFIX=/opt/pg-x BUILD=build-x bash test/bench/replication_bench.sh   [ROWS=1000000 COMMITS=1000]
#   BENCH_LOCALE=icu runs it in a database with the ICU collation en-US (what users usually have; the test
#   clusters are --locale=C, where text comparisons are plain memcmp).
#   BENCH_CONF='max_wal_senders = 0' adds settings to the cluster (that one forces the worker's peek fallback,
#   for a side-by-side with streaming).
#   PHASES=snapshot runs only the initial snapshot (step 1), for iterating on it; the default runs everything.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
ROWS=${ROWS:-1000000}
COMMITS=${COMMITS:-1000}
PHASES=${PHASES:-all}
case "$PHASES" in all | snapshot) ;; *) echo "PHASES must be all or snapshot, got '$PHASES'" >&2; exit 2 ;; esac
if [ -n "${PS_PG_PREFIX:-}" ]; then PG_BIN=$(bash test/lib/private_pg.sh "$PS_PG_PREFIX"); export PG_BIN; fi
source test/lib/pg_cluster.sh
make BUILD="$BUILD" "$BUILD/bench/replication_latency" >/dev/null
dir=$(mktemp -d /tmp/ps_repl_bench.XXXXXX)
pg_cluster_start "$dir" "" "shared_buffers = 512MB
max_wal_size = 8GB
checkpoint_timeout = 30min
work_mem = 64MB
${BENCH_CONF:-}" >/dev/null
# Stop the server and free its disk (a 1M-row run holds GBs of WAL) however the run ends.
trap 'pg_cluster_stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
q() { psql -X -q -v ON_ERROR_STOP=1 -tA "$@"; }
case "${BENCH_LOCALE:-c}" in
  c) ;;
  icu) q -c "CREATE DATABASE bench TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
       export PGDATABASE=bench ;;
  *) echo "BENCH_LOCALE must be c or icu, got '$BENCH_LOCALE'" >&2; exit 2 ;;
esac
now() { date +%s.%N; }
rate() { python3 -c "import sys; n,t=float(sys.argv[1]),float(sys.argv[2]); print(f'{n/t:,.0f}')" "$1" "$2"; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.2f}')" "$1" "$2"; }
# CPU seconds used so far by the replication worker (user + system): on a shared machine the wall clock
# depends on the other load, the worker's CPU time per row does much less.
worker_cpu() {
  local pid; pid=$(q -c "SELECT worker_pid FROM powersync.replication_state")
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || echo 0
}
# CPU seconds of the worker's threads other than its main one (powersync.evaluation_thread), included in
# worker_cpu: shown apart, so that the main thread's cost per row (the bottleneck) stays visible.
thread_cpu() {
  local pid; pid=$(q -c "SELECT worker_pid FROM powersync.replication_state")
  cat /proc/"$pid"/task/*/stat 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" -v pid="$pid" \
    '$1 != pid { t += $14 + $15 } END { printf "%.2f", t / hz }'
}
# The walsender that decodes for the worker when it streams (read_mode stream): its CPU time too, so the
# cost moved off the worker stays visible. "pid:seconds"; a new walsender (reconnect) starts from 0.
sender_cpu() {
  local pid; pid=$(q -c "SELECT pid FROM pg_stat_replication WHERE application_name = 'powersync_worker' LIMIT 1")
  [ -n "$pid" ] || { echo "0:0"; return; }
  echo "$pid:$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || echo 0)"
}
checkpoints() { q -c "SELECT count(*) FROM powersync.checkpoints"; }
cpu_mark() { C0=$(worker_cpu); S0=$(sender_cpu); T0=$(thread_cpu); K0=$(checkpoints); }
cpu_note() {  # $1 = worker cpu at start, $2 = rows (walsender cpu at start in S0)
  local c s t; c=$(worker_cpu); s=$(sender_cpu); t=$(thread_cpu)
  python3 -c "
import sys
c=float(sys.argv[2])-float(sys.argv[1]); n=float(sys.argv[3])
p0,s0=sys.argv[4].split(':'); p1,s1=sys.argv[5].split(':')
w=float(s1)-(float(s0) if p0==p1 else 0.0)
e=max(float(sys.argv[7])-float(sys.argv[6]), 0.0)
print(f'  worker CPU {c:.2f} s = {n/max(c,0.01):,.0f} rows per worker CPU-second')
print(f'    of which evaluation thread {e:.2f} s; main thread {c-e:.2f} s = {n/max(c-e,0.01):,.0f} rows per main-thread CPU-second')
if p1 != '0':
    note = '' if p0 == p1 else ' (new walsender during the step)'
    print(f'  walsender CPU {w:.2f} s{note}; worker + walsender = {n/max(c+w,0.01):,.0f} rows per CPU-second')
" "$1" "$c" "$2" "${S0:-0:0}" "$s" "${T0:-0}" "$t"
}

q -c "CREATE EXTENSION powersync_pg"
q -c "CREATE TABLE items (id bigint PRIMARY KEY, owner text NOT NULL, name text, n int)"
q -c "CREATE TABLE bench_latency (id bigserial PRIMARY KEY, v int)"
RULES='
bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner
    data:
      - SELECT id, owner, name, n FROM items WHERE owner = bucket.owner
  global:
    data:
      - SELECT id, name FROM items
      - SELECT id, v FROM bench_latency
'
echo "== Replication benchmark: $ROWS rows, rules with 2 bucket definitions (2 ops per row), $(nproc) cores, database $(q -c "SELECT datname || ' collation ' || CASE datlocprovider WHEN 'i' THEN 'icu ' || daticulocale ELSE datcollate END FROM pg_database WHERE datname = current_database()")"

# 1. Initial snapshot of existing rows.
q -c "INSERT INTO items SELECT g, 'user' || (g % 1000), 'item ' || g, 0 FROM generate_series(1, $ROWS) g"
q -c "SELECT powersync.wait_replicated('300 s')" >/dev/null
cpu_mark; c0=$C0
t0=$(now)
echo "SELECT powersync.deploy_sync_rules(:'rules')" | q -v rules="$RULES" >/dev/null
q -c "SELECT powersync.wait_for_checkpoint('1800 s')" >/dev/null
t1=$(now)
echo "snapshot: $ROWS rows copied and active in $(secs $t0 $t1) s = $(rate $ROWS $(secs $t0 $t1)) rows/s"
cpu_note "$c0" "$ROWS"
echo "  worker read mode: $(q -c "SELECT coalesce(read_mode, '?') || coalesce(' (' || read_mode_reason || ')', '') FROM powersync.replication_state")"
[ "$PHASES" = snapshot ] && exit 0

# test_decoding baseline: decode the WAL of a workload (up to its commit LSN) with test_decoding.
q -c "SELECT 'ok' FROM pg_create_logical_replication_slot('bench_td', 'test_decoding')" >/dev/null
baseline() {  # $1 = end lsn, $2 = rows
  local s e
  s=$(now)
  q -c "SELECT count(*) FROM pg_logical_slot_get_changes('bench_td', '$1', NULL, 'skip-empty-xacts', '1')" >/dev/null
  e=$(now)
  echo "  test_decoding, same WAL: $(secs $s $e) s = $(rate $2 $(secs $s $e)) rows/s"
}
measure() {  # $1 = label, $2 = rows, $3 = start time, $4 = commit time of the last transaction
  local done_at
  q -c "SELECT powersync.wait_for_checkpoint('1800 s')" >/dev/null
  done_at=$(now)
  local total; total=$(secs $3 $done_at)
  echo "$1: $2 rows, first commit -> checkpoint $total s = $(rate $2 $total) rows/s (last commit -> checkpoint $(secs $4 $done_at) s)"
  cpu_note "$C0" "$2"
  # Each round with ops writes one checkpoint: rows per round shows how well rounds amortize their fixed costs.
  echo "  $(( $(checkpoints) - K0 )) checkpoints (rounds with ops)"
  OURS=$total
}

# 2. 1M rows inserted in one transaction.
q -c "SELECT pg_replication_slot_advance('bench_td', pg_current_wal_lsn())" >/dev/null
cpu_mark
t0=$(now)
q -c "INSERT INTO items SELECT g, 'user' || (g % 1000), 'item ' || g, 0 FROM generate_series($ROWS + 1, 2 * $ROWS) g"
t1=$(now)
end=$(q -c "SELECT pg_current_wal_lsn()")
measure "insert, one transaction" $ROWS $t1 $t1
baseline "$end" $ROWS

# 3. 1M rows in 1,000-row transactions.
q -c "SELECT pg_replication_slot_advance('bench_td', pg_current_wal_lsn())" >/dev/null
cpu_mark
batches=$((ROWS / 1000))
t0=$(now)
for ((b = 0; b < batches; b++)); do
  lo=$((2 * ROWS + b * 1000 + 1))
  echo "INSERT INTO items SELECT g, 'user' || (g % 1000), 'item ' || g, 0 FROM generate_series($lo, $((lo + 999))) g;"
done | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
t1=$(now)
end=$(q -c "SELECT pg_current_wal_lsn()")
measure "insert, 1,000-row transactions" $ROWS $t0 $t1
baseline "$end" $ROWS

# 4. 1M updates in one transaction.
q -c "SELECT pg_replication_slot_advance('bench_td', pg_current_wal_lsn())" >/dev/null
cpu_mark
t0=$(now)
q -c "UPDATE items SET n = n + 1 WHERE id <= $ROWS"
t1=$(now)
end=$(q -c "SELECT pg_current_wal_lsn()")
measure "update, one transaction" $ROWS $t1 $t1
baseline "$end" $ROWS
q -c "SELECT pg_drop_replication_slot('bench_td')" >/dev/null

# 5. Latency of single-row commits.
"$BUILD/bench/replication_latency" "host=$PGHOST port=$PGPORT user=postgres dbname=${PGDATABASE:-postgres}" "$COMMITS"
q -c "SELECT sum(op_count) || ' ops in ' || count(DISTINCT bucket) || ' buckets, ' || count(*) || ' chunks (' || pg_size_pretty(pg_total_relation_size('powersync.bucket_chunks')) || ')' FROM powersync.bucket_chunks"
q -c "SELECT 'current_data: ' || count(*) || ' rows (' || count(row_image) || ' with a row image), '
             || pg_size_pretty(pg_total_relation_size('powersync.current_data')) FROM powersync.current_data"
