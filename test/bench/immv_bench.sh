#!/usr/bin/env bash
# IMMV benchmark: the same data (10k customers, 100k orders, 1M line items) in two databases of one
# temporary cluster, "plain" without and "immv" with an IMMV over the 3-table join, measured side by
# side: single-row writes per base table, a customer update fanning out to 100 / 1,000 / 10,000 view
# rows, a 10k-row bulk UPDATE, pgbench throughput of line-item UPDATEs at 1 and 4 clients, and
# create_immv vs CREATE MATERIALIZED VIEW.
#   PS_PG_PREFIX=/opt/pg-x bash test/bench/immv_bench.sh     (after installing the extension there)
#   PS_BENCH_SECONDS=3  duration of each timed pgbench run; PS_BENCH_ROUNDS=3 rounds
#   PS_BENCH_REPLICATION=1  keep the replication workers running (by default they are stopped once
#                       the data is loaded: each decodes the whole cluster's WAL, IMMV rows included,
#                       and on a 2-core machine that CPU is taken from the statements measured here)
# Both databases are prewarmed into shared_buffers (1GB) before measuring.
# On a shared machine the load drifts: plain and immv runs alternate, round after round, and each
# figure is the best round (lowest latency, highest throughput) of its side.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -n "${PS_PG_PREFIX:-}" ] && PG_BIN=$(bash "$ROOT/test/lib/private_pg.sh" "$PS_PG_PREFIX")
source "$ROOT/test/lib/pg_cluster.sh"
secs=${PS_BENCH_SECONDS:-3}
rounds=${PS_BENCH_ROUNDS:-3}
dir=$(mktemp -d /tmp/ps_immv_bench.XXXXXX)
pg_cluster_start "$dir" "" "shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
synchronous_commit = off
$([ "${PS_BENCH_REPLICATION:-0}" = 1 ] || echo "shared_preload_libraries = ''  # no launcher restarting stopped workers")" >/dev/null
trap 'pg_cluster_stop "$dir"; rm -rf "$dir"' EXIT
q() { local db=$1; shift; "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
now() { date +%s.%N; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }

VIEW_QUERY="SELECT li.id, li.sku, li.quantity, li.price, o.id AS order_id, o.status, o.created_at,
       c.id AS customer_id, c.name AS customer_name, c.region
  FROM line_items li JOIN orders o ON o.id = li.order_id JOIN customers c ON c.id = o.customer_id"

load() {
  q postgres -c "CREATE DATABASE $1"
  q "$1" <<'SQL'
CREATE EXTENSION powersync_pg;
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text, region text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
                     status text NOT NULL, created_at timestamptz NOT NULL, note text);
CREATE TABLE line_items (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders ON DELETE CASCADE,
                         sku text NOT NULL, quantity int NOT NULL, price numeric(10, 2) NOT NULL);
CREATE SEQUENCE new_ids START 100000000;
INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com', (ARRAY['eu', 'us', 'apac'])[1 + g % 3]
  FROM generate_series(1, 10000) g;
-- customer 1 has 1,000 orders (10,000 line items), customer 2 has 100, customer 3 has 10; the rest ~10 each
INSERT INTO orders SELECT g, CASE WHEN g <= 1000 THEN 1 WHEN g <= 1100 THEN 2 WHEN g <= 1110 THEN 3 ELSE 4 + g % 9997 END,
                          'open', '2024-01-01', '' FROM generate_series(1, 100000) g;
INSERT INTO line_items SELECT g, 1 + (g - 1) / 10, 'sku' || g % 500, 1 + g % 5, 9.99 FROM generate_series(1, 1000000) g;
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON line_items (order_id);
SQL
}

echo "== loading 10k customers, 100k orders, 1M line items into databases plain and immv"
load plain
load immv
t=$(now); q immv -c "SELECT powersync.create_immv('line_item_view', \$\$$VIEW_QUERY\$\$)" >/dev/null; create_immv_ms=$(ms_since "$t")
t=$(now); q plain -c "CREATE MATERIALIZED VIEW line_item_matview AS $VIEW_QUERY" >/dev/null; matview_ms=$(ms_since "$t")
q plain -c "DROP MATERIALIZED VIEW line_item_matview"
q plain -c "VACUUM ANALYZE"; q immv -c "VACUUM ANALYZE"
# Both sides start with their tables and indexes cached: random single-row statements otherwise
# measure how soon the larger immv database warms up.
for db in plain immv; do
  q "$db" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
    -c "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c WHERE c.relkind IN ('r', 'i') AND c.relnamespace = 'public'::regnamespace" >/dev/null
done
echo "view rows: $(q immv -c 'SELECT count(*) FROM line_item_view')"
if [ "${PS_BENCH_REPLICATION:-0}" != 1 ]; then
  q postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'powersync replication'" >/dev/null
  echo "replication workers stopped (PS_BENCH_REPLICATION=1 keeps them)"
fi
echo "load: $(uptime)"

