#!/usr/bin/env bash
# How the worker reads changes (DESIGN decision 1). By default over a replication connection to its own
# server: read_mode stream, a "powersync_worker" walsender holding the slot, and replication survives
# that walsender being terminated mid-workload. When replication connections are refused (pg_hba reject,
# local connections, then max_wal_senders = 0) it falls back to peeking the slot: read_mode peek with the reason, a warning
# in the log, and the op logs still match the tables (pscheck) after random workloads in every mode.
#   PS_SEED=N  reproduce
set -u
PS_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$PS_ROOT/test/lib/pg_cluster.sh"
source "$PS_ROOT/test/lib/counts.sh"
source "$PS_ROOT/test/lib/replication_env.sh"

SEED=${PS_SEED:-$(( (RANDOM << 15) | RANDOM ))}
N=400
echo "seed $SEED (rerun with PS_SEED=$SEED)"

# Waits (up to $2 s) until the query $1 returns t.
wait_for() {
  local start=$SECONDS
  until [ "$(psql -X -tAc "$1" 2>/dev/null)" = t ]; do
    [ $((SECONDS - start)) -gt "$2" ] && { psql -X -c "SELECT * FROM powersync.replication_state"; return 1; }
    sleep 0.2
  done
}
caught_up() { [ "$(psql -X -tAc "SELECT powersync.wait_replicated('120 s')")" = t ]; }
sender_pid() { psql -X -tAc "SELECT pid FROM pg_stat_replication WHERE application_name = 'powersync_worker'"; }
restart() {
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 restart >/dev/null || { tail -n 20 "$dir/server.log"; return 1; }
}

dir=$(mktemp -d /tmp/ps_readmode.XXXXXX)
# Stop the server however the suite ends; keep its directory (logs, data) only when something failed.
trap 'rc=$?; _pg_cluster_cleanup; if [ $rc = 0 ]; then rm -rf "$dir"; else echo "cluster kept for inspection: $dir"; fi' EXIT
repl_setup "$dir" || { fail "cluster setup"; finish; exit 1; }
repl_workload "$SEED" "$N" 9
repl_deploy || { fail "deploy + activation"; finish; exit 1; }

# 1. Streaming (the default: initdb's pg_hba trusts local replication connections).
check "stream: read_mode stream, no reason" \
  wait_for "SELECT read_mode = 'stream' AND read_mode_reason IS NULL FROM powersync.status() LIMIT 1" 30
check "stream: a powersync_worker walsender is streaming" \
  wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = 'powersync_worker' AND state = 'streaming')" 30
check "stream: that walsender holds the worker's slot" \
  wait_for "SELECT s.active_pid = (SELECT pid FROM pg_stat_replication WHERE application_name = 'powersync_worker')
              FROM pg_replication_slots s JOIN powersync.replication_state r USING (slot_name)" 10
repl_workload $((SEED + 1)) "$N" 1 &
w1=$!
repl_workload $((SEED + 2)) "$N" 2 &
w2=$!
sleep 0.5
old=$(sender_pid)
psql -X -tAc "SELECT pg_terminate_backend($old)" >/dev/null
wait $w1 $w2
check "stream: caught up after the walsender was terminated" caught_up
check "stream: a new walsender streams" \
  wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = 'powersync_worker' AND pid <> ${old:-0})" 60
check "stream: slot confirmed position has reached the replicated LSN" \
  wait_for "SELECT s.confirmed_flush_lsn >= r.replicated_lsn FROM pg_replication_slots s JOIN powersync.replication_state r USING (slot_name)" 30
repl_check "stream"

# 2. pg_hba refuses the worker's connection: peek fallback. A logical replication connection matches the
# lines of its database (not the "replication" keyword, which is for physical replication); the worker
# uses the Unix socket, the test's psql uses 127.0.0.1.
cp "$dir/data/pg_hba.conf" "$dir/pg_hba.orig"
{ printf 'local all all reject\n'; cat "$dir/pg_hba.orig"; } >"$dir/data/pg_hba.conf"
restart || { fail "restart with pg_hba rejecting replication"; finish; exit 1; }
check "pg_hba reject: read_mode peek, reason names pg_hba" \
  wait_for "SELECT read_mode = 'peek' AND read_mode_reason LIKE '%pg_hba%' FROM powersync.status() LIMIT 1" 60
repl_workload $((SEED + 3)) "$N" 1
check "pg_hba reject: caught up" caught_up
check "pg_hba reject: no walsender for the worker" test -z "$(sender_pid)"
check "pg_hba reject: one warning with the fix" \
  test "$(grep -c 'The worker reads changes by peeking the slot instead' "$dir/server.log")" = 1
repl_check "pg_hba reject"

# 3. max_wal_senders = 0 (pg_hba allows again): peek fallback.
cp "$dir/pg_hba.orig" "$dir/data/pg_hba.conf"
psql -X -qc "ALTER SYSTEM SET max_wal_senders = 0"
restart || { fail "restart with max_wal_senders = 0"; finish; exit 1; }
check "max_wal_senders 0: read_mode peek, reason names max_wal_senders" \
  wait_for "SELECT read_mode = 'peek' AND read_mode_reason LIKE '%max_wal_senders%' FROM powersync.status() LIMIT 1" 60
repl_workload $((SEED + 4)) "$N" 1
check "max_wal_senders 0: caught up" caught_up
repl_check "max_wal_senders 0"

# 4. Back to streaming after a restart with both allowed.
psql -X -qc "ALTER SYSTEM RESET max_wal_senders"
restart || { fail "restart with replication allowed"; finish; exit 1; }
check "stream again: read_mode stream" \
  wait_for "SELECT read_mode = 'stream' AND read_mode_reason IS NULL FROM powersync.status() LIMIT 1" 60
repl_workload $((SEED + 5)) "$N" 1
check "stream again: caught up" caught_up
repl_check "stream again"

pg_cluster_stop "$dir"
finish
