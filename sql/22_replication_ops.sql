-- Op generation while streaming (spec §2.2, §4.8): PUT for every produced (bucket, row), REMOVE when a
-- row leaves a bucket (moves, id/key changes, deletes, TRUNCATE), parameter lookups with tombstones,
-- stable subkeys, checksums (spec §2.4a worked example) and checkpoints.
SET client_min_messages = warning;
SELECT 'CREATE DATABASE ps_repl' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ps_repl') \gexec
\c ps_repl
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS powersync_pg;
CREATE TABLE lists (id text PRIMARY KEY, name text, owner_id text, org_id text);
CREATE TABLE members (id int PRIMARY KEY, user_id text, org_id text);
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, name, owner_id FROM lists WHERE owner_id = bucket.user_id
  by_org:
    parameters: SELECT org_id FROM members WHERE user_id = request.user_id()
    data:
      - SELECT id, name FROM lists WHERE org_id = bucket.org_id
$$) AS v \gset
SELECT powersync.wait_for_checkpoint('60s') > 0 AS active;
CREATE TABLE IF NOT EXISTS mark (n bigint);
CREATE OR REPLACE FUNCTION mark() RETURNS void LANGUAGE sql AS $$
  DELETE FROM mark; INSERT INTO mark SELECT last_value FROM powersync.op_id_sequence$$;
-- Ops since the last mark(), op ids relative to it, version prefix stripped.
DROP FUNCTION IF EXISTS new_ops();
CREATE FUNCTION new_ops() RETURNS TABLE (op bigint, bucket text, kind text, object_type text, object_id text,
    data text, checksum bigint) LANGUAGE sql AS $$
  -- REMOVE checksums hash the subkey, which holds the (run-dependent) source table id: checked below
  SELECT d.op_id - m.n, regexp_replace(d.bucket, '^[0-9]+#', ''), d.op, d.object_type, d.object_id, d.data,
         CASE WHEN d.op = 'PUT' THEN d.checksum END
    FROM powersync.bucket_data d, mark m WHERE d.op_id > m.n ORDER BY d.op_id$$;
CREATE OR REPLACE FUNCTION new_lookups() RETURNS TABLE (id bigint, lookup text, bucket_parameters text) LANGUAGE sql AS $$
  SELECT p.id - m.n, p.lookup, p.bucket_parameters FROM powersync.bucket_parameters p, mark m
   WHERE p.id > m.n ORDER BY p.id$$;
SELECT mark();

-- INSERT: one PUT per bucket the row lands in.
INSERT INTO lists VALUES ('l1', 'A', 'u1', 'o1');
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_ops();
SELECT mark();
-- Moving to another user: PUT in the new bucket, PUT again where it stays, REMOVE from the old one.
UPDATE lists SET owner_id = 'u2' WHERE id = 'l1';
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_ops();
SELECT mark();
-- An UPDATE that changes nothing still PUTs.
UPDATE lists SET name = name WHERE id = 'l1';
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_ops();
SELECT mark();
-- Primary key change: the old source row's ops are REMOVEd, the new one PUT.
UPDATE lists SET id = 'l2' WHERE id = 'l1';
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_ops();
SELECT mark();
-- NULL owner: the row leaves by_user; DELETE: it leaves everything.
UPDATE lists SET owner_id = NULL WHERE id = 'l2';
DELETE FROM lists WHERE id = 'l2';
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_ops();
SELECT mark();
-- Inserted and deleted in one transaction: both ops, in order.
BEGIN;
INSERT INTO lists VALUES ('l3', 'C', 'u1', NULL);
DELETE FROM lists WHERE id = 'l3';
COMMIT;
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_ops();
SELECT mark();
-- Parameter lookups: a row per current lookup, tombstones ('[]') for lookups that vanished.
INSERT INTO members VALUES (1, 'u1', 'o1');
UPDATE members SET org_id = 'o2' WHERE id = 1;
UPDATE members SET user_id = 'u9' WHERE id = 1;
DELETE FROM members WHERE id = 1;
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_lookups();
SELECT mark();
-- TRUNCATE removes every row of the table from every bucket.
INSERT INTO lists VALUES ('l4', 'D', 'u1', 'o1'), ('l5', 'E', 'u2', NULL);
TRUNCATE lists;
SELECT powersync.wait_for_checkpoint('30s') > 0 AS ok;
SELECT * FROM new_ops();
SELECT count(*) AS current_rows FROM powersync.current_data;

-- Invariants over the whole log: every REMOVE names the subkey of an earlier PUT of the same row in
-- that bucket; cumulative checksums/counts and bucket_state match the ops; the last checkpoint covers them.
SELECT bool_and(EXISTS (SELECT 1 FROM powersync.bucket_data p WHERE p.op = 'PUT' AND p.bucket = r.bucket
                          AND p.object_id = r.object_id AND p.subkey = r.subkey AND p.op_id < r.op_id))
         AS removes_match_puts
  FROM powersync.bucket_data r WHERE r.op = 'REMOVE';
-- Op checksums (spec §2.3): first 4 bytes, little-endian, of SHA-256 over put.<type>.<id>.<data> or
-- delete.<subkey>.
CREATE OR REPLACE FUNCTION op_hash(s text) RETURNS bigint LANGUAGE sql AS $$
  SELECT ('x' || encode(substring(h FROM 4 FOR 1) || substring(h FROM 3 FOR 1) || substring(h FROM 2 FOR 1)
                       || substring(h FROM 1 FOR 1), 'hex'))::bit(32)::bigint
    FROM sha256(convert_to(s, 'UTF8')) AS h$$;
SELECT bool_and(checksum = CASE op WHEN 'PUT' THEN op_hash('put.' || object_type || '.' || object_id || '.' || data)
                                   ELSE op_hash('delete.' || subkey) END) AS op_checksums_ok,
       count(*) FILTER (WHERE op = 'REMOVE') > 0 AS has_removes
  FROM powersync.bucket_data;
SELECT bool_and(cum_checksum = running AND cum_count = n) AS cumulative_ok FROM (
  SELECT cum_checksum, cum_count, sum(checksum) OVER w % 4294967296 AS running, count(*) OVER w AS n
    FROM powersync.bucket_data WINDOW w AS (PARTITION BY bucket ORDER BY op_id)) x;
SELECT bool_and(s.checksum = b.sum AND s.count = b.n AND s.last_op = b.last) AS bucket_state_ok
  FROM powersync.bucket_state s JOIN (SELECT bucket, sum(checksum) % 4294967296 AS sum, count(*) AS n,
       max(op_id) AS last FROM powersync.bucket_data GROUP BY bucket) b USING (bucket);
SELECT last_checkpoint = (SELECT max(op_id) FROM powersync.bucket_data) AS checkpoint_is_last_op,
       last_checkpoint_lsn <= pg_current_wal_lsn() AS lsn_ok
  FROM powersync.sync_rules WHERE state = 'ACTIVE';

\c contrib_regression
