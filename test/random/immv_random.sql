-- Schema, views and random DML for test/suites/55-immv-random.sh. The caller runs setseed() first,
-- then CALL immv_random_batch(n) and SELECT immv_check() alternately.
CREATE EXTENSION IF NOT EXISTS powersync_pg;
CREATE TABLE customers (id int PRIMARY KEY, name text, region text, referrer int, notes text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE ON UPDATE CASCADE,
                     status text, total numeric, internal text);
CREATE TABLE items (order_id int REFERENCES orders ON DELETE CASCADE ON UPDATE CASCADE, line int, sku text, qty int,
                    attrs jsonb, PRIMARY KEY (order_id, line));
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON items (sku);

CREATE FUNCTION r(n int) RETURNS int LANGUAGE sql AS 'SELECT 1 + floor(random() * n)::int';
CREATE FUNCTION pick(VARIADIC a text[]) RETURNS text LANGUAGE sql AS 'SELECT a[1 + floor(random() * array_length(a, 1))::int]';

INSERT INTO customers SELECT g, 'c' || g, pick('eu', 'us', 'apac'), CASE WHEN g > 3 THEN r(g - 1) END, '' FROM generate_series(1, 40) g;
INSERT INTO orders SELECT g, r(40), pick('open', 'paid', 'shipped'), r(1000), '' FROM generate_series(1, 150) g;
INSERT INTO items SELECT o, l, pick('tea', 'mug', 'pot', 'cup'), r(5) - 1, jsonb_build_object('l', l) FROM generate_series(1, 150) o, generate_series(1, 4) l WHERE random() < 0.7;

SELECT powersync.create_immv('v_lines', $$
  SELECT i.order_id, i.line, i.sku, i.qty, i.attrs, o.status, o.total, c.id AS customer_id, c.name, c.region,
         i.qty * o.total AS amount
    FROM items i JOIN orders o ON o.id = i.order_id JOIN customers c ON c.id = o.customer_id
   WHERE i.qty > 0 AND c.region <> 'apac'$$) > 0 AS created;
SELECT powersync.create_immv('v_tree', $$
  SELECT c.id AS customer_id, c.name, o.id AS order_id, o.status, i.line, i.sku
    FROM customers c LEFT JOIN orders o ON o.customer_id = c.id LEFT JOIN items i ON i.order_id = o.id AND i.qty > 1$$) > 0 AS created;
SELECT powersync.create_immv('v_referrals', $$
  SELECT c.id, c.name, r.name AS referrer_name, r.region AS referrer_region
    FROM customers c JOIN customers r ON r.id = c.referrer$$) > 0 AS created;

CREATE FUNCTION immv_diff(v regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE cols text; q text; missing bigint; extra bigint;
BEGIN
  SELECT definition INTO q FROM powersync.immv_catalog WHERE immv = v;
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute
   WHERE attrelid = v AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\_\_ps\_%';
  EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL SELECT %s FROM %s) d', q, cols, v) INTO missing;
  EXECUTE format('SELECT count(*) FROM (SELECT %s FROM %s EXCEPT ALL (%s)) d', cols, v, q) INTO extra;
  RETURN CASE WHEN missing = 0 AND extra = 0 THEN 'ok' ELSE format('%s: missing %s, extra %s', v, missing, extra) END;
END $$;
CREATE FUNCTION immv_check() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(immv_diff(v), ' ' ORDER BY v) FROM unnest(ARRAY['v_lines', 'v_tree', 'v_referrals']::regclass[]) v $$;

