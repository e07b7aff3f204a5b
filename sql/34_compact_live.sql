-- compact() on replicated data (spec §2.5, §4.8): after compaction bucket_checksums() reports the
-- same checksums and, as count, the number of ops still stored (a CLEAR replaces its prefix); the
-- parameter lookup index loses superseded rows and tombstones below the horizon while request_buckets()
-- answers the same at the current checkpoint.
SELECT 'CREATE DATABASE ps_compact' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ps_compact') \gexec
\c ps_compact
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS powersync_pg;
CREATE TABLE cm_members (id int PRIMARY KEY, user_id text, list_id text);
CREATE TABLE cm_items (id int PRIMARY KEY, list_id text, v int);
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  by_list:
    parameters: SELECT list_id FROM cm_members WHERE user_id = request.user_id()
    data:
      - SELECT id, list_id, v FROM cm_items WHERE list_id = bucket.list_id
$$) AS v \gset
SELECT powersync.wait_for_checkpoint('60s') IS NOT NULL AS active;
-- Churn: items updated several times and moved, list l2 emptied then refilled (a leading run of
-- removals to CLEAR), memberships moved back and forth (superseded lookups) and deleted (tombstones).
INSERT INTO cm_members VALUES (1, 'u1', 'l1'), (2, 'u1', 'l2'), (3, 'u2', 'l2'), (4, 'u3', 'l3');
INSERT INTO cm_items SELECT g, 'l' || (1 + g % 3), 0 FROM generate_series(1, 12) g;
SELECT powersync.wait_replicated();
UPDATE cm_items SET v = v + 1;
UPDATE cm_items SET v = v + 1 WHERE list_id = 'l1';
SELECT powersync.wait_replicated();
DELETE FROM cm_items WHERE list_id = 'l2';
INSERT INTO cm_items VALUES (20, 'l2', 7);
UPDATE cm_members SET list_id = 'l3' WHERE id = 1;
SELECT powersync.wait_replicated();
UPDATE cm_members SET list_id = 'l1' WHERE id = 1;
DELETE FROM cm_members WHERE id = 4;
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;

CREATE TEMP TABLE users AS SELECT unnest(ARRAY['u1', 'u2', 'u3']) AS u;
CREATE FUNCTION pg_temp.requests() RETURNS TABLE (u text, buckets text) LANGUAGE sql AS $$
  SELECT users.u, string_agg(r.bucket, ' ' ORDER BY r.bucket) FROM users
    LEFT JOIN LATERAL powersync.request_buckets(jsonb_build_object('sub', users.u), '{}', NULL) r ON true
   GROUP BY users.u ORDER BY users.u $$;
CREATE FUNCTION pg_temp.sums() RETURNS TABLE (bucket text, checksum bigint, count bigint, stored bigint) LANGUAGE sql AS $$
  SELECT c.bucket, c.checksum, c.count, (SELECT count(*) FROM powersync.bucket_ops(c.bucket, 0, NULL, NULL))
    FROM powersync.bucket_checksums(ARRAY(SELECT DISTINCT bucket FROM powersync.bucket_data ORDER BY 1), NULL) c $$;
CREATE TEMP TABLE before_requests AS SELECT * FROM pg_temp.requests();
CREATE TEMP TABLE before_sums AS SELECT * FROM pg_temp.sums();
SELECT * FROM before_requests;
SELECT bucket, count = stored AS count_is_ops_stored FROM before_sums ORDER BY bucket;
SELECT count(*) AS lookup_rows_before FROM powersync.bucket_parameters;

-- Lookups only compact below the checkpoint current parameter_retention ago: none with the default.
SELECT ops_moved > 0 AS moved, ops_cleared > 0 AS cleared, lookups_removed FROM powersync.compact();
SELECT count(*) AS lookup_rows FROM powersync.bucket_parameters;
SELECT lookups_removed FROM powersync.compact('0 s');
-- Left: the newest row of each live (lookup, member row); tombstones and older rows are gone.
SELECT lookup, bucket_parameters FROM powersync.bucket_parameters ORDER BY lookup, id;
SELECT (SELECT count(*) FROM powersync.bucket_parameters) = (SELECT count(*) FROM cm_members) AS one_row_per_member;
SELECT * FROM pg_temp.requests() EXCEPT SELECT * FROM before_requests;
-- Same checksums; counts are the ops left, which a CLEAR lowered.
SELECT s.bucket, s.checksum = b.checksum AS same_checksum, s.count = s.stored AS count_is_ops_stored,
       s.count < b.count AS count_lowered
  FROM pg_temp.sums() s JOIN before_sums b USING (bucket) ORDER BY s.bucket;
-- Later changes keep counts and lookups right on top of the compacted state.
INSERT INTO cm_members VALUES (5, 'u3', 'l2');
UPDATE cm_items SET v = v + 1 WHERE id = 20;
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM pg_temp.requests();
SELECT bucket, count = stored AS count_is_ops_stored FROM pg_temp.sums() ORDER BY bucket;
SELECT lookups_removed FROM powersync.compact('0 s');
SELECT * FROM pg_temp.requests();
\c contrib_regression
