-- Consistency checks of the replicated op logs against the source tables, used by the randomized,
-- crash and compaction suites (loaded with psql -f into the test database; schema pscheck).
--   SELECT * FROM pscheck.run(ARRAY['items', ...], compacted => false);
-- returns one row per check: name, number of failures, and a few examples of what is wrong.
DROP SCHEMA IF EXISTS pscheck CASCADE;
CREATE SCHEMA pscheck;

-- Op checksum of spec §2.3: first 4 bytes of SHA-256 read little endian, unsigned.
CREATE FUNCTION pscheck.op_hash(s text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT get_byte(d, 0)::bigint | (get_byte(d, 1)::bigint << 8) | (get_byte(d, 2)::bigint << 16) | (get_byte(d, 3)::bigint << 24)
    FROM (SELECT sha256(convert_to(s, 'UTF8')) AS d) x $$;

CREATE FUNCTION pscheck.version() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT id FROM powersync.sync_rules WHERE state = 'ACTIVE' $$;

-- Every op of every bucket of the active version up to the current checkpoint, via the pull API.
CREATE FUNCTION pscheck.ops() RETURNS TABLE(bucket text, op_id bigint, op text, object_type text, object_id text,
                                             subkey text, data text, checksum bigint)
LANGUAGE sql STABLE AS $$
  SELECT s.bucket, o.* FROM powersync.bucket_state s, LATERAL powersync.bucket_ops(s.bucket, 0, NULL, NULL) o
   WHERE s.sync_rules_id = pscheck.version() $$;

-- What a client holds after applying the ops in order: per (bucket, row key) the newest PUT/REMOVE
-- after the bucket's last CLEAR, keeping the PUTs.
CREATE FUNCTION pscheck.reduced() RETURNS TABLE(bucket text, object_type text, object_id text, data text, checksum bigint)
LANGUAGE sql STABLE AS $$
  WITH ops AS (SELECT * FROM pscheck.ops()),
  cleared AS (SELECT o.bucket, max(o.op_id) AS at FROM ops o WHERE o.op = 'CLEAR' GROUP BY o.bucket),
  latest AS (
    SELECT DISTINCT ON (o.bucket, o.object_type, o.object_id, o.subkey) o.*
      FROM ops o LEFT JOIN cleared c ON c.bucket = o.bucket
     WHERE o.op IN ('PUT', 'REMOVE') AND o.op_id > coalesce(c.at, 0)
     ORDER BY o.bucket, o.object_type, o.object_id, o.subkey, o.op_id DESC)
  SELECT l.bucket, l.object_type, l.object_id, l.data, l.checksum FROM latest l WHERE l.op = 'PUT' $$;

-- From-scratch evaluation of the active rules over the current contents of the given tables.
CREATE FUNCTION pscheck.expected(tables text[])
RETURNS TABLE(bucket text, object_type text, object_id text, data text, checksum bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  t text;
  rules text := (SELECT content FROM powersync.sync_rules WHERE state = 'ACTIVE');
  prefix text := pscheck.version() || '#';
BEGIN
  FOREACH t IN ARRAY tables LOOP
    RETURN QUERY EXECUTE format(
      'SELECT $1 || e.bucket, e.object_type, e.object_id, e.data, e.checksum
         FROM %I r, LATERAL powersync.evaluate_row($2, %L, to_jsonb(r)) e', t, t)
      USING prefix, rules;
  END LOOP;
END $$;

CREATE FUNCTION pscheck.run(tables text[], compacted boolean DEFAULT false)
RETURNS TABLE(name text, failures bigint, examples text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  -- After any compaction older op sequences are rewritten.
  compacted := compacted OR EXISTS (SELECT 1 FROM powersync.compaction_state);
  CREATE TEMP TABLE IF NOT EXISTS pscheck_ops AS SELECT * FROM pscheck.ops() LIMIT 0;
  TRUNCATE pscheck_ops;
  INSERT INTO pscheck_ops SELECT * FROM pscheck.ops();

  name := 'active version with a checkpoint';
  failures := CASE WHEN EXISTS (SELECT 1 FROM powersync.checkpoint()) THEN 0 ELSE 1 END;
  examples := NULL;
  RETURN NEXT;

  -- Reduced op log == rules evaluated over the tables (as multisets, data and checksums included).
  CREATE TEMP TABLE IF NOT EXISTS pscheck_diff (side text, bucket text, object_type text, object_id text, data text,
                                                checksum bigint);
  TRUNCATE pscheck_diff;
  INSERT INTO pscheck_diff
    (SELECT 'missing', * FROM pscheck.expected(tables) EXCEPT ALL SELECT 'missing', * FROM pscheck.reduced())
    UNION ALL
    (SELECT 'extra', * FROM pscheck.reduced() EXCEPT ALL SELECT 'extra', * FROM pscheck.expected(tables));
  name := 'reduced op log equals a from-scratch evaluation';
  SELECT count(*), string_agg(format('%s %s %s/%s %s', d.side, d.bucket, d.object_type, d.object_id, left(d.data, 80)), E'\n')
    INTO failures, examples FROM (SELECT * FROM pscheck_diff ORDER BY bucket, object_id, side LIMIT 8) d;
  failures := (SELECT count(*) FROM pscheck_diff);
  RETURN NEXT;

  name := 'op checksums match their content (PUT: put.type.id.data, REMOVE: delete.subkey)';
  SELECT count(*), string_agg(format('%s op %s %s', o.bucket, o.op_id, o.op), E'\n')
    INTO failures, examples
    FROM (SELECT * FROM pscheck_ops o
           WHERE (o.op = 'PUT' AND o.checksum <> pscheck.op_hash('put.' || o.object_type || '.' || o.object_id || '.' || o.data))
              OR (o.op = 'REMOVE' AND o.checksum <> pscheck.op_hash('delete.' || o.subkey))) o;
  RETURN NEXT;

  -- count is the number of ops stored (spec §2.3), also after a CLEAR replaced a prefix.
  name := 'bucket checksums and counts equal the sum and number of their ops';
  SELECT count(*), string_agg(format('%s: stored %s/%s, ops %s/%s', c.bucket, c.checksum, c.count, s.sum, s.n), E'\n')
    INTO failures, examples
    FROM powersync.bucket_checksums(ARRAY(SELECT bucket FROM powersync.bucket_state WHERE sync_rules_id = pscheck.version()), NULL) c
    LEFT JOIN (SELECT o.bucket, sum(o.checksum) % 4294967296 AS sum, count(*) AS n FROM pscheck_ops o GROUP BY o.bucket) s
      ON s.bucket = c.bucket
   WHERE coalesce(s.sum, 0) <> c.checksum OR coalesce(s.n, 0) <> c.count;
  RETURN NEXT;

  name := 'bucket_state totals equal the running totals of the newest op';
  SELECT count(*), string_agg(s.bucket, E'\n') INTO failures, examples
    FROM powersync.bucket_state s
    LEFT JOIN powersync.bucket_data d ON d.bucket = s.bucket AND d.op_id = s.last_op
   WHERE s.sync_rules_id = pscheck.version()
     AND (d.op_id IS NULL OR d.cum_checksum <> s.checksum OR d.cum_count <> s.count
          OR EXISTS (SELECT 1 FROM powersync.bucket_data x WHERE x.bucket = s.bucket AND x.op_id > s.last_op));
  RETURN NEXT;

  -- Every write changes the row's v, so a replayed change shows up as two identical consecutive PUTs
  -- (or two consecutive REMOVEs) of one row key. Compaction rewrites older ops, so after it only
  -- pairs above the compacted range are checked.
  name := 'no duplicated ops';
  SELECT count(*), string_agg(format('%s %s %s ops %s,%s', x.bucket, x.op, x.object_id, x.prev_id, x.op_id), E'\n')
    INTO failures, examples
    FROM (SELECT o.*, lag(o.op) OVER w AS prev_op, lag(o.data) OVER w AS prev_data, lag(o.op_id) OVER w AS prev_id
            FROM pscheck_ops o WHERE o.op IN ('PUT', 'REMOVE')
          WINDOW w AS (PARTITION BY o.bucket, o.object_type, o.object_id, o.subkey ORDER BY o.op_id)) x
   WHERE x.op = x.prev_op AND (x.op = 'REMOVE' OR x.data = x.prev_data)
     AND (NOT compacted OR x.prev_id > (SELECT coalesce(max(compacted_to), 0) FROM powersync.compaction_state));
  RETURN NEXT;

  name := 'no ops of the active version beyond its checkpoint';
  SELECT count(*), string_agg(format('%s op %s', d.bucket, d.op_id), E'\n') INTO failures, examples
    FROM (SELECT d.bucket, d.op_id FROM powersync.bucket_data d
           WHERE d.sync_rules_id = pscheck.version() AND d.op_id > (SELECT op_id FROM powersync.checkpoint())
           LIMIT 8) d;
  RETURN NEXT;
END $$;

-- Fingerprint of what clients see (reduced state and checksums), to compare across compact().
CREATE FUNCTION pscheck.fingerprint() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT md5(coalesce((SELECT string_agg(format('%s|%s|%s|%s|%s', r.bucket, r.object_type, r.object_id, r.data, r.checksum),
                                         E'\n' ORDER BY r.bucket, r.object_type, r.object_id, r.data) FROM pscheck.reduced() r), '')
          || coalesce((SELECT string_agg(format('%s|%s', c.bucket, c.checksum), E'\n' ORDER BY c.bucket)
                         FROM powersync.bucket_checksums(ARRAY(SELECT bucket FROM powersync.bucket_state
                                                                WHERE sync_rules_id = pscheck.version()), NULL) c), '')) $$;

-- Buckets of requests (random workload rules): static ones plus one by_list/list_members bucket per
-- list the user is a member of, resolved through the lookup index at the current checkpoint.
CREATE FUNCTION pscheck.requests() RETURNS TABLE(name text, failures bigint, examples text)
LANGUAGE sql STABLE AS $$
  WITH users AS (SELECT unnest(ARRAY['u1', 'u2', 'u3', 'u4', 'u5', 'nobody']) AS u),
  got AS (SELECT users.u, r.bucket FROM users,
                 LATERAL powersync.request_buckets(jsonb_build_object('sub', users.u), '{"kind":"a"}', NULL) r),
  want AS (
    SELECT users.u, pscheck.version() || '#' || b AS bucket
      FROM users, LATERAL (
        SELECT 'by_owner' || jsonb_build_array(users.u)::text UNION ALL SELECT 'everything[]'
        UNION ALL SELECT 'by_kind["a"]'
        UNION ALL SELECT DISTINCT d || '[' || m.list_id || ']' FROM members m, unnest(ARRAY['by_list', 'list_members']) d
         WHERE m.user_id = users.u) x(b)),
  diff AS ((SELECT 'missing' AS side, * FROM want EXCEPT SELECT 'missing', * FROM got)
           UNION ALL (SELECT 'extra', * FROM got EXCEPT SELECT 'extra', * FROM want))
  SELECT 'request_buckets() equals the buckets derived from the tables', count(*),
         string_agg(format('%s %s %s', side, u, bucket), E'\n')
    FROM diff $$;
