#!/usr/bin/env bash
# End-to-end with the real PowerSync client from npm (@powersync/node + better-sqlite3 compiled
# from source) against powersync-gateway and a temporary Postgres running the extension with the
# demo schema and sync rules (test/demo); first a priorities scenario in a second database with
# its own rules (test/e2e/priorities_rules.yaml), replicated by its own worker.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/test/lib/pg_cluster.sh"
BUILD=${BUILD:-build}
GW_BIN="$ROOT/$BUILD/powersync-gateway"
# Adds the counts of one node test file's closing line to the suite's totals.
total_pass=0 total_fail=0
tally() {
  local out rc line
  out=$("$@" 2>&1); rc=$?
  echo "$out"
  line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n1)
  if [ -z "$line" ]; then total_fail=$((total_fail + 1)); return; fi
  total_pass=$((total_pass + ${line%% passed*}))
  local f=${line#*passed, }; f=${f%% failed*}
  [ "$f" = 0 ] && [ "$rc" != 0 ] && f=1
  total_fail=$((total_fail + f))
}
[ -x "$GW_BIN" ] || { echo "FAIL - $GW_BIN not built"; echo "0 passed, 1 failed"; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || { echo "FAIL - @powersync/node needs node >= 20 (found $(node --version 2>/dev/null || echo none))"; echo "0 passed, 1 failed"; exit 1; }

# The client and better-sqlite3 (built from source against the system's node headers).
if [ ! -e "$ROOT/test/e2e/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ] ||
   [ ! -d "$ROOT/test/e2e/node_modules/@powersync/node" ]; then
  echo "installing the e2e client packages (npm ci)"
  (cd "$ROOT/test/e2e" && npm_config_nodedir=/usr npm_config_build_from_source=true CFLAGS=-O0 CXXFLAGS=-O0 \
     npm ci --no-audit --no-fund) || { echo "FAIL - npm ci in test/e2e"; echo "0 passed, 1 failed"; exit 1; }
fi

work=$(mktemp -d /tmp/ps_e2e.XXXXXX); chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
pg_cluster_start "$work/pg" || { echo "0 passed, 1 failed"; exit 1; }
trap '_pg_cluster_cleanup; rm -rf "$work"' EXIT
export PGOPTIONS="-c client_min_messages=warning" PATH="$PG_BIN:$PATH"
mkdir -p "$work/keys"
node "$ROOT/test/gateway_http/make_keys.mjs" "$work/keys"
export GW_BIN KEYS_DIR="$work/keys" WORK_DIR="$work" GW_PORT=$(pg_free_port)

# 1. Priorities, bucket removal and resume with the real client (own database and rules).
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres prio
PGDATABASE=prio psql -XAtq -v ON_ERROR_STOP=1 -v rules="$(cat "$ROOT/test/e2e/priorities_rules.yaml")" >/dev/null <<'SQL' \
  || { echo "FAIL - priorities database setup"; total_fail=$((total_fail + 1)); }
CREATE EXTENSION powersync_pg;
CREATE TABLE items (id text PRIMARY KEY, owner text NOT NULL, tier text NOT NULL, v text);
CREATE TABLE vips (user_id text PRIMARY KEY);
SELECT powersync.deploy_sync_rules(:'rules');
SELECT powersync.wait_for_checkpoint();
SQL
mkdir -p "$work/prio"
cd "$ROOT/test/e2e"
tally env PGDATABASE=prio WORK_DIR="$work/prio" timeout 300 node priorities.test.mjs
finish_line() { echo "$total_pass passed, $total_fail failed"; [ "$total_fail" = 0 ]; exit $?; }

# 2. The real client against the real replication pipeline and the demo schema.
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres demo
export PGDATABASE=demo
psql -XAtq -c "CREATE EXTENSION powersync_pg" || { echo "FAIL - CREATE EXTENSION powersync_pg"; total_fail=$((total_fail + 1)); finish_line; }
missing=$(psql -XAtq -c "SELECT string_agg(f, ', ') FROM unnest(ARRAY['powersync.checkpoint()',
  'powersync.request_buckets(jsonb,jsonb,bigint)', 'powersync.bucket_checksums(text[],bigint)',
  'powersync.bucket_ops(text,bigint,bigint,integer)', 'powersync.create_write_checkpoint(text,text)',
  'powersync.deploy_sync_rules(text)', 'powersync.wait_for_checkpoint(interval)']) f WHERE to_regprocedure(f) IS NULL")
[ -z "$missing" ] || { echo "FAIL - the extension lacks $missing"; total_fail=$((total_fail + 1)); finish_line; }

psql -XAtq -v ON_ERROR_STOP=1 -f "$ROOT/test/demo/schema.sql" >/dev/null || { echo "FAIL - demo schema"; total_fail=$((total_fail + 1)); finish_line; }
psql -XAtq -v ON_ERROR_STOP=1 -v rules="$(cat "$ROOT/test/demo/sync_rules.yaml")" >/dev/null <<'SQL' || { echo "FAIL - deploy rules"; total_fail=$((total_fail + 1)); finish_line; }
SELECT powersync.deploy_sync_rules(:'rules');
SELECT powersync.wait_for_checkpoint();
SQL
tally timeout 600 node e2e.test.mjs
finish_line
