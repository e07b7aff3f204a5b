-- checkpoint_changes(): what a checkpoint changed for sync streams (version, parameter rows, buckets
-- with checksum and count exactly as bucket_checksums() reports them, write-checkpoint keys), also
-- after compact() lowered counts below the running totals. Hand-made op logs, rolled back at the end.
BEGIN;
UPDATE powersync.sync_rules SET state = 'STOP' WHERE state <> 'STOP';
-- Earlier tests' parameter rows and write checkpoints would overlap the ids and LSNs used here.
DELETE FROM powersync.bucket_parameters;
DELETE FROM powersync.write_checkpoints;
-- No active version: no rows at all.
SELECT count(*) AS rows_without_version FROM powersync.checkpoint_changes(0, '0/0', NULL);
INSERT INTO powersync.sync_rules (id, content, state, snapshot_done, last_checkpoint, last_checkpoint_lsn)
VALUES (900002, 'bucket_definitions: {}', 'ACTIVE', true, 10, '0/100'),
       (900003, 'bucket_definitions: {}', 'PROCESSING', false, NULL, NULL);
INSERT INTO powersync.checkpoints (sync_rules_id, op_id, lsn)
VALUES (900002, 5, '0/50'), (900002, 10, '0/100'), (900002, 20, '0/200');

CREATE FUNCTION pg_temp.op_hash(s text) RETURNS bigint LANGUAGE sql AS $$
  SELECT get_byte(d, 0)::bigint | (get_byte(d, 1)::bigint << 8) | (get_byte(d, 2)::bigint << 16) | (get_byte(d, 3)::bigint << 24)
    FROM (SELECT sha256(convert_to(s, 'UTF8')) AS d) x $$;
CREATE FUNCTION pg_temp.add_op(b text, id bigint, kind text, rowid text, payload text, v bigint DEFAULT 900002)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  c bigint := CASE kind WHEN 'PUT' THEN pg_temp.op_hash('put.t.' || rowid || '.' || payload)
                        ELSE pg_temp.op_hash('delete.1/' || rowid) END;
  st record;
BEGIN
  SELECT * INTO st FROM powersync.bucket_state WHERE bucket = b;
  INSERT INTO powersync.bucket_data (bucket, op_id, sync_rules_id, op, object_type, object_id, subkey, data, checksum,
                                     cum_checksum, cum_count)
  VALUES (b, id, v, kind, 't', rowid, '1/' || rowid, payload, c, (coalesce(st.checksum, 0) + c) % 4294967296,
          coalesce(st.count, 0) + 1);
  INSERT INTO powersync.bucket_state (bucket, sync_rules_id, last_op, checksum, count) VALUES (b, v, id, c, 1)
  ON CONFLICT (bucket) DO UPDATE SET last_op = id, checksum = (bucket_state.checksum + c) % 4294967296,
                                     count = bucket_state.count + 1;
END $$;
-- The bucket rows of checkpoint_changes() equal bucket_checksums() of the same buckets.
CREATE FUNCTION pg_temp.same_as_checksums(after_op bigint, after_lsn pg_lsn, c bigint) RETURNS boolean
LANGUAGE sql AS $$
  WITH ch AS (SELECT name, checksum, count FROM powersync.checkpoint_changes(after_op, after_lsn, c) WHERE kind = 'bucket')
  SELECT NOT EXISTS ((SELECT * FROM ch EXCEPT SELECT * FROM powersync.bucket_checksums(ARRAY(SELECT name FROM ch), c))
                     UNION ALL
                     (SELECT * FROM powersync.bucket_checksums(ARRAY(SELECT name FROM ch), c) EXCEPT SELECT * FROM ch)) $$;

-- Bucket a: two rows put and removed, then a live row (a leading run to CLEAR); bucket b: one op;
-- bucket c: only an op past checkpoint 10; bucket e: ops before checkpoint 5 only; bucket p of the
-- PROCESSING version.
SELECT pg_temp.add_op('900002#a[]', 1, 'PUT', 'x', '{"v":1}'), pg_temp.add_op('900002#e[]', 2, 'PUT', 'e', '{"v":2}'),
       pg_temp.add_op('900002#a[]', 3, 'REMOVE', 'x', NULL), pg_temp.add_op('900002#a[]', 6, 'PUT', 'y', '{"v":6}'),
       pg_temp.add_op('900002#a[]', 7, 'REMOVE', 'y', NULL), pg_temp.add_op('900002#a[]', 9, 'PUT', 'z', '{"v":9}'),
       pg_temp.add_op('900002#b[]', 8, 'PUT', 'q', '{"v":8}'), pg_temp.add_op('900002#c[]', 12, 'PUT', 'w', '{"v":12}'),
       pg_temp.add_op('900003#p[]', 7, 'PUT', 'p', '{"v":7}', 900003);
