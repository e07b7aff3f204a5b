-- The initial snapshot copies in chunks, shows its progress while it runs, and resumes where it
-- stopped when the worker is stopped mid-copy: every row is copied exactly once (rows_copied ends at
-- the table's row count) and the version activates with every row in its bucket.
SELECT 'CREATE DATABASE ps_resume' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ps_resume') \gexec
\c ps_resume
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS powersync_pg;
CREATE TABLE big (id int PRIMARY KEY, v text);
INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 60000) g;  -- ~2000 heap blocks, several chunks
SELECT powersync.wait_replicated();
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  all_big:
    data:
      - SELECT id FROM big
$$) AS v \gset
-- Catch the copy in the middle: some blocks copied, not all.
CREATE FUNCTION mid_copy() RETURNS TABLE (blocks bigint, percent numeric) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..60000 LOOP
    RETURN QUERY SELECT p.blocks_copied, p.percent_done FROM powersync.snapshot_progress p
                  WHERE p.table_name = 'big' AND NOT p.snapshot_done AND p.blocks_copied > 0;
    IF FOUND THEN RETURN; END IF;
    PERFORM pg_sleep(0.001);
  END LOOP;
END $$;
CREATE TEMP TABLE seen AS SELECT * FROM mid_copy();
SELECT count(*) AS caught_mid_copy, bool_and(percent > 0 AND percent < 100) AS progress_visible FROM seen;
SELECT s.state, s.snapshot_done, s.tables_total, s.tables_snapshotted, s.snapshot_percent > 0 AS percent_shown
  FROM powersync.status() s WHERE s.version = :v;
-- Stop the worker mid-copy and start it again.
SELECT pg_terminate_backend(worker_pid) AS stopped FROM powersync.replication_state;
SELECT pg_sleep(0.2);
SELECT powersync.ensure_worker() IS NOT NULL AS restarted;
SELECT powersync.wait_for_checkpoint('120s') IS NOT NULL AS active;
-- Resumed, not restarted: the rows counter saw each row once, and progress never went back.
SELECT rows_copied = (SELECT count(*) FROM big) AS each_row_copied_once,
       blocks_copied >= (SELECT blocks FROM seen) AS resumed, snapshot_done
  FROM powersync.snapshot_progress WHERE table_name = 'big';
SELECT count(DISTINCT object_id) = 60000 AS every_row_synced, count(*) = 60000 AS one_op_per_row
  FROM powersync.bucket_data WHERE object_type = 'big';
SELECT state FROM powersync.sync_rules WHERE id = :v;
\c contrib_regression
