-- Incrementally maintained JOIN views (IMMV): catalog, SQL API and trigger functions.
-- An IMMV is an ordinary table with a primary key built from its base tables' keys; triggers on the
-- base tables keep it equal to its query in the same transaction (src/pg/immv_*.cpp).
--
-- Key: one column per primary-key column of every table in FROM (a selected key column such as
-- li.id is reused, others are hidden __ps_<alias>_<column> columns). A table on the nullable side
-- of a LEFT JOIN contributes one text column ROW(key...)::text, "()"/"(,)" when the join found no
-- row: real keys are never NULL, so the composite key stays unique and NOT NULL.
-- Maintenance: an UPDATE that changes no column the view reads does nothing; one that changes only
-- value columns (select-list expressions of one table's row) updates them in place; anything else
-- recomputes the view rows of the affected keys from the base tables (index lookups) and applies
-- the difference (DELETE / in-place UPDATE / INSERT); INSERT and DELETE of an inner-joined table
-- just insert or delete the rows of their keys. TRUNCATE of a base table recomputes the view.
-- Concurrency: no view-wide lock. A writer share-locks the rows of the view's lower-ranked tables
-- (foreign-key parents) that its changed rows join with, found from the statement's old and new
-- images (so deleted rows and moved keys find their old partners) through the join equalities alone
-- (filters ignored: a concurrent parent change may show hidden rows); a writer of a child waits for
-- a concurrent writer of its parent and re-reads after it committed (under REPEATABLE READ /
-- SERIALIZABLE it gets a serialization failure instead). Rows that do not exist yet cannot be
-- locked: join values of new rows (unless a foreign key covers that join) and LEFT JOIN anchors are
-- advisory-locked before the statement's snapshot is taken (lock_sql), and so is the identity of a
-- committed row through which two writers' rows can meet (A-B-C without foreign keys; two children
-- of one parent). A value-only UPDATE of a view without filters or LEFT JOINs locks no partner: it
-- re-runs when it wrote fewer view rows than it planned (a concurrent writer re-keyed them).

CREATE TABLE powersync.immv_catalog (
  immv        regclass PRIMARY KEY,          -- the view's table
  definition  text NOT NULL,                 -- the query as Postgres reads it back
  base_tables regclass[] NOT NULL,
  refresh_sql text NOT NULL,                 -- full recompute + diff (refresh_immv, TRUNCATE of a base)
  source_sql  text NOT NULL,                 -- the query, schema-qualified, with every table's key
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Maintenance statements per base table and event (one per appearance of the table in the query),
-- generated at create time and prepared once per backend by the triggers, run in order.
CREATE TABLE powersync.immv_statements (
  immv  regclass NOT NULL REFERENCES powersync.immv_catalog ON DELETE CASCADE,
  base  regclass NOT NULL,
  -- PROPAGATE: an UPDATE that changed no structural column (see immv_bases.structural)
  event text NOT NULL CHECK (event IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'PROPAGATE')),
  ord   int NOT NULL,
  sql   text NOT NULL,
  -- run first when set: takes the advisory keys of `sql` before its snapshot, returns them as its $1
  lock_sql text,
  -- INSERT/DELETE fast paths: the full recompute, run when `sql` says it could not decide alone
  fallback_sql text,
  PRIMARY KEY (immv, base, event, ord)
);


-- Per base table: the columns (key and those the view reads) whose change can affect the view. An
-- UPDATE leaving all of them byte-for-byte unchanged skips maintenance without running any SQL; one
-- leaving the structural ones (key, join and WHERE columns) unchanged runs the PROPAGATE statements.
CREATE TABLE powersync.immv_bases (
  immv       regclass NOT NULL REFERENCES powersync.immv_catalog ON DELETE CASCADE,
  base       regclass NOT NULL,
  compared   int2[] NOT NULL,
  structural int2[] NOT NULL,
  PRIMARY KEY (immv, base)
);

-- Maintenance runs as the view's owner and reads its statements from here.
GRANT SELECT ON powersync.immv_catalog, powersync.immv_statements, powersync.immv_bases TO PUBLIC;

CREATE FUNCTION powersync.create_immv(name text, query text) RETURNS bigint
  AS 'MODULE_PATHNAME', 'powersync_create_immv' LANGUAGE C STRICT;
COMMENT ON FUNCTION powersync.create_immv(text, text) IS
  'Creates table NAME holding the rows of QUERY (a SELECT joining tables by equality) and keeps it up to date; returns the rows created.';

CREATE FUNCTION powersync.refresh_immv(name text) RETURNS bigint
  AS 'MODULE_PATHNAME', 'powersync_refresh_immv' LANGUAGE C STRICT;
COMMENT ON FUNCTION powersync.refresh_immv(text) IS
  'Recomputes IMMV NAME from its base tables and applies the difference; returns the number of view rows it had to change (0 when it was up to date).';

CREATE FUNCTION powersync.drop_immv(name text) RETURNS void
  AS 'MODULE_PATHNAME', 'powersync_drop_immv' LANGUAGE C STRICT;

CREATE FUNCTION powersync.immv_maintain() RETURNS trigger
  AS 'MODULE_PATHNAME', 'powersync_immv_maintain' LANGUAGE C;
CREATE FUNCTION powersync.immv_guard() RETURNS trigger
  AS 'MODULE_PATHNAME', 'powersync_immv_guard' LANGUAGE C;

CREATE FUNCTION powersync.immv_row_count(immv regclass) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ONLY %s', immv) INTO n;
  RETURN n;
END $$;

CREATE VIEW powersync.immvs AS
  SELECT c.immv::text AS name, c.definition, c.base_tables, powersync.immv_row_count(c.immv) AS row_count
    FROM powersync.immv_catalog c
   WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = c.immv);

-- DROP TABLE (or DROP ... CASCADE of a base table) removes an IMMV's catalog rows too; its triggers
-- on the base tables depend on the view's table and go with it.
CREATE FUNCTION powersync.immv_forget_dropped() RETURNS event_trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  DELETE FROM powersync.immv_catalog
   WHERE immv::oid IN (SELECT objid FROM pg_event_trigger_dropped_objects()
                        WHERE classid = 'pg_catalog.pg_class'::regclass AND objsubid = 0);
END $$;
CREATE EVENT TRIGGER powersync_immv_forget_dropped ON sql_drop
  EXECUTE FUNCTION powersync.immv_forget_dropped();

-- ALTER TABLE of a base table must leave every dependent IMMV's query valid (DROP COLUMN and ALTER
-- TYPE are already refused through pg_depend; this catches RENAME COLUMN and the like).
CREATE FUNCTION powersync.immv_check_base_ddl() RETURNS event_trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE v record;
BEGIN
  FOR v IN SELECT c.immv, c.source_sql FROM powersync.immv_catalog c
            WHERE c.base_tables::oid[] && ARRAY(SELECT objid FROM pg_event_trigger_ddl_commands()
                                                 WHERE classid = 'pg_catalog.pg_class'::regclass)
  LOOP
    BEGIN
      EXECUTE format('SELECT 1 FROM (%s) q LIMIT 0', v.source_sql);
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION 'this change would break IMMV %: %', v.immv, SQLERRM
        USING HINT = 'Drop the IMMV with powersync.drop_immv(), change the table, then create the IMMV again.';
    END;
  END LOOP;
END $$;
CREATE EVENT TRIGGER powersync_immv_check_base_ddl ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
  EXECUTE FUNCTION powersync.immv_check_base_ddl();
