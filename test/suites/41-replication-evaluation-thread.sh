#!/usr/bin/env bash
# powersync.evaluation_thread: the same deterministic history (a snapshot spanning several chunks and
# parts, then a seeded random stream from one session) replicated once with rule evaluation inline and
# once on the worker's second thread must produce the same op logs (every row's ops in order, with
# their checksums and data), and both must pass the replication checks. The worker really runs the
# thread only when the setting is on.
#   PS_SEED=N  reproduce a run
set -u
PS_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$PS_ROOT/test/lib/pg_cluster.sh"
source "$PS_ROOT/test/lib/counts.sh"
source "$PS_ROOT/test/lib/replication_env.sh"

SEED=${PS_SEED:-$(( (RANDOM << 15) | RANDOM ))}
N=1500
echo "seed $SEED (rerun with PS_SEED=$SEED), $N statements"
dir=$(mktemp -d /tmp/ps_evalthread.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$dir"  # the clusters live below it
trap 'rc=$?; _pg_cluster_cleanup; if [ $rc = 0 ]; then rm -rf "$dir"; else echo "clusters kept for inspection: $dir"; fi' EXIT

# Rows before the deploy are inserted only (no dead tuples), so both clusters lay them out alike and
# the copies read them in the same order; TRUNCATE is left out of the stream (its REMOVEs follow
# current_data's heap order, which page pruning may change).
preload() {
  psql_q >/dev/null <<'SQL'
INSERT INTO counters SELECT g, 'u' || (g % 5 + 1), g % 7, nextval('workload_v') FROM generate_series(1, 30000) g;
INSERT INTO items SELECT 'i' || g, 'u' || (g % 5 + 1), 'title ' || g,
       CASE WHEN g % 50 = 0 THEN workload_blob(g::text, 4) ELSE 'body ' || g END, g, g % 2 = 0, nextval('workload_v')
  FROM generate_series(1, 3000) g;
INSERT INTO todos SELECT g % 20, g, 'todo ' || g, g % 3 = 0, nextval('workload_v') FROM generate_series(1, 2000) g;
INSERT INTO members SELECT 'u' || (g % 5 + 1), g, 'role', nextval('workload_v') FROM generate_series(1, 40) g;
INSERT INTO events SELECT (ARRAY['a', 'b', 'c'])[g % 3 + 1], 'p' || g, nextval('workload_v') FROM generate_series(1, 2000) g;
SQL
}

# Op logs of the active version: per bucket and row, its ops in op order. Rows of one multi-row statement
# come in the source table's heap order, which page pruning may make differ between the clusters, so
# ops of different rows are not compared by position. Subkeys are left out (events has no row identity:
# random keys).
dump_ops() {
  psql -X -tA -F '|' -c "SELECT d.bucket, d.object_type, d.object_id, count(*),
      string_agg(d.op || ':' || d.checksum || ':' || coalesce(d.data, ''), ' ' ORDER BY d.op_id)
      FROM powersync.bucket_data d JOIN powersync.sync_rules s ON s.id = d.sync_rules_id AND s.state = 'ACTIVE'
      GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
}

worker_threads() {
  local pid
  pid=$(psql -X -tAc "SELECT worker_pid FROM powersync.replication_state")
  ls "/proc/$pid/task" 2>/dev/null | wc -l
}

for mode in off on; do
  pg_cluster_start "$dir/$mode" "" "powersync.evaluation_thread = $mode" || { fail "$mode: cluster start"; finish; exit 1; }
  REPL_DIR=$dir/$mode
  psql_q -c "CREATE EXTENSION powersync_pg" >/dev/null || { fail "$mode: create extension"; finish; exit 1; }
  $WORKLOAD schema | psql_q >/dev/null
  psql_q -f "$PS_ROOT/test/lib/replication_check.sql" >/dev/null
  preload
  repl_deploy || { fail "$mode: deploy + activation"; finish; exit 1; }
  $WORKLOAD ops "$SEED" "$N" 1 | grep -v '^TRUNCATE' | psql -X -q -v ON_ERROR_STOP=0 >/dev/null 2>&1
  if psql_q -tAc "SELECT powersync.wait_for_checkpoint('120s')" >/dev/null; then
    pass "evaluation_thread = $mode: caught up ($(repl_ops_count) ops)"
  else
    fail "evaluation_thread = $mode: no checkpoint"
  fi
  repl_check "evaluation_thread = $mode"
  dump_ops >"$dir/ops-$mode.txt"
  threads=$(worker_threads)
  if [ "$mode" = on ]; then
    check "evaluation_thread = on: the worker runs a second thread ($threads threads)" [ "$threads" -ge 2 ]
  else
    check "evaluation_thread = off: the worker runs one thread ($threads)" [ "$threads" = 1 ]
  fi
  pg_cluster_stop "$dir/$mode"
done

lines=$(wc -l <"$dir/ops-on.txt")
check "both runs produced ops ($lines rows in buckets)" [ "$lines" -gt 30000 ]
if cmp -s "$dir/ops-off.txt" "$dir/ops-on.txt"; then
  pass "op logs identical with and without the evaluation thread"
else
  fail "op logs differ: $(diff "$dir/ops-off.txt" "$dir/ops-on.txt" | head -5)"
fi
finish
