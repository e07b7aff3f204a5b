-- DDL while replicating: tables created after the deploy are picked up, a rename re-registers and copies
-- only that table again, ADD COLUMN is harmless, DROP TABLE and renaming out of the rules remove the
-- table's rows from its buckets.
SELECT 'CREATE DATABASE ps_repl' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ps_repl') \gexec
\c ps_repl
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS powersync_pg;
CREATE TABLE ddl_a (id int PRIMARY KEY, v text);
INSERT INTO ddl_a SELECT g, 'a' || g FROM generate_series(1, 5) g;
CREATE TABLE ddl_other (id int PRIMARY KEY, v text);
SELECT powersync.wait_replicated();
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  ddl:
    data:
      - SELECT id, v FROM ddl_a
      - SELECT id, v FROM ddl_b
      - SELECT id, v FROM ddl_renamed
      - SELECT id, v FROM ddl_other
$$) AS v \gset
SELECT powersync.wait_for_checkpoint('60s') > 0 AS active;
CREATE OR REPLACE FUNCTION wait_tables(expected text[]) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE current text[];
BEGIN
  FOR i IN 1..3000 LOOP
    SELECT array_agg(table_name || CASE WHEN snapshot_done THEN '' ELSE ' (copying)' END ORDER BY table_name)
      INTO current FROM powersync.source_tables;
    IF current IS NOT DISTINCT FROM expected THEN EXIT; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN current;
END $$;
CREATE TABLE IF NOT EXISTS mark (n bigint);
CREATE OR REPLACE FUNCTION mark() RETURNS void LANGUAGE sql AS $$
  DELETE FROM mark; INSERT INTO mark SELECT last_value FROM powersync.op_id_sequence$$;
-- Ops since mark() per kind and table, as the distinct row ids they touched (a row copied again after a
-- rename may also be PUT once more by the stream: same data, so the count is not pinned down).
CREATE OR REPLACE FUNCTION op_summary() RETURNS TABLE (kind text, object_type text, ids text)
LANGUAGE sql AS $$
  SELECT op, object_type, string_agg(object_id, ',' ORDER BY object_id::int) FROM (
    SELECT DISTINCT d.op, d.object_type, d.object_id FROM powersync.bucket_data d, mark m WHERE d.op_id > m.n) x
   GROUP BY 1, 2 ORDER BY 2, 1$$;
CREATE OR REPLACE FUNCTION bucket_rows() RETURNS TABLE (object_type text, ids text) LANGUAGE sql AS $$
  -- rows whose newest op in the bucket is a PUT: what a client holds
  SELECT object_type, string_agg(object_id, ',' ORDER BY object_id::int) FROM (
    SELECT DISTINCT ON (bucket, object_type, object_id, subkey) object_type, object_id, op
      FROM powersync.bucket_data ORDER BY bucket, object_type, object_id, subkey, op_id DESC) x
   WHERE op = 'PUT' GROUP BY 1 ORDER BY 1$$;
SELECT wait_tables(ARRAY['ddl_a', 'ddl_other']);
SELECT * FROM bucket_rows();
SELECT mark();

-- A table created after the deploy: its rows arrive through the stream.
CREATE TABLE ddl_b (id int PRIMARY KEY, v text);
INSERT INTO ddl_b VALUES (1, 'b1'), (2, 'b2');
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT wait_tables(ARRAY['ddl_a', 'ddl_b', 'ddl_other']);
SELECT * FROM op_summary();
SELECT mark();

-- ADD COLUMN: nothing to re-copy, the new column is simply part of later rows.
ALTER TABLE ddl_b ADD COLUMN w int DEFAULT 7;
UPDATE ddl_b SET v = 'b1*' WHERE id = 1;
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM op_summary();
SELECT mark();

-- RENAME to another table the rules read: the old rows are removed, the table is copied again under its
-- new name; the other tables are not touched.
ALTER TABLE ddl_a RENAME TO ddl_renamed;
INSERT INTO ddl_renamed VALUES (6, 'a6');
UPDATE ddl_other SET v = v;  -- keeps streaming meanwhile
INSERT INTO ddl_other VALUES (1, 'o1');
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT wait_tables(ARRAY['ddl_b', 'ddl_other', 'ddl_renamed']);
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM op_summary();
SELECT * FROM bucket_rows();
SELECT mark();

-- DROP TABLE: its rows leave the buckets.
DROP TABLE ddl_b;
SELECT wait_tables(ARRAY['ddl_other', 'ddl_renamed']);
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM op_summary();
SELECT mark();

-- Renamed to a name the rules do not read: removed as well.
ALTER TABLE ddl_renamed RENAME TO ddl_ignored;
UPDATE ddl_ignored SET v = v WHERE id = 1;
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT wait_tables(ARRAY['ddl_other']);
SELECT * FROM op_summary();
SELECT * FROM bucket_rows();
SELECT status, last_error FROM powersync.replication_state;
\c contrib_regression
-- DROP DATABASE (without FORCE) of a database with a running worker: the worker is stopped first and
-- the slot goes with the database.
CREATE DATABASE ps_drop_me;
\c ps_drop_me
SET client_min_messages = warning;
CREATE EXTENSION powersync_pg;
SELECT powersync.wait_replicated();
\c contrib_regression
DROP DATABASE ps_drop_me;
SELECT count(*) AS slots_left FROM pg_replication_slots WHERE database = 'ps_drop_me';
