-- Replication storage (issue 3): sync rule versions, source tables + snapshot progress, current_data,
-- bucket op logs with running checksums, parameter lookups, checkpoints, write checkpoints.
-- Written only by the replication worker (except write_checkpoints and compaction); read by the pull API.
-- Every table here lives in schema powersync, which the output plugin never decodes.

-- One global op id sequence: bucket ops and parameter-lookup rows take ids from it in generation order,
-- so the op-id order is the replication order (spec §2.1).
CREATE SEQUENCE powersync.op_id_sequence AS bigint START 1 CACHE 1;
COMMENT ON SEQUENCE powersync.op_id_sequence IS
  'Global op id sequence shared by the ops in bucket_chunks and bucket_parameters.id (spec §2.1).';

CREATE TABLE powersync.sync_rules (
  id                  bigserial PRIMARY KEY,
  content             text NOT NULL,
  state               text NOT NULL DEFAULT 'PROCESSING' CHECK (state IN ('PROCESSING', 'ACTIVE', 'STOP')),
  snapshot_done       boolean NOT NULL DEFAULT false,
  snapshot_lsn        pg_lsn,
  last_checkpoint     bigint,
  last_checkpoint_lsn pg_lsn,
  created_at          timestamptz NOT NULL DEFAULT now(),
  activated_at        timestamptz,
  stopped_at          timestamptz
);
COMMENT ON TABLE powersync.sync_rules IS
  'Deployed sync rule versions. id is the version; its bucket ids carry the prefix "<id>#". At most one '
  'ACTIVE (serving) and at most one PROCESSING (snapshotting/catching up) version exist; STOP versions '
  'have had their data dropped and are kept for history.';
COMMENT ON COLUMN powersync.sync_rules.id IS 'Version number; bucket ids of this version start with "<id>#".';
COMMENT ON COLUMN powersync.sync_rules.content IS 'The YAML text as deployed (validated by deploy_sync_rules).';
COMMENT ON COLUMN powersync.sync_rules.state IS
  'PROCESSING: snapshot/catch-up running, no checkpoints yet; ACTIVE: serving; STOP: replaced, data dropped.';
COMMENT ON COLUMN powersync.sync_rules.snapshot_done IS 'All referenced tables were copied (see source_tables).';
COMMENT ON COLUMN powersync.sync_rules.snapshot_lsn IS
  'WAL position recorded after the copy finished; the version becomes ACTIVE once the stream passed it '
  '(no checkpoint before this LSN).';
COMMENT ON COLUMN powersync.sync_rules.last_checkpoint IS 'op_id of the newest checkpoint of this version (NULL: none yet).';
COMMENT ON COLUMN powersync.sync_rules.last_checkpoint_lsn IS 'LSN of the newest checkpoint of this version.';

CREATE TABLE powersync.source_tables (
  id                  serial PRIMARY KEY,
  sync_rules_id       bigint NOT NULL REFERENCES powersync.sync_rules (id) ON DELETE CASCADE,
  relid               oid NOT NULL,
  schema_name         text NOT NULL,
  table_name          text NOT NULL,
  replica_identity    "char" NOT NULL,
  identity_columns    text[] NOT NULL,
  snapshot_done       boolean NOT NULL DEFAULT false,
  snapshot_next_block bigint NOT NULL DEFAULT 0,
  snapshot_rows       bigint NOT NULL DEFAULT 0,
  snapshot_total      bigint,
  snapshot_lsn        pg_lsn,
  UNIQUE (sync_rules_id, relid)
);
COMMENT ON TABLE powersync.source_tables IS
  'Tables a sync rules version replicates, one row per (version, table). A rename or replica identity '
  'change retires the row (its rows get REMOVE ops) and registers the table again under a new id, which '
  'is snapshotted on its own.';
COMMENT ON COLUMN powersync.source_tables.id IS 'Source table id; first part of every subkey "<id>/<source_key hex>".';
COMMENT ON COLUMN powersync.source_tables.relid IS 'pg_class oid of the table.';
COMMENT ON COLUMN powersync.source_tables.replica_identity IS
  'pg_class.relreplident when registered: d (default/primary key), i (index), f (full), n (nothing).';
