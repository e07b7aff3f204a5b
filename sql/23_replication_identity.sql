-- Replica identity variants (spec §6.4) and unchanged TOAST values completed from current_data (§6.1).
SET client_min_messages = warning;
SELECT 'CREATE DATABASE ps_repl' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ps_repl') \gexec
\c ps_repl
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS powersync_pg;
CREATE TABLE t_default (id int PRIMARY KEY, v text, big text);
CREATE TABLE t_full (id int, v text, big text);
ALTER TABLE t_full REPLICA IDENTITY FULL;
CREATE TABLE t_index (a int NOT NULL, b int NOT NULL, v text);
CREATE UNIQUE INDEX t_index_ab ON t_index (a, b);
ALTER TABLE t_index REPLICA IDENTITY USING INDEX t_index_ab;
CREATE TABLE t_nothing (id int, v text);
ALTER TABLE t_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE t_nokey (id int, v text);
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  all_rows:
    data:
      - SELECT id, v, length(big) AS big_len, substring(big, 1, 8) AS big_head FROM t_default
      - SELECT id, v, length(big) AS big_len FROM t_full
      - SELECT a || '-' || b AS id, v FROM t_index
      - SELECT id, v FROM t_nothing
      - SELECT id, v FROM t_nokey
$$) AS v \gset
SELECT powersync.wait_for_checkpoint('60s') > 0 AS active;
SELECT table_name, replica_identity, identity_columns FROM powersync.source_tables ORDER BY table_name;
CREATE OR REPLACE FUNCTION wait_snapshots() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..3000 LOOP
    IF NOT EXISTS (SELECT 1 FROM powersync.source_tables WHERE NOT snapshot_done) THEN RETURN true; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN false;
END $$;
CREATE TABLE IF NOT EXISTS mark (n bigint);
CREATE OR REPLACE FUNCTION mark() RETURNS void LANGUAGE sql AS $$
  DELETE FROM mark; INSERT INTO mark SELECT last_value FROM powersync.op_id_sequence$$;
DROP FUNCTION IF EXISTS new_ops();
CREATE FUNCTION new_ops() RETURNS TABLE (op bigint, kind text, object_type text, object_id text, data text,
    same_subkey_as_previous boolean) LANGUAGE sql AS $$
  SELECT d.op_id - m.n, d.op, d.object_type, d.object_id, d.data,
         d.subkey = lag(d.subkey) OVER (ORDER BY d.op_id)
    FROM powersync.bucket_data d, mark m WHERE d.op_id > m.n ORDER BY d.op_id$$;
SELECT mark();

-- DEFAULT with TOAST: the unchanged big value is taken from the stored row image.
INSERT INTO t_default VALUES (1, 'a', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 500) g));
UPDATE t_default SET v = 'b' WHERE id = 1;
UPDATE t_default SET big = 'small now' WHERE id = 1;
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_ops();
SELECT mark();

-- FULL: every changed value changes the key (REMOVE old subkey + PUT new); a no-op update keeps it.
INSERT INTO t_full VALUES (1, 'a', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 500) g));
UPDATE t_full SET v = 'b';
UPDATE t_full SET v = v;
DELETE FROM t_full;
INSERT INTO t_full VALUES (2, 'kept', 'x');
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_ops();
-- FULL tables keep no row image: the WAL carries whole rows.
SELECT count(*) AS rows, count(row_image) AS images FROM powersync.current_data c
  JOIN powersync.source_tables s ON s.id = c.source_table_id WHERE s.table_name = 't_full';
SELECT mark();

-- USING INDEX: the index columns are the key; changing one is a key change.
INSERT INTO t_index VALUES (1, 2, 'x');
UPDATE t_index SET v = 'y';
UPDATE t_index SET b = 3;
DELETE FROM t_index;
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_ops();
SELECT mark();

-- NOTHING and no primary key: inserts only (each row gets its own random key); UPDATE/DELETE carry no
-- old key, so an update shows up as another row and a delete cannot be applied.
INSERT INTO t_nothing VALUES (1, 'a'), (2, 'b');
INSERT INTO t_nokey VALUES (1, 'a');
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT kind, object_type, object_id, data FROM new_ops();
SELECT count(DISTINCT subkey) AS distinct_subkeys FROM powersync.bucket_data d, mark m WHERE d.op_id > m.n;
SELECT mark();

-- Changing the replica identity re-registers the table and copies it again: its rows are REMOVEd under
-- the old key and PUT under the new one.
ALTER TABLE t_full REPLICA IDENTITY DEFAULT;
ALTER TABLE t_full ADD PRIMARY KEY (id);
INSERT INTO t_full VALUES (5, 'e', 'x');  -- the stream notices the change with the table's next row
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT wait_snapshots() AS copied, powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT table_name, replica_identity, identity_columns, snapshot_done, snapshot_rows FROM powersync.source_tables
 WHERE table_name = 't_full';
SELECT kind, object_type, object_id, data FROM new_ops() ORDER BY kind, object_id;
-- Keyed now, but no value of these rows is stored out of line: still no row image (sql/26 has those).
SELECT count(*) AS rows, count(row_image) AS images FROM powersync.current_data c
  JOIN powersync.source_tables s ON s.id = c.source_table_id WHERE s.table_name = 't_full';

\c contrib_regression
