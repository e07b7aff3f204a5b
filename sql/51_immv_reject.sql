-- create_immv rejects every query shape it cannot maintain, naming the construct.
CREATE TABLE rj_a (id int PRIMARY KEY, x int, t timestamptz);
CREATE TABLE rj_b (id int PRIMARY KEY, a_id int, y int);
CREATE TABLE rj_nokey (id int, a_id int);
CREATE TABLE rj_tz (at timestamptz PRIMARY KEY, a_id int);
CREATE VIEW rj_view AS SELECT * FROM rj_b;
CREATE MATERIALIZED VIEW rj_mv AS SELECT * FROM rj_b;
CREATE TABLE rj_parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TEMP TABLE rj_temp (id int PRIMARY KEY, a_id int);
CREATE TABLE rj_parent (id int PRIMARY KEY);
CREATE TABLE rj_child () INHERITS (rj_parent);
CREATE SEQUENCE rj_seq;
-- not a single SELECT
SELECT powersync.create_immv('r1', 'SELECT 1; SELECT 2');
SELECT powersync.create_immv('r1', 'INSERT INTO rj_a VALUES (1)');
SELECT powersync.create_immv('r1', 'SELECT a.id INTO rj_x FROM rj_a a');
SELECT powersync.create_immv('r1', 'SELEC nonsense');
SELECT powersync.create_immv('r1', 'SELECT * FROM rj_missing');
-- query-level constructs
SELECT powersync.create_immv('r1', 'SELECT a.id FROM rj_a a UNION SELECT b.id FROM rj_b b');
SELECT powersync.create_immv('r1', 'WITH w AS (SELECT * FROM rj_a) SELECT w.id FROM w');
SELECT powersync.create_immv('r1', 'SELECT a.id, count(*) AS n FROM rj_a a JOIN rj_b b ON b.a_id = a.id GROUP BY a.id');
SELECT powersync.create_immv('r1', 'SELECT a.id FROM rj_a a JOIN rj_b b ON b.a_id = a.id GROUP BY a.id');
SELECT powersync.create_immv('r1', 'SELECT DISTINCT a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id = a.id');
SELECT powersync.create_immv('r1', 'SELECT DISTINCT ON (a.id) a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id = a.id');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y, rank() OVER (ORDER BY b.y) AS r FROM rj_a a JOIN rj_b b ON b.a_id = a.id');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id = a.id WHERE a.x IN (SELECT 1)');
SELECT powersync.create_immv('r1', 'SELECT a.id, (SELECT 1) AS one FROM rj_a a');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id = a.id LIMIT 10');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id = a.id OFFSET 1');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id = a.id ORDER BY b.y');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id = a.id FOR UPDATE');
SELECT powersync.create_immv('r1', 'SELECT a.id, generate_series(1, 2) AS g FROM rj_a a');
-- FROM items
SELECT powersync.create_immv('r1', 'SELECT s.id FROM (SELECT * FROM rj_a) s');
SELECT powersync.create_immv('r1', 'SELECT f.g FROM generate_series(1, 3) f(g)');
SELECT powersync.create_immv('r1', 'SELECT v.x FROM (VALUES (1)) v(x)');
SELECT powersync.create_immv('r1', 'SELECT v.id FROM rj_view v');
SELECT powersync.create_immv('r1', 'SELECT m.id FROM rj_mv m');
SELECT powersync.create_immv('r1', 'SELECT p.id FROM rj_parted p');
SELECT powersync.create_immv('r1', 'SELECT s.last_value FROM rj_seq s');
SELECT powersync.create_immv('r1', 'SELECT t.id FROM rj_temp t');
SELECT powersync.create_immv('r1', 'SELECT p.id FROM rj_parent p');
SELECT powersync.create_immv('r1', 'SELECT a.id, n.id AS nid FROM rj_a a JOIN rj_nokey n ON n.a_id = a.id');
-- joins
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a RIGHT JOIN rj_b b ON b.a_id = a.id');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a FULL JOIN rj_b b ON b.a_id = a.id');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id < a.id');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id = a.id OR b.y = a.x');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id = a.id + 1');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a, rj_b b WHERE a.x > b.y');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a CROSS JOIN rj_b b');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a JOIN rj_b b ON true');
SELECT powersync.create_immv('r1', 'SELECT a.id, t.at FROM rj_a a LEFT JOIN rj_tz t ON t.a_id = a.id');
-- expressions and columns
SELECT powersync.create_immv('r1', 'SELECT a.id, random() AS r FROM rj_a a');
SELECT powersync.create_immv('r1', 'SELECT a.id, now() AS r FROM rj_a a');
SELECT powersync.create_immv('r1', 'SELECT a.id, CURRENT_TIMESTAMP AS r FROM rj_a a');
SELECT powersync.create_immv('r1', 'SELECT a.id, a.t::text AS r FROM rj_a a');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.y FROM rj_a a JOIN rj_b b ON b.a_id = a.id WHERE a.t > now()');
SELECT powersync.create_immv('r1', 'SELECT a.id, nextval(''rj_seq'') AS n FROM rj_a a');
SELECT powersync.create_immv('r1', 'SELECT a.id, b.id FROM rj_a a JOIN rj_b b ON b.a_id = a.id');
SELECT powersync.create_immv('r1', 'SELECT a.id, 1 FROM rj_a a');
SELECT powersync.create_immv('r1', 'SELECT a.id, a.x AS __ps_x FROM rj_a a');
SELECT powersync.create_immv('r1', 'SELECT a.ctid, a.id FROM rj_a a');
SELECT powersync.create_immv('r1', 'SELECT a.id, b AS whole FROM rj_a a JOIN rj_b b ON b.a_id = a.id');
SELECT powersync.create_immv('r1', 'SELECT FROM rj_a a');
-- the name must be free; nothing was left behind by the failures above
SELECT powersync.create_immv('rj_a', 'SELECT a.id FROM rj_a a');
SELECT count(*) AS immvs FROM powersync.immvs;
SELECT count(*) AS leftover_tables FROM pg_class WHERE relname = 'r1';
