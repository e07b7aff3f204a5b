#!/usr/bin/env bash
# Crash test of replication: during heavy writes (and, every other trial, compactions), kill -9 the
# replication worker (the postmaster then restarts every backend) or the postmaster itself (plus
# its children: a machine crash) at a random moment, restart, let the worker catch up, and check
# that no op was lost or duplicated and that all checksums are valid.
#   PS_SEED=N  reproduce;  PS_LONG=1  20 trials of each kind (CI: 3 of each)
set -u
PS_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$PS_ROOT/test/lib/pg_cluster.sh"
source "$PS_ROOT/test/lib/counts.sh"
source "$PS_ROOT/test/lib/replication_env.sh"

SEED=${PS_SEED:-$(( (RANDOM << 15) | RANDOM ))}
if [ "${PS_LONG:-0}" = 1 ]; then TRIALS=20 N=1500; else TRIALS=3 N=600; fi
RANDOM=$SEED
echo "seed $SEED (rerun with PS_SEED=$SEED), $TRIALS trials per crash kind"

dir=$(mktemp -d /tmp/ps_crash.XXXXXX)
# Stop the server however the suite ends; keep its directory (logs, data) only when something failed.
trap 'rc=$?; _pg_cluster_cleanup; if [ $rc = 0 ]; then rm -rf "$dir"; else echo "cluster kept for inspection: $dir"; fi' EXIT
repl_setup "$dir" || { fail "cluster setup"; finish; exit 1; }
repl_workload "$SEED" 300 9
repl_deploy || { fail "deploy + activation"; finish; exit 1; }

pm_pid() { head -n 1 "$dir/data/postmaster.pid" 2>/dev/null; }

worker_pid() {
  psql -X -tAc "SELECT r.worker_pid FROM powersync.replication_state r
                  JOIN pg_stat_activity a ON a.pid = r.worker_pid" 2>/dev/null
}

wait_ready() {
  local start=$SECONDS
  until psql -X -tAc "SELECT 1" >/dev/null 2>&1; do
    [ $((SECONDS - start)) -gt 120 ] && return 1
    sleep 0.2
  done
}

# kill -9 of the postmaster and of every process it had started (they would die with the machine).
crash_postmaster() {
  local pm children
  pm=$(pm_pid)
  children=$(ps --ppid "$pm" -o pid= 2>/dev/null)
  kill -9 "$pm" $children 2>/dev/null
  # Wait until they are gone (or zombies: nobody may reap them in a container). A zombie still
  # "owns" its PID, so remove the stale lock file as a reboot would.
  local p
  for p in $pm $children; do
    for _ in $(seq 100); do
      { [ ! -e "/proc/$p" ] || grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; } && break
      sleep 0.05
    done
  done
  rm -f "$dir/data/postmaster.pid" "$dir"/.s.PGSQL.*.lock
  local tries
  for tries in 1 2 3 4 5; do
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 start >"$dir/pg_ctl.out" 2>&1 && return 0
    cat "$dir/pg_ctl.out"; tail -n 5 "$dir/server.log"
    rm -f "$dir/data/postmaster.pid" "$dir"/.s.PGSQL.*.lock
    sleep 1
  done
  return 1
}

crash_worker() {
  local pid=""
  for _ in $(seq 50); do pid=$(worker_pid); [ -n "$pid" ] && break; sleep 0.1; done
  [ -n "$pid" ] || { echo "no worker running"; return 1; }
  kill -9 "$pid"
}

trial=0
for kind in worker postmaster; do
  for t in $(seq 1 "$TRIALS"); do
    trial=$((trial + 1))
    repl_workload $((SEED + trial)) "$N" 1 &
    w1=$!
    repl_workload $((SEED + trial)) "$N" 2 &
    w2=$!
    # Every other trial also compacts while the writes run, so crashes hit compactions too.
    if [ $((trial % 2)) = 0 ]; then
      (sleep 0.2; for _ in 1 2 3 4 5; do psql -X -q -tAc "SELECT * FROM powersync.compact('0 s')" >/dev/null 2>&1; sleep 0.2; done) &
      compactor=$!
    else
      compactor=""
    fi
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + (r % 250) / 100 }')"
    if [ "$kind" = worker ]; then crash_worker; else crash_postmaster; fi
    rc=$?
    wait "$w1" "$w2" $compactor
    wait_ready || { fail "trial $trial ($kind): server did not come back"; tail -n 30 "$dir/server.log"; break; }
    [ "$rc" = 0 ] || { fail "trial $trial ($kind): crash could not be injected"; continue; }
    # More writes after the restart, so the worker resumes mid-stream with new work pending.
    repl_workload $((SEED + trial + 1000)) 100 3
    if psql_q -tAc "SELECT powersync.wait_for_checkpoint('120s')" >/dev/null; then
      repl_check "trial $trial (kill -9 $kind)"
    else
      fail "trial $trial ($kind): no checkpoint after restart"
      psql -X -c "SELECT * FROM powersync.status()"
      tail -n 30 "$dir/server.log"
    fi
  done
done

check "compactions ran during the trials" \
  [ "$(psql -X -tAc "SELECT count(*) > 0 FROM powersync.compaction_state")" = t ]
echo "seed $SEED"
finish
