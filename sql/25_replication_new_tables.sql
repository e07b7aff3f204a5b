-- Tables that appear after the deploy end with the right ops however they appear: CREATE TABLE then
-- INSERT, CREATE TABLE AS, SELECT INTO, a table renamed into a name the rules read, ALTER TABLE ...
-- SET SCHEMA into a schema the rules read. A rename alone writes no row change to the WAL, so such a
-- table must be found in the catalog and copied (only it; the other tables keep streaming).
SELECT 'CREATE DATABASE ps_newtab' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ps_newtab') \gexec
\c ps_newtab
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS powersync_pg;
CREATE SCHEMA app;
CREATE TABLE nt_live (id int PRIMARY KEY, v text);
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  nt:
    data:
      - SELECT id, v FROM nt_created
      - SELECT id, v FROM nt_ctas
      - SELECT id, v FROM nt_into
      - SELECT id, v FROM nt_renamed
      - SELECT id, v FROM app.nt_moved
      - SELECT id, v FROM nt_live
      - SELECT id, v FROM nt_keyless
$$) AS v \gset
SELECT powersync.wait_for_checkpoint('60s') IS NOT NULL AS active;
-- Waits until `tables` tables are registered and copied and the stream passed the WAL head (renamed
-- tables are found in the catalog within a second).
CREATE FUNCTION settle(tables int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..3000 LOOP
    PERFORM powersync.wait_for_checkpoint('30s');
    IF (SELECT count(*) FILTER (WHERE snapshot_done) = tables AND count(*) = tables FROM powersync.source_tables) THEN
      RETURN powersync.wait_for_checkpoint('30s') IS NOT NULL;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN false;
END $$;
-- Per output table: the rows a client holds (newest op per row key is a PUT) ...
CREATE FUNCTION synced() RETURNS TABLE (object_type text, rows text) LANGUAGE sql AS $$
  SELECT object_type, string_agg(object_id || '=' || (data::json ->> 'v'), ',' ORDER BY object_id::int) FROM (
    SELECT DISTINCT ON (bucket, object_type, object_id, subkey) object_type, object_id, op, data
      FROM powersync.bucket_data ORDER BY bucket, object_type, object_id, subkey, op_id DESC) x
   WHERE op = 'PUT' GROUP BY 1 ORDER BY 1 $$;
-- ... and what the tables hold.
CREATE FUNCTION wanted() RETURNS TABLE (object_type text, rows text) LANGUAGE plpgsql AS $$
DECLARE t record;
BEGIN
  FOR t IN SELECT c.oid::regclass AS rel, c.relname::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname LIKE 'nt\_%' AND c.relkind = 'r' AND n.nspname IN ('public', 'app') AND c.relname <> 'nt_stray'
            ORDER BY c.relname LOOP
    RETURN QUERY EXECUTE format('SELECT %L, string_agg(id || ''='' || v, '','' ORDER BY id) FROM %s HAVING count(*) > 0',
                                t.name, t.rel);
  END LOOP;
END $$;
CREATE FUNCTION same() RETURNS boolean LANGUAGE sql AS $$
  SELECT NOT EXISTS ((SELECT * FROM synced() EXCEPT SELECT * FROM wanted()) UNION ALL
                     (SELECT * FROM wanted() EXCEPT SELECT * FROM synced())) $$;

-- Created and filled in one transaction, then filled more in a later one.
BEGIN;
CREATE TABLE nt_created (id int PRIMARY KEY, v text);
INSERT INTO nt_created VALUES (1, 'c1'), (2, 'c2');
COMMIT;
INSERT INTO nt_created VALUES (3, 'c3');
-- CREATE TABLE AS and SELECT INTO (no primary key at first: the key arrives with ADD PRIMARY KEY).
CREATE TABLE nt_ctas AS SELECT g AS id, 'ctas' || g AS v FROM generate_series(1, 3) g;
ALTER TABLE nt_ctas ADD PRIMARY KEY (id);
SELECT g AS id, 'into' || g AS v INTO nt_into FROM generate_series(1, 2) g;
ALTER TABLE nt_into ADD PRIMARY KEY (id);
-- Renamed into a name the rules read: its rows never streamed under that name.
CREATE TABLE nt_stray (id int PRIMARY KEY, v text);
INSERT INTO nt_stray VALUES (1, 's1'), (2, 's2'), (3, 's3');
SELECT powersync.wait_replicated();
ALTER TABLE nt_stray RENAME TO nt_renamed;
-- Moved into the schema the rules read.
CREATE TABLE nt_moved (id int PRIMARY KEY, v text);
INSERT INTO nt_moved VALUES (5, 'm5');
SELECT powersync.wait_replicated();
ALTER TABLE nt_moved SET SCHEMA app;
INSERT INTO nt_live VALUES (1, 'l1');  -- the other table streams meanwhile
SELECT settle(6) AS settled;
SELECT * FROM synced();
SELECT same() AS synced_equals_tables;
SELECT table_name, snapshot_done FROM powersync.source_tables ORDER BY table_name;

-- Later writes to those tables stream as usual.
UPDATE nt_renamed SET v = v || '*' WHERE id = 2;
DELETE FROM nt_ctas WHERE id = 1;
UPDATE app.nt_moved SET v = 'm5*';
INSERT INTO nt_into VALUES (3, 'into3');
SELECT settle(6) AS settled;
SELECT same() AS synced_equals_tables;
SELECT status, last_error FROM powersync.replication_state;

-- Without row identity (no primary key), renamed into a name the rules read: copied too, the whole
-- table under one snapshot, and a stream change that snapshot saw is not applied again (a row inserted
-- in the renaming transaction streams under the new name and is read by the copy): each row syncs once.
CREATE TABLE nt_stray2 (id int, v text);
INSERT INTO nt_stray2 SELECT g, 'k' || g FROM generate_series(1, 3) g;
SELECT powersync.wait_replicated();
BEGIN;
ALTER TABLE nt_stray2 RENAME TO nt_keyless;
INSERT INTO nt_keyless VALUES (4, 'k4');
COMMIT;
INSERT INTO nt_keyless VALUES (5, 'k5');
SELECT settle(7) AS settled;
SELECT * FROM synced() WHERE object_type = 'nt_keyless';
SELECT same() AS synced_equals_tables;
SELECT table_name, replica_identity, identity_columns, snapshot_done, snapshot_rows >= 4 AS copied_rows
  FROM powersync.source_tables WHERE table_name = 'nt_keyless';
-- Later inserts stream as usual.
INSERT INTO nt_keyless VALUES (6, 'k6');
SELECT settle(7) AS settled;
SELECT * FROM synced() WHERE object_type = 'nt_keyless';
\c contrib_regression