COMMENT ON COLUMN powersync.source_tables.identity_columns IS
  'Columns forming the row key (source_key); empty for NOTHING or no primary key (random key per insert).';
COMMENT ON COLUMN powersync.source_tables.snapshot_done IS 'Initial copy finished (or not needed: table appeared in the stream).';
COMMENT ON COLUMN powersync.source_tables.snapshot_next_block IS
  'Resume point of the chunked copy: the next heap block to read (chunks are ctid block ranges).';
COMMENT ON COLUMN powersync.source_tables.snapshot_rows IS 'Rows copied so far.';
COMMENT ON COLUMN powersync.source_tables.snapshot_total IS 'Heap blocks of the table when the copy started (progress = next_block / total).';
COMMENT ON COLUMN powersync.source_tables.snapshot_lsn IS 'WAL position recorded after this table''s copy finished.';

CREATE TABLE powersync.current_data (
  source_table_id integer NOT NULL,
  source_key      bytea NOT NULL,
  row_image       bytea,
  buckets         bytea NOT NULL,
  lookups         bytea NOT NULL,
  PRIMARY KEY (source_table_id, source_key)
) WITH (fillfactor = 50);  -- room for HOT updates: a row rewritten in place needs no new index entry
COMMENT ON TABLE powersync.current_data IS
  'Per replicated source row: its last row image and what it currently contributes (spec §6.1). Values '
  'are in the worker''s compact binary encoding (include/powersync/pg/change_format.h).';
COMMENT ON COLUMN powersync.current_data.source_key IS
  'Single integer identity column: ''i'' + the value as 8 order-preserving bytes (ids in order cluster in '
  'the primary key); otherwise 16 bytes: first half of SHA-256 over the encoded replica-identity values '
  '(random for NOTHING).';
COMMENT ON COLUMN powersync.current_data.row_image IS
  'Last full row (encoded tuple) to complete unchanged-TOAST columns of the next update; only for rows with '
  'a value stored out of line (only those can have such columns), NULL otherwise and for REPLICA IDENTITY FULL.';
COMMENT ON COLUMN powersync.current_data.buckets IS 'Encoded list of (bucket, object_type, object_id) the row is in (for REMOVE ops).';
COMMENT ON COLUMN powersync.current_data.lookups IS 'Encoded list of parameter lookup keys the row produced (for tombstones).';

