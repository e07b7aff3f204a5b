-- A stand-in for the pull API of the replication part (powersync.checkpoint, request_buckets,
-- bucket_checksums, bucket_ops, create/request_write_checkpoint, write_checkpoint_at) over plain tables,
-- so that the gateway's protocol tests control every op exactly (MOVE/CLEAR targets, priorities,
-- bucket-set changes). It implements the same SQL contract; the end-to-end suite uses the real one.
CREATE SCHEMA powersync;

CREATE TABLE powersync.fx_ops (
  op_id bigserial PRIMARY KEY, bucket text NOT NULL, op text NOT NULL, object_type text, object_id text,
  subkey text, data text, checksum bigint NOT NULL, target_op bigint);
CREATE INDEX ON powersync.fx_ops (bucket, op_id);
CREATE TABLE powersync.fx_checkpoint (op_id bigint NOT NULL, lsn pg_lsn NOT NULL);
INSERT INTO powersync.fx_checkpoint VALUES (0, '0/0');
-- Bucket set per user (token sub); '*' rows apply to everyone.
CREATE TABLE powersync.fx_user_buckets (user_id text, bucket text, priority int DEFAULT 3);
CREATE TABLE powersync.fx_write_checkpoints (
  user_id text, client_id text, value bigint, visible_at bigint, PRIMARY KEY (user_id, client_id));

CREATE FUNCTION powersync.checkpoint() RETURNS TABLE(op_id bigint, lsn pg_lsn)
LANGUAGE sql STABLE AS $$ SELECT op_id, lsn FROM powersync.fx_checkpoint $$;

CREATE FUNCTION powersync.request_buckets(token_claims jsonb, client_parameters jsonb, at_checkpoint bigint)
RETURNS TABLE(bucket text, priority int) LANGUAGE plpgsql STABLE AS $$
DECLARE n bigint;
BEGIN
  SELECT count(*) INTO n FROM powersync.fx_user_buckets u WHERE u.user_id IN (token_claims->>'sub', '*');
  IF n > 1000 THEN
    RAISE EXCEPTION 'PSYNC_S2305: too many parameter query results: % (limit 1000)', n;
  END IF;
  RETURN QUERY SELECT u.bucket, u.priority FROM powersync.fx_user_buckets u
    WHERE u.user_id IN (token_claims->>'sub', '*')
    UNION ALL
    -- client parameters may ask for extra buckets (to test parameter passing)
    SELECT jsonb_array_elements_text(coalesce(client_parameters->'extra_buckets', '[]')), 3;
END $$;

CREATE FUNCTION powersync.bucket_checksums(buckets text[], at_checkpoint bigint)
RETURNS TABLE(bucket text, checksum bigint, count bigint) LANGUAGE sql STABLE AS $$
  -- one index range per bucket, like the real storage's per-bucket running totals
  SELECT b, coalesce(s.total, 0) % 4294967296, coalesce(s.n, 0)
  FROM unnest(buckets) AS b
  LEFT JOIN LATERAL (SELECT sum(o.checksum) AS total, count(*) AS n FROM powersync.fx_ops o
                     WHERE o.bucket = b AND o.op_id <= at_checkpoint) s ON true $$;

CREATE FUNCTION powersync.bucket_ops(bucket text, after bigint, at_checkpoint bigint, max_ops int)
RETURNS TABLE(op_id bigint, op text, object_type text, object_id text, subkey text, data text, checksum bigint, target_op bigint)
LANGUAGE sql STABLE AS $$
  SELECT o.op_id, o.op, o.object_type, o.object_id, o.subkey, o.data, o.checksum, o.target_op FROM powersync.fx_ops o
  WHERE o.bucket = bucket_ops.bucket AND o.op_id > after AND o.op_id <= at_checkpoint
  ORDER BY o.op_id LIMIT max_ops $$;

CREATE FUNCTION powersync.create_write_checkpoint(user_id text, client_id text) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO powersync.fx_write_checkpoints AS w VALUES (user_id, coalesce(client_id, ''), 1, NULL)
  ON CONFLICT (user_id, client_id) DO UPDATE SET value = w.value + 1, visible_at = NULL
  RETURNING value $$;

CREATE FUNCTION powersync.request_write_checkpoint(user_id text, client_id text, request_id bigint) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO powersync.fx_write_checkpoints AS w VALUES (user_id, coalesce(client_id, ''), request_id, NULL)
  ON CONFLICT (user_id, client_id) DO UPDATE SET value = greatest(w.value, excluded.value),
    visible_at = CASE WHEN excluded.value > w.value THEN NULL ELSE w.visible_at END
  RETURNING value $$;

CREATE FUNCTION powersync.write_checkpoint_at(user_id text, client_id text, at_checkpoint bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT w.value FROM powersync.fx_write_checkpoints w
  WHERE w.user_id = write_checkpoint_at.user_id AND w.client_id = coalesce(write_checkpoint_at.client_id, '')
    AND w.visible_at <= at_checkpoint $$;

-- Test helpers: add ops, then publish a checkpoint (what the replication worker does on commit).
CREATE FUNCTION powersync.fx_put(bucket text, id text, data text, table_name text DEFAULT 'items') RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO powersync.fx_ops (bucket, op, object_type, object_id, subkey, data, checksum)
  VALUES (bucket, 'PUT', table_name, id, table_name || '/' || id, data,
          ('x' || substr(md5('put.' || table_name || '.' || id || '.' || data), 1, 8))::bit(32)::bigint)
  RETURNING op_id $$;

CREATE FUNCTION powersync.fx_commit() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE cp bigint;
BEGIN
  SELECT coalesce(max(op_id), 0) INTO cp FROM powersync.fx_ops;
  UPDATE powersync.fx_checkpoint SET op_id = cp, lsn = pg_current_wal_insert_lsn();
  UPDATE powersync.fx_write_checkpoints SET visible_at = cp WHERE visible_at IS NULL;
  PERFORM pg_notify('powersync_checkpoint', cp::text);
  RETURN cp;
END $$;
