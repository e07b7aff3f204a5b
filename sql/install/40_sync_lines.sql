-- Sync protocol without HTTP (issue 4): one complete pass for a request body, as NDJSON lines.

CREATE FUNCTION powersync.sync_lines(token_claims jsonb, request jsonb DEFAULT '{}')
RETURNS SETOF text
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'powersync_sync_lines';
COMMENT ON FUNCTION powersync.sync_lines(jsonb, jsonb) IS
  'One complete pass of the PowerSync sync protocol for a request body (spec 1.2: buckets with after '
  'positions, raw_data, client_id, parameters) and already-verified token claims (sub, parameters, ...): '
  'the checkpoint line, data lines, partial_checkpoint_complete per priority and checkpoint_complete, '
  'as NDJSON lines. For psql and trusted backends; the claims are NOT verified here.';
