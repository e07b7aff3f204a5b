#!/usr/bin/env bash
# Randomized differential test of replication: random INSERT/UPDATE/DELETE/TRUNCATE (bucket moves,
# key changes, TOASTed values, NULLs, every replica identity) from two sessions, partly during the
# initial snapshot; then the reduced op log of every bucket must equal a from-scratch evaluation of
# the rules over the tables, with valid checksums and no duplicated op. Then compact() must leave
# the reduced state and all checksums unchanged, also across further writes.
#   PS_SEED=N  reproduce a run;  PS_LONG=1  more statements and rounds
set -u
PS_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$PS_ROOT/test/lib/pg_cluster.sh"
source "$PS_ROOT/test/lib/counts.sh"
source "$PS_ROOT/test/lib/replication_env.sh"

SEED=${PS_SEED:-$(( (RANDOM << 15) | RANDOM ))}
if [ "${PS_LONG:-0}" = 1 ]; then N=6000 ROUNDS=4; else N=1500 ROUNDS=2; fi
echo "seed $SEED (rerun with PS_SEED=$SEED), $N statements per session, $ROUNDS rounds"

dir=$(mktemp -d /tmp/ps_random.XXXXXX)
repl_setup "$dir" || { fail "cluster setup"; finish; exit 1; }

# Rows that exist before the deploy go through the initial snapshot.
repl_workload "$SEED" "$N" 9
start=$SECONDS
repl_deploy || { fail "deploy + activation"; finish; exit 1; }
pass "rules deployed and active after the snapshot ($((SECONDS - start))s)"

for round in $(seq 1 "$ROUNDS"); do
  start=$SECONDS
  repl_workload $((SEED + round)) "$N" 1 &
  w1=$!
  repl_workload $((SEED + round)) "$N" 2 &
  w2=$!
  wait "$w1" "$w2"
  if psql_q -tAc "SELECT powersync.wait_for_checkpoint('120s')" >/dev/null; then
    pass "round $round: caught up ($((SECONDS - start))s, $(repl_ops_count) ops stored)"
  else
    fail "round $round: no checkpoint"; psql -X -c "SELECT * FROM powersync.status()"
  fi
  repl_check "round $round"

  before=$(psql_q -tAc "SELECT pscheck.fingerprint()")
  summary=$(psql_q -tA -F ' ' -c "SELECT * FROM powersync.compact()")
  after=$(psql_q -tAc "SELECT pscheck.fingerprint()")
  check "round $round: compact() ($summary: buckets, moved, cleared) keeps reduced state and checksums" [ "$before" = "$after" ]
  repl_check "round $round after compact" true
done

# Compaction racing the worker: compact while a session writes, then everything must still hold.
repl_workload $((SEED + 100)) "$N" 1 &
w1=$!
for _ in 1 2 3; do psql_q -tAc "SELECT * FROM powersync.compact()" >/dev/null || fail "compact during writes"; sleep 0.3; done
wait "$w1"
psql_q -tAc "SELECT powersync.wait_for_checkpoint('120s')" >/dev/null || fail "no checkpoint after concurrent compaction"
repl_check "concurrent compaction" true

echo "seed $SEED"
finish
