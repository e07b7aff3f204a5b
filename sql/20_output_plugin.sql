-- The powersync_pg output plugin: relation metadata, row images, old keys/rows per replica identity,
-- unchanged-TOAST markers, TRUNCATE, powersync messages, the sync value mapping (spec §4.10), and that
-- the powersync schema and unlisted tables are never emitted.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS powersync_pg;
SET timezone = 'America/New_York';
SET IntervalStyle = postgres;
CREATE TABLE plug_types (id int PRIMARY KEY, t text, f4 real, f8 float8, ts timestamp, tstz timestamptz,
  d date, tm time, b bool, j json, jb jsonb, n numeric, by bytea, ia int[], ta text[], ba bool[],
  na numeric[], tsa timestamptz[], u uuid, i8 int8, iv interval);
CREATE TABLE plug_full (id int, v text);
ALTER TABLE plug_full REPLICA IDENTITY FULL;
CREATE TABLE plug_nothing (id int, v text);
ALTER TABLE plug_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE plug_index (a int NOT NULL, b int NOT NULL, v text);
CREATE UNIQUE INDEX plug_index_ab ON plug_index (b, a);
ALTER TABLE plug_index REPLICA IDENTITY USING INDEX plug_index_ab;
CREATE TABLE plug_toast (id int PRIMARY KEY, big text, small text);
CREATE TABLE plug_other (id int PRIMARY KEY);
SELECT 'init' FROM pg_create_logical_replication_slot('plug_test', 'powersync_pg');

-- value mapping
INSERT INTO plug_types VALUES (1, 'it''s "x"', 3.14, 0.1, '2023-03-06 15:47:00', '2023-03-06 15:47:00.12345+02',
  '2023-03-06', '15:47:00', true, '{"a" : 1}', '{"b": [1, 2]}', 18014398509481982123, '\x0102',
  '{{1,2},{3,4}}', '{a,"b c",NULL}', '{t,f}', '{1.50,2}', '{"2023-03-06 15:47:00.12345+00"}',
  'a396dd91-09fc-4017-a28d-3df722f651e9', 9007199254740993, '1 day 02:00:00');
INSERT INTO plug_types (id, f4, f8, ts, tstz, d) VALUES (2, 'NaN', '-Infinity', 'infinity', '-infinity', '-infinity');
INSERT INTO plug_types (id, f4, tstz, d, ts) VALUES (3, 1e10, '2023-01-01 00:00:00+00', 'infinity', '-infinity');
-- identities
INSERT INTO plug_full VALUES (1, 'a');
UPDATE plug_full SET v = 'b';
DELETE FROM plug_full;
INSERT INTO plug_nothing VALUES (1, 'a');
UPDATE plug_nothing SET v = 'b';
DELETE FROM plug_nothing;
INSERT INTO plug_index VALUES (1, 2, 'x');
UPDATE plug_index SET v = 'y';
UPDATE plug_index SET a = 5;
DELETE FROM plug_index;
-- TOAST: an update that leaves the big value alone carries only a marker for it
INSERT INTO plug_toast VALUES (1, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) AS g), 's');
UPDATE plug_toast SET small = 't';
-- our own tables and other prefixes never show up
UPDATE powersync.replication_state SET last_error = NULL;
SELECT 'msg' FROM pg_logical_emit_message(false, 'other', 'ignored');
SELECT 'msg' FROM pg_logical_emit_message(true, 'powersync', 'in a transaction');
TRUNCATE plug_other, plug_toast;

SELECT regexp_replace(powersync.describe_change(data), '[0-9a-f]{200}[0-9a-f]*', '<big>')
  FROM pg_logical_slot_peek_binary_changes('plug_test', NULL, NULL);

-- option "tables": only listed tables (prefix patterns with %), nothing else
SELECT powersync.describe_change(data)
  FROM pg_logical_slot_peek_binary_changes('plug_test', NULL, NULL, 'tables', E'public\tplug_f%\npublic\tplug_index');
-- unknown options are rejected
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('plug_test', NULL, NULL, 'bogus', 'x');
SELECT 'dropped' FROM pg_drop_replication_slot('plug_test');
-- the plugin's per-relation cache follows DDL decoded in between (new column, replica identity, dropped column)
CREATE TABLE plug_ddl (id int PRIMARY KEY, v text);
SELECT 'init' FROM pg_create_logical_replication_slot('plug_ddl', 'powersync_pg');
INSERT INTO plug_ddl VALUES (1, 'a'), (4, 'e');
ALTER TABLE plug_ddl ADD COLUMN w int DEFAULT 7;
INSERT INTO plug_ddl VALUES (2, 'b');
UPDATE plug_ddl SET v = 'c' WHERE id = 1;
ALTER TABLE plug_ddl REPLICA IDENTITY FULL;
UPDATE plug_ddl SET v = 'd' WHERE id = 1;
UPDATE plug_ddl SET v = 'f' WHERE id = 4;  -- its old row predates w: the default fills it in
ALTER TABLE plug_ddl DROP COLUMN v;
INSERT INTO plug_ddl VALUES (3, 9);
SELECT powersync.describe_change(data)
  FROM pg_logical_slot_peek_binary_changes('plug_ddl', NULL, NULL, 'tables', E'public\tplug_ddl');
-- option "batch" is for a walsender's reader (several messages per CopyData): peeked, a row stays one message
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('plug_ddl', NULL, NULL, 'tables', E'public\tplug_ddl', 'batch', '1');
SELECT 'dropped' FROM pg_drop_replication_slot('plug_ddl');
DROP TABLE plug_types, plug_full, plug_nothing, plug_index, plug_toast, plug_other, plug_ddl;
