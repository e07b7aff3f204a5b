-- SQL pull API (issue 3): what the gateway asks Postgres for on its hot path: the current checkpoint,
-- a request's buckets, bucket checksums and bucket ops at a checkpoint; plus write checkpoints,
-- compaction, status and a test wait helper. `at_checkpoint` NULL always means the current checkpoint.

-- The newest checkpoint of the ACTIVE version; no row while no version is active.
CREATE FUNCTION powersync.checkpoint() RETURNS TABLE(op_id bigint, lsn pg_lsn)
LANGUAGE sql STABLE AS $$
  SELECT s.last_checkpoint, s.last_checkpoint_lsn
    FROM powersync.sync_rules s
   WHERE s.state = 'ACTIVE' AND s.last_checkpoint IS NOT NULL
$$;
COMMENT ON FUNCTION powersync.checkpoint() IS
  'Current checkpoint (op_id, lsn) of the active sync rules version: every op with op_id <= op_id reflects '
  'the source database up to lsn. No row while no version is active.';

CREATE FUNCTION powersync._at(at_checkpoint bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT coalesce(at_checkpoint, (SELECT s.last_checkpoint FROM powersync.sync_rules s WHERE s.state = 'ACTIVE'))
$$;

-- Running totals of a bucket at its newest op <= c: one backward probe of bucket_chunks' primary key (the
-- chunk with the greatest first_op <= c); its stored totals unless the chunk runs past c, which only a
-- checkpoint inside a chunk can cause (never one made by replication): then it is unpacked up to c.
CREATE FUNCTION powersync._totals_at(bucket text, c bigint)
RETURNS TABLE(op_id bigint, cum_checksum bigint, cum_count bigint)
LANGUAGE sql STABLE AS $$
  SELECT coalesce(t.op_id, x.last_op), coalesce(t.cum_checksum, x.cum_checksum), coalesce(t.cum_count, x.cum_count)
    FROM (SELECT y.last_op, y.cum_checksum, y.cum_count, y.ops FROM powersync.bucket_chunks y
           WHERE y.bucket = _totals_at.bucket AND y.first_op <= _totals_at.c
           ORDER BY y.first_op DESC LIMIT 1) x
    LEFT JOIN LATERAL (
      SELECT o.op_id, o.cum_checksum, o.cum_count FROM powersync._chunk_ops(x.ops, NULL, _totals_at.c) o
       WHERE x.last_op > _totals_at.c ORDER BY o.op_id DESC LIMIT 1) t ON true
$$;

-- Checksum and op count of each bucket at the checkpoint: the running totals at the newest op <= C
-- (_totals_at) and one forward probe for the bucket's first chunk: a CLEAR deletes the ops before it and
-- keeps the running totals, so the ops stored up to C are cum_count(newest <= C) - cum_count(first) + 1
-- (spec §2.3: count = ops a client downloads). Buckets without ops give 0/0.
CREATE FUNCTION powersync.bucket_checksums(buckets text[], at_checkpoint bigint DEFAULT NULL)
RETURNS TABLE(bucket text, checksum bigint, count bigint)
LANGUAGE sql STABLE AS $$
  SELECT b.name, coalesce(d.cum_checksum, 0), coalesce(d.cum_count - f.first_count + 1, 0)
    FROM (SELECT powersync._at(at_checkpoint) AS c OFFSET 0) cp  -- evaluated once, not per bucket
    CROSS JOIN unnest(buckets) WITH ORDINALITY AS b(name, ord)
    LEFT JOIN LATERAL powersync._totals_at(b.name, cp.c) d ON true
    LEFT JOIN LATERAL (
      SELECT y.first_count FROM powersync.bucket_chunks y
       WHERE y.bucket = b.name ORDER BY y.first_op LIMIT 1) f ON d.cum_count IS NOT NULL
   WHERE b.name IS NOT NULL
   ORDER BY b.ord
$$;
COMMENT ON FUNCTION powersync.bucket_checksums(text[], bigint) IS
  'Per bucket: checksum (unsigned 32-bit wrapping sum of the op checksums with op_id <= at_checkpoint) and '
  'count (number of ops stored with op_id <= at_checkpoint, i.e. what a client downloads; compaction lowers it '
  'when a CLEAR replaces a prefix). Buckets with no ops: 0, 0. Output in input order.';

