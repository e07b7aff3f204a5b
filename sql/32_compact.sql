-- compact() over hand-made op logs: superseded ops become MOVE, leading non-PUT runs become CLEAR,
-- checksums and the reduced state stay the same, and a client that synced to an earlier checkpoint
-- ends up identical after downloading the compacted tail. Rolled back at the end.
BEGIN;
UPDATE powersync.sync_rules SET state = 'STOP' WHERE state <> 'STOP';
INSERT INTO powersync.sync_rules (id, content, state, snapshot_done, last_checkpoint, last_checkpoint_lsn)
VALUES (900001, 'bucket_definitions: {}', 'ACTIVE', true, 20, '0/100');

CREATE FUNCTION pg_temp.op_hash(s text) RETURNS bigint LANGUAGE sql AS $$
  SELECT get_byte(d, 0)::bigint | (get_byte(d, 1)::bigint << 8) | (get_byte(d, 2)::bigint << 16) | (get_byte(d, 3)::bigint << 24)
    FROM (SELECT sha256(convert_to(s, 'UTF8')) AS d) x $$;
CREATE FUNCTION pg_temp.add_op(b text, id bigint, kind text, rowid text, payload text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  c bigint := CASE kind WHEN 'PUT' THEN pg_temp.op_hash('put.t.' || rowid || '.' || payload)
                        ELSE pg_temp.op_hash('delete.1/' || rowid) END;
  st record;
BEGIN
  SELECT * INTO st FROM powersync.bucket_state WHERE bucket = b;
  INSERT INTO powersync.bucket_data (bucket, op_id, sync_rules_id, op, object_type, object_id, subkey, data, checksum,
                                     cum_checksum, cum_count)
  VALUES (b, id, 900001, kind, 't', rowid, '1/' || rowid, payload, c, (coalesce(st.checksum, 0) + c) % 4294967296,
          coalesce(st.count, 0) + 1);
  INSERT INTO powersync.bucket_state (bucket, sync_rules_id, last_op, checksum, count) VALUES (b, 900001, id, c, 1)
  ON CONFLICT (bucket) DO UPDATE SET last_op = id, checksum = (bucket_state.checksum + c) % 4294967296,
                                     count = bucket_state.count + 1;
END $$;

-- Bucket a: rows r1 (updated twice), r2 (removed), r3 (removed); ends with PUTs.
SELECT pg_temp.add_op('900001#a[]', 1, 'PUT', 'r1', '{"v":1}'), pg_temp.add_op('900001#a[]', 2, 'PUT', 'r2', '{"v":2}'),
       pg_temp.add_op('900001#a[]', 3, 'PUT', 'r1', '{"v":3}'), pg_temp.add_op('900001#a[]', 4, 'REMOVE', 'r2', NULL),
       pg_temp.add_op('900001#a[]', 5, 'PUT', 'r3', '{"v":5}'), pg_temp.add_op('900001#a[]', 6, 'PUT', 'r1', '{"v":6}'),
       pg_temp.add_op('900001#a[]', 7, 'REMOVE', 'r3', NULL), pg_temp.add_op('900001#a[]', 8, 'PUT', 'r4', '{"v":8}');
-- Bucket b: everything but the last row was removed: a leading run to CLEAR.
SELECT pg_temp.add_op('900001#b[]', 9, 'PUT', 'x', '{"v":9}'), pg_temp.add_op('900001#b[]', 10, 'REMOVE', 'x', NULL),
       pg_temp.add_op('900001#b[]', 11, 'PUT', 'y', '{"v":11}'), pg_temp.add_op('900001#b[]', 12, 'REMOVE', 'y', NULL),
       pg_temp.add_op('900001#b[]', 13, 'PUT', 'z', '{"v":13}');
-- Bucket c: a single REMOVE run is too short to CLEAR; bucket d: only ops after the checkpoint.
SELECT pg_temp.add_op('900001#c[]', 14, 'REMOVE', 'q', NULL), pg_temp.add_op('900001#c[]', 15, 'PUT', 'q', '{"v":15}'),
       pg_temp.add_op('900001#d[]', 21, 'PUT', 'w', '{"v":21}'), pg_temp.add_op('900001#d[]', 22, 'PUT', 'w', '{"v":22}');

CREATE TEMP TABLE buckets AS SELECT unnest(ARRAY['900001#a[]', '900001#b[]', '900001#c[]', '900001#d[]']) AS bucket;
CREATE TEMP TABLE before_ops AS
  SELECT b.bucket, o.* FROM buckets b, LATERAL powersync.bucket_ops(b.bucket, 0, NULL, NULL) o;
CREATE TEMP TABLE before_sums AS
  SELECT * FROM powersync.bucket_checksums(ARRAY(SELECT bucket FROM buckets ORDER BY bucket), NULL);

-- Client state from an op list: per bucket and row key the newest PUT/REMOVE, keeping PUTs;
-- everything before a CLEAR is dropped.
CREATE FUNCTION pg_temp.reduce(ops_json jsonb) RETURNS TABLE(bucket text, object_id text, data text)
LANGUAGE sql AS $$
  WITH ops AS (SELECT * FROM jsonb_to_recordset(ops_json)
                 AS x(bucket text, op_id bigint, op text, object_type text, object_id text, subkey text, data text)),
  live AS (SELECT o.* FROM ops o
            WHERE o.op_id > coalesce((SELECT max(c.op_id) FROM ops c WHERE c.bucket = o.bucket AND c.op = 'CLEAR'), 0)
              AND o.op IN ('PUT', 'REMOVE')),
  latest AS (SELECT DISTINCT ON (bucket, object_type, object_id, subkey) * FROM live
              ORDER BY bucket, object_type, object_id, subkey, op_id DESC)
  SELECT bucket, object_id, data FROM latest WHERE op = 'PUT' ORDER BY 1, 2 $$;
CREATE FUNCTION pg_temp.ops_json(min_op bigint) RETURNS jsonb LANGUAGE sql AS $$
  SELECT coalesce(jsonb_agg(to_jsonb(o)), '[]') FROM buckets b, LATERAL powersync.bucket_ops(b.bucket, min_op, NULL, NULL) o2,
         LATERAL (SELECT b.bucket, o2.*) o $$;

SELECT * FROM pg_temp.reduce((SELECT jsonb_agg(to_jsonb(o)) FROM before_ops o));

SELECT * FROM powersync.compact('0 s');
-- Nothing new since: a second run skips every bucket.
SELECT * FROM powersync.compact();

SELECT bucket, op_id, op, object_id, data, checksum FROM buckets b, LATERAL powersync.bucket_ops(b.bucket, 0, NULL, NULL)
 ORDER BY bucket, op_id;
SELECT bucket, op_id, op, target_op FROM powersync.bucket_data WHERE sync_rules_id = 900001 AND target_op IS NOT NULL
 ORDER BY bucket, op_id;

-- Invariants: same checksums, same reduced state ...
SELECT count(*) AS checksum_differences FROM (
  (SELECT bucket, checksum FROM before_sums
   EXCEPT SELECT bucket, checksum FROM powersync.bucket_checksums(ARRAY(SELECT bucket FROM buckets), NULL))
  UNION ALL
  (SELECT bucket, checksum FROM powersync.bucket_checksums(ARRAY(SELECT bucket FROM buckets), NULL)
   EXCEPT SELECT bucket, checksum FROM before_sums)) d;
-- ... counts are the ops a client downloads now (spec §2.3): a CLEAR lowers them, at every checkpoint
-- from the CLEAR on ...
SELECT s.bucket, b.count AS count_before, s.count,
       s.count = (SELECT count(*) FROM powersync.bucket_ops(s.bucket, 0, NULL, NULL)) AS count_is_ops_stored
  FROM powersync.bucket_checksums(ARRAY(SELECT bucket FROM buckets ORDER BY bucket), NULL) s JOIN before_sums b USING (bucket)
 ORDER BY s.bucket;
SELECT c AS at_checkpoint, s.count, s.count = (SELECT count(*) FROM powersync.bucket_ops('900001#b[]', 0, c, NULL)) AS count_is_ops_stored
  FROM generate_series(12, 14) c, LATERAL powersync.bucket_checksums(ARRAY['900001#b[]'], c) s;
SELECT (SELECT jsonb_agg(r) FROM pg_temp.reduce((SELECT jsonb_agg(to_jsonb(o)) FROM before_ops o)) r)
     = (SELECT jsonb_agg(r) FROM pg_temp.reduce(pg_temp.ops_json(0)) r) AS same_reduction;
-- ... the op checksums still sum to the bucket checksum ...
SELECT s.bucket, s.checksum = (SELECT coalesce(sum(o.checksum), 0) % 4294967296
                                 FROM powersync.bucket_ops(s.bucket, 0, NULL, NULL) o) AS sums_match
  FROM powersync.bucket_checksums(ARRAY(SELECT bucket FROM buckets ORDER BY bucket), NULL) s;
-- ... and a client that had synced to checkpoint c (old ops <= c) then downloads the compacted ops > c
-- reaches the same state and checksum, for every c.
SELECT c AS synced_to,
       (SELECT jsonb_agg(r) FROM pg_temp.reduce(
          (SELECT coalesce(jsonb_agg(to_jsonb(o)), '[]') FROM before_ops o WHERE o.op_id <= c) || pg_temp.ops_json(c)) r)
     = (SELECT jsonb_agg(r) FROM pg_temp.reduce(pg_temp.ops_json(0)) r) AS same_state
  FROM generate_series(0, 20) c;

-- Bucket ops of MOVE/CLEAR carry the target; data of the other ops is unchanged.
SELECT op, data FROM powersync.bucket_ops('900001#b[]', 0, NULL, NULL);
ROLLBACK;

-- Without an active version compact() does nothing.
BEGIN;
UPDATE powersync.sync_rules SET state = 'STOP' WHERE state <> 'STOP';
SELECT * FROM powersync.compact();
ROLLBACK;
