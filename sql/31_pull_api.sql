-- Pull API over hand-made bucket ops: checkpoint(), bucket_checksums(), bucket_ops(), write
-- checkpoints, bad input. Everything runs in one transaction that is rolled back, so the worker
-- never sees this state and later tests start clean.
BEGIN;
UPDATE powersync.sync_rules SET state = 'STOP' WHERE state <> 'STOP';
CREATE TEMP TABLE v AS SELECT 900000 AS id;
INSERT INTO powersync.sync_rules (id, content, state, snapshot_done, last_checkpoint, last_checkpoint_lsn)
VALUES (900000, 'bucket_definitions: {}', 'ACTIVE', true, 6, '0/100');
INSERT INTO powersync.checkpoints (sync_rules_id, op_id, lsn) VALUES (900000, 3, '0/50'), (900000, 6, '0/100');

-- Op checksum of spec §2.3: first 4 bytes of SHA-256, little endian, unsigned.
CREATE FUNCTION pg_temp.op_hash(s text) RETURNS bigint LANGUAGE sql AS $$
  SELECT get_byte(d, 0)::bigint | (get_byte(d, 1)::bigint << 8) | (get_byte(d, 2)::bigint << 16) | (get_byte(d, 3)::bigint << 24)
    FROM (SELECT sha256(convert_to(s, 'UTF8')) AS d) x $$;
SELECT pg_temp.op_hash('put.test.t1.{"id":"t1","description":"Test 1"}') AS vector_920318466;

-- Appends an op the way the worker does: checksum, running totals, bucket_state.
CREATE FUNCTION pg_temp.add_op(b text, id bigint, kind text, otype text, oid text, sub text, payload text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  c bigint := CASE kind WHEN 'PUT' THEN pg_temp.op_hash('put.' || otype || '.' || oid || '.' || payload)
                        ELSE pg_temp.op_hash('delete.' || sub) END;
  st record;
BEGIN
  SELECT * INTO st FROM powersync.bucket_state WHERE bucket = b;
  INSERT INTO powersync.bucket_data (bucket, op_id, sync_rules_id, op, object_type, object_id, subkey, data, checksum,
                                     cum_checksum, cum_count)
  VALUES (b, id, 900000, kind, otype, oid, sub, payload, c, (coalesce(st.checksum, 0) + c) % 4294967296,
          coalesce(st.count, 0) + 1);
  INSERT INTO powersync.bucket_state (bucket, sync_rules_id, last_op, checksum, count)
  VALUES (b, 900000, id, c, 1)
  ON CONFLICT (bucket) DO UPDATE SET last_op = id, checksum = (bucket_state.checksum + c) % 4294967296,
                                     count = bucket_state.count + 1;
END $$;

SELECT pg_temp.add_op('900000#a[]', 1, 'PUT', 'test', 't1', '1/aa', '{"id":"t1","description":"Test 1"}');
SELECT pg_temp.add_op('900000#a[]', 2, 'PUT', 'test', 't2', '1/bb', '{"id":"t2","description":"Test 2"}');
SELECT pg_temp.add_op('900000#b[]', 3, 'PUT', 'test', 't3', '1/cc', '{"id":"t3"}');
SELECT pg_temp.add_op('900000#a[]', 4, 'REMOVE', 'test', 't1', '1/aa', NULL);
SELECT pg_temp.add_op('900000#b[]', 5, 'PUT', 'test', 't3', '1/cc', '{"id":"t3","x":1}');
SELECT pg_temp.add_op('900000#c[]', 7, 'PUT', 'test', 't9', '1/dd', '{"id":"t9"}');  -- beyond the checkpoint

SELECT * FROM powersync.checkpoint();

-- Checksums: spec vector (920318466 + 3280762209) mod 2^32 = 4201080675 at checkpoint 2; in input order;
-- unknown buckets and buckets whose ops are all after the checkpoint give 0/0; NULL entries are skipped.
SELECT * FROM powersync.bucket_checksums(ARRAY['900000#a[]'], 2);
SELECT * FROM powersync.bucket_checksums(ARRAY['900000#b[]', '900000#a[]', 'nope', NULL, '900000#c[]'], NULL);
SELECT * FROM powersync.bucket_checksums(ARRAY['900000#c[]'], 7);
SELECT count(*) FROM powersync.bucket_checksums('{}', NULL);
SELECT * FROM powersync.bucket_checksums(NULL, NULL);

-- Ops after < op_id <= checkpoint, ascending, limited.
SELECT * FROM powersync.bucket_ops('900000#a[]', 0, NULL, 100);
SELECT op_id, op FROM powersync.bucket_ops('900000#a[]', 1, NULL, NULL);
SELECT op_id FROM powersync.bucket_ops('900000#a[]', 0, 3, 1);
SELECT op_id FROM powersync.bucket_ops('900000#a[]', NULL, 3, 10);
SELECT count(*) FROM powersync.bucket_ops('900000#c[]', 0, NULL, 10);
SELECT count(*) FROM powersync.bucket_ops('no such bucket', 0, NULL, 10);
-- Bad input: a negative limit is an error, not an empty answer.
SELECT * FROM powersync.bucket_ops('900000#a[]', 0, NULL, -1);
ROLLBACK;
BEGIN;
UPDATE powersync.sync_rules SET state = 'STOP' WHERE state <> 'STOP';
INSERT INTO powersync.sync_rules (id, content, state, snapshot_done, last_checkpoint, last_checkpoint_lsn)
VALUES (900000, 'bucket_definitions: {}', 'ACTIVE', true, 6, '0/100');
INSERT INTO powersync.checkpoints (sync_rules_id, op_id, lsn) VALUES (900000, 3, '0/50'), (900000, 6, '0/100');

-- The hot path is one call of the C reader (the SQL wrapper is inlined).
EXPLAIN (COSTS OFF) SELECT * FROM powersync.bucket_ops('900000#a[]', 0, 10, 100);

-- Write checkpoints: per-key counters starting at 1; client ids make separate keys.
SELECT powersync.create_write_checkpoint('user1', 'c1') AS first, powersync.create_write_checkpoint('user1', 'c1') AS second,
       powersync.create_write_checkpoint('user1', NULL) AS other_key, powersync.create_write_checkpoint('user1', '') AS same_key;
SELECT user_id, write_checkpoint FROM powersync.write_checkpoints ORDER BY user_id;
-- The recorded WAL head is beyond checkpoint 6's LSN 0/100, so nothing is visible yet ...
SELECT powersync.write_checkpoint_at('user1', 'c1', NULL) IS NULL AS not_yet;
-- ... until a checkpoint passes it.
UPDATE powersync.checkpoints SET lsn = pg_current_wal_lsn() WHERE op_id = 6;
SELECT powersync.write_checkpoint_at('user1', 'c1', NULL) AS at_current, powersync.write_checkpoint_at('user1', 'c1', 6) AS at_6,
       powersync.write_checkpoint_at('user1', 'c1', 5) IS NULL AS not_at_older,
       powersync.write_checkpoint_at('user1', NULL, NULL) AS user_key,
       powersync.write_checkpoint_at('nobody', NULL, NULL) IS NULL AS unknown_key;
-- Bad input.
SELECT powersync.create_write_checkpoint(NULL, 'c1');
ROLLBACK;
BEGIN;
SELECT powersync.create_write_checkpoint('', NULL);
ROLLBACK;

-- Checkpoint requests: the client's id; the highest one per key is kept (a retry or a lower id
-- leaves it), and it becomes visible like a write checkpoint once a checkpoint passes its head.
BEGIN;
UPDATE powersync.sync_rules SET state = 'STOP' WHERE state <> 'STOP';
INSERT INTO powersync.sync_rules (id, content, state, snapshot_done, last_checkpoint, last_checkpoint_lsn)
VALUES (900000, 'bucket_definitions: {}', 'ACTIVE', true, 6, '0/100');
INSERT INTO powersync.checkpoints (sync_rules_id, op_id, lsn) VALUES (900000, 6, '0/100');
SELECT powersync.request_write_checkpoint('user2', 'c9', 5) AS first, powersync.request_write_checkpoint('user2', 'c9', 3) AS lower,
       powersync.request_write_checkpoint('user2', 'c9', 5) AS retry, powersync.request_write_checkpoint('user2', 'c9', 8) AS higher;