-- Text keys of the storage tables are COLLATE "C": byte order is all any reader needs, and in a database
-- with a real locale (libc en_US, ICU) every B-tree comparison would otherwise go through strcoll/ICU.
-- Bucket op logs (spec §2.1), stored in chunks: one row carries consecutive ops of ONE bucket written by
-- one transaction, so one heap tuple + one index entry serve many ops (the per-op row layout cost
-- most of the worker's time). powersync.bucket_data below is the op-per-row view of the same data.
CREATE TABLE powersync.bucket_chunks (
  bucket        text COLLATE "C" NOT NULL,
  first_op      bigint NOT NULL,
  last_op       bigint NOT NULL,
  sync_rules_id bigint NOT NULL,
  op_count      integer NOT NULL,
  first_count   bigint NOT NULL,
  cum_checksum  bigint NOT NULL,
  cum_count     bigint NOT NULL,
  ops           bytea NOT NULL,
  PRIMARY KEY (bucket, first_op)
);
COMMENT ON TABLE powersync.bucket_chunks IS
  'Bucket op logs (spec §2.1) in chunks of consecutive ops of one bucket (a replication flush or snapshot '
  'chunk; at most ~1.8 kB encoded so rows stay inline, one large op gets a chunk of its own). Chunks of a '
  'bucket never overlap: ops after X up to checkpoint C are in the chunk with the greatest first_op <= X '
  '(if its last_op > X) and the chunks with X < first_op <= C, in first_op order (primary key). Totals at C: '
  'the chunk with the greatest first_op <= C gives cum_checksum/cum_count when last_op <= C (else unpack '
  'it up to C). Read ops with powersync._chunk_ops(ops, after, upto) or the view powersync.bucket_data.';
COMMENT ON COLUMN powersync.bucket_chunks.bucket IS 'Full bucket id incl. version prefix, e.g. 3#by_user["u1"].';
COMMENT ON COLUMN powersync.bucket_chunks.first_op IS 'op_id of the chunk''s first op (from powersync.op_id_sequence).';
COMMENT ON COLUMN powersync.bucket_chunks.last_op IS 'op_id of the chunk''s last op.';
COMMENT ON COLUMN powersync.bucket_chunks.sync_rules_id IS 'Version that produced the ops (its data is dropped on STOP).';
COMMENT ON COLUMN powersync.bucket_chunks.op_count IS 'Number of ops in the chunk.';
COMMENT ON COLUMN powersync.bucket_chunks.first_count IS
  'cum_count of the chunk''s first op. For the bucket''s first chunk: ops stored up to C = cum_count at C - '
  'first_count + 1 (a CLEAR keeps the running count of the prefix it replaced).';
COMMENT ON COLUMN powersync.bucket_chunks.cum_checksum IS
  'Wrapping unsigned 32-bit sum of the checksums of all ops of this bucket up to last_op. MOVE keeps its '
  'checksum and CLEAR sums its prefix, so compaction leaves these values valid.';
COMMENT ON COLUMN powersync.bucket_chunks.cum_count IS
  'Number of ops written to this bucket up to and including last_op (counted before compaction).';
COMMENT ON COLUMN powersync.bucket_chunks.ops IS
  'The ops, encoded as described in include/powersync/pg/op_chunk.h: per op the op id delta, kind, checksum, '
  'object_type/object_id/subkey/data or target_op, and running totals (first op''s in the header).';

-- The ops of a chunk with after < op_id <= upto (NULL: unbounded), in op id order. A corrupt chunk raises
-- an ERROR.
CREATE FUNCTION powersync._chunk_ops(ops bytea, after bigint DEFAULT NULL, upto bigint DEFAULT NULL)
RETURNS TABLE(op_id bigint, op text, object_type text, object_id text, subkey text, data text, checksum bigint,
              target_op bigint, cum_checksum bigint, cum_count bigint)
AS 'MODULE_PATHNAME', 'powersync_chunk_ops' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 20;

-- One row per op, as the op log was stored before chunks: for tests, tools and ad-hoc queries (a filter on
-- bucket uses the chunks' primary key; one on op_id alone unpacks every chunk).
CREATE VIEW powersync.bucket_data AS
  SELECT c.bucket, o.op_id, c.sync_rules_id, o.op, o.object_type, o.object_id, o.subkey, o.data, o.checksum,
         o.target_op, o.cum_checksum, o.cum_count
    FROM powersync.bucket_chunks c CROSS JOIN LATERAL powersync._chunk_ops(c.ops) o;
COMMENT ON VIEW powersync.bucket_data IS
  'Bucket op logs one row per op (unpacked from powersync.bucket_chunks). Ops of a bucket after X up to '
  'checkpoint C: powersync.bucket_ops(). Writable for tests and tools: INSERT packs each row into a chunk of '
  'its own, UPDATE/DELETE rewrite the chunk holding the op; the replication worker writes chunks directly.';
COMMENT ON COLUMN powersync.bucket_data.op_id IS 'From powersync.op_id_sequence; increasing in replication order.';
COMMENT ON COLUMN powersync.bucket_data.op IS 'PUT, REMOVE, MOVE or CLEAR.';
COMMENT ON COLUMN powersync.bucket_data.object_type IS 'Output table name (NULL for MOVE/CLEAR).';
COMMENT ON COLUMN powersync.bucket_data.object_id IS 'Output row id (NULL for MOVE/CLEAR).';
COMMENT ON COLUMN powersync.bucket_data.subkey IS '"<source_table_id>/<source_key hex>", stable per source row (NULL for MOVE/CLEAR).';
COMMENT ON COLUMN powersync.bucket_data.data IS 'Row JSON for PUT (exact bytes hashed into checksum), else NULL.';
COMMENT ON COLUMN powersync.bucket_data.checksum IS 'Op checksum, unsigned 32-bit (spec §2.3).';
COMMENT ON COLUMN powersync.bucket_data.target_op IS 'MOVE/CLEAR: op id that superseded the op(s) (spec §2.5); else NULL.';
COMMENT ON COLUMN powersync.bucket_data.cum_checksum IS
  'Wrapping unsigned 32-bit sum of the checksums of all ops of this bucket with op_id <= this op.';
COMMENT ON COLUMN powersync.bucket_data.cum_count IS
  'Number of ops written to this bucket up to and including this op (counted before compaction).';

-- Packs rows of the view's type into new chunks, sorted by (bucket, op_id); ops with different groups
-- never share a chunk (compaction rewrites chunk by chunk). Returns the number of chunks written.
CREATE FUNCTION powersync._write_ops(ops powersync.bucket_data[], groups bigint[] DEFAULT NULL) RETURNS bigint
AS 'MODULE_PATHNAME', 'powersync_write_ops' LANGUAGE C VOLATILE;

-- Writes through the view (tests, tools): the chunk holding the op is unpacked, changed and written again.
CREATE FUNCTION powersync._bucket_data_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  target record;
  kept powersync.bucket_data[];
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    SELECT c.bucket, c.first_op INTO target FROM powersync.bucket_chunks c
     WHERE c.bucket = OLD.bucket AND c.first_op <= OLD.op_id ORDER BY c.first_op DESC LIMIT 1;
    SELECT array_agg(ROW(target.bucket, o.op_id, c.sync_rules_id, o.op, o.object_type, o.object_id, o.subkey, o.data,
                         o.checksum, o.target_op, o.cum_checksum, o.cum_count)::powersync.bucket_data ORDER BY o.op_id)
      INTO kept
      FROM powersync.bucket_chunks c CROSS JOIN LATERAL powersync._chunk_ops(c.ops) o
     WHERE c.bucket = target.bucket AND c.first_op = target.first_op AND o.op_id <> OLD.op_id;
    IF NOT FOUND OR target.bucket IS NULL THEN
      RETURN NULL;
    END IF;
    DELETE FROM powersync.bucket_chunks c WHERE c.bucket = target.bucket AND c.first_op = target.first_op;
    IF TG_OP = 'UPDATE' THEN
      kept := kept || NEW;  -- in place of OLD, so that the rewritten chunk covers the same op id range
    END IF;
    PERFORM powersync._write_ops(kept);
    RETURN CASE WHEN TG_OP = 'UPDATE' THEN NEW ELSE OLD END;
  END IF;
  PERFORM powersync._write_ops(ARRAY[NEW]);
  RETURN NEW;
END $$;
CREATE TRIGGER bucket_data_write INSTEAD OF INSERT OR UPDATE OR DELETE ON powersync.bucket_data
  FOR EACH ROW EXECUTE FUNCTION powersync._bucket_data_write();

CREATE TABLE powersync.bucket_state (
  bucket        text COLLATE "C" PRIMARY KEY,
  sync_rules_id bigint NOT NULL,
  last_op       bigint NOT NULL,
  checksum      bigint NOT NULL,
  count         bigint NOT NULL
);  -- no fillfactor for HOT: last_op changes on every update and is indexed (bucket_state_last_op)
COMMENT ON TABLE powersync.bucket_state IS
  'Running totals per bucket at its newest op (= cum_checksum/cum_count of its newest chunk in bucket_chunks).';
COMMENT ON COLUMN powersync.bucket_state.checksum IS 'Unsigned 32-bit wrapping sum of all op checksums of the bucket.';

CREATE TABLE powersync.bucket_parameters (
  id                bigint PRIMARY KEY,
  sync_rules_id     bigint NOT NULL,
  source_table_id   integer NOT NULL,
  source_key        bytea NOT NULL,
  lookup            text COLLATE "C" NOT NULL,
  bucket_parameters text NOT NULL
);
CREATE INDEX bucket_parameters_lookup ON powersync.bucket_parameters
  (sync_rules_id, lookup, source_table_id, source_key, id DESC);
COMMENT ON TABLE powersync.bucket_parameters IS
  'Append-only parameter lookup index (spec §4.8). Lookup L at checkpoint C: SELECT DISTINCT ON '
  '(source_table_id, source_key) ... WHERE sync_rules_id = V AND lookup = L AND id <= C ORDER BY '
  'source_table_id, source_key, id DESC, then drop rows whose bucket_parameters = ''[]''.';
COMMENT ON COLUMN powersync.bucket_parameters.id IS 'From powersync.op_id_sequence.';
COMMENT ON COLUMN powersync.bucket_parameters.lookup IS
  'Canonical lookup key, JSON array text [definition, query_id, value...] (rules EvaluatedParameters::lookup).';
COMMENT ON COLUMN powersync.bucket_parameters.bucket_parameters IS
  'JSON array text of the row-side parameter objects, e.g. [{"org_id":"o1"}]; ''[]'' is a tombstone.';

CREATE TABLE powersync.checkpoints (
  sync_rules_id bigint NOT NULL,
  op_id         bigint NOT NULL,
  lsn           pg_lsn NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sync_rules_id, op_id)
);
COMMENT ON TABLE powersync.checkpoints IS
  'Checkpoints of a version (spec §3.1): all ops with op_id <= op_id reflect the source up to lsn. A later '
  'checkpoint with the same op_id (no new ops, e.g. after a write-checkpoint ping) raises lsn in place. The '
  'newest one is also in sync_rules.last_checkpoint/_lsn. Each new checkpoint of the ACTIVE version is '
  'announced with NOTIFY powersync_checkpoint, payload {"sync_rules":V,"op_id":N,"lsn":"X/Y"}.';

CREATE TABLE powersync.replication_state (
  id             boolean PRIMARY KEY DEFAULT true CHECK (id),
  slot_name      text NOT NULL,
  replicated_lsn pg_lsn,
  replicated_at  timestamptz,
  worker_pid     integer,
  status         text NOT NULL DEFAULT 'starting',
  last_error     text,
  last_error_at  timestamptz,
  unresolved_toast bigint NOT NULL DEFAULT 0,
  read_mode      text,
  read_mode_reason text
);
COMMENT ON TABLE powersync.replication_state IS
  'The replication worker of this database (one row). replicated_lsn: every change committed before it is '
  'applied (written with every round that produced ops or saw a powersync message; idle rounds only '
  'advance the slot). status: starting | running | error (see last_error). unresolved_toast: updates whose '
  'unchanged TOAST columns had no stored image and could not be read again from the table (synced as NULL; '
  'each one is logged as a warning with table and row). read_mode: stream (a replication connection to this '
  'server, decoded by its walsender) or peek (the slot peeked inside the worker; read_mode_reason says why the '
  'replication connection could not be made).';
INSERT INTO powersync.replication_state (slot_name) VALUES ('powersync_' || (SELECT oid FROM pg_database WHERE datname = current_database()));

CREATE TABLE powersync.write_checkpoints (
  user_id          text COLLATE "C" PRIMARY KEY,
  lsn              pg_lsn NOT NULL,
  write_checkpoint bigint NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE powersync.write_checkpoints IS
  'Managed write checkpoints (spec §3.2): key "<user_id>" or "<user_id>/<client_id>", the WAL head when '
  'requested, and the per-key counter. Visible at checkpoint C when lsn <= C''s lsn.';

-- checkpoint_changes(): buckets with ops after the previous checkpoint, without a scan of every bucket.
CREATE INDEX bucket_state_last_op ON powersync.bucket_state (last_op);
-- checkpoint_changes(): write checkpoints that became visible between two checkpoints (a range of lsn),
-- without a scan of every user's row on every checkpoint.
CREATE INDEX write_checkpoints_lsn ON powersync.write_checkpoints (lsn);
