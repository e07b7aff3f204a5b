#!/usr/bin/env bash
# Randomized IMMV check: thousands of random DML statements (FK cascades, writable CTEs touching
# several tables, self-joins, LEFT JOINs, rollbacks, TRUNCATE) on the base tables of three IMMVs;
# after every batch each view must equal its query row for row, both ways (EXCEPT ALL). Then the
# same statements from 4 concurrent pgbench clients under each isolation level (retrying
# serialization failures and deadlocks), and the same check.
#   PS_SEED=<n>   replay a run (the seed is printed)      PS_LONG=1   more and longer batches
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/test/lib/pg_cluster.sh"
source "$ROOT/test/lib/counts.sh"
seed=${PS_SEED:-$(( (RANDOM << 15 | RANDOM) % 2000000000 ))}
batches=25; per_batch=200
[ "${PS_LONG:-0}" = 1 ] && { batches=120; per_batch=500; }
echo "seed $seed ($batches batches of $per_batch statements; replay with PS_SEED=$seed)"
dir=$(mktemp -d /tmp/ps_immv_random.XXXXXX)
# Concurrent writers deadlock now and then (pgbench retries them): detect that quickly.
pg_cluster_start "$dir" "" "deadlock_timeout = 50ms" || { echo "0 passed, 1 failed"; exit 1; }
psql_run() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
# setseed takes a double in [-1, 1]; the same seed replays the same statements
setseed="SELECT setseed($seed / 2147483648.0);"
if ! psql_run -c "$setseed" -f "$ROOT/test/random/immv_random.sql" >"$dir/setup.log" 2>&1; then
  cat "$dir/setup.log"; fail "schema and views created"; finish; exit 1
fi
script="$dir/run.sql"
{
  echo "$setseed"
  for b in $(seq 1 "$batches"); do
    echo "CALL immv_random_batch($per_batch);"
    echo "SELECT 'batch $b: ' || immv_check();"
  done
  echo "SELECT 'rows: v_lines ' || (SELECT count(*) FROM v_lines) || ', v_tree ' || (SELECT count(*) FROM v_tree) || ', v_referrals ' || (SELECT count(*) FROM v_referrals);"
  echo "SELECT 'refresh drift: ' || powersync.refresh_immv('v_lines') + powersync.refresh_immv('v_tree') + powersync.refresh_immv('v_referrals');"
} >"$script"
if ! psql_run -f "$script" >"$dir/run.log" 2>&1; then
  tail -n 20 "$dir/run.log"; fail "random statements ran without an unexpected error (seed $seed)"
fi
while read -r line; do
  case "$line" in
    "batch "*": ok ok ok") pass "$line" ;;
    "batch "*) fail "$line (seed $seed)" ;;
    "refresh drift: 0") pass "$line" ;;
    "refresh drift: "*) fail "$line (seed $seed)" ;;
    "rows: "*) echo "$line" ;;
  esac
done <"$dir/run.log"
# Concurrent writers: not replayable (interleavings vary), but every run must end with exact views.
# A short phase by default (PS_LONG=1: 20 s per isolation level; PS_IMMV_CONCURRENT_SECS overrides).
secs=2; [ "${PS_LONG:-0}" = 1 ] && secs=20; secs=${PS_IMMV_CONCURRENT_SECS:-$secs}
printf '%s\n' 'BEGIN;' 'SELECT immv_random_statement();' 'SELECT immv_random_statement();' 'COMMIT;' >"$dir/concurrent.sql"
for level in "read committed" "repeatable read" "serializable"; do
  out=$(PGOPTIONS="-c default_transaction_isolation=${level// /\\ }" "$PG_BIN/pgbench" -n -c 4 -j 2 -T "$secs" --max-tries=100 \
        -f "$dir/concurrent.sql" 2>&1)
  rc=$?
  tx=$(awk '/number of transactions actually processed/ { print $NF }' <<<"$out")
  retried=$(awk '/number of transactions retried/ { print $5 }' <<<"$out")
  check=$(psql_run -c "SELECT immv_check()" 2>&1)
  if [ "$rc" = 0 ] && [ "$check" = "ok ok ok" ]; then
    pass "concurrent $level: $tx transactions ($retried retried), views exact"
  else
    echo "$out" | tail -n 15
    fail "concurrent $level: pgbench exit $rc, views: $check"
  fi
done
pg_cluster_stop "$dir"
[ "$FAIL" = 0 ] && rm -rf "$dir"
finish
