-- Opt-in test aid (E2E_REQUEST_BUCKETS_STANDIN=1 bash test/suites/60-e2e-client.sh): a stand-in for
-- powersync.request_buckets() that knows only the demo rules (test/demo/sync_rules.yaml), for running the
-- end-to-end suite before the replication part ships the real one. Not 'as of' the checkpoint; never used by default.
SET check_function_bodies = off;
CREATE FUNCTION powersync.request_buckets(claims jsonb, params jsonb, at bigint) RETURNS TABLE(bucket text, priority int)
LANGUAGE sql STABLE AS $$
  WITH v AS (SELECT id, content FROM powersync.sync_rules WHERE state = 'ACTIVE')
  SELECT v.id || '#' || s.bucket, s.priority FROM v, powersync.static_buckets(v.content, claims, params) s
  UNION ALL
  SELECT v.id || '#list_todos[' || to_json(l.id::text)::text || ']', 3 FROM v, public.lists l WHERE l.owner_id = claims->>'sub'
$$;
