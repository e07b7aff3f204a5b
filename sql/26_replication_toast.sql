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
\c contrib_regression
