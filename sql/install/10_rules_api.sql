-- Sync rules SQL API: validate rules and evaluate them on example rows and requests (src/pg/rules_api.cpp).
-- Every function parses the rules text it is given (the last one is cached per backend).

CREATE FUNCTION powersync.validate_sync_rules(rules text)
RETURNS TABLE(severity text, message text, line int, col int)
AS 'MODULE_PATHNAME', 'powersync_validate_sync_rules' LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION powersync.validate_sync_rules(text) IS
  'Errors and warnings of a sync rules YAML text with their line/column; no rows when the rules are valid';

CREATE FUNCTION powersync.evaluate_row(rules text, source_table text, "row" jsonb)
RETURNS TABLE(bucket text, object_type text, object_id text, data text, checksum bigint)
AS 'MODULE_PATHNAME', 'powersync_evaluate_row' LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION powersync.evaluate_row(text, text, jsonb) IS
  'Bucket rows (unversioned bucket ids) a source row of table `t` or `schema.t` produces, with PUT op checksums';

CREATE FUNCTION powersync.evaluate_parameter_row(rules text, source_table text, "row" jsonb)
RETURNS TABLE(definition text, lookup jsonb, bucket_parameters jsonb)
AS 'MODULE_PATHNAME', 'powersync_evaluate_parameter_row' LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION powersync.evaluate_parameter_row(text, text, jsonb) IS
  'Parameter lookups ([definition, query number, values...]) and bucket parameters a source row produces';

CREATE FUNCTION powersync.static_buckets(rules text, token_claims jsonb, client_parameters jsonb)
RETURNS TABLE(bucket text, priority int)
AS 'MODULE_PATHNAME', 'powersync_static_buckets' LANGUAGE C STABLE;
COMMENT ON FUNCTION powersync.static_buckets(text, jsonb, jsonb) IS
  'Buckets a request (JWT claims, client parameters) gets without table lookups; see request_lookups for the rest';

CREATE FUNCTION powersync.request_lookups(rules text, token_claims jsonb, client_parameters jsonb)
RETURNS TABLE(definition text, query_index int, lookup jsonb, priority int)
AS 'MODULE_PATHNAME', 'powersync_request_lookups' LANGUAGE C STABLE;
COMMENT ON FUNCTION powersync.request_lookups(text, jsonb, jsonb) IS
  'Parameter lookups a request needs for table-based parameter queries (query_index is 0-based)';
