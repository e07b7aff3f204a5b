-- Unchanged TOAST values of an update whose row has no stored image in current_data (e.g. the row was
-- not copied yet): the row is read again from the table, so the value is synced, not NULL. When that is
-- impossible (the row is gone by the time the worker sees the update), the value is synced as NULL, a
-- warning names table and row, and status() counts it.
SELECT 'CREATE DATABASE ps_toast' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ps_toast') \gexec
\c ps_toast
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS powersync_pg;
CREATE TABLE toasty (id int PRIMARY KEY, n int, big text);
ALTER TABLE toasty ALTER COLUMN big SET STORAGE EXTERNAL;  -- TOASTed without compression
INSERT INTO toasty SELECT g, 0, repeat(g::text, 5000) FROM generate_series(1, 3) g;
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  t:
    data:
      - SELECT id, n, length(big) AS big_len FROM toasty
$$) AS v \gset
SELECT powersync.wait_for_checkpoint('60s') IS NOT NULL AS active;
CREATE FUNCTION latest() RETURNS TABLE (id text, data text) LANGUAGE sql AS $$
  SELECT DISTINCT ON (object_id) object_id, CASE op WHEN 'PUT' THEN data ELSE op END
    FROM powersync.bucket_data WHERE object_type = 'toasty' ORDER BY object_id, op_id DESC $$;
SELECT * FROM latest() ORDER BY id;

-- Lose the stored images (as if these rows had not been copied yet), then update another column.
DELETE FROM powersync.current_data
 WHERE source_table_id = (SELECT id FROM powersync.source_tables WHERE table_name = 'toasty');
UPDATE toasty SET n = 1 WHERE id = 1;
SELECT powersync.wait_for_checkpoint('30s') IS NOT NULL AS ok;
SELECT * FROM latest() ORDER BY id;
SELECT unresolved_toast FROM powersync.status();

-- Updated, then deleted before the worker saw the update: nothing to read again.
BEGIN;
UPDATE toasty SET n = 2 WHERE id = 2;
DELETE FROM toasty WHERE id = 2;
COMMIT;
SELECT powersync.wait_for_checkpoint('30s') IS NOT NULL AS ok;
SELECT op, data::json ->> 'big_len' AS big_len FROM powersync.bucket_data
 WHERE object_type = 'toasty' AND object_id = '2' ORDER BY op_id DESC LIMIT 2;
SELECT unresolved_toast FROM powersync.status();
SELECT * FROM latest() ORDER BY id;
-- Row images are kept only for rows with a value stored out of line (a TOAST pointer): only such a value
-- can come back as an unchanged-TOAST marker in the row's next update. Rows become large and small
-- again, tables TOAST early (toast_tuple_target), and every replica identity kind completes its markers.
CREATE TABLE imgs (id int PRIMARY KEY, n int, a text, b text);
ALTER TABLE imgs ALTER COLUMN a SET STORAGE EXTERNAL, ALTER COLUMN b SET STORAGE EXTERNAL;
INSERT INTO imgs VALUES (1, 0, 'small', 'small'), (2, 0, repeat('x', 3000), 'small');  -- copied
CREATE TABLE imgs_low (id int PRIMARY KEY, n int, a text, b text);
ALTER TABLE imgs_low SET (toast_tuple_target = 128);
ALTER TABLE imgs_low ALTER COLUMN a SET STORAGE EXTERNAL, ALTER COLUMN b SET STORAGE EXTERNAL;
CREATE TABLE imgs_full (id int PRIMARY KEY, n int, a text);
ALTER TABLE imgs_full REPLICA IDENTITY FULL, ALTER COLUMN a SET STORAGE EXTERNAL;
CREATE TABLE imgs_idx (id int NOT NULL, k text NOT NULL, n int, a text);
CREATE UNIQUE INDEX imgs_idx_key ON imgs_idx (id, k);
ALTER TABLE imgs_idx REPLICA IDENTITY USING INDEX imgs_idx_key, ALTER COLUMN a SET STORAGE EXTERNAL;
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  t:
    data:
      - SELECT id, n, length(big) AS big_len FROM toasty
      - SELECT id, n, length(a) AS a_len, length(b) AS b_len FROM imgs
      - SELECT id, n, length(a) AS a_len, length(b) AS b_len FROM imgs_low
      - SELECT id, n, length(a) AS a_len FROM imgs_full
      - SELECT k AS id, n, length(a) AS a_len FROM imgs_idx
