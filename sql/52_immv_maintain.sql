-- IMMV maintenance: each kind of base-table change keeps the view equal to its query, updates view
-- rows in place when their key is unchanged, and ignores changes to columns the view does not read.
CREATE FUNCTION immv_diff(v regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE cols text; q text; missing bigint; extra bigint;
BEGIN
  SELECT definition INTO q FROM powersync.immv_catalog WHERE immv = v;
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute
   WHERE attrelid = v AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\_\_ps\_%';
  EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL SELECT %s FROM %s) d', q, cols, v) INTO missing;
  EXECUTE format('SELECT count(*) FROM (SELECT %s FROM %s EXCEPT ALL (%s)) d', cols, v, q) INTO extra;
  RETURN CASE WHEN missing = 0 AND extra = 0 THEN 'ok' ELSE format('missing %s, extra %s', missing, extra) END;
END $$;
-- rows written to a view since immv_mark() in the same transaction (pending statistics counters)
CREATE TEMP TABLE immv_marks (relid oid PRIMARY KEY, ins bigint, upd bigint, del bigint);
CREATE FUNCTION immv_mark(v regclass) RETURNS void LANGUAGE sql AS $$
  INSERT INTO immv_marks SELECT relid, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables WHERE relid = v
  ON CONFLICT (relid) DO UPDATE SET ins = excluded.ins, upd = excluded.upd, del = excluded.del $$;
CREATE FUNCTION immv_writes(v regclass) RETURNS text LANGUAGE sql AS $$
  SELECT format('inserted %s, updated %s, deleted %s', s.n_tup_ins - m.ins, s.n_tup_upd - m.upd, s.n_tup_del - m.del)
    FROM pg_stat_xact_user_tables s JOIN immv_marks m USING (relid) WHERE relid = v $$;

CREATE TABLE mt_customer (id int PRIMARY KEY, name text, tier text, notes text);
CREATE TABLE mt_order (id int PRIMARY KEY, customer_id int REFERENCES mt_customer ON DELETE CASCADE ON UPDATE CASCADE,
                       status text, placed date, internal text);
CREATE TABLE mt_item (id int PRIMARY KEY, order_id int REFERENCES mt_order ON DELETE CASCADE ON UPDATE CASCADE,
                      product text, qty int, attrs jsonb);
CREATE INDEX ON mt_order (customer_id);
CREATE INDEX ON mt_item (order_id);
INSERT INTO mt_customer SELECT i, 'c' || i, CASE WHEN i % 2 = 0 THEN 'gold' ELSE 'basic' END, '' FROM generate_series(1, 5) i;
INSERT INTO mt_order SELECT 10 * i + j, i, 'open', date '2024-01-01' + i, '' FROM generate_series(1, 5) i, generate_series(1, 2) j;
INSERT INTO mt_item SELECT 10 * o.id + k, o.id, 'p' || k, k, jsonb_build_object('k', k) FROM mt_order o, generate_series(1, 3) k;
SELECT powersync.create_immv('mt_items', $$
  SELECT i.id, i.product, i.qty, i.attrs, o.id AS order_id, o.status, o.placed,
         c.id AS customer_id, c.name AS customer, c.tier = 'gold' AS gold
    FROM mt_item i JOIN mt_order o ON o.id = i.order_id JOIN mt_customer c ON c.id = o.customer_id
   WHERE i.qty > 0$$);
SELECT immv_diff('mt_items');

-- single-row changes on each base table
INSERT INTO mt_item VALUES (999, 11, 'new', 4, '{}');
SELECT immv_diff('mt_items'), (SELECT customer FROM mt_items WHERE id = 999);
UPDATE mt_item SET qty = 0 WHERE id = 111;          -- leaves the WHERE filter
UPDATE mt_item SET qty = 7 WHERE id = 112;
DELETE FROM mt_item WHERE id = 113;
SELECT immv_diff('mt_items'), (SELECT count(*) FROM mt_items WHERE order_id = 11) AS order_11_rows;
INSERT INTO mt_order VALUES (60, 5, 'open', '2024-02-01', '');
INSERT INTO mt_item VALUES (601, 60, 'x', 1, null);
UPDATE mt_order SET status = 'shipped' WHERE id = 12;
DELETE FROM mt_order WHERE id = 21;                  -- cascades to its items
SELECT immv_diff('mt_items');
INSERT INTO mt_customer VALUES (6, 'c6', 'gold', '');
UPDATE mt_customer SET tier = 'gold' WHERE id = 1;
SELECT immv_diff('mt_items'), (SELECT bool_and(gold) FROM mt_items WHERE customer_id = 1) AS c1_gold;

-- an UPDATE of columns the view does not read writes nothing
BEGIN;
SELECT immv_mark('mt_items');
UPDATE mt_customer SET notes = 'vip';
UPDATE mt_order SET internal = 'checked';
UPDATE mt_item SET qty = qty WHERE id < 200;         -- same values: nothing changes either
SELECT immv_writes('mt_items');
COMMIT;