INSERT INTO powersync.bucket_parameters (id, sync_rules_id, source_table_id, source_key, lookup, bucket_parameters)
VALUES (4, 900002, 1, '\x01', '["d","0","u1"]', '[{"x":1}]'), (15, 900002, 1, '\x01', '["d","0","u1"]', '[]'),
       (8, 900003, 1, '\x01', '["d","0","u1"]', '[{"x":1}]');
INSERT INTO powersync.write_checkpoints (user_id, lsn, write_checkpoint)
VALUES ('u1', '0/80', 1), ('u2/c1', '0/150', 3), ('u3', '0/40', 1);

-- From checkpoint 5 to 10: buckets a and b (not c: its only op is past 10; not e; not the other
-- version's), no parameter rows of the active version, key u1 (u2/c1 is not visible at 10).
SELECT kind, name, checksum, count FROM powersync.checkpoint_changes(5, '0/50', 10) ORDER BY 1, 2;
SELECT pg_temp.same_as_checksums(5, '0/50', 10) AS same_5_10;
-- NULL means the current checkpoint (10); from 0: parameter row 4 and every bucket up to 10.
SELECT kind, name, count FROM powersync.checkpoint_changes(0, '0/0') ORDER BY 1, 2;
-- Nothing changed from 10 to 10 except that the version is reported.
SELECT kind, name FROM powersync.checkpoint_changes(10, '0/100', 10);

-- compact() at checkpoint 10 turns a's ops 1..7 into one CLEAR: 2 ops stored, while the running
-- total in bucket_state still counts 5.
SELECT buckets_compacted, ops_cleared FROM powersync.compact();
SELECT op_id, op FROM powersync.bucket_ops('900002#a[]', 0, NULL) ORDER BY op_id;
SELECT s.count AS running_total, c.count AS stored_at_10
  FROM powersync.bucket_state s, powersync.bucket_checksums(ARRAY['900002#a[]'], 10) c WHERE s.bucket = '900002#a[]';
SELECT kind, name, count FROM powersync.checkpoint_changes(5, '0/50', 10) WHERE kind = 'bucket' ORDER BY 2;
SELECT pg_temp.same_as_checksums(5, '0/50', 10) AS same_after_compact;
-- A new op in a and checkpoint 20: the diff carries 3 (not the running total 6), and c, the
-- parameter tombstone 15 and key u2/c1 appear.
SELECT pg_temp.add_op('900002#a[]', 18, 'PUT', 'z', '{"v":18}');
UPDATE powersync.sync_rules SET last_checkpoint = 20, last_checkpoint_lsn = '0/200' WHERE id = 900002;
SELECT kind, name, count FROM powersync.checkpoint_changes(10, '0/100') ORDER BY 1, 2;
SELECT pg_temp.same_as_checksums(10, '0/100', 20) AS same_10_20;
SELECT count FROM powersync.bucket_state WHERE bucket = '900002#a[]';

-- The bucket candidates come from the index on bucket_state.last_op (not a scan of every bucket), the
-- write checkpoint keys from the index on write_checkpoints.lsn (not a scan of every user).
SET LOCAL enable_seqscan = off;
CREATE FUNCTION pg_temp.plan_uses(idx text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE line text; found boolean := false;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN SELECT * FROM powersync.checkpoint_changes(10, ''0/100'', 20)' LOOP
    found := found OR line LIKE '%' || idx || '%';
  END LOOP;
  RETURN found;
END $$;
SELECT pg_temp.plan_uses('bucket_state_last_op') AS uses_last_op_index;
SELECT pg_temp.plan_uses('write_checkpoints_lsn') AS uses_write_checkpoints_lsn_index;
ROLLBACK;