$$) AS v \gset
SELECT powersync.wait_for_checkpoint('60s') IS NOT NULL AS active;
-- (table, id or '#' for a hashed key, has a row image) of the newest version
CREATE FUNCTION images() RETURNS TABLE (tbl text, id text, image boolean) LANGUAGE sql AS $$
  SELECT s.table_name,
         CASE WHEN length(c.source_key) = 9
              THEN (('x' || substr(encode(c.source_key, 'hex'), 3))::bit(64)::bigint # (-9223372036854775808))::text
              ELSE '#' END,
         c.row_image IS NOT NULL
    FROM powersync.current_data c JOIN powersync.source_tables s ON s.id = c.source_table_id
   WHERE s.sync_rules_id = (SELECT max(id) FROM powersync.sync_rules) AND s.table_name LIKE 'imgs%'
   ORDER BY 1, 2 $$;
CREATE FUNCTION latest_of(t text) RETURNS TABLE (id text, data text) LANGUAGE sql AS $$
  SELECT DISTINCT ON (object_id) object_id, CASE op WHEN 'PUT' THEN data ELSE op END
    FROM powersync.bucket_data
   WHERE object_type = t AND sync_rules_id = (SELECT max(id) FROM powersync.sync_rules)
   ORDER BY object_id, op_id DESC $$;
-- The copy: only the row with a TOASTed value has an image.
SELECT * FROM images();
-- Row 2 (copied with an image) is updated elsewhere: its marker is completed from the image. Row 1 becomes
-- large (image), row 3 is inserted small (none).
UPDATE imgs SET n = 1 WHERE id = 2;
UPDATE imgs SET a = repeat('y', 4000) WHERE id = 1;
INSERT INTO imgs VALUES (3, 0, 'small', 'small');
SELECT powersync.wait_for_checkpoint('30s') IS NOT NULL AS ok;
SELECT * FROM images();
-- Every row updated elsewhere: row 1's marker comes from the image it got as it grew.
UPDATE imgs SET n = n + 10;
SELECT powersync.wait_for_checkpoint('30s') IS NOT NULL AS ok;
SELECT * FROM latest_of('imgs') ORDER BY id;
-- Row 2 becomes small again: its image goes; a later update needs none.
UPDATE imgs SET a = 'small again' WHERE id = 2;
UPDATE imgs SET n = n + 10 WHERE id = 2;
SELECT powersync.wait_for_checkpoint('30s') IS NOT NULL AS ok;
SELECT * FROM images() WHERE id = '2';
SELECT * FROM latest_of('imgs') WHERE id = '2';
-- toast_tuple_target = 128: a 3 kB row moves both 1.5 kB values out of line (the default target would
-- move one), so an update of n carries two markers, both completed. A 300-byte row stays inline.
INSERT INTO imgs_low VALUES (1, 0, repeat('p', 1500), repeat('q', 1500)), (2, 0, repeat('r', 300), 's');
SELECT powersync.wait_for_checkpoint('30s') IS NOT NULL AS ok;
UPDATE imgs_low SET n = 1;
SELECT powersync.wait_for_checkpoint('30s') IS NOT NULL AS ok;
SELECT * FROM images() WHERE tbl = 'imgs_low';
SELECT * FROM latest_of('imgs_low') ORDER BY id;
-- REPLICA IDENTITY FULL sends the complete old row: never an image. USING INDEX keeps one like a key.
INSERT INTO imgs_full VALUES (1, 0, repeat('f', 3000));
INSERT INTO imgs_idx VALUES (1, 'one', 0, repeat('g', 3000)), (2, 'two', 0, 'small');
SELECT powersync.wait_for_checkpoint('30s') IS NOT NULL AS ok;
UPDATE imgs_full SET n = 1;
UPDATE imgs_idx SET n = 1;
SELECT powersync.wait_for_checkpoint('30s') IS NOT NULL AS ok;
SELECT tbl, image, count(*) FROM images() WHERE tbl IN ('imgs_full', 'imgs_idx') GROUP BY 1, 2 ORDER BY 1, 2;
SELECT * FROM latest_of('imgs_full');
SELECT * FROM latest_of('imgs_idx') ORDER BY id;
-- No marker went unresolved in all of this (the count is the one from the first part).
SELECT unresolved_toast FROM powersync.status();
\c contrib_regression
