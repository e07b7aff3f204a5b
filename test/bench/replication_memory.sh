#!/usr/bin/env bash
# Worker memory for one large transaction (issue 3): peak RSS of the replication worker while it applies
# ROWS rows inserted in ONE transaction, and the time from commit to the checkpoint that contains them.
# Reports VmHWM (includes shared buffers the worker touched) and the peak of RssAnon (private memory,
# sampled every 100 ms), which is what a multi-GB transaction would grow.
#   PS_PG_PREFIX=/opt/pg-x BUILD=build-x bash test/bench/replication_memory.sh   [ROWS=1000000]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
ROWS=${ROWS:-1000000}
if [ -n "${PS_PG_PREFIX:-}" ]; then PG_BIN=$(bash test/lib/private_pg.sh "$PS_PG_PREFIX"); export PG_BIN; fi
source test/lib/pg_cluster.sh
dir=$(mktemp -d /tmp/ps_repl_mem.XXXXXX)
trap '_pg_cluster_cleanup; rm -rf "$dir"' EXIT  # the WAL of the transaction is over 1 GB
pg_cluster_start "$dir" "" "shared_buffers = 128MB
max_wal_size = 8GB
checkpoint_timeout = 30min" >/dev/null
q() { psql -X -q -v ON_ERROR_STOP=1 -tA "$@"; }
q -c "CREATE EXTENSION powersync_pg"
q -c "CREATE TABLE items (id bigint PRIMARY KEY, owner text NOT NULL, name text, n int)"
echo "SELECT powersync.deploy_sync_rules(:'rules')" | q -v rules='
bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner
    data:
      - SELECT id, owner, name, n FROM items WHERE owner = bucket.owner
  global:
    data:
      - SELECT id, name FROM items
' >/dev/null
q -c "SELECT powersync.wait_for_checkpoint('120 s')" >/dev/null
pid=$(q -c "SELECT worker_pid FROM powersync.replication_state")
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
echo "== Worker memory, $ROWS rows in one transaction (worker pid $pid, load: $(uptime | sed 's/.*load average: //'))"
echo "before: VmRSS $(kb VmRSS) kB, RssAnon $(kb RssAnon) kB"
peak_file=$dir/peak_anon
( peak=0; while kill -0 "$pid" 2>/dev/null; do a=$(kb RssAnon); [ -n "$a" ] && [ "$a" -gt "$peak" ] && peak=$a && echo "$peak" >"$peak_file"; sleep 0.1; done ) &
sampler=$!
t0=$(date +%s.%N)
q -c "INSERT INTO items SELECT g, 'user' || (g % 1000), 'item ' || g, 0 FROM generate_series(1, $ROWS) g"
t1=$(date +%s.%N)
q -c "SELECT powersync.wait_for_checkpoint('1800 s')" >/dev/null
t2=$(date +%s.%N)
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
ops=$(q -c "SELECT count(*) FROM powersync.bucket_data")
echo "insert took $(python3 -c "print(f'{$t1-$t0:.1f}')") s; commit -> checkpoint $(python3 -c "print(f'{$t2-$t1:.1f}')") s = $(python3 -c "print(f'{$ROWS/($t2-$t1):,.0f}')") rows/s; $ops ops stored"
echo "peak: VmHWM $(kb VmHWM) kB, RssAnon $(cat "$peak_file" 2>/dev/null || echo '?') kB (sampled)"