-- a changed value the view reads updates the dependent rows in place (no delete + insert)
BEGIN;
SELECT immv_mark('mt_items');
UPDATE mt_customer SET name = 'Customer One' WHERE id = 1;
SELECT immv_writes('mt_items'), (SELECT count(*) FROM mt_items WHERE customer_id = 1) AS c1_rows;
SELECT immv_mark('mt_items');
UPDATE mt_item SET attrs = '{"k": 99}' WHERE id = 121;
SELECT immv_writes('mt_items');
COMMIT;
SELECT immv_diff('mt_items'), (SELECT DISTINCT customer FROM mt_items WHERE customer_id = 1);

-- a key change moves rows: old key deleted, new key inserted
BEGIN;
SELECT immv_mark('mt_items');
UPDATE mt_item SET order_id = 22 WHERE id = 122;
SELECT immv_writes('mt_items');
COMMIT;
SELECT immv_diff('mt_items'), (SELECT order_id FROM mt_items WHERE id = 122);

-- foreign-key cascades: ON UPDATE CASCADE changes two base tables in one statement
UPDATE mt_order SET id = 70 WHERE id = 31;
SELECT immv_diff('mt_items'), (SELECT count(*) FROM mt_items WHERE order_id = 70) AS moved;
UPDATE mt_customer SET id = 7 WHERE id = 3;           -- cascades through orders to nothing else
SELECT immv_diff('mt_items'), (SELECT count(*) FROM mt_items WHERE customer_id = 7) AS moved;
DELETE FROM mt_customer WHERE id = 4;                 -- cascades through orders to items
SELECT immv_diff('mt_items'), (SELECT count(*) FROM mt_items WHERE customer_id = 4) AS left_over;

-- writable CTEs changing all three tables in one statement
WITH c AS (INSERT INTO mt_customer VALUES (8, 'c8', 'basic', '') RETURNING id),
     o AS (INSERT INTO mt_order SELECT 80, id, 'open', '2024-03-01', '' FROM c RETURNING id),
     i AS (INSERT INTO mt_item SELECT 801, id, 'cte', 2, null FROM o RETURNING id)
SELECT count(*) FROM i;
SELECT immv_diff('mt_items'), (SELECT customer FROM mt_items WHERE id = 801);
WITH c AS (UPDATE mt_customer SET name = 'C8' WHERE id = 8),
     o AS (UPDATE mt_order SET status = 'paid' WHERE id = 80),
     i AS (UPDATE mt_item SET qty = 5 WHERE id = 801)
SELECT 1;
SELECT immv_diff('mt_items'), (SELECT format('%s %s %s', customer, status, qty) FROM mt_items WHERE id = 801);
WITH i AS (DELETE FROM mt_item WHERE order_id = 80), o AS (DELETE FROM mt_order WHERE id = 80 RETURNING customer_id)
UPDATE mt_customer SET name = 'gone' WHERE id IN (SELECT customer_id FROM o);
SELECT immv_diff('mt_items');
-- one statement deleting a key and inserting it again under another parent
CREATE TEMP TABLE moved AS SELECT min(id) AS id FROM mt_item WHERE qty > 0 AND order_id <> (SELECT max(id) FROM mt_order);
WITH d AS (DELETE FROM mt_item WHERE id = (SELECT id FROM moved) RETURNING *)
INSERT INTO mt_item SELECT id, (SELECT max(id) FROM mt_order), 'again', qty, attrs FROM d;
SELECT immv_diff('mt_items'), (SELECT count(*) FROM mt_items WHERE id = (SELECT id FROM moved)) AS rows,
       (SELECT product FROM mt_items WHERE id = (SELECT id FROM moved));

-- several statements in one transaction, then a rollback
BEGIN;
UPDATE mt_customer SET name = 'tx' WHERE id = 2;
INSERT INTO mt_item VALUES (777, 22, 'tx', 1, null);
UPDATE mt_order SET customer_id = 5 WHERE id = 22;
DELETE FROM mt_item WHERE id = 221;
SELECT immv_diff('mt_items');
ROLLBACK;
SELECT immv_diff('mt_items'), (SELECT count(*) FROM mt_items WHERE id = 777) AS rolled_back;

-- savepoints: the view follows the subtransaction
BEGIN;
SAVEPOINT s;
DELETE FROM mt_order WHERE id = 22;
ROLLBACK TO SAVEPOINT s;
UPDATE mt_item SET qty = 3 WHERE id = 222;
COMMIT;
SELECT immv_diff('mt_items');

-- bulk statements
UPDATE mt_item SET qty = qty + 1;
DELETE FROM mt_item WHERE qty > 3;
INSERT INTO mt_item SELECT 5000 + g, 12, 'bulk', g % 4, null FROM generate_series(1, 200) g;
SELECT immv_diff('mt_items'), (SELECT count(*) FROM mt_items) AS rows;

