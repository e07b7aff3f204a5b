#!/usr/bin/env bash
# End to end: an IMMV of line items with their order's and customer's columns, sync rules that
# bucket it by customer, and the replication worker: a line item's change (and an order's or
# customer's) reaches the customer's bucket as ops. Skips when replication is not in this build.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/test/lib/pg_cluster.sh"
source "$ROOT/test/lib/counts.sh"
dir=$(mktemp -d /tmp/ps_immv_sync.XXXXXX)
pg_cluster_start "$dir" || { echo "0 passed, 1 failed"; exit 1; }
q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
q -c "CREATE EXTENSION powersync_pg" >/dev/null
if [ "$(q -c "SELECT count(*) FROM pg_proc WHERE proname = 'deploy_sync_rules'")" = 0 ]; then
  echo "SKIP: powersync.deploy_sync_rules is not in this build (replication not merged)"
  pg_cluster_stop "$dir"; rm -rf "$dir"; finish; exit 0
fi
q >/dev/null <<'SQL'
CREATE TABLE customers (id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id text PRIMARY KEY, customer_id text NOT NULL REFERENCES customers ON DELETE CASCADE, status text);
CREATE TABLE line_items (id text PRIMARY KEY, order_id text NOT NULL REFERENCES orders ON DELETE CASCADE, sku text, quantity int);
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON line_items (order_id);
INSERT INTO customers VALUES ('ann', 'Ann'), ('bob', 'Bob');
INSERT INTO orders VALUES ('o1', 'ann', 'open'), ('o2', 'bob', 'open');
INSERT INTO line_items VALUES ('li1', 'o1', 'tea', 1), ('li2', 'o1', 'mug', 2), ('li3', 'o2', 'pot', 3);
SELECT powersync.create_immv('line_item_view', $$
  SELECT li.id, li.sku, li.quantity, o.id AS order_id, o.status, c.id AS customer_id, c.name AS customer_name
    FROM line_items li JOIN orders o ON o.id = li.order_id JOIN customers c ON c.id = o.customer_id$$);
SQL
rules='bucket_definitions:
  by_customer:
    parameters: SELECT request.user_id() AS customer_id
    data:
      - SELECT id, sku, quantity, order_id, status, customer_name FROM line_item_view WHERE customer_id = bucket.customer_id'
echo "SELECT powersync.deploy_sync_rules(:'rules')" | q -v rules="$rules" >/dev/null || { fail "sync rules deployed"; finish; exit 1; }
wait_cp() { q -c "SELECT powersync.wait_for_checkpoint('60 s')"; }
# The current rows of a customer's bucket: the newest op per object (PUT data or REMOVE).
bucket() {
  q -c "SELECT string_agg(object_id || '=' || CASE op WHEN 'PUT' THEN (data::jsonb ->> 'quantity') || '/' || (data::jsonb ->> 'status')
                                                        || '/' || (data::jsonb ->> 'customer_name') ELSE op END, ' ' ORDER BY object_id)
          FROM (SELECT DISTINCT ON (d.object_id) d.object_id, d.op, d.data
                  FROM powersync.bucket_data d
                 WHERE d.bucket LIKE '%by_customer[\"$1\"]' AND d.object_type = 'line_item_view' AND d.op IN ('PUT', 'REMOVE')
                 ORDER BY d.object_id, d.op_id DESC) x"
}
expect() {  # expect NAME CUSTOMER WANT
  local got; got=$(bucket "$2")
  if [ "$got" = "$3" ]; then pass "$1: $got"; else fail "$1: bucket of $2 is '$got', want '$3'"; fi
}
wait_cp >/dev/null || { q -c "SELECT * FROM powersync.status()"; fail "initial checkpoint"; finish; exit 1; }
expect "initial snapshot reaches the buckets" ann "li1=1/open/Ann li2=2/open/Ann"
q -c "UPDATE line_items SET quantity = 42 WHERE id = 'li1'" && wait_cp >/dev/null
expect "a line item's change reaches its customer's bucket" ann "li1=42/open/Ann li2=2/open/Ann"
q -c "UPDATE orders SET status = 'shipped' WHERE id = 'o1'" && q -c "UPDATE customers SET name = 'Ann L.' WHERE id = 'ann'" && wait_cp >/dev/null
expect "order and customer changes reach every line item below them" ann "li1=42/shipped/Ann L. li2=2/shipped/Ann L."
q -c "INSERT INTO line_items VALUES ('li4', 'o2', 'cup', 4)" && wait_cp >/dev/null
expect "a new line item appears in its customer's bucket" bob "li3=3/open/Bob li4=4/open/Bob"
q -c "UPDATE orders SET customer_id = 'bob' WHERE id = 'o1'" && wait_cp >/dev/null
expect "moving an order removes its items from the old customer's bucket" ann "li1=REMOVE li2=REMOVE"
expect "... and puts them into the new customer's bucket" bob "li1=42/shipped/Bob li2=2/shipped/Bob li3=3/open/Bob li4=4/open/Bob"
q -c "DELETE FROM customers WHERE id = 'bob'" && wait_cp >/dev/null
expect "deleting a customer (cascading) empties its bucket" bob "li1=REMOVE li2=REMOVE li3=REMOVE li4=REMOVE"
pg_cluster_stop "$dir"
[ "$FAIL" = 0 ] && rm -rf "$dir"
finish
