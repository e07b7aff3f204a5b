-- The initial snapshot reads rows itself (a heap scan, each column's value mapping looked up once) while
-- the stream gets them from the output plugin: both must give every type the same sync value (spec
-- §4.10), short, compressed and out-of-line values included. Each row's copied PUT is compared with the
-- PUT of its next, streamed, update (which changes no value).
SELECT 'CREATE DATABASE ps_snaptypes' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ps_snaptypes') \gexec
\c ps_snaptypes
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS powersync_pg;
CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 100);
CREATE TABLE snap_types (id int PRIMARY KEY, t text, vc varchar(20), bc char(5), nm name, dt short_text,
  f4 real, f8 float8, ts timestamp, tstz timestamptz, d date, tm time, b bool, j json, jb jsonb, n numeric,
  by bytea, ia int[], ta text[], ba bool[], na numeric[], tsa timestamptz[], u uuid, i2 int2, i8 int8,
  iv interval, o oid, long text, rev int DEFAULT 0);
INSERT INTO snap_types VALUES (1, 'it''s "x" é', 'vary', 'ab', 'a name', 'dom', 3.14, 0.1, '2023-03-06 15:47:00',
  '2023-03-06 15:47:00.12345+02', '2023-03-06', '15:47:00', true, '{"a" : 1}', '{"b": [1, 2]}',
  18014398509481982123, '\x0102', '{{1,2},{3,4}}', '{a,"b c",NULL}', '{t,f}', '{1.50,2}',
  '{"2023-03-06 15:47:00.12345+00"}', 'a396dd91-09fc-4017-a28d-3df722f651e9', -7, 9007199254740993,
  '1 day 02:00:00', 4000000000, 'short');
INSERT INTO snap_types (id, f4, f8, ts, tstz, d) VALUES (2, 'NaN', '-Infinity', 'infinity', '-infinity', '-infinity');
INSERT INTO snap_types (id) VALUES (3);
-- compressed inline, and out of line (md5 text does not compress below the TOAST threshold)
INSERT INTO snap_types (id, t, long) VALUES (4, repeat('ab', 3000), repeat('x', 20000));
INSERT INTO snap_types (id, long) SELECT 5, string_agg(md5(g::text), '') FROM generate_series(1, 200) g;
SELECT powersync.wait_replicated();
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  all_types:
    data:
      - SELECT * FROM snap_types
$$) > 0 AS deployed;
SELECT powersync.wait_for_checkpoint('60 s') IS NOT NULL AS active;
CREATE TEMP TABLE copied AS
  SELECT object_id, data FROM powersync.bucket_data WHERE object_type = 'snap_types' AND op = 'PUT';
SELECT object_id, CASE WHEN length(data) > 1000 THEN left(data, 60) || '... (' || length(data) || ' chars)' ELSE data END
  FROM copied ORDER BY object_id::int;
UPDATE snap_types SET rev = rev;
SELECT powersync.wait_for_checkpoint('60 s') IS NOT NULL AS streamed;
SELECT c.object_id, s.puts, c.data = s.data AS same_value_copied_and_streamed
  FROM copied c JOIN (SELECT object_id, count(*) AS puts, (array_agg(data ORDER BY op_id DESC))[1] AS data
                        FROM powersync.bucket_data WHERE object_type = 'snap_types' AND op = 'PUT' GROUP BY object_id) s
       USING (object_id)
 ORDER BY c.object_id::int;
\c contrib_regression