cat >"$dir/line_items.sql" <<'SQL'
\set o random(1, 100000)
\set l random(1, 1000000)
INSERT INTO line_items VALUES (nextval('new_ids'), :o, 'new', 1, 1.00) RETURNING id AS new_id \gset
UPDATE line_items SET quantity = quantity % 9 + 1 WHERE id = :l;
DELETE FROM line_items WHERE id = :new_id;
SQL
cat >"$dir/orders.sql" <<'SQL'
\set c random(4, 10000)
\set o random(1111, 100000)
INSERT INTO orders VALUES (nextval('new_ids'), :c, 'new', '2024-02-01', '') RETURNING id AS new_id \gset
UPDATE orders SET status = CASE status WHEN 'open' THEN 'paid' ELSE 'open' END WHERE id = :o;
UPDATE orders SET note = 'n' || :o WHERE id = :o;
DELETE FROM orders WHERE id = :new_id;
SQL
cat >"$dir/customers.sql" <<'SQL'
\set c random(4, 10000)
INSERT INTO customers VALUES (nextval('new_ids'), 'new', NULL, 'eu') RETURNING id AS new_id \gset
UPDATE customers SET name = 'customer ' || :c || ' ' || (random() * 1000)::int WHERE id = :c;
UPDATE customers SET email = 'e' || (random() * 1000)::int WHERE id = :c;
DELETE FROM customers WHERE id = :new_id;
SQL
echo "UPDATE customers SET name = 'fan-out ' || random() WHERE id = :cid;" >"$dir/fanout.sql"
printf '%s\n' '\set s random(1, 990000)' 'UPDATE line_items SET quantity = quantity % 9 + 1 WHERE id BETWEEN :s AND :s + 9999;' >"$dir/bulk.sql"
printf '%s\n' '\set l random(1, 1000000)' 'UPDATE line_items SET quantity = quantity % 9 + 1 WHERE id = :l;' >"$dir/li_update.sql"

# pgbench -r: per-statement average latency (ms) of the script's SQL statements, in order
bench_statements() {
  "$PG_BIN/pgbench" -n -r -T "$secs" -f "$dir/$2.sql" "$1" 2>/dev/null |
    awk '/statement latencies/ { on = 1; next } on && $1 ~ /^[0-9.]+$/ && $3 !~ /^\\/ { print $1 }'
}
tps() { "$PG_BIN/pgbench" -n "$@" 2>/dev/null | awk '/^tps/ { printf "%.0f", $3 }'; }
latency() { "$PG_BIN/pgbench" -n "$@" 2>/dev/null | awk '/latency average/ { print $4 }'; }
# best (min or max) of one value per line, per line position, over several files
best_lines() { paste "${@:2}" | awk -v mode="$1" '{ b = $1; for (i = 2; i <= NF; i++) if ((mode == "min") ? $i < b : $i > b) b = $i; print b }'; }
printf '\n%-52s %10s %10s %10s\n' "single-row statements (avg ms, best of $rounds x ${secs}s)" plain immv overhead
for table in line_items orders customers; do
  for r in $(seq "$rounds"); do
    bench_statements plain "$table" >"$dir/plain.$table.$r"
    bench_statements immv "$table" >"$dir/immv.$table.$r"
  done
  mapfile -t plain < <(best_lines min "$dir"/plain."$table".*)
  mapfile -t immv < <(best_lines min "$dir"/immv."$table".*)
  case $table in
    line_items) labels=("line_items INSERT (1 view row)" "line_items UPDATE quantity (1 view row)" "line_items DELETE (1 view row)") ;;
    orders) labels=("orders INSERT (no items yet)" "orders UPDATE status (10 view rows)" "orders UPDATE unused column" "orders DELETE (no items)") ;;
    customers) labels=("customers INSERT" "customers UPDATE name (~100 view rows)" "customers UPDATE unused column" "customers DELETE (no orders)") ;;
  esac
  for i in "${!labels[@]}"; do
    printf '%-52s %10s %10s %10s\n' "${labels[$i]}" "${plain[$i]:-?}" "${immv[$i]:-?}" \
      "$(awk -v a="${plain[$i]:-0}" -v b="${immv[$i]:-0}" 'BEGIN { printf "%+.3f", b - a }')"
  done
done

printf '\n%-52s %10s %10s %10s\n' "fan-out and bulk (avg ms, best of $rounds)" plain immv ratio
measure() {  # measure LABEL MODE ARGS...: the same pgbench run on both databases, alternating, best round
  local label=$1 mode=$2 a=() b=(); shift 2
  for r in $(seq "$rounds"); do a+=("$("$@" plain)"); b+=("$("$@" immv)"); done
  a=$(printf '%s\n' "${a[@]}" | sort -g | { [ "$mode" = min ] && head -n 1 || tail -n 1; })
  b=$(printf '%s\n' "${b[@]}" | sort -g | { [ "$mode" = min ] && head -n 1 || tail -n 1; })
  if [ "$mode" = min ]; then ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1fx", b / a }')
  else ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.0f%%", 100 * b / a }'); fi
  printf '%-52s %10s %10s %10s\n' "$label" "$a" "$b" "$ratio"
}
for spec in "3:100" "2:1000" "1:10000"; do
  measure "UPDATE 1 customer -> ${spec##*:} view rows" min latency -t 10 -D cid="${spec%%:*}" -f "$dir/fanout.sql"
done
measure "UPDATE 10,000 line items in one statement" min latency -t 5 -f "$dir/bulk.sql"

printf '\n%-52s %10s %10s %10s\n' "pgbench line_items UPDATE (tps, best of $rounds x ${secs}s)" plain immv ratio
for c in 1 4; do
  measure "$c client(s)" max tps -c "$c" -j "$(( c < 2 ? c : 2 ))" -T "$secs" -f "$dir/li_update.sql"
done

printf '\n%-52s %10s %10s\n' "building the view over 1M line items (ms)" matview create_immv
printf '%-52s %10s %10s\n' "CREATE MATERIALIZED VIEW vs create_immv" "$matview_ms" "$create_immv_ms"
drift=$(q immv -c "SELECT powersync.refresh_immv('line_item_view')")
echo "refresh_immv after the run changed $drift rows (0 = the view stayed exact)"
echo "load: $(uptime)"