SELECT powersync.write_checkpoint_at('user2', 'c9', NULL) IS NULL AS not_yet;
UPDATE powersync.checkpoints SET lsn = pg_current_wal_lsn() WHERE op_id = 6;
SELECT powersync.write_checkpoint_at('user2', 'c9', NULL) AS visible;
SELECT powersync.request_write_checkpoint('user2', 'c9', 0);
ROLLBACK;

-- status() always answers, also with nothing deployed or before the worker ran.
SELECT count(*) >= 1 AS has_rows, bool_and(slot_name LIKE 'powersync_%') AS slot_named FROM powersync.status();

-- Op chunks: writes through the bucket_data view pack into chunks; a checkpoint inside a chunk is exact;
-- a damaged chunk is an ERROR, not a crash.
BEGIN;
INSERT INTO powersync.bucket_data (bucket, op_id, sync_rules_id, op, object_type, object_id, subkey, data, checksum,
                                   cum_checksum, cum_count)
VALUES ('900009#x[]', 11, 900009, 'PUT', 't', 'a', '1/aa', '{}', 5, 5, 1);
SELECT powersync._write_ops(array_agg(ROW('900009#x[]', i, 900009, 'PUT', 't', 'r' || i, '1/' || i, '{}', 1, NULL,
                                          5 + i - 11, i - 10)::powersync.bucket_data ORDER BY i DESC))
  FROM generate_series(12, 15) i;
SELECT bucket, first_op, last_op, op_count, first_count, cum_checksum, cum_count FROM powersync.bucket_chunks
 WHERE bucket = '900009#x[]' ORDER BY first_op;
SELECT * FROM powersync.bucket_checksums(ARRAY['900009#x[]'], 13);
SELECT op_id, object_id FROM powersync.bucket_ops('900009#x[]', 12, 14, NULL);
DELETE FROM powersync.bucket_data WHERE bucket = '900009#x[]' AND op_id = 13;
SELECT op_id, cum_checksum, cum_count FROM powersync.bucket_data WHERE bucket = '900009#x[]' ORDER BY op_id;
SELECT powersync._write_ops(ARRAY[ROW('900009#x[]', 20, 900009, 'BAD', NULL, NULL, NULL, NULL, 0, NULL, 0, 0)::powersync.bucket_data]);
ROLLBACK;
BEGIN;
INSERT INTO powersync.bucket_chunks VALUES ('900009#x[]', 1, 1, 900009, 1, 1, 0, 1, '\x0101010000'::bytea);
SELECT * FROM powersync.bucket_ops('900009#x[]', 0, 10, NULL);
ROLLBACK;
BEGIN;
INSERT INTO powersync.bucket_chunks VALUES ('900009#x[]', 1, 1, 900009, 1, 1, 0, 1, '\x02'::bytea);
SELECT count(*) FROM powersync.bucket_data WHERE bucket = '900009#x[]';
ROLLBACK;