-- TRUNCATE of a base table empties the view (and TRUNCATE ... CASCADE of the chain)
TRUNCATE mt_item;
SELECT immv_diff('mt_items'), (SELECT count(*) FROM mt_items) AS rows;
INSERT INTO mt_item SELECT 10 * o.id + 1, o.id, 'again', 1, null FROM mt_order o;
SELECT immv_diff('mt_items'), (SELECT count(*) > 0 FROM mt_items) AS has_rows;
TRUNCATE mt_customer CASCADE;
SELECT immv_diff('mt_items'), (SELECT count(*) FROM mt_items) AS rows;

-- self-join: a table joined to itself (employee -> manager -> manager's manager)
CREATE TABLE mt_emp (id int PRIMARY KEY, name text, boss int);
INSERT INTO mt_emp VALUES (1, 'ceo', NULL), (2, 'cto', 1), (3, 'dev', 2), (4, 'ops', 2), (5, 'cfo', 1);
SELECT powersync.create_immv('mt_chain', $$
  SELECT e.id, e.name, m.name AS boss, g.name AS grand_boss
    FROM mt_emp e JOIN mt_emp m ON m.id = e.boss JOIN mt_emp g ON g.id = m.boss$$);
SELECT id, name, boss, grand_boss FROM mt_chain ORDER BY id;
UPDATE mt_emp SET name = 'CTO' WHERE id = 2;          -- appears as e, m and g in different rows
UPDATE mt_emp SET boss = 5 WHERE id = 4;
INSERT INTO mt_emp VALUES (6, 'intern', 3);
DELETE FROM mt_emp WHERE id = 5;
UPDATE mt_emp SET id = 20 WHERE id = 2;               -- no FK: rows under old id 2 drop out
SELECT immv_diff('mt_chain'), (SELECT count(*) FROM mt_chain) AS rows;
UPDATE mt_emp SET boss = 20 WHERE boss = 2;
SELECT immv_diff('mt_chain');
SELECT id, name, boss, grand_boss FROM mt_chain ORDER BY id;

-- LEFT JOINs: rows appear and disappear as matches come and go
CREATE TABLE mt_team (id int PRIMARY KEY, name text);
CREATE TABLE mt_member (team int, seq int, who text, PRIMARY KEY (team, seq));
CREATE TABLE mt_badge (id int PRIMARY KEY, team int, seq int, badge text);
INSERT INTO mt_team VALUES (1, 'red'), (2, 'blue'), (3, 'empty');
INSERT INTO mt_member VALUES (1, 1, 'ann'), (1, 2, 'bo'), (2, 1, 'cy');
INSERT INTO mt_badge VALUES (1, 1, 1, 'gold');
SELECT powersync.create_immv('mt_roster', $$
  SELECT t.id AS team_id, t.name AS team, m.who, b.badge
    FROM mt_team t LEFT JOIN mt_member m ON m.team = t.id
                   LEFT JOIN mt_badge b ON b.team = m.team AND b.seq = m.seq$$);
SELECT team_id, team, who, badge FROM mt_roster ORDER BY 1, 3, 4;
INSERT INTO mt_member VALUES (3, 1, 'dee');           -- replaces team 3's null-extended row
DELETE FROM mt_member WHERE team = 2;                  -- team 2 becomes null-extended
INSERT INTO mt_badge VALUES (2, 1, 2, 'silver'), (3, 3, 1, 'bronze');
UPDATE mt_badge SET badge = 'platinum' WHERE id = 1;
SELECT immv_diff('mt_roster');
UPDATE mt_badge SET seq = 2 WHERE id = 1;              -- ann loses her badge, bo has two
DELETE FROM mt_badge WHERE id = 2;
UPDATE mt_member SET who = upper(who);
SELECT immv_diff('mt_roster');
SELECT team_id, team, who, badge FROM mt_roster ORDER BY 1, 3, 4;
TRUNCATE mt_member;
SELECT immv_diff('mt_roster');
SELECT team_id, team, who, badge FROM mt_roster ORDER BY 1, 3, 4;

-- two IMMVs over the same table are maintained independently
SELECT powersync.create_immv('mt_bosses', 'SELECT e.id, m.name AS boss FROM mt_emp e JOIN mt_emp m ON m.id = e.boss');
UPDATE mt_emp SET name = name || '!';
SELECT immv_diff('mt_chain'), immv_diff('mt_bosses');
SELECT powersync.drop_immv('mt_bosses');
UPDATE mt_emp SET name = name || '?';
SELECT immv_diff('mt_chain');

-- the maintenance plans are cached per backend and survive DDL on a base table
ALTER TABLE mt_emp ADD COLUMN dept text;
UPDATE mt_emp SET name = 'X' WHERE id = 3;
CREATE INDEX ON mt_emp (boss);
UPDATE mt_emp SET boss = 1 WHERE id = 6;
SELECT immv_diff('mt_chain');