-- Ops of one bucket with after < op_id <= C, ascending, at most max_ops (NULL: all). Read in C
-- (src/pg/op_chunks.cpp): the chunk holding `after` (greatest first_op <= after, if it runs past it),
-- then a range scan of bucket_chunks' primary key over the chunks starting in (after, C], unpacked in
-- order until max_ops; chunks of a bucket never overlap, so that is op id order. A plain SQL wrapper,
-- so that the planner inlines it into the caller's query. MOVE/CLEAR ops carry data
-- {"target":"<target_op>"} (never hashed; clients ignore it): the gateway must not send a complete line
-- for checkpoint C if any such target is > C (spec §2.5).
CREATE FUNCTION powersync._bucket_ops(bucket text, after bigint, upto bigint, max_ops int)
RETURNS TABLE(op_id bigint, op text, object_type text, object_id text, subkey text, data text, checksum bigint)
AS 'MODULE_PATHNAME', 'powersync_bucket_ops' LANGUAGE C STABLE ROWS 1000;

CREATE FUNCTION powersync.bucket_ops(bucket text, after bigint, at_checkpoint bigint, max_ops int DEFAULT NULL)
RETURNS TABLE(op_id bigint, op text, object_type text, object_id text, subkey text, data text, checksum bigint)
LANGUAGE sql STABLE AS $$
  SELECT * FROM powersync._bucket_ops(bucket_ops.bucket, coalesce(bucket_ops.after, 0),
                                      powersync._at(bucket_ops.at_checkpoint), bucket_ops.max_ops)
$$;
COMMENT ON FUNCTION powersync.bucket_ops(text, bigint, bigint, int) IS
  'Ops of a bucket with after < op_id <= at_checkpoint in op_id order, at most max_ops (NULL: no limit). '
  'checksum is unsigned 32-bit. MOVE and CLEAR ops have data {"target":"N"}: a checkpoint C whose download '
  'contains such an op with N > C is invalidated by compaction (send no complete line for it).';


