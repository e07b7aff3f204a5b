#!/usr/bin/env bash
# Worker memory for one huge transaction (issue 3): ROWS rows of ~WIDTH bytes inserted in ONE transaction
# must be applied exactly once while the replication worker's private memory stays bounded. The worker
# reads the decoded changes through a cursor in slices and drops what it reads per batch, so its peak is
# set by logical_decoding_work_mem + work_mem (the worker raises them to 256MB / 64MB), not by the size of
# the transaction: ~295 MB here for 250k rows of 1.6 kB (~400 MB of changes), against ~990 MB when the
# whole peek result is fetched at once (kSlice = FETCH_ALL in src/pg/peek_cursor.cpp).
#   ROWS=N WIDTH=N  the transaction;  PS_MEM_LIMIT_KB=N  allowed peak RssAnon of the worker
set -u
PS_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$PS_ROOT/test/lib/pg_cluster.sh"
source "$PS_ROOT/test/lib/counts.sh"
ROWS=${ROWS:-250000}
WIDTH=${WIDTH:-1600}  # characters of each row's name (under 2 kB, so rows are not TOASTed)
LIMIT_KB=${PS_MEM_LIMIT_KB:-600000}

dir=$(mktemp -d /tmp/ps_memory.XXXXXX)
trap '_pg_cluster_cleanup; rm -rf "$dir"' EXIT  # the WAL of the transaction is ~1 GB
pg_cluster_start "$dir" "" "shared_buffers = 64MB
max_wal_size = 4GB" >/dev/null || { fail "cluster setup"; finish; exit 1; }
q() { psql -X -q -v ON_ERROR_STOP=1 -tA "$@"; }
q -c "CREATE EXTENSION powersync_pg" && q -c "CREATE TABLE items (id bigint PRIMARY KEY, owner text, name text)" \
  || { fail "schema"; finish; exit 1; }
echo "SELECT powersync.deploy_sync_rules(:'rules')" | q -v rules='
bucket_definitions:
  global:
    data:
      - SELECT id, owner, name FROM items
' >/dev/null && q -c "SELECT powersync.wait_for_checkpoint('120 s')" >/dev/null || { fail "deploy"; finish; exit 1; }
pid=$(q -c "SELECT worker_pid FROM powersync.replication_state")
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status" 2>/dev/null; }
base=$(status_kb RssAnon)
# RssAnon is sampled (VmHWM is exact but also counts the shared buffers the worker touched). Once the
# worker passes the limit, its memory contexts are logged once, to show where it went.
(
  peak=0 logged=0
  while kill -0 "$pid" 2>/dev/null; do
    a=$(status_kb RssAnon)
    [ -n "$a" ] && [ "$a" -gt "$peak" ] && peak=$a && echo "$peak" >"$dir/peak"
    if [ "$logged" = 0 ] && [ -n "$a" ] && [ "$a" -gt "$LIMIT_KB" ]; then
      psql -X -q -tAc "SELECT pg_log_backend_memory_contexts($pid)" >/dev/null && logged=1
    fi
    sleep 0.05
  done
) &
sampler=$!
start=$SECONDS
q -c "INSERT INTO items SELECT g, 'user' || (g % 1000), left('item ' || g || ' ' || repeat(md5(g::text), ($WIDTH + 31) / 32), $WIDTH)
       FROM generate_series(1, $ROWS) g"
replicated() { q -c "SELECT powersync.wait_for_checkpoint('600 s')" >/dev/null; }
check "$ROWS rows in one transaction replicated" replicated
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
peak=$(cat "$dir/peak" 2>/dev/null || echo 0)
hwm=$(status_kb VmHWM)
echo "worker $pid: RssAnon before $base kB, peak $peak kB (limit $LIMIT_KB kB); VmHWM $hwm kB; $((SECONDS - start)) s"
grep 'level: [0-9]; .*total' "$dir/server.log" | sed 's/.*level/level/' \
  | awk '{ for (i = 1; i <= NF; i++) if ($i == "total") print $(i-1), $0 }' | sort -rn | head -5 | cut -d' ' -f2- | cut -c1-160

# Exactly once: one PUT per row, no id twice, running totals equal to the ops stored.
check "one op per row" [ "$(q -c "SELECT count(*) FROM powersync.bucket_data WHERE op = 'PUT'")" = "$ROWS" ]
check "no row applied twice" [ "$(q -c "SELECT count(DISTINCT object_id) FROM powersync.bucket_data")" = "$ROWS" ]
check "bucket count and checksum equal the ops stored" [ "$(q -c "
  SELECT s.count = d.n AND s.checksum = d.sum FROM powersync.bucket_state s,
    (SELECT count(*) AS n, sum(checksum) % 4294967296 AS sum FROM powersync.bucket_data) d")" = t ]
check "checkpoint after the whole transaction" [ "$(q -c "
  SELECT c.op_id >= (SELECT max(op_id) FROM powersync.bucket_data) FROM powersync.checkpoint() c")" = t ]
under_limit() { [ "$peak" -gt 0 ] && [ "$peak" -lt "$LIMIT_KB" ]; }
check "worker private memory peaked at $peak kB, under $LIMIT_KB kB" under_limit
finish
