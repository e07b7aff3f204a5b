-- Replication functions (issue 3): deploying sync rules, the worker, waiting for replication in tests.

CREATE FUNCTION powersync.deploy_sync_rules(rules text) RETURNS bigint
  AS 'MODULE_PATHNAME', 'powersync_deploy_sync_rules' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION powersync.deploy_sync_rules(text) IS
  'Validates sync rules (ERROR on invalid rules; nothing changes) and stores them as a new PROCESSING '
  'version (an older PROCESSING one stops). The replication worker snapshots the tables it reads, streams, '
  'and makes it ACTIVE once caught up; the previous ACTIVE version is then stopped and its data dropped. '
  'Returns the version; its bucket ids start with "<version>#".';

CREATE FUNCTION powersync.ensure_worker() RETURNS boolean
  AS 'MODULE_PATHNAME', 'powersync_ensure_worker' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION powersync.ensure_worker() IS
  'Starts the replication worker of this database now (a duplicate exits at once). The launcher does the '
  'same every 10 s when powersync_pg is in shared_preload_libraries.';

CREATE FUNCTION powersync.describe_change(data bytea) RETURNS text
  AS 'MODULE_PATHNAME', 'powersync_describe_change' LANGUAGE C STRICT IMMUTABLE;
COMMENT ON FUNCTION powersync.describe_change(bytea) IS
  'Readable form of one message of the powersync_pg output plugin (debugging and tests).';

-- Waits until the worker has applied everything committed before the call (it emits a powersync
-- message, which also forces a checkpoint). False on timeout.
CREATE FUNCTION powersync.wait_replicated(timeout interval DEFAULT '30 s') RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  target pg_lsn := pg_logical_emit_message(false, 'powersync', 'ping');
  deadline timestamptz := clock_timestamp() + timeout;
BEGIN
  LOOP
    IF EXISTS (SELECT 1 FROM powersync.replication_state WHERE replicated_lsn >= target) THEN
      RETURN true;
    END IF;
    IF clock_timestamp() > deadline THEN
      RETURN false;
    END IF;
    PERFORM pg_sleep(0.005);
  END LOOP;
END $$;

SELECT powersync.ensure_worker();
