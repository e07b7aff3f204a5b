# Sourced by the replication suites (40-replication-random, 45-replication-crash): a temporary
# cluster with the extension, the random workload's tables and rules, and the consistency check.
#   repl_setup DIR              start the cluster, create the extension, tables and check functions
#   repl_deploy                 deploy the workload's sync rules; waits until they are active
#   repl_workload SEED N S      run N random statements as session S (errors are tolerated)
#   repl_check LABEL [compacted] run pscheck.run(); one pass/fail per check, details on failure
# Requires test/lib/pg_cluster.sh and test/lib/counts.sh to be sourced first.
REPL_TABLES="ARRAY['items','todos','members','events','counters']"
WORKLOAD="python3 $PS_ROOT/test/lib/random_workload.py"

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

repl_setup() {
  pg_cluster_start "$1" || return 1
  REPL_DIR=$1
  psql_q -c "CREATE EXTENSION powersync_pg" || return 1
  $WORKLOAD schema | psql_q >/dev/null || return 1
  psql_q -f "$PS_ROOT/test/lib/replication_check.sql" >/dev/null
}

repl_deploy() {
  local rules
  rules=$($WORKLOAD rules)
  echo "SELECT powersync.deploy_sync_rules(:'rules')" | psql_q -v rules="$rules" -tA >/dev/null || return 1
  repl_wait_active 180
}

# Waits until the newest deployed version is ACTIVE and has passed the current WAL head.
repl_wait_active() {
  psql_q -tAc "SELECT powersync.wait_for_checkpoint('${1}s')" >/dev/null && return 0
  psql -X -c "SELECT * FROM powersync.status()"
  return 1
}

# Runs the statements in one psql session; statement errors (lost races, crashes) are ignored.
repl_workload() {
  $WORKLOAD ops "$1" "$2" "$3" | psql -X -q -v ON_ERROR_STOP=0 >/dev/null 2>&1
  return 0
}

repl_check() {
  local label=$1 compacted=${2:-false} out name failures examples bad=0
  out=$(psql -X -tA -F $'\t' -v ON_ERROR_STOP=1 <<SQL 2>&1
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT name, failures, replace(coalesce(examples, ''), E'\n', ' | ') FROM pscheck.run($REPL_TABLES, $compacted)
UNION ALL SELECT name, failures, replace(coalesce(examples, ''), E'\n', ' | ') FROM pscheck.requests();
COMMIT;
SQL
  ) || { fail "$label: check could not run: $out"; return 1; }
  while IFS=$'\t' read -r name failures examples; do
    if [ "$failures" = 0 ]; then
      pass "$label: $name"
    else
      fail "$label: $name ($failures failures): ${examples:0:1500}"
      bad=1
    fi
  done < <(echo "$out" | awk -F'\t' 'NF >= 2')
  return $bad
}

repl_ops_count() {
  psql -X -tAc "SELECT count(*) FROM powersync.bucket_data d JOIN powersync.sync_rules s ON s.id = d.sync_rules_id AND s.state = 'ACTIVE'"
}
