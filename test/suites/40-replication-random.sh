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
# Stop the server however the suite ends; keep its directory (logs, data) only when something failed.
trap 'rc=$?; _pg_cluster_cleanup; if [ $rc = 0 ]; then rm -rf "$dir"; else echo "cluster kept for inspection: $dir"; fi' EXIT
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
  summary=$(psql_q -tA -F ' ' -c "SELECT * FROM powersync.compact('0 s')")
  after=$(psql_q -tAc "SELECT pscheck.fingerprint()")
  check "round $round: compact() ($summary: buckets, moved, cleared, lookups removed) keeps reduced state and checksums" [ "$before" = "$after" ]
  repl_check "round $round after compact" true
done

# Compaction racing the worker: compact while a session writes, then everything must still hold.
repl_workload $((SEED + 100)) "$N" 1 &
w1=$!
for _ in 1 2 3; do psql_q -tAc "SELECT * FROM powersync.compact('0 s')" >/dev/null || fail "compact during writes"; sleep 0.3; done
wait "$w1"
psql_q -tAc "SELECT powersync.wait_for_checkpoint('120s')" >/dev/null || fail "no checkpoint after concurrent compaction"
repl_check "concurrent compaction" true

# A new version copies every table while a session keeps moving rows: the copy spans many chunks, so
# an updated row can be read twice (its new version lies in a later block) and stream changes overlap
# the copy; rows written without a probe must fall back correctly.
# (80k rows inserted, 90% deleted again: ~500 heap blocks to copy, but few rows for the check to evaluate)
psql_q -c "INSERT INTO counters SELECT g, 'u' || (g % 5 + 1), 0, nextval('workload_v') FROM generate_series(100000, 180000) g
           ON CONFLICT DO NOTHING" -c "DELETE FROM counters WHERE id >= 100000 AND id % 10 <> 0" >/dev/null
rules=$($WORKLOAD rules)
echo "SELECT powersync.deploy_sync_rules(:'rules')" | psql_q -v rules="$rules" -tA >/dev/null || fail "redeploy"
psql_q >/dev/null 2>&1 <<SQL &
DO \$\$ BEGIN
  FOR i IN 1..40 LOOP
    UPDATE counters SET n = n + 1, owner = 'u' || (i % 5 + 1), v = nextval('workload_v') WHERE id % 997 = i;
    INSERT INTO counters SELECT 200000 + i * 10 + g, 'u1', 0, nextval('workload_v') FROM generate_series(1, 5) g;
    DELETE FROM counters WHERE id % 991 = i;
    COMMIT;
    PERFORM pg_sleep(0.05);
  END LOOP;
END \$\$;
SQL
w1=$!
repl_wait_active 180 || fail "re-snapshot under writes: not active"
wait "$w1"
psql_q -tAc "SELECT powersync.wait_for_checkpoint('120s')" >/dev/null || fail "no checkpoint after the re-snapshot"
# No compaction here: a row changed while its chunk is copied must not get the same PUT from the copy
# and from the stream ("no duplicated ops" checks every op of the new version).
repl_check "re-snapshot under writes"

# Every new checkpoint is announced with NOTIFY powersync_checkpoint from the transaction that wrote
# it: the payload names a checkpoint that exists (psql prints notifications after each command).
notes=$(psql -X -q -tA <<'SQL'
LISTEN powersync_checkpoint;
UPDATE items SET v = v + 1 WHERE id IN (SELECT id FROM items LIMIT 3);
SELECT powersync.wait_for_checkpoint('60s') > 0;
SELECT 'done';
SQL
)
payload=$(grep -o 'payload "{[^}]*}"' <<<"$notes" | tail -1 | sed 's/^payload "//; s/"$//')
check "NOTIFY powersync_checkpoint announces a stored checkpoint of the active version ($payload)" \
  [ "$(psql_q -tAc "SELECT count(*) FROM powersync.checkpoints c WHERE c.sync_rules_id = pscheck.version()
        AND c.op_id = ('$payload'::json ->> 'op_id')::bigint AND c.lsn >= ('$payload'::json ->> 'lsn')::pg_lsn
        AND c.sync_rules_id = ('$payload'::json ->> 'sync_rules')::bigint" 2>/dev/null)" = 1 ]

# Negative controls: the check must notice a lost op and a replayed op (then the state is broken,
# so this comes last).
lost=$(psql_q -tA <<SQL
DELETE FROM powersync.bucket_data WHERE (bucket, op_id) IN (
  SELECT bucket, op_id FROM powersync.bucket_data d JOIN powersync.sync_rules s ON s.id = d.sync_rules_id
   WHERE s.state = 'ACTIVE' AND d.op = 'PUT'
     -- a PUT that a later op of the same row supersedes would not change the reduction
     AND NOT EXISTS (SELECT 1 FROM powersync.bucket_data l WHERE l.bucket = d.bucket AND l.op_id > d.op_id
                      AND l.object_type = d.object_type AND l.object_id = d.object_id AND l.subkey = d.subkey)
   ORDER BY d.op_id DESC LIMIT 1);
INSERT INTO powersync.bucket_data (bucket, op_id, sync_rules_id, op, object_type, object_id, subkey, data, checksum,
                                   target_op, cum_checksum, cum_count)
SELECT bucket, op_id + k, sync_rules_id, op, object_type, object_id, subkey, data, checksum, target_op,
       cum_checksum, cum_count
  FROM (SELECT * FROM powersync.bucket_data WHERE op = 'PUT' AND sync_rules_id = pscheck.version()
         ORDER BY op_id DESC LIMIT 1) d, (VALUES (1000000000), (1000000001)) k(k);
UPDATE powersync.sync_rules SET last_checkpoint = last_checkpoint + 2000000000 WHERE state = 'ACTIVE';
SELECT string_agg(name, ', ' ORDER BY name) FROM pscheck.run($REPL_TABLES, true) WHERE failures > 0;
SQL
)
check "negative control: a lost op and a replayed op are detected ($lost)" \
  grep -q "duplicated ops" <<<"$lost"
check "negative control: the reduction check sees the lost op" grep -q "reduced op log" <<<"$lost"

echo "seed $SEED"
finish
