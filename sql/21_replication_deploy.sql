-- deploy_sync_rules: validation (bad rules change nothing), initial snapshot of existing rows, activation,
-- and a second version replacing the first (new bucket namespace, old data dropped). The replication
-- tests share database ps_repl (and its worker), apart from the other tests.
SET client_min_messages = warning;
SELECT 'CREATE DATABASE ps_repl' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ps_repl') \gexec
\c ps_repl
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS powersync_pg;
CREATE OR REPLACE FUNCTION ops_consistent() RETURNS TABLE (ops bigint, cumulative_ok boolean, state_ok boolean) LANGUAGE sql AS $$
  WITH w AS (
    SELECT bucket, checksum, cum_checksum, cum_count,
           sum(checksum) OVER (PARTITION BY bucket ORDER BY op_id) % 4294967296 AS running,
           count(*) OVER (PARTITION BY bucket ORDER BY op_id) AS n
      FROM powersync.bucket_data)
  SELECT (SELECT count(*) FROM powersync.bucket_data),
         coalesce(bool_and(cum_checksum = running AND cum_count = n), true),
         (SELECT coalesce(bool_and(s.checksum = b.sum AND s.count = b.n), true) FROM powersync.bucket_state s
            JOIN (SELECT bucket, sum(checksum) % 4294967296 AS sum, count(*) AS n FROM powersync.bucket_data
                  GROUP BY bucket) b USING (bucket))
    FROM w
$$;

-- Bad rules: an ERROR with a message, and nothing is stored.
SELECT powersync.deploy_sync_rules('bucket_definitions: [');
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  broken:
    data:
      - SELECT id FROM d_lists WHERE
$$);
SELECT powersync.deploy_sync_rules('');
SELECT count(*) AS versions FROM powersync.sync_rules;

-- Existing rows are copied by the snapshot.
CREATE TABLE d_lists (id text PRIMARY KEY, name text, owner_id text);
INSERT INTO d_lists SELECT 'l' || g, 'list ' || g, 'u' || (g % 3) FROM generate_series(1, 3000) g;
SELECT powersync.wait_replicated();
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, name, owner_id FROM d_lists WHERE owner_id = bucket.user_id
$$) AS v1 \gset
SELECT powersync.wait_for_checkpoint('60s') > 0 AS active;
SELECT id - :v1 AS version, state, snapshot_done FROM powersync.sync_rules ORDER BY id;
SELECT table_name, replica_identity, identity_columns, snapshot_done, snapshot_rows FROM powersync.source_tables;
SELECT replace(bucket, :v1 || '#', 'V1#') AS bucket, count(*), min(op), max(op) FROM powersync.bucket_data
 GROUP BY bucket ORDER BY bucket;
SELECT data FROM powersync.bucket_data WHERE object_id = 'l7';
SELECT * FROM ops_consistent();
SELECT status, last_error FROM powersync.replication_state;
SELECT c.op_id = (SELECT max(op_id) FROM powersync.bucket_data) AS checkpoint_covers_ops
  FROM powersync.checkpoints c ORDER BY c.op_id DESC LIMIT 1;

-- Version 2 with other rules: processed next to version 1, then replaces it.
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  everything:
    data:
      - SELECT id, upper(name) AS name FROM d_lists
$$) - :v1 AS next_version;
SELECT powersync.wait_for_checkpoint('60s') > 0 AS active;
SELECT id - :v1 AS version, state FROM powersync.sync_rules ORDER BY id;
SELECT replace(bucket, (:v1 + 1) || '#', 'V2#') AS bucket, count(*) FROM powersync.bucket_data GROUP BY bucket;
SELECT count(*) AS v1_rows_left FROM powersync.bucket_data WHERE sync_rules_id = :v1;
SELECT count(*) AS v1_tables_left FROM powersync.source_tables WHERE sync_rules_id = :v1;
SELECT data FROM powersync.bucket_data WHERE object_id = 'l7';
SELECT * FROM ops_consistent();

-- A deploy while another version is still processing stops the processing one.
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  a:
    data: [SELECT id FROM d_lists]
$$) - :v1 AS v3;
SELECT powersync.deploy_sync_rules($$
bucket_definitions:
  b:
    data: [SELECT id FROM d_lists WHERE owner_id = 'u1']
$$) - :v1 AS v4;
SELECT powersync.wait_for_checkpoint('60s') > 0 AS active;
SELECT id - :v1 AS version, state FROM powersync.sync_rules ORDER BY id;
SELECT split_part(bucket, '#', 1)::int - :v1 AS version, count(*) FROM powersync.bucket_data GROUP BY 1;
SELECT * FROM ops_consistent();

\c contrib_regression
