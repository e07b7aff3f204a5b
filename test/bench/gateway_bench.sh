#!/usr/bin/env bash
# Gateway benchmarks (results go to BENCHMARKS.md, section "Gateway"):
#   1. download of one bucket of N ops (default 1,000,000) to a client that discards it: ops/s,
#      side by side with the baseline of fetching the same ops straight from Postgres with psql
#      in the same 1,000-op pages (what the gateway itself has to read);
#   2. S idle streams (default 10,000) on one gateway: RSS and CPU while idle, then one commit
#      touching every stream's bucket: time until every stream received the new checkpoint.
# Loopback only, against the pull-API contract fixture. usage: bash test/bench/gateway_bench.sh
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/test/lib/pg_cluster.sh"
BUILD=${BUILD:-build}
GW_BIN="$ROOT/$BUILD/powersync-gateway"
OPS=${BENCH_OPS:-1000000}
STREAMS=${BENCH_STREAMS:-10000}
work=$(mktemp -d /tmp/ps_gw_bench.XXXXXX); chmod 755 "$work"
gw_pid=
cleanup() { [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null; _pg_cluster_cleanup; rm -rf "$work"; }
trap cleanup EXIT
pg_cluster_start "$work/pg" "" "max_connections = 50
shared_buffers = 256MB" || exit 1
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres bench
export PGDATABASE=bench PATH="$PG_BIN:$PATH" PGOPTIONS="-c client_min_messages=warning"
psql -XAtq -v ON_ERROR_STOP=1 -f "$ROOT/test/gateway_http/contract_fixture.sql" >/dev/null
psql -XAtq -c "CREATE INDEX ON powersync.fx_user_buckets (user_id)" >/dev/null
mkdir -p "$work/keys" && node "$ROOT/test/gateway_http/make_keys.mjs" "$work/keys"

echo "== loading $OPS ops into one bucket"
psql -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO powersync.fx_user_buckets VALUES ('big', 'big', 3);
INSERT INTO powersync.fx_ops (bucket, op, object_type, object_id, subkey, data, checksum)
SELECT 'big', 'PUT', 'todos', i::text, 'todos/' || i,
       '{"id":"' || i || '","description":"todo number ' || i || '","completed":0,"list_id":"0f8fad5b-d9cb-469f-a165-70867728950e"}',
       (i * 2654435761) % 4294967296
FROM generate_series(1, $OPS) i;
ANALYZE powersync.fx_ops;
SELECT powersync.fx_commit();
SQL

ulimit -n "$(ulimit -Hn)"
port=$(pg_free_port)
"$GW_BIN" --db "host=127.0.0.1 port=$PGPORT dbname=bench user=postgres" --listen "127.0.0.1:$port" \
  --jwks "$work/keys/jwks.json" --audience powersync-test --max-connections $((STREAMS + 100)) \
  --ops-fetch-limit "${BENCH_FETCH:-5000}" 2>"$work/gw.log" &
gw_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/probes/readiness" >/dev/null && break; sleep 0.1; done

mint() {  # mint SUB... : one HS256 token per line
  node --input-type=module -e "
    import { mint, loadKeys } from '$ROOT/test/gateway_http/lib.mjs';
    const k = loadKeys('$work/keys');
    for (const s of process.argv.slice(1)) console.log(mint(k, 'hs256', { sub: s, exp: Math.floor(Date.now()/1000) + 3600 }));" "$@"
}

if [ -z "${BENCH_SKIP_DOWNLOAD:-}" ]; then
echo "== 1. download of one bucket of $OPS ops (client discards the data)"
gw_ticks() { awk '{print $14 + $15}' "/proc/$gw_pid/stat"; }
for run in 1 2; do
  t0=$(gw_ticks)
  node "$ROOT/test/bench/gateway_download.mjs" "http://127.0.0.1:$port" "$(mint big)" "$OPS"
  t1=$(gw_ticks)
  echo "gateway CPU for this download: $(( (t1 - t0) * 1000 / $(getconf CLK_TCK) )) ms ($(( OPS * $(getconf CLK_TCK) / (t1 - t0 + 1) )) ops per gateway CPU-second)"
done
echo "-- baseline: the same ops read straight from Postgres with psql, 1,000-op pages"
start=$(date +%s.%N)
psql -XAtq >/dev/null <<SQL
DO \$\$ DECLARE after bigint := 0; last bigint; BEGIN
  LOOP
    SELECT max(op_id) INTO last FROM (SELECT op_id FROM powersync.bucket_ops('big', after, $OPS, 1000)) s;
    EXIT WHEN last IS NULL; after := last;
  END LOOP; END \$\$;
SQL
python3 -c "import sys,time; s=float(sys.argv[1]); e=time.time(); print('{\"baseline_ops_per_second_in_db\": %d, \"seconds\": %.3f}' % ($OPS/(e-s), e-s))" "$start"
"$PG_BIN/psql" -XAtq -c "\\copy (SELECT * FROM powersync.bucket_ops('big', 0, $OPS, $OPS)) TO '/dev/null'" >/dev/null
start=$(date +%s.%N)
"$PG_BIN/psql" -XAtq -c "\\copy (SELECT * FROM powersync.bucket_ops('big', 0, $OPS, $OPS)) TO '/dev/null'" >/dev/null
python3 -c "import sys,time; s=float(sys.argv[1]); e=time.time(); print('{\"baseline_copy_to_client_ops_per_second\": %d, \"seconds\": %.3f}' % ($OPS/(e-s), e-s))" "$start"
fi

echo "== 2. $STREAMS idle streams, then one commit touching every stream's bucket"
psql -XAtq -v ON_ERROR_STOP=1 -c "INSERT INTO powersync.fx_user_buckets SELECT 's' || i, 'b' || i, 3 FROM generate_series(0, $STREAMS - 1) i;
  SELECT powersync.fx_put('b' || i, 'r' || i, '{\"id\":\"r' || i || '\"}') FROM generate_series(0, $STREAMS - 1) i; SELECT powersync.fx_commit();" >/dev/null
mint $(seq -f 's%.0f' 0 $((STREAMS - 1))) >"$work/tokens"
rss() { awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$gw_pid/stat"; }
rss_before=$(rss)
coproc CLIENT { node "$ROOT/test/bench/gateway_idle_streams.mjs" "http://127.0.0.1:$port" "$STREAMS" "$work/tokens"; }
read -r ready opened failed connect_s <&"${CLIENT[0]}"
echo "streams open: $opened (failed $failed) in ${connect_s}s; gateway RSS before ${rss_before} kB, with streams $(rss) kB"
t0=$(cpu_ticks); sleep 10; t1=$(cpu_ticks)
echo "idle for 10 s: gateway CPU $(( (t1 - t0) * 100 / $(getconf CLK_TCK) / 10 ))% of one core, RSS $(rss) kB"
# The ops are written first; the measured interval starts just before the commit that publishes
# them (one checkpoint + NOTIFY), as the replication worker would.
psql -XAtq -c "SELECT powersync.fx_put('b' || i, 'r' || i, '{\"id\":\"r' || i || '\",\"v\":2}') FROM generate_series(0, $STREAMS - 1) i" >/dev/null
newcp=$(psql -XAtq -c "SELECT max(op_id) FROM powersync.fx_ops")
t0=$(cpu_ticks)
echo "GO $newcp" >&"${CLIENT[1]}"
psql -XAtq -c "SELECT powersync.fx_commit()" >/dev/null
read -r result <&"${CLIENT[0]}"
t1=$(cpu_ticks)
echo "$result"
echo "gateway CPU for the fan-out to every stream: $(( (t1 - t0) * 1000 / $(getconf CLK_TCK) )) ms; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "gateway RSS after the fan-out: $(rss) kB"
wait "$CLIENT_PID" 2>/dev/null
