-- request_buckets(): static buckets, dynamic buckets through the lookup index evaluated "as of" a
-- checkpoint (older checkpoints see the membership of their time, tombstones honoured), the limit of
-- 1,000 parameter results (PSYNC_S2305), and bad input. Uses the real worker.
CREATE TABLE rb_members (id int PRIMARY KEY, user_id text, list_id int);
CREATE TABLE rb_lists (id int PRIMARY KEY, name text);
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  mine:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, name FROM rb_lists WHERE name = bucket.user_id
  by_list:
    priority: 1
    parameters: SELECT list_id FROM rb_members WHERE user_id = request.user_id()
    data:
      - SELECT id, name FROM rb_lists WHERE id = bucket.list_id
  global:
    data:
      - SELECT id FROM rb_lists
$$) > 0 AS deployed;
SELECT powersync.wait_for_checkpoint('120s') IS NOT NULL AS active;
SELECT id AS v FROM powersync.sync_rules WHERE state = 'ACTIVE' \gset

-- Nothing in the lookup index yet: only the static buckets (version prefix stripped for stable output).
SELECT replace(bucket, :'v' || '#', '') AS bucket, priority
  FROM powersync.request_buckets('{"sub":"u1"}', '{}', NULL) ORDER BY 1;

INSERT INTO rb_members VALUES (1, 'u1', 10), (2, 'u1', 11), (3, 'u2', 10);
SELECT powersync.wait_for_checkpoint('60s') AS c1 \gset
UPDATE rb_members SET list_id = 12 WHERE id = 1;   -- lookup moves: old one gets a tombstone
DELETE FROM rb_members WHERE id = 2;               -- tombstone
SELECT powersync.wait_for_checkpoint('60s') AS c2 \gset

-- status(): the active version, its snapshot progress, the worker and the slot.
SELECT state, snapshot_done, tables_total, tables_snapshotted, snapshot_percent, last_checkpoint = :c2 AS at_c2,
       worker_status, slot_wal_status, last_error IS NULL AS no_error, lag_bytes >= 0 AS lag_known
  FROM powersync.status() WHERE version = :v;
SELECT table_name, replica_identity, snapshot_done, percent_done FROM powersync.snapshot_progress
 WHERE version = :v ORDER BY 1;

SELECT 'at c1' AS at, replace(bucket, :'v' || '#', '') AS bucket, priority
  FROM powersync.request_buckets('{"sub":"u1"}', '{}', :c1) WHERE bucket LIKE '%by_list%'
UNION ALL
SELECT 'at c2', replace(bucket, :'v' || '#', ''), priority
  FROM powersync.request_buckets('{"sub":"u1"}', '{}', :c2) WHERE bucket LIKE '%by_list%'
UNION ALL
SELECT 'current', replace(bucket, :'v' || '#', ''), priority
  FROM powersync.request_buckets('{"sub":"u1"}', '{}', NULL) WHERE bucket LIKE '%by_list%'
ORDER BY 1, 2;
SELECT replace(bucket, :'v' || '#', '') AS u2_bucket FROM powersync.request_buckets('{"sub":"u2"}', NULL, NULL) ORDER BY 1;
-- A checkpoint before anything was replicated sees no lookups.
SELECT count(*) AS dynamic_at_0 FROM powersync.request_buckets('{"sub":"u1"}', '{}', 0) WHERE bucket LIKE '%by_list%';

-- 1,000 parameter results are fine, 1,001 are an error mentioning PSYNC_S2305.
INSERT INTO rb_members SELECT 100 + i, 'many', i FROM generate_series(1, 1000) i;
SELECT powersync.wait_for_checkpoint('60s') IS NOT NULL AS caught_up;
SELECT count(*) AS buckets_for_many FROM powersync.request_buckets('{"sub":"many"}', '{}', NULL);
INSERT INTO rb_members VALUES (5000, 'many', 5000);
SELECT powersync.wait_for_checkpoint('60s') IS NOT NULL AS caught_up;
SELECT count(*) FROM powersync.request_buckets('{"sub":"many"}', '{}', NULL);

-- Write checkpoints round-trip on an idle database: the logical message alone makes the worker
-- produce a checkpoint past the recorded WAL head, so the counter becomes visible by itself.
DO $$
DECLARE
  w bigint := powersync.create_write_checkpoint('idle_user', 'dev1');
  started timestamptz := clock_timestamp();
BEGIN
  WHILE powersync.write_checkpoint_at('idle_user', 'dev1', NULL) IS DISTINCT FROM w LOOP
    IF clock_timestamp() - started > interval '30 seconds' THEN
      RAISE EXCEPTION 'write checkpoint % not visible within 30 s', w;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RAISE NOTICE 'write checkpoint % visible', w;
END $$;

-- Bad input.
SELECT * FROM powersync.request_buckets('[1,2]', '{}', NULL);
SELECT * FROM powersync.request_buckets('{"sub":"u1"}', '"text"', NULL);

DROP TABLE rb_members, rb_lists;
