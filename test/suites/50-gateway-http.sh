#!/usr/bin/env bash
# Protocol tests of powersync-gateway over real HTTP (node's fetch) against a temporary Postgres
# running the extension: the suite's rules (test/gateway_http/rules.yaml) are deployed, tests write
# rows to real tables and wait for the replication worker's checkpoints.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/test/lib/pg_cluster.sh"
BUILD=${BUILD:-build}
GW_BIN="$ROOT/$BUILD/powersync-gateway"
if [ ! -x "$GW_BIN" ]; then echo "FAIL - $GW_BIN not built"; echo "0 passed, 1 failed"; exit 1; fi
work=$(mktemp -d /tmp/ps_gw_http.XXXXXX); chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
pg_cluster_start "$work/pg" || { echo "0 passed, 1 failed"; exit 1; }
trap '_pg_cluster_cleanup; rm -rf "$work"' EXIT
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres gwtest
export PGDATABASE=gwtest
"$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -v rules="$(cat "$ROOT/test/gateway_http/rules.yaml")" >/dev/null <<SQL \
  || { echo "FAIL - extension, schema or sync rules"; echo "0 passed, 1 failed"; exit 1; }
CREATE EXTENSION powersync_pg;
\i $ROOT/test/gateway_http/schema.sql
SELECT powersync.deploy_sync_rules(:'rules');
SELECT powersync.wait_for_checkpoint();
SQL
mkdir -p "$work/keys"
node "$ROOT/test/gateway_http/make_keys.mjs" "$work/keys"
export PGOPTIONS="-c client_min_messages=warning" PATH="$PG_BIN:$PATH" GW_BIN KEYS_DIR="$work/keys" WORK_DIR="$work"
node "$ROOT/test/gateway_http/protocol.test.mjs"
