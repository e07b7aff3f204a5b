-- Sync rules SQL API: validate_sync_rules, evaluate_row, evaluate_parameter_row, static_buckets,
-- request_lookups, and every class of bad input (errors carry line/column, never a crash).
\set VERBOSITY default

-- Example rules used throughout: a global bucket, a per-user bucket and an org bucket via lookups.
SELECT $rules$
bucket_definitions:
  global:
    data:
      - SELECT * FROM announcements
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, title, done FROM todos WHERE owner = bucket.user_id
  by_org:
    priority: 1
    parameters: SELECT org_id FROM memberships WHERE user_id = request.user_id()
    data:
      - SELECT * FROM docs WHERE docs.org_id = bucket.org_id
$rules$ AS rules \gset

-- Valid rules: no rows.
SELECT * FROM powersync.validate_sync_rules(:'rules');

-- Warnings are listed but the rules stay usable.
SELECT * FROM powersync.validate_sync_rules($$
bucket_definitions:
  b:
    parameters: SELECT request.parameters() ->> 'project' AS project
    data:
      - SELECT * FROM Assets WHERE project = bucket.project
$$);

-- evaluate_row: bucket rows with PUT checksums (unsigned 32-bit).
SELECT * FROM powersync.evaluate_row(:'rules', 'todos', '{"id": "t1", "title": "Milk", "done": false, "owner": "u1"}');
SELECT * FROM powersync.evaluate_row(:'rules', 'public.announcements', '{"id": "a1", "text": "hi", "_internal": 1, "n": 1.5}');
-- The spec's checksum vector: put.test.t1.{"id":"t1","description":"Test 1"} -> 920318466
SELECT bucket, object_type, object_id, data, checksum
  FROM powersync.evaluate_row($$
bucket_definitions:
  b:
    data:
      - SELECT * FROM test
$$, 'test', '{"id": "t1", "description": "Test 1"}');
-- Integer ids become text; a row of an unknown table produces nothing.
SELECT object_id, data FROM powersync.evaluate_row(:'rules', 'docs', '{"id": 42, "org_id": "o1"}');
SELECT count(*) FROM powersync.evaluate_row(:'rules', 'nope', '{"id": "x"}');
SELECT count(*) FROM powersync.evaluate_row(:'rules', 'other_schema.todos', '{"id": "x", "owner": "u1"}');
-- A row not matching any bucket produces nothing.
SELECT count(*) FROM powersync.evaluate_row(:'rules', 'todos', '{"id": "t2", "owner": null}');

-- evaluate_parameter_row: lookups and stored bucket parameters.
SELECT * FROM powersync.evaluate_parameter_row(:'rules', 'memberships', '{"user_id": "u1", "org_id": "o1"}');
SELECT * FROM powersync.evaluate_parameter_row(:'rules', 'todos', '{"id": "t1"}');

-- static_buckets / request_lookups.
SELECT * FROM powersync.static_buckets(:'rules', '{"sub": "u1"}', '{}');
SELECT * FROM powersync.request_lookups(:'rules', '{"sub": "u1"}', '{}');
SELECT * FROM powersync.static_buckets(:'rules', NULL, NULL);
SELECT * FROM powersync.static_buckets($$
bucket_definitions:
  projects:
    accept_potentially_dangerous_queries: true
    parameters: SELECT value AS project FROM json_each(request.parameters() -> 'projects')
    data: []
$$, '{"sub": "u1"}', '{"projects": ["p1", "p2"]}');

-- Bad input: every class gives an error with a position, none crashes.
SELECT * FROM powersync.validate_sync_rules('bucket_definitions: [unclosed');
SELECT * FROM powersync.validate_sync_rules('just a string');
SELECT * FROM powersync.validate_sync_rules($$
bucket_definitions:
  b:
    data:
      - SELECT * FROM a JOIN b ON a.id = b.id
      - SELECT id FROM a GROUP BY id
      - SELECT * FROM a LIMIT 5
$$);
SELECT * FROM powersync.validate_sync_rules($$
bucket_definitions:
  b:
    data:
      - SELECT id, nope(x) AS y FROM a
      - SELECT id, upper(x, 1) AS y FROM a
      - SELECT title FROM a
$$);
SELECT * FROM powersync.validate_sync_rules($$
bucket_definitions:
  b:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM a WHERE archived = 0
      - SELECT * FROM a WHERE owner = upper(bucket.user_id)
$$);
SELECT * FROM powersync.validate_sync_rules($$
bucket_definitions:
  b:
    parameters: SELECT id FROM users WHERE json_extract(users.doc, request.parameter('path')) = 1
    data: []
$$);
SELECT * FROM powersync.validate_sync_rules($$
streams:
  s:
    query: SELECT * FROM todos
$$);
SELECT * FROM powersync.validate_sync_rules($$
config:
  edition: 2
bucket_definitions: {}
$$);

-- Invalid rules make the evaluation functions fail with the first problem and its position.
SELECT * FROM powersync.evaluate_row($$
bucket_definitions:
  b:
    data:
      - SELECT * FROM a LIMIT 5
$$, 'a', '{"id": "x"}');
SELECT * FROM powersync.static_buckets('streams: {}', '{}', '{}');

-- Bad rows and arguments.
SELECT * FROM powersync.evaluate_row(:'rules', 'todos', '[1, 2]');
SELECT * FROM powersync.evaluate_row(:'rules', 'todos', '"text"');
SELECT * FROM powersync.evaluate_row(:'rules', '', '{}');
SELECT * FROM powersync.evaluate_row(:'rules', 'a.', '{}');
SELECT * FROM powersync.static_buckets(:'rules', '[]', '{}');
SELECT * FROM powersync.evaluate_row(:'rules', 'todos', NULL);
SELECT * FROM powersync.static_buckets(NULL, '{}', '{}');

-- Evaluation errors are warnings; the query contributes nothing.
SELECT * FROM powersync.evaluate_row($$
bucket_definitions:
  by_tag:
    parameters: SELECT request.jwt() ->> 'tag' AS tag
    data:
      - SELECT * FROM posts WHERE bucket.tag IN posts.tags
$$, 'posts', '{"id": "p1", "tags": "not an array"}');
