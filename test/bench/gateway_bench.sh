#!/usr/bin/env bash
# Gateway benchmarks (results go to BENCHMARKS.md, section "Gateway"), on the real pipeline: the
# extension with one sync rule (each user's todos), rows written to a real table and replicated
# by the worker (initial snapshot), the gateway in front, and a C++ load client
# ($BUILD/bench/gateway_load, one Asio thread) so that the client is never the bottleneck.
#   1. download of one bucket of N ops (default 1,000,000) to a client that discards it: ops/s,
#      side by side with psql COPY of the same rows from powersync.bucket_ops to /dev/null;
#   2. S idle streams (default 10,000): RSS and CPU while idle, then ONE commit touching every
#      stream's bucket: time from the checkpoint NOTIFY until each stream has its checkpoint_complete.
# usage: [BENCH_OPS=N] [BENCH_STREAMS=S] [BENCH_SKIP_DOWNLOAD=1] [BENCH_SKIP_FANOUT=1] [BENCH_PERF=1]
#        BUILD=build bash test/bench/gateway_bench.sh     (run it under flock /work/wt/bench.lock)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/test/lib/pg_cluster.sh"
BUILD=${BUILD:-build}
GW_BIN="$ROOT/$BUILD/powersync-gateway"
LOAD_BIN="$ROOT/$BUILD/bench/gateway_load"
OPS=${BENCH_OPS:-1000000}
STREAMS=${BENCH_STREAMS:-10000}
[ -x "$GW_BIN" ] && [ -x "$LOAD_BIN" ] || { echo "build first: make BUILD=$BUILD all bench"; exit 1; }
work=$(mktemp -d /tmp/ps_gw_bench.XXXXXX); chmod 755 "$work"
gw_pid=
cleanup() { [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null; _pg_cluster_cleanup; rm -rf "$work"; }
trap cleanup EXIT
pg_cluster_start "$work/pg" "" "max_connections = 50
shared_buffers = ${BENCH_SHARED_BUFFERS:-1GB}" || exit 1
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres bench
export PGDATABASE=bench PATH="$PG_BIN:$PATH" PGOPTIONS="-c client_min_messages=warning"
mkdir -p "$work/keys" && node "$ROOT/test/gateway_http/make_keys.mjs" "$work/keys"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== loading $OPS todos of user 'big' and one todo for each of $STREAMS users, snapshot by the worker"
start=$(date +%s.%N)
psql -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL || exit 1
CREATE EXTENSION powersync_pg;
CREATE TABLE todos (id text PRIMARY KEY, owner text NOT NULL, description text, completed int, list_id text);
INSERT INTO todos SELECT 't' || i, 'big', 'todo number ' || i, 0, '0f8fad5b-d9cb-469f-a165-70867728950e'
  FROM generate_series(1, $OPS) i;
INSERT INTO todos SELECT 'r' || i, 's' || i, 'idle stream todo', 0, NULL FROM generate_series(0, $STREAMS - 1) i;
SELECT powersync.deploy_sync_rules('bucket_definitions:
  mine:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id');
SELECT powersync.wait_for_checkpoint('60 minutes');
SQL
version=$(psql -XAtq -c "SELECT id FROM powersync.sync_rules WHERE state = 'ACTIVE'")
python3 -c "import sys,time; print('replicated in %.1f s' % (time.time() - float(sys.argv[1])))" "$start"

ulimit -n "$(ulimit -Hn)"
port=$(pg_free_port)
"$GW_BIN" --db "host=127.0.0.1 port=$PGPORT dbname=bench user=postgres" --listen "127.0.0.1:$port" \
  --jwks "$work/keys/jwks.json" --audience powersync-test --max-connections $((STREAMS + 100)) \
  ${BENCH_GW_ARGS:-} 2>"$work/gw.log" &
gw_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/probes/readiness" >/dev/null && break; sleep 0.1; done

mint() {  # mint SUB... : one HS256 token per line
  node --input-type=module -e "
    import { mint, loadKeys } from '$ROOT/test/gateway_http/lib.mjs';
    const k = loadKeys('$work/keys');
    for (const s of process.argv.slice(1)) console.log(mint(k, 'hs256', { sub: s, exp: Math.floor(Date.now()/1000) + 3600 }));" "$@"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$gw_pid/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status"; }
hz=$(getconf CLK_TCK)

if [ -z "${BENCH_SKIP_DOWNLOAD:-}" ]; then
  echo "== 1. download of one bucket of $OPS ops (client discards the data; load $(cut -d' ' -f1-3 /proc/loadavg))"
  token=$(mint big)
  best=0
  for run in 1 2 3; do
    t0=$(cpu_ticks)
    if [ -n "${BENCH_PERF:-}" ] && [ "$run" = 3 ]; then
      perf record -F 999 -g -o "$work/perf.data" -p "$gw_pid" 2>/dev/null &
      perf_pid=$!
    fi
    out=$("$LOAD_BIN" download 127.0.0.1 "$port" "$token")
    [ -n "${perf_pid:-}" ] && { kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null; perf_pid=; }
    t1=$(cpu_ticks)
    echo "$out  gateway CPU $(( (t1 - t0) * 1000 / hz )) ms ($(( OPS * hz / (t1 - t0 + 1) )) ops per gateway CPU-second)"
    rate=$(echo "$out" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["ops_per_second"]))')
    [ "$rate" -gt "$best" ] && best=$rate
  done
  [ -n "${BENCH_PERF:-}" ] && perf report -i "$work/perf.data" --no-children -g none --percent-limit 1.5 --stdio 2>/dev/null | grep "%" | head -25
  echo "-- baseline: psql COPY of the same rows (powersync.bucket_ops, all columns) to /dev/null"
  copy="\\copy (SELECT * FROM powersync.bucket_ops('$version#mine[\"big\"]', 0, NULL, NULL)) TO '/dev/null'"
  psql -XAtq -c "$copy" >/dev/null
  start=$(date +%s.%N)
  psql -XAtq -c "$copy" >/dev/null
  base=$(python3 -c "import sys,time; print(int($OPS / (time.time() - float(sys.argv[1]))))" "$start")
  echo "{\"baseline_copy_ops_per_second\": $base}"
  python3 -c "print('ratio gateway (best run) / psql COPY: %.2f  (gateway %d ops/s, target >= 300000)' % ($best / $base, $best))"
fi

if [ -z "${BENCH_SKIP_FANOUT:-}" ]; then
  echo "== 2. $STREAMS idle streams, then one commit touching every stream's bucket"
  mint $(seq -f 's%.0f' 0 $((STREAMS - 1))) >"$work/tokens"
  rss_before=$(rss)
  coproc CLIENT { "$LOAD_BIN" fanout 127.0.0.1 "$port" "$work/tokens" "host=127.0.0.1 port=$PGPORT dbname=bench user=postgres"; }
  read -r ready opened failed connect_s <&"${CLIENT[0]}"
  echo "streams open: $opened (failed $failed) in ${connect_s}s; gateway RSS before ${rss_before} kB, with streams $(rss) kB"
  t0=$(cpu_ticks); sleep 10; t1=$(cpu_ticks)
  echo "idle for 10 s: gateway CPU $(( (t1 - t0) * 100 / hz / 10 ))% of one core, RSS $(rss) kB"
  t0=$(cpu_ticks)
  echo GO >&"${CLIENT[1]}"
  psql -XAtq -c "UPDATE todos SET completed = 1 WHERE owner <> 'big'" >/dev/null
  read -r result <&"${CLIENT[0]}"
  t1=$(cpu_ticks)
  echo "$result"
  echo "(ms_*: from the NOTIFY of the new checkpoint to each stream's checkpoint_complete; go_to_notice_ms: UPDATE + replication)"
  echo "gateway CPU for the fan-out to every stream: $(( (t1 - t0) * 1000 / hz )) ms; RSS after: $(rss) kB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  grep -E 'fan-out' "$work/gw.log" | tail -3
  [ -n "${CLIENT_PID:-}" ] && wait "$CLIENT_PID" 2>/dev/null
fi
