-- Bucket compaction (spec §2.5): superseded PUT/REMOVE ops become MOVE, and a leading run of
-- non-PUT ops collapses into one CLEAR. Checksums (op checksums summed, and the running totals
-- cum_checksum/cum_count of every surviving op) are unchanged, so clients stay valid mid-download.

-- How far each bucket was compacted: a bucket whose newest op is not beyond this is skipped.
CREATE TABLE powersync.compaction_state (
  bucket       text PRIMARY KEY,
  compacted_to bigint NOT NULL
);
COMMENT ON TABLE powersync.compaction_state IS
  'Written only by powersync.compact(): per bucket the checkpoint op id up to which it was compacted.';

-- MOVE pass over ops <= bound of the given buckets: every PUT/REMOVE that is not the newest op of its
-- row key (object_type, object_id, subkey) becomes MOVE with target_op = that newest op's id.
CREATE FUNCTION powersync._compact_move(buckets text[], bound bigint) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  WITH live AS (
    SELECT d.bucket, d.op_id,
           max(d.op_id) OVER (PARTITION BY d.bucket, d.object_type, d.object_id, d.subkey) AS newest
      FROM powersync.bucket_data d
     WHERE d.bucket = ANY (buckets) AND d.op_id <= bound AND d.op IN ('PUT', 'REMOVE')),
  moved AS (
    UPDATE powersync.bucket_data d
       SET op = 'MOVE', object_type = NULL, object_id = NULL, subkey = NULL, data = NULL, target_op = live.newest
      FROM live
     WHERE d.bucket = live.bucket AND d.op_id = live.op_id AND live.op_id < live.newest
       AND d.op IN ('PUT', 'REMOVE')
    RETURNING 1)
  SELECT count(*) FROM moved
$$;

-- CLEAR pass of one bucket: if the ops <= bound start with a run of non-PUT ops holding at least two
-- REMOVE/MOVE ops, the run becomes one CLEAR at the run's last op id with the run's summed checksum
-- and the largest target_op in it. That row keeps its cum_checksum/cum_count, which already cover
-- the run. Returns the number of ops removed.
CREATE FUNCTION powersync._compact_clear(bucket_id text, bound bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  first_put bigint;
  run record;
BEGIN
  SELECT min(d.op_id) INTO first_put FROM powersync.bucket_data d
   WHERE d.bucket = bucket_id AND d.op_id <= bound AND d.op = 'PUT';
  SELECT count(*) FILTER (WHERE d.op IN ('REMOVE', 'MOVE')) AS removals, count(*) AS ops, max(d.op_id) AS last_op,
         sum(d.checksum) % 4294967296 AS checksum, max(d.target_op) AS target_op
    INTO run
    FROM powersync.bucket_data d
   WHERE d.bucket = bucket_id AND d.op_id <= least(bound, first_put - 1);
  IF run.removals < 2 THEN
    RETURN 0;
  END IF;
  DELETE FROM powersync.bucket_data d WHERE d.bucket = bucket_id AND d.op_id < run.last_op;
  UPDATE powersync.bucket_data d
     SET op = 'CLEAR', object_type = NULL, object_id = NULL, subkey = NULL, data = NULL,
         checksum = run.checksum, target_op = coalesce(run.target_op, run.last_op)
   WHERE d.bucket = bucket_id AND d.op_id = run.last_op;
  RETURN run.ops - 1;
END $$;

CREATE FUNCTION powersync.compact()
RETURNS TABLE(buckets_compacted bigint, ops_moved bigint, ops_cleared bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  version bigint;
  bound bigint;
  todo text[];
  b text;
BEGIN
  -- One compaction at a time; the worker only appends ops above the checkpoint we read, so it
  -- never waits for us (bucket_state is not touched: totals do not change).
  PERFORM pg_advisory_xact_lock(hashtext('powersync.compact'));
  SELECT s.id, s.last_checkpoint INTO version, bound
    FROM powersync.sync_rules s WHERE s.state = 'ACTIVE' AND s.last_checkpoint IS NOT NULL;
  buckets_compacted := 0; ops_moved := 0; ops_cleared := 0;
  IF version IS NULL THEN
    RETURN NEXT;
    RETURN;
  END IF;
  DELETE FROM powersync.compaction_state c
   WHERE NOT EXISTS (SELECT 1 FROM powersync.bucket_state s WHERE s.bucket = c.bucket);
  SELECT array_agg(s.bucket ORDER BY s.bucket) INTO todo
    FROM powersync.bucket_state s LEFT JOIN powersync.compaction_state c ON c.bucket = s.bucket
   WHERE s.sync_rules_id = version AND least(s.last_op, bound) > coalesce(c.compacted_to, 0);
  IF todo IS NULL THEN
    RETURN NEXT;
    RETURN;
  END IF;
  buckets_compacted := cardinality(todo);
  ops_moved := powersync._compact_move(todo, bound);
  FOREACH b IN ARRAY todo LOOP
    ops_cleared := ops_cleared + powersync._compact_clear(b, bound);
  END LOOP;
  INSERT INTO powersync.compaction_state AS c (bucket, compacted_to)
  SELECT unnest(todo), bound
  ON CONFLICT (bucket) DO UPDATE SET compacted_to = excluded.compacted_to;
  RETURN NEXT;
END $$;
COMMENT ON FUNCTION powersync.compact() IS
  'Compacts the buckets of the active version up to its current checkpoint (spec §2.5): MOVE pass then CLEAR '
  'pass; bucket checksums and the reduced state are preserved. Safe to run while the worker replicates; '
  'buckets with no new ops since the last run are skipped.';
