#!/usr/bin/env bash
# `make demo`: builds everything, installs the extension into a private copy of Postgres 15,
# starts a local Postgres (as a non-root user, wal_level=logical, library preloaded), loads the
# demo schema (lists/todos owned by users) and sync rules, starts powersync-gateway on 127.0.0.1
# and prints a JWT and a ready-to-run curl. Ctrl-C stops the gateway and Postgres.
#   DEMO_PORT=8080 (gateway), DEMO_PG_PORT=54329, DEMO_DIR=.demo
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
DEMO_DIR=${DEMO_DIR:-$ROOT/.demo}
GW_PORT=${DEMO_PORT:-8080}
PG_PORT=${DEMO_PG_PORT:-54329}
mkdir -p "$DEMO_DIR"

echo "== building"
make -j"$(nproc)" all >"$DEMO_DIR/build.log" 2>&1 || { tail -n 40 "$DEMO_DIR/build.log"; exit 1; }
PREFIX="$DEMO_DIR/pg"
PG_BIN=$(bash test/lib/private_pg.sh "$PREFIX")
make install DESTDIR="$PREFIX" >>"$DEMO_DIR/build.log" 2>&1 || { tail -n 40 "$DEMO_DIR/build.log"; exit 1; }
export PG_BIN PS_ROOT="$ROOT"
source test/lib/pg_cluster.sh   # as_pg: initdb/postgres refuse root, they run as `postgres`

echo "== starting Postgres on 127.0.0.1:$PG_PORT"
if [ -f "$DEMO_DIR/cluster/data/postmaster.pid" ]; then pg_cluster_stop "$DEMO_DIR/cluster"; fi
rm -rf "$DEMO_DIR/cluster"
chmod 755 "$DEMO_DIR"
pg_cluster_start "$DEMO_DIR/cluster" "$PG_PORT"
gw_pid=
cleanup() { [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null; wait "$gw_pid" 2>/dev/null; _pg_cluster_cleanup; }
trap cleanup EXIT
trap 'exit 0' INT TERM
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres demo
export PGDATABASE=demo PGOPTIONS="-c client_min_messages=warning"
psql() { "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE EXTENSION powersync_pg"
psql -f test/demo/schema.sql >/dev/null
psql >/dev/null <<'SQL'
INSERT INTO lists (id, name, owner_id) VALUES
  ('9b3c0c1e-0000-4000-8000-000000000001', 'Groceries', 'demo-user'),
  ('9b3c0c1e-0000-4000-8000-000000000002', 'Weekend', 'demo-user'),
  ('9b3c0c1e-0000-4000-8000-000000000003', 'Someone else''s list', 'other-user');
INSERT INTO todos (list_id, description, completed) VALUES
  ('9b3c0c1e-0000-4000-8000-000000000001', 'Milk', false),
  ('9b3c0c1e-0000-4000-8000-000000000001', 'Bread', true),
  ('9b3c0c1e-0000-4000-8000-000000000002', 'Hike', false),
  ('9b3c0c1e-0000-4000-8000-000000000003', 'Not yours', false);
SQL
psql -v rules="$(cat test/demo/sync_rules.yaml)" >/dev/null <<'SQL'
SELECT powersync.deploy_sync_rules(:'rules');
SELECT powersync.wait_for_checkpoint('60 s');
SQL

echo "== keys and a token"
secret=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')
printf '{"keys":[{"kty":"oct","alg":"HS256","kid":"demo","k":"%s"}]}\n' "$secret" >"$DEMO_DIR/jwks.json"
token=$(python3 - "$secret" <<'PY'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()
key = base64.urlsafe_b64decode(sys.argv[1] + '=' * (-len(sys.argv[1]) % 4))
now = int(time.time())
head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "demo"}).encode())
body = b64(json.dumps({"sub": "demo-user", "aud": "powersync-demo", "iat": now, "exp": now + 12 * 3600}).encode())
sig = b64(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
)
echo "$token" >"$DEMO_DIR/token.txt"

echo "== starting powersync-gateway on 127.0.0.1:$GW_PORT"
BUILD_DIR=${BUILD:-build}
"$ROOT/$BUILD_DIR/powersync-gateway" --db "host=127.0.0.1 port=$PG_PORT dbname=demo user=postgres" \
  --listen "127.0.0.1:$GW_PORT" --jwks "$DEMO_DIR/jwks.json" --audience powersync-demo \
  --enable-crud-upload --crud-tables lists,todos --crud-role app_user &
gw_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$GW_PORT/probes/liveness" >/dev/null && break; sleep 0.2; done

cat <<EOF2

powersync_pg demo is running.
  Postgres:  psql "host=127.0.0.1 port=$PG_PORT dbname=demo user=postgres"
  Gateway:   http://127.0.0.1:$GW_PORT  (JWKS: $DEMO_DIR/jwks.json, audience powersync-demo)
  JWT for user "demo-user" (12 h, also in $DEMO_DIR/token.txt):
    $token

Stream the sync protocol (NDJSON; Ctrl-C to stop), then change data in psql and watch the diffs:
  curl -N -X POST http://127.0.0.1:$GW_PORT/sync/stream \\
    -H "Authorization: Token \$(cat $DEMO_DIR/token.txt)" -H 'Content-Type: application/json' \\
    -d '{"raw_data":true,"client_id":"demo-client"}'
  psql "host=127.0.0.1 port=$PG_PORT dbname=demo user=postgres" \\
    -c "INSERT INTO todos (list_id, description) VALUES ('9b3c0c1e-0000-4000-8000-000000000001', 'Eggs')"
Point a PowerSync client SDK at http://127.0.0.1:$GW_PORT with that token; uploads go to POST /api/crud.
EOF2
echo
echo "Press Ctrl-C to stop."
wait "$gw_pid"
