-- Bucket compaction (spec §2.5): superseded PUT/REMOVE ops become MOVE, and a leading run of
-- non-PUT ops collapses into one CLEAR. Checksums (op checksums summed, and the running totals
-- cum_checksum/cum_count of every surviving op) are unchanged, so clients stay valid mid-download.
-- Also compacts the parameter lookup index.

-- How far each bucket was compacted: a bucket whose newest op is not beyond this is skipped.
CREATE TABLE powersync.compaction_state (
  bucket       text COLLATE "C" PRIMARY KEY,  -- byte order, like bucket_data.bucket
  compacted_to bigint NOT NULL
);
COMMENT ON TABLE powersync.compaction_state IS
  'Written only by powersync.compact(): per bucket the checkpoint op id up to which it was compacted.';

-- MOVE pass over ops <= bound of the given buckets: every PUT/REMOVE that is not the newest op of its
-- row key (object_type, object_id, subkey) becomes MOVE with target_op = that newest op's id. Only the
-- chunks holding such an op are rewritten (deleted and packed again chunk by chunk, same op ids, same
-- running totals). Chunks at or below bound were committed before the checkpoint; the worker only
-- appends chunks above it, so nothing here races with replication.
CREATE FUNCTION powersync._compact_move(buckets text[], bound bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  move_buckets text[];
  move_chunks bigint[];
  move_ops bigint[];
  move_targets bigint[];
  rewritten powersync.bucket_data[];
  groups bigint[];
BEGIN
  WITH ops AS (
    SELECT c.bucket, c.first_op AS chunk, o.op_id, o.op, o.object_type, o.object_id, o.subkey
      FROM powersync.bucket_chunks c CROSS JOIN LATERAL powersync._chunk_ops(c.ops, NULL, bound) o
     WHERE c.bucket = ANY (buckets) AND c.first_op <= bound),
  live AS (
    SELECT ops.bucket, ops.chunk, ops.op_id,
           max(ops.op_id) OVER (PARTITION BY ops.bucket, ops.object_type, ops.object_id, ops.subkey) AS newest
      FROM ops WHERE ops.op IN ('PUT', 'REMOVE'))
  SELECT array_agg(live.bucket), array_agg(live.chunk), array_agg(live.op_id), array_agg(live.newest)
    INTO move_buckets, move_chunks, move_ops, move_targets
    FROM live WHERE live.op_id < live.newest;
  IF move_ops IS NULL THEN
    RETURN 0;
  END IF;
  WITH moves AS (SELECT * FROM unnest(move_buckets, move_chunks, move_ops, move_targets) AS m(bucket, chunk, op_id, target)),
  chunks AS (
    SELECT c.* FROM (SELECT DISTINCT moves.bucket, moves.chunk FROM moves) t
      JOIN powersync.bucket_chunks c ON c.bucket = t.bucket AND c.first_op = t.chunk)
  SELECT array_agg(CASE WHEN m.op_id IS NOT NULL
                        THEN ROW(c.bucket, o.op_id, c.sync_rules_id, 'MOVE', NULL, NULL, NULL, NULL, o.checksum,
                                 m.target, o.cum_checksum, o.cum_count)::powersync.bucket_data
                        ELSE ROW(c.bucket, o.op_id, c.sync_rules_id, o.op, o.object_type, o.object_id, o.subkey,
                                 o.data, o.checksum, o.target_op, o.cum_checksum, o.cum_count)::powersync.bucket_data END),
         array_agg(c.first_op)
    INTO rewritten, groups
    FROM chunks c CROSS JOIN LATERAL powersync._chunk_ops(c.ops) o
    LEFT JOIN moves m ON m.bucket = c.bucket AND m.op_id = o.op_id;
  DELETE FROM powersync.bucket_chunks c USING (SELECT DISTINCT * FROM unnest(move_buckets, move_chunks)) AS t(bucket, first_op)
   WHERE c.bucket = t.bucket AND c.first_op = t.first_op;
  PERFORM powersync._write_ops(rewritten, groups);
  RETURN cardinality(move_ops);
END $$;

-- CLEAR pass of one bucket: if the ops <= bound start with a run of non-PUT ops holding at least two
-- REMOVE/MOVE ops, the run becomes one CLEAR at the run's last op id with the run's summed checksum
-- and the largest target_op in it. That op keeps its cum_checksum/cum_count, which already cover the
-- run. The chunks holding the run are deleted; the chunk holding the run's last op is written again
-- starting with the CLEAR. Returns the number of ops removed.
CREATE FUNCTION powersync._compact_clear(bucket_id text, bound bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  first_put bigint;
  run record;
  rest powersync.bucket_data[];
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
  SELECT array_agg(CASE WHEN o.op_id = run.last_op
                        THEN ROW(c.bucket, o.op_id, c.sync_rules_id, 'CLEAR', NULL, NULL, NULL, NULL, run.checksum,
                                 coalesce(run.target_op, run.last_op), o.cum_checksum, o.cum_count)::powersync.bucket_data
                        ELSE ROW(c.bucket, o.op_id, c.sync_rules_id, o.op, o.object_type, o.object_id, o.subkey,
                                 o.data, o.checksum, o.target_op, o.cum_checksum, o.cum_count)::powersync.bucket_data END)
    INTO rest
    FROM powersync.bucket_chunks c CROSS JOIN LATERAL powersync._chunk_ops(c.ops, run.last_op - 1, NULL) o
   WHERE c.bucket = bucket_id AND c.first_op <= run.last_op;
  DELETE FROM powersync.bucket_chunks c WHERE c.bucket = bucket_id AND c.first_op <= run.last_op;
  PERFORM powersync._write_ops(rest);
  RETURN run.ops - 1;
END $$;

-- Parameter lookup index (spec §4.8): a lookup row is superseded by a newer row of the same (lookup,
-- source row); readers at a checkpoint C >= horizon only ever see the newest row <= C. So every
-- superseded row <= horizon goes, and so does a tombstone that is the newest row <= horizon (nothing
-- older is left for it to hide). Only (lookup, source row) pairs written since the previous horizon
-- can have anything to delete, so each run looks at those alone.
CREATE TABLE powersync.parameter_compaction (
  sync_rules_id bigint PRIMARY KEY,
  compacted_to  bigint NOT NULL
);
COMMENT ON TABLE powersync.parameter_compaction IS
  'Written only by powersync.compact(): per version the horizon up to which its parameter lookup rows were '
  'compacted. request_buckets() at a checkpoint older than it may see lookups of a later state.';

CREATE FUNCTION powersync._compact_parameters(version bigint, horizon bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  previous bigint := coalesce((SELECT p.compacted_to FROM powersync.parameter_compaction p
                                WHERE p.sync_rules_id = version), 0);
  removed bigint;
BEGIN
  IF horizon IS NULL OR horizon <= previous THEN
    RETURN 0;
  END IF;
  WITH touched AS (
    SELECT DISTINCT p.lookup, p.source_table_id, p.source_key FROM powersync.bucket_parameters p
     WHERE p.id > previous AND p.id <= horizon AND p.sync_rules_id = version),
  ranked AS (
    SELECT p.id, p.bucket_parameters,
           row_number() OVER (PARTITION BY p.lookup, p.source_table_id, p.source_key ORDER BY p.id DESC) AS age
      FROM touched t JOIN powersync.bucket_parameters p
        ON p.sync_rules_id = version AND p.lookup = t.lookup AND p.source_table_id = t.source_table_id
       AND p.source_key = t.source_key AND p.id <= horizon),
  gone AS (
    DELETE FROM powersync.bucket_parameters p USING ranked r
     WHERE p.id = r.id AND (r.age > 1 OR r.bucket_parameters = '[]')
    RETURNING 1)
  SELECT count(*) INTO removed FROM gone;
  INSERT INTO powersync.parameter_compaction AS c (sync_rules_id, compacted_to) VALUES (version, horizon)
  ON CONFLICT (sync_rules_id) DO UPDATE SET compacted_to = excluded.compacted_to;
  DELETE FROM powersync.parameter_compaction c
   WHERE NOT EXISTS (SELECT 1 FROM powersync.sync_rules s WHERE s.id = c.sync_rules_id AND s.state <> 'STOP');
  RETURN removed;
END $$;

CREATE FUNCTION powersync.compact(parameter_retention interval DEFAULT '5 minutes')
RETURNS TABLE(buckets_compacted bigint, ops_moved bigint, ops_cleared bigint, lookups_removed bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  version bigint;
  bound bigint;
  horizon bigint;
  todo text[];
  b text;
BEGIN
  -- One compaction at a time. Lock order: this advisory lock first, then bucket rows. The worker only
  -- appends ops above the checkpoint we read (bucket_state is not touched: totals do not change), and
  -- before it deletes a version's data (activation, drops) it takes the same lock, activation only
  -- with a try-lock (it activates a round later instead of waiting), so the two never deadlock.
  PERFORM pg_advisory_xact_lock(hashtext('powersync.compact'));
  SELECT s.id, s.last_checkpoint INTO version, bound
    FROM powersync.sync_rules s WHERE s.state = 'ACTIVE' AND s.last_checkpoint IS NOT NULL;
  buckets_compacted := 0; ops_moved := 0; ops_cleared := 0; lookups_removed := 0;
  IF version IS NULL THEN
    RETURN NEXT;
    RETURN;
  END IF;
  -- Lookups: only below the checkpoint that was current parameter_retention ago, the oldest one a
  -- reader (a sync stream that fetched the checkpoint then) may still ask request_buckets() about.
  SELECT max(c.op_id) INTO horizon FROM powersync.checkpoints c
   WHERE c.sync_rules_id = version AND c.op_id <= bound AND c.created_at <= now() - parameter_retention;
  lookups_removed := powersync._compact_parameters(version, horizon);
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
COMMENT ON FUNCTION powersync.compact(interval) IS
  'Compacts the buckets of the active version up to its current checkpoint (spec §2.5): MOVE pass then CLEAR '
  'pass; bucket checksums and the reduced state are preserved, counts drop by the ops a CLEAR replaced. Also '
  'deletes parameter lookup rows superseded (and tombstones) at the checkpoint that was current '
  'parameter_retention ago; request_buckets() at older checkpoints may then see a later state. Safe to run '
  'while the worker replicates; buckets with no new ops since the last run are skipped.';