-- What a checkpoint changed for sync streams, so that a gateway need not re-resolve every stream on
-- every checkpoint. Bucket candidates come from bucket_state.last_op (index bucket_state_last_op);
-- each one's checksum and count at C are bucket_checksums()'s (so a checkpoint_diff carries the same
-- figures as a fresh stream's checkpoint, also after compact()): the totals of the newest op <= C
-- (bucket_state's running totals when no op is past C, else a probe) and a probe for the first op,
-- and buckets whose newest op <= C is not past after_op are left out (their ops all lie past C; the
-- next call reports them). Parameter rows and write checkpoints count only within (after, C].
CREATE FUNCTION powersync.checkpoint_changes(after_op bigint, after_lsn pg_lsn, at_checkpoint bigint DEFAULT NULL)
RETURNS TABLE(kind text, name text, checksum bigint, count bigint)
LANGUAGE sql STABLE AS $$
  WITH v AS (SELECT s.id, powersync._at(at_checkpoint) AS c FROM powersync.sync_rules s WHERE s.state = 'ACTIVE'),
  c_lsn AS (SELECT (SELECT k.lsn FROM powersync.checkpoints k
                     WHERE k.sync_rules_id = v.id AND k.op_id <= v.c ORDER BY k.op_id DESC LIMIT 1) AS lsn FROM v)
  SELECT 'version', v.id::text, NULL::bigint, NULL::bigint FROM v
  UNION ALL
  SELECT 'parameters', NULL, NULL, NULL FROM v
   WHERE EXISTS (SELECT 1 FROM powersync.bucket_parameters p
                  WHERE p.id > after_op AND p.id <= v.c AND p.sync_rules_id = v.id)
  UNION ALL
  SELECT 'bucket', b.bucket, d.cum_checksum, d.cum_count - f.cum_count + 1
    FROM v JOIN powersync.bucket_state b ON b.last_op > after_op AND b.sync_rules_id = v.id
    JOIN LATERAL (  -- the newest op <= C: bucket_state's own totals unless ops past C exist
      SELECT b.last_op AS op_id, b.checksum AS cum_checksum, b.count AS cum_count WHERE b.last_op <= v.c
      UNION ALL
      (SELECT t.op_id, t.cum_checksum, t.cum_count FROM powersync._totals_at(b.bucket, v.c) t
        WHERE b.last_op > v.c)) d ON d.op_id > after_op
    JOIN LATERAL (
      SELECT y.first_count AS cum_count FROM powersync.bucket_chunks y
       WHERE y.bucket = b.bucket ORDER BY y.first_op LIMIT 1) f ON true
  UNION ALL
  SELECT 'write_checkpoint', w.user_id, NULL, NULL
    FROM c_lsn JOIN powersync.write_checkpoints w ON w.lsn > after_lsn AND w.lsn <= coalesce(c_lsn.lsn, w.lsn)
$$;
COMMENT ON FUNCTION powersync.checkpoint_changes(bigint, pg_lsn, bigint) IS
  'What changed between the checkpoint (after_op, after_lsn) and checkpoint at_checkpoint (NULL: current) of the '
  'active version, one row per fact: (''version'', active version id) always (no rows at all while no version is '
  'active; a stream whose bucket ids carry another version must reconnect); (''parameters'') when parameter '
  'lookup rows were written in between (dynamic bucket sets may differ: resolve again with request_buckets); '
  '(''bucket'', bucket, checksum, count) for every bucket with ops in (after_op, at_checkpoint], checksum and '
  'count as bucket_checksums() reports them at at_checkpoint; (''write_checkpoint'', key) for every write '
  'checkpoint key (user_id[/client_id]) that became visible in between (see write_checkpoint_at).';

-- Write checkpoints (spec §3.2, DESIGN decision 8) ------------------------------------------------

CREATE FUNCTION powersync._write_checkpoint_key(user_id text, client_id text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF user_id IS NULL OR user_id = '' THEN
    RAISE EXCEPTION 'write checkpoint: user_id must not be empty'
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass the JWT subject (sub) of the user.';
  END IF;
  RETURN CASE WHEN client_id IS NULL OR client_id = '' THEN user_id ELSE user_id || '/' || client_id END;
END $$;

-- Records the WAL head for the key with the next per-key counter, then emits a non-transactional
-- logical message so the worker passes that head (and makes a checkpoint) even when nothing else
-- is written. Returns the counter the client waits for.
CREATE FUNCTION powersync.create_write_checkpoint(user_id text, client_id text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  k text := powersync._write_checkpoint_key(user_id, client_id);
  head pg_lsn := pg_current_wal_lsn();
  counter bigint;
BEGIN
  INSERT INTO powersync.write_checkpoints AS w (user_id, lsn, write_checkpoint)
  VALUES (k, head, 1)
  ON CONFLICT ON CONSTRAINT write_checkpoints_pkey
  DO UPDATE SET lsn = excluded.lsn, write_checkpoint = w.write_checkpoint + 1, updated_at = now()
  RETURNING w.write_checkpoint INTO counter;
  PERFORM pg_logical_emit_message(false, 'powersync', 'ping');
  RETURN counter;
END $$;
COMMENT ON FUNCTION powersync.create_write_checkpoint(text, text) IS
  'Managed write checkpoint (spec §3.2): key "<user_id>" or "<user_id>/<client_id>"; records pg_current_wal_lsn() '
  'with the next per-key counter (starting at 1), nudges the worker with logical message prefix powersync, '
  'returns the counter. Read it back with powersync.write_checkpoint_at().';

-- Checkpoint requests (spec §1.8, SDK checkpointMode 'requests'): the client supplies the id. The
-- key keeps the highest id requested; a higher id records the current WAL head, an equal or lower
-- one (a retry) leaves the stored request alone. Returns the stored id, which later checkpoints
-- carry as write_checkpoint once replication passed its head (write_checkpoint_at).
CREATE FUNCTION powersync.request_write_checkpoint(user_id text, client_id text, request_id bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  k text := powersync._write_checkpoint_key(user_id, client_id);
  stored bigint;
BEGIN
  IF request_id IS NULL OR request_id < 1 THEN
    RAISE EXCEPTION 'checkpoint_request_id must be between 1 and 2^63-1, got %', coalesce(request_id::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO powersync.write_checkpoints AS w (user_id, lsn, write_checkpoint)
  VALUES (k, pg_current_wal_lsn(), request_id)
  ON CONFLICT ON CONSTRAINT write_checkpoints_pkey
  DO UPDATE SET lsn = CASE WHEN excluded.write_checkpoint > w.write_checkpoint THEN excluded.lsn ELSE w.lsn END,
                write_checkpoint = greatest(w.write_checkpoint, excluded.write_checkpoint),
                updated_at = now()
  RETURNING w.write_checkpoint INTO stored;
  PERFORM pg_logical_emit_message(false, 'powersync', 'ping');
  RETURN stored;
END $$;
COMMENT ON FUNCTION powersync.request_write_checkpoint(text, text, bigint) IS
  'Checkpoint request (spec §1.8): keeps the highest client-supplied id per key (user_id[/client_id]); a new '
  'highest id records pg_current_wal_lsn() and nudges the worker. Returns the stored id; read it back with '
  'powersync.write_checkpoint_at().';

-- The write checkpoint that a checkpoint line may carry: the key's counter once the checkpoint's
-- LSN has passed the WAL head recorded for it, else NULL (also NULL for unknown keys).
CREATE FUNCTION powersync.write_checkpoint_at(user_id text, client_id text, at_checkpoint bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT w.write_checkpoint
    FROM powersync.write_checkpoints w
   WHERE w.user_id = powersync._write_checkpoint_key(write_checkpoint_at.user_id, write_checkpoint_at.client_id)
     AND w.lsn <= (SELECT c.lsn FROM powersync.checkpoints c
                    WHERE c.sync_rules_id = (SELECT s.id FROM powersync.sync_rules s WHERE s.state = 'ACTIVE')
                      AND c.op_id <= powersync._at(write_checkpoint_at.at_checkpoint)
                    ORDER BY c.op_id DESC LIMIT 1)
$$;
COMMENT ON FUNCTION powersync.write_checkpoint_at(text, text, bigint) IS
  'Write checkpoint of the key (user_id[/client_id]) visible at checkpoint at_checkpoint (NULL: current): the '
  'counter returned by create_write_checkpoint once replication passed its WAL head; NULL when none is visible '
  '(never requested, or the newest request is not replicated yet).';

-- Test and tooling helper ---------------------------------------------------------------------------

-- Waits until the newest deployed version is active and has a checkpoint whose LSN passed the WAL
-- head at call time; returns its op id. A logical message makes the worker produce that checkpoint
-- even when idle.
CREATE FUNCTION powersync.wait_for_checkpoint(timeout interval DEFAULT '30 seconds') RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  target pg_lsn := pg_current_wal_lsn();
  deadline timestamptz := clock_timestamp() + timeout;
  cp record;
  worker record;
BEGIN
  PERFORM pg_logical_emit_message(false, 'powersync', 'ping');
  LOOP
    -- The newest live version: right after a deploy that is the one still processing.
    SELECT s.last_checkpoint AS op_id, s.last_checkpoint_lsn AS lsn, s.state, s.id INTO cp
      FROM powersync.sync_rules s WHERE s.state <> 'STOP' ORDER BY s.id DESC LIMIT 1;
    IF cp.state = 'ACTIVE' AND cp.lsn IS NOT NULL AND cp.lsn >= target THEN
      RETURN cp.op_id;
    END IF;
    IF clock_timestamp() > deadline THEN
      SELECT r.status, r.last_error, r.replicated_lsn INTO worker FROM powersync.replication_state r;
      RAISE EXCEPTION 'no checkpoint reached WAL position % within %', target, timeout
        USING ERRCODE = 'query_canceled',
              DETAIL = format('newest version: %s (%s), checkpoint %s at %s; worker status: %s, replicated up to %s, last error: %s',
                              coalesce(cp.id::text, 'none'), coalesce(cp.state, '-'),
                              coalesce(cp.op_id::text, 'none'), coalesce(cp.lsn::text, '-'), worker.status,
                              coalesce(worker.replicated_lsn::text, '-'), coalesce(worker.last_error, '-')),
              HINT = 'See SELECT * FROM powersync.status() and the server log.';
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
COMMENT ON FUNCTION powersync.wait_for_checkpoint(interval) IS
  'Waits (polling) until the newest deployed sync rules version is ACTIVE with a checkpoint at or past '
  'pg_current_wal_lsn() as of the call, and returns that op id; ERROR after timeout (with the worker status). '
  'Do not call it inside a REPEATABLE READ transaction.';

-- Status -------------------------------------------------------------------------------------------

CREATE VIEW powersync.snapshot_progress AS
  SELECT t.sync_rules_id AS version, t.id AS source_table_id, t.schema_name, t.table_name, t.replica_identity,
         t.snapshot_done, t.snapshot_rows AS rows_copied, t.snapshot_next_block AS blocks_copied,
         t.snapshot_total AS blocks_total,
         CASE WHEN t.snapshot_done THEN 100.0
              WHEN coalesce(t.snapshot_total, 0) = 0 THEN 0.0
              ELSE round(least(100.0, 100.0 * t.snapshot_next_block / t.snapshot_total), 1) END AS percent_done,
         t.snapshot_lsn
    FROM powersync.source_tables t;
COMMENT ON VIEW powersync.snapshot_progress IS
  'Initial-snapshot progress per (version, source table): rows copied, heap blocks copied of the total, percent.';

-- One row per version that is not stopped (plus the newest one; a single row with NULL version
-- fields before any deploy), with the worker, slot and lag figures repeated on each row.
CREATE FUNCTION powersync.status()
RETURNS TABLE(version bigint, state text, snapshot_done boolean, tables_total int, tables_snapshotted int,
              rows_snapshotted bigint, snapshot_percent numeric, last_checkpoint bigint, last_checkpoint_lsn pg_lsn,
              replicated_lsn pg_lsn, lag_bytes numeric, slot_name text, slot_wal_status text, slot_confirmed_lsn pg_lsn,
              worker_status text, worker_pid int, last_error text, last_error_at timestamptz,
              unresolved_toast bigint, read_mode text, read_mode_reason text)
LANGUAGE sql STABLE AS $$
  SELECT s.id, s.state, s.snapshot_done,
         count(p.source_table_id)::int, (count(p.source_table_id) FILTER (WHERE p.snapshot_done))::int,
         coalesce(sum(p.rows_copied), 0)::bigint,
         CASE WHEN s.snapshot_done THEN 100.0 ELSE round(coalesce(avg(p.percent_done), 0), 1) END,
         s.last_checkpoint, s.last_checkpoint_lsn,
         r.replicated_lsn, pg_wal_lsn_diff(pg_current_wal_lsn(), greatest(r.replicated_lsn, slot.confirmed_flush_lsn)),
         r.slot_name, coalesce(slot.wal_status, 'missing'), slot.confirmed_flush_lsn,
         r.status, r.worker_pid, r.last_error, r.last_error_at, r.unresolved_toast, r.read_mode, r.read_mode_reason
    FROM powersync.replication_state r
    LEFT JOIN powersync.sync_rules s
           ON s.state <> 'STOP' OR s.id = (SELECT max(id) FROM powersync.sync_rules)
    LEFT JOIN powersync.snapshot_progress p ON p.version = s.id
    LEFT JOIN pg_replication_slots slot ON slot.slot_name = r.slot_name
   GROUP BY s.id, r.replicated_lsn, r.slot_name, slot.wal_status, slot.confirmed_flush_lsn, r.status,
            r.worker_pid, r.last_error, r.last_error_at, r.unresolved_toast, r.read_mode, r.read_mode_reason
   ORDER BY s.id
$$;
COMMENT ON FUNCTION powersync.status() IS
  'Replication status per live sync rules version: state, snapshot progress (tables, rows, percent; per table in '
  'powersync.snapshot_progress), newest checkpoint, replicated LSN and lag in bytes behind pg_current_wal_lsn() '
  '(from the replicated LSN or the slot position, whichever is further: idle rounds only move the slot), '
  'the slot and its wal_status (missing when the slot does not exist), worker status/pid and last error, and '
  'the number of updates whose unchanged TOAST columns could not be completed (synced as NULL, logged), and how '
  'the worker reads changes: read_mode stream (replication connection) or peek (fallback; read_mode_reason says why).';
-- The request's buckets at the checkpoint (rules evaluation in C++, lookups "as of" C).
CREATE FUNCTION powersync._request_buckets(token_claims text, client_parameters text, at_checkpoint bigint)
RETURNS TABLE(bucket text, priority int)
AS 'MODULE_PATHNAME', 'powersync_request_buckets' LANGUAGE C STABLE;

CREATE FUNCTION powersync.request_buckets(token_claims jsonb, client_parameters jsonb, at_checkpoint bigint DEFAULT NULL)
RETURNS TABLE(bucket text, priority int)
LANGUAGE sql STABLE AS $$
  SELECT * FROM powersync._request_buckets(token_claims::text, client_parameters::text, at_checkpoint)
$$;
COMMENT ON FUNCTION powersync.request_buckets(jsonb, jsonb, bigint) IS
  'Buckets (with priority) of a request: static buckets of the active rules plus dynamic ones whose parameter '
  'lookups are evaluated as of at_checkpoint (latest index row per source row with id <= C, tombstones dropped). '
  'More than 1000 parameter results: ERROR mentioning PSYNC_S2305. No active rules: ERROR (PSYNC_S2302).';