-- One random statement. Statements that hit a key or foreign-key conflict roll back (a
-- subtransaction), which exercises the rollback path too.
CREATE FUNCTION immv_random_statement() RETURNS text LANGUAGE plpgsql AS $$
DECLARE k int := r(28); s text;
BEGIN
  IF k > 22 THEN k := (ARRAY[1, 1, 8, 8, 14, 14])[k - 22]; END IF;  -- inserts balance the deletes
  s := CASE k
    WHEN 1 THEN format('INSERT INTO customers VALUES (%s, %L, %L, %s, %L)', r(80), 'n' || r(99), pick('eu', 'us', 'apac'), r(80), 'x')
    WHEN 2 THEN format('UPDATE customers SET name = %L WHERE id = %s', 'n' || r(99), r(80))
    WHEN 3 THEN format('UPDATE customers SET region = %L WHERE id BETWEEN %s AND %s', pick('eu', 'us', 'apac'), r(80), r(80))
    WHEN 4 THEN format('UPDATE customers SET notes = %L WHERE id < %s', 'note' || r(9), r(80))
    WHEN 5 THEN format('DELETE FROM customers WHERE id = %s', r(80))
    WHEN 6 THEN format('UPDATE customers SET id = %s WHERE id = %s', r(80), r(80))
    WHEN 7 THEN format('UPDATE customers SET referrer = %s WHERE id = %s', r(80), r(80))
    WHEN 8 THEN format('INSERT INTO orders VALUES (%s, %s, %L, %s, %L)', r(300), r(80), pick('open', 'paid'), r(1000), '')
    WHEN 9 THEN format('UPDATE orders SET status = %L WHERE id %% 7 = %s', pick('open', 'paid', 'shipped'), r(7) - 1)
    WHEN 10 THEN format('UPDATE orders SET customer_id = %s WHERE id = %s', r(80), r(300))
    WHEN 11 THEN format('UPDATE orders SET id = %s WHERE id = %s', r(300), r(300))
    WHEN 12 THEN format('DELETE FROM orders WHERE id = %s', r(300))
    WHEN 13 THEN format('UPDATE orders SET internal = %L, total = total WHERE customer_id = %s', 'i' || r(9), r(80))
    WHEN 14 THEN format('INSERT INTO items SELECT %s, l, %L, %s, NULL FROM generate_series(1, %s) l ON CONFLICT DO NOTHING', r(300), pick('tea', 'mug', 'pot'), r(5) - 1, r(5))
    WHEN 15 THEN format('UPDATE items SET qty = qty + %s WHERE order_id BETWEEN %s AND %s', r(3) - 2, r(300), r(300))
    WHEN 16 THEN format('UPDATE items SET order_id = %s WHERE order_id = %s AND line = %s', r(300), r(300), r(4))
    WHEN 17 THEN format('DELETE FROM items WHERE order_id = %s', r(300))
    WHEN 18 THEN format('UPDATE items SET attrs = jsonb_build_object(%L, %s) WHERE sku = %L AND order_id < %s', 'k', r(9), pick('tea', 'mug'), r(300))
    WHEN 19 THEN format('WITH c AS (UPDATE customers SET name = %L WHERE id = %s RETURNING id), o AS (INSERT INTO orders SELECT %s, id, %L, 1, %L FROM c RETURNING id) INSERT INTO items SELECT id, 1, %L, 3, NULL FROM o',
                        'w' || r(99), r(80), r(300), 'cte', '', 'cte')
    WHEN 20 THEN format('WITH i AS (DELETE FROM items WHERE order_id = %1$s), o AS (UPDATE orders SET status = %2$L WHERE id = %1$s RETURNING customer_id) UPDATE customers SET region = %3$L WHERE id IN (SELECT customer_id FROM o)',
                        r(300), pick('open', 'shipped'), pick('eu', 'us', 'apac'))
    WHEN 21 THEN format('WITH o AS (UPDATE orders SET customer_id = %s WHERE customer_id = %s RETURNING id) UPDATE items SET qty = qty + 1 WHERE order_id IN (SELECT id FROM o)', r(80), r(80))
    ELSE CASE WHEN random() < 0.05 THEN 'TRUNCATE items' ELSE format('UPDATE items SET sku = %L WHERE order_id = %s', pick('tea', 'cup'), r(300)) END
  END;
  BEGIN
    EXECUTE s;
  EXCEPTION WHEN unique_violation OR foreign_key_violation OR not_null_violation THEN
    RETURN s || ' -- rolled back: ' || SQLERRM;
  END;
  RETURN s;
END $$;

-- A batch: n statements, sometimes grouped in one transaction, sometimes rolled back to a savepoint.
CREATE PROCEDURE immv_random_batch(n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    IF random() < 0.03 THEN
      BEGIN
        PERFORM immv_random_statement();
        PERFORM immv_random_statement();
        RAISE EXCEPTION 'roll back' USING ERRCODE = 'P0001';
      EXCEPTION WHEN raise_exception THEN NULL;
      END;
    ELSE
      PERFORM immv_random_statement();
    END IF;
    IF random() < 0.2 THEN COMMIT; END IF;
  END LOOP;
  COMMIT;
END $$;
