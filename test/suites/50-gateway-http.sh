#!/usr/bin/env bash
# Protocol tests of powersync-gateway over real HTTP (node's fetch) against a temporary Postgres
# holding the pull-API contract fixture (test/gateway_http/contract_fixture.sql).
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
"$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -f "$ROOT/test/gateway_http/contract_fixture.sql" >/dev/null \
  || { echo "FAIL - fixture"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$work/keys"
node "$ROOT/test/gateway_http/make_keys.mjs" "$work/keys"
export PGOPTIONS="-c client_min_messages=warning" PATH="$PG_BIN:$PATH" GW_BIN KEYS_DIR="$work/keys" WORK_DIR="$work"
node "$ROOT/test/gateway_http/protocol.test.mjs"
