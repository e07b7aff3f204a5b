// Protocol tests of powersync-gateway over real HTTP against a real Postgres holding the pull-API
// contract fixture. Env: GW_BIN, PGHOST/PGPORT/PGDATABASE/PGUSER, KEYS_DIR, WORK_DIR.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { mint, hmacToken, loadKeys, sql, openStream, runner, keyOf } from './lib.mjs';

const keys = loadKeys(process.env.KEYS_DIR);
const T = runner();
const gateways = [];

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function startGateway(extra = []) {
  const port = await freePort();
  const db = `host=${process.env.PGHOST} port=${process.env.PGPORT} dbname=${process.env.PGDATABASE} user=${process.env.PGUSER}`;
  const args = ['--db', db, '--listen', `127.0.0.1:${port}`, '--jwks', `${process.env.KEYS_DIR}/jwks.json`,
    '--audience', 'powersync-test', ...extra];
  const proc = spawn(process.env.GW_BIN, args, { stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const gw = { proc, port, base: `http://127.0.0.1:${port}`, exited, stderr: () => stderr };
  gateways.push(gw);
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${gw.base}/probes/readiness`);
      if (r.status === 200) return gw;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gateway did not become ready: ${stderr}`);
}

const tok = (claims = {}, kid = 'hs256', header = {}) => mint(keys, kid, claims, header);
const u32 = (n) => ((n % 4294967296) + 4294967296) % 4294967296;
const authGet = (gw, path, token = tok()) => fetch(`${gw.base}${path}`, { headers: { authorization: `Token ${token}` } });

let mainGateway = null;

// Publishes a checkpoint and waits until the gateway has seen it, so tests never race the notice.
async function commit(before = '') {
  const cp = sql(`${before} SELECT powersync.fx_commit(); SELECT op_id || '@' || lsn FROM powersync.fx_checkpoint;`).split('\n').pop();
  for (const gw of mainGateway ? [mainGateway] : []) {
    for (let i = 0; i < 100; i++) {
      const body = await (await fetch(`${gw.base}/probes/readiness`)).json();
      if (body.checkpoint === cp) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`gateway never saw checkpoint ${cp}`);
  }
}

async function resetFixture(setup = '') {
  sql(`TRUNCATE powersync.fx_ops, powersync.fx_user_buckets, powersync.fx_write_checkpoints RESTART IDENTITY;`);
  await commit(setup);
}

async function expectError(res, status, code) {
  assert.equal(res.status, status);
  const body = await res.json();
  assert.equal(body.error.code, code, JSON.stringify(body));
  assert.equal(body.error.status, status);
  assert.equal(typeof body.error.description, 'string');
  return body;
}

async function main() {
  const gw = await startGateway(['--keepalive-seconds', '1', '--enable-crud-upload', '--crud-tables', 'todos,public.lists',
    '--crud-role', 'app_user', '--max-body-bytes', '65536']);
  mainGateway = gw;

  await T.test('liveness and readiness probes answer 200', async () => {
    assert.equal((await fetch(`${gw.base}/probes/liveness`)).status, 200);
    const r = await fetch(`${gw.base}/probes/readiness`);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).ready, true);
  });

  await T.test('CORS preflight allows authorization, content-type, x-user-agent', async () => {
    const r = await fetch(`${gw.base}/sync/stream`, { method: 'OPTIONS', headers: { origin: 'http://app.example', 'access-control-request-method': 'POST' } });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    const allowed = r.headers.get('access-control-allow-headers');
    for (const h of ['authorization', 'content-type', 'x-user-agent']) assert.ok(allowed.includes(h), allowed);
    assert.ok(r.headers.get('access-control-allow-methods').includes('POST'));
  });

  await T.test('unknown route answers 404 with the error envelope', async () => {
    await expectError(await fetch(`${gw.base}/nope`), 404, 'PSYNC_S2002');
  });

  await T.test('missing Authorization answers 401 PSYNC_S2106', async () => {
    await expectError(await fetch(`${gw.base}/sync/stream`, { method: 'POST', body: '{}' }), 401, 'PSYNC_S2106');
    await expectError(await fetch(`${gw.base}/write-checkpoint2.json`, { headers: { authorization: 'Basic abc' } }), 401, 'PSYNC_S2106');
  });

  for (const kid of ['hs256', 'hs384', 'hs512', 'rs256', 'rs384', 'rs512', 'es256', 'es384', 'es512']) {
    await T.test(`a valid ${kid.toUpperCase()} token is accepted`, async () => {
      const r = await authGet(gw, '/write-checkpoint2.json?client_id=alg-check', tok({}, kid));
      assert.equal(r.status, 200, await r.text());
    });
  }

  await T.test('Bearer form is accepted too', async () => {
    const r = await fetch(`${gw.base}/write-checkpoint2.json`, { headers: { authorization: `Bearer ${tok()}` } });
    assert.equal(r.status, 200);
  });

  const t0 = Math.floor(Date.now() / 1000);
  const hsSecret = Buffer.from(keys.hs256.secret, 'base64url');
  const rsaPublic = JSON.stringify((await (await import('node:fs')).promises.readFile(`${process.env.KEYS_DIR}/jwks.json`, 'utf8')));
  const badTokens = {
    'garbage': ['not-a-jwt', 'PSYNC_S2101'],
    'three garbage parts': ['a.b.c', 'PSYNC_S2101'],
    'alg none': [`${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'u1', aud: 'powersync-test', iat: t0, exp: t0 + 60 })).toString('base64url')}.`, 'PSYNC_S2101'],
    'bad signature': [tok().slice(0, -4) + 'AAAA', 'PSYNC_S2102'],
    'HS256 signed with the RSA public key (algorithm confusion)': [hmacToken(Buffer.from(rsaPublic), { alg: 'HS256', kid: 'rs256' }, { sub: 'u1', aud: 'powersync-test', iat: t0, exp: t0 + 60 }), 'PSYNC_S2102'],
    'unknown kid': [hmacToken(hsSecret, { alg: 'HS256', kid: 'nope' }, { sub: 'u1', aud: 'powersync-test', iat: t0, exp: t0 + 60 }), 'PSYNC_S2102'],
    'expired': [tok({ iat: t0 - 600, exp: t0 - 120 }), 'PSYNC_S2103'],
    'lifetime over 24 h': [tok({ exp: t0 + 90000 }), 'PSYNC_S2104'],
    'wrong audience': [tok({ aud: 'someone-else' }), 'PSYNC_S2105'],
    'no audience': [tok({ aud: undefined }), 'PSYNC_S2105'],
    'no sub': [tok({ sub: undefined }), 'PSYNC_S2101'],
    'issued in the future': [tok({ iat: t0 + 3600, exp: t0 + 4000 }), 'PSYNC_S2101'],
  };
  for (const [name, [token, code]] of Object.entries(badTokens)) {
    await T.test(`token rejected with 401 ${code}: ${name}`, async () => {
      await expectError(await fetch(`${gw.base}/sync/stream`, { method: 'POST', headers: { authorization: `Token ${token}` }, body: '{}' }), 401, code);
    });
  }

  await T.test('malformed JSON bodies answer 400', async () => {
    for (const body of ['{', '[1]', '{"buckets":"x"}', '{"buckets":[{"name":"a","after":"x"}]}', '{"parameters":5}']) {
      const r = await fetch(`${gw.base}/sync/stream`, { method: 'POST', headers: { authorization: `Token ${tok()}` }, body });
      assert.equal(r.status, 400, body);
      assert.equal((await r.json()).error.code, 'PSYNC_S2001');
    }
  });

  await T.test('oversized bodies answer 413', async () => {
    const r = await fetch(`${gw.base}/sync/stream`, { method: 'POST', headers: { authorization: `Token ${tok()}` }, body: 'x'.repeat(70000) });
    assert.equal(r.status, 413);
  });

  await T.test('first checkpoint, data by priority, partial and full complete', async () => {
    await resetFixture(`INSERT INTO powersync.fx_user_buckets VALUES ('u1','a',3),('u1','b',0),('*','global[]',3);
         SELECT powersync.fx_put('a','1','{"id":"1"}'); SELECT powersync.fx_put('b','2','{"id":"2"}');
         SELECT powersync.fx_put('a','3','{"id":"3","s":"é\\n"}');`);
    const s = await openStream(gw.base, tok());
    assert.equal(s.res.status, 200);
    assert.equal(s.res.headers.get('content-type'), 'application/x-ndjson');
    assert.equal(s.res.headers.get('x-accel-buffering'), 'no');
    const lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines.map(keyOf), ['checkpoint', 'data', 'partial_checkpoint_complete', 'data', 'checkpoint_complete']);
    const cp = lines[0].checkpoint;
    assert.equal(cp.last_op_id, '3');
    assert.deepEqual(cp.buckets.map((b) => b.bucket), ['a', 'b', 'global[]']);
    assert.equal(cp.buckets[2].checksum, 0);
    assert.equal(cp.buckets[2].count, 0);
    assert.equal(lines[1].data.bucket, 'b');
    assert.deepEqual(lines[2].partial_checkpoint_complete, { last_op_id: '3', priority: 0 });
    const a = lines[3].data;
    assert.equal(a.bucket, 'a');
    assert.deepEqual(a.data.map((o) => o.op_id), ['1', '3']);
    assert.equal(a.data[1].data, '{"id":"3","s":"é\\n"}');
    assert.equal(typeof a.data[0].data, 'string');
    const sum = u32(a.data.reduce((acc, o) => acc + o.checksum, 0));
    assert.equal(u32(cp.buckets[0].checksum), sum);
    assert.ok(cp.buckets.every((b) => b.checksum >= -2147483648 && b.checksum <= 2147483647));
    assert.deepEqual(lines[4], { checkpoint_complete: { last_op_id: '3' } });
    s.close();
  });

  await T.test('empty bucket set still gets checkpoint_complete', async () => {
    await resetFixture();
    const s = await openStream(gw.base, tok({ sub: 'nobody' }));
    const lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines.map(keyOf), ['checkpoint', 'checkpoint_complete']);
    assert.deepEqual(lines[0].checkpoint.buckets, []);
    s.close();
  });

  await T.test('live changes: diff of changed buckets only; unrelated commits send nothing; removals', async () => {
    await resetFixture(`INSERT INTO powersync.fx_user_buckets VALUES ('u1','a',3),('u1','b',3);
         SELECT powersync.fx_put('a','1','{}'); SELECT powersync.fx_put('b','2','{}');`);
    const s = await openStream(gw.base, tok());
    await s.until('checkpoint_complete');
    await commit(`SELECT powersync.fx_put('b','3','{"v":1}');`);
    let lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines.map(keyOf), ['checkpoint_diff', 'data', 'checkpoint_complete']);
    assert.equal(lines[0].checkpoint_diff.last_op_id, '3');
    assert.deepEqual(lines[0].checkpoint_diff.updated_buckets.map((b) => [b.bucket, b.count]), [['b', 2]]);
    assert.deepEqual(lines[0].checkpoint_diff.removed_buckets, []);
    assert.equal(lines[1].data.after, '2');
    assert.deepEqual(lines[1].data.data.map((o) => o.op_id), ['3']);

    await commit(`SELECT powersync.fx_put('elsewhere','9','{}');`);
    assert.ok(await s.quiet(800), 'a commit not touching the client must send nothing');

    await commit(`DELETE FROM powersync.fx_user_buckets WHERE bucket = 'a'; SELECT powersync.fx_put('elsewhere','10','{}');`);
    lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines.map(keyOf), ['checkpoint_diff', 'checkpoint_complete']);
    assert.deepEqual(lines[0].checkpoint_diff.removed_buckets, ['a']);
    s.close();
  });

  await T.test('client positions: only ops after "after" are sent', async () => {
    await resetFixture(`INSERT INTO powersync.fx_user_buckets VALUES ('u1','a',3);
         SELECT powersync.fx_put('a', i::text, '{}') FROM generate_series(1,5) i;`);
    const s = await openStream(gw.base, tok(), { raw_data: true, buckets: [{ name: 'a', after: '3' }, { name: 'gone', after: '1' }] });
    const lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines[1].data.data.map((o) => o.op_id), ['4', '5']);
    assert.equal(lines[1].data.after, '3');
    s.close();
  });

  await T.test('data is chunked at 1000 ops with after/next_after/has_more', async () => {
    await resetFixture(`INSERT INTO powersync.fx_user_buckets VALUES ('u1','big',3);
         SELECT powersync.fx_put('big', i::text, '{}') FROM generate_series(1,2500) i;`);
    const s = await openStream(gw.base, tok());
    const lines = await s.until('checkpoint_complete');
    const data = lines.filter((l) => l.data).map((l) => l.data);
    assert.deepEqual(data.map((d) => d.data.length), [1000, 1000, 500]);
    assert.deepEqual(data.map((d) => [d.after, d.next_after, d.has_more]), [['0', '1000', true], ['1000', '2000', true], ['2000', '2500', false]]);
    s.close();
  });

  await T.test('legacy clients (raw_data absent) get rows as nested objects', async () => {
    await resetFixture(`INSERT INTO powersync.fx_user_buckets VALUES ('u1','a',3); SELECT powersync.fx_put('a','1','{"id":"1","n":2}');`);
    const s = await openStream(gw.base, tok(), {});
    const lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines[1].data.data[0].data, { id: '1', n: 2 });
    s.close();
  });

  await T.test('client parameters reach request_buckets', async () => {
    await resetFixture();
    const s = await openStream(gw.base, tok(), { raw_data: true, parameters: { extra_buckets: ['p1', 'p2'] } });
    const lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines[0].checkpoint.buckets.map((b) => b.bucket), ['p1', 'p2']);
    s.close();
  });

  await T.test('write checkpoint round trip: endpoint value appears in a later checkpoint_diff', async () => {
    await resetFixture(`INSERT INTO powersync.fx_user_buckets VALUES ('u1','a',3);`);
    const s = await openStream(gw.base, tok(), { raw_data: true, client_id: 'client-1' });
    const first = await s.until('checkpoint_complete');
    assert.equal(first[0].checkpoint.write_checkpoint, undefined);
    const r = await authGet(gw, '/write-checkpoint2.json?client_id=client-1');
    const body = await r.json();
    assert.deepEqual(body, { data: { write_checkpoint: '1' } });
    await commit(``);  // replication passes the WAL head: empty checkpoint
    const lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines.map(keyOf), ['checkpoint_diff', 'checkpoint_complete']);
    assert.deepEqual(lines[0].checkpoint_diff, { last_op_id: '0', write_checkpoint: '1', updated_buckets: [], removed_buckets: [] });
    s.close();
  });

  await T.test('compaction target beyond the checkpoint withholds checkpoint_complete', async () => {
    await resetFixture(`INSERT INTO powersync.fx_user_buckets VALUES ('u1','c',3);
         INSERT INTO powersync.fx_ops (bucket, op, checksum, data) VALUES ('c','MOVE',5,'{"target":"100"}');`);
    const s = await openStream(gw.base, tok());
    const lines = [await s.next(), await s.next()];
    assert.deepEqual(lines.map(keyOf), ['checkpoint', 'data']);
    assert.deepEqual(lines[1].data.data[0], { op_id: '1', op: 'MOVE', checksum: 5 });
    assert.ok(await s.quiet(800), 'no complete line for an invalidated checkpoint');
    await commit(`SELECT powersync.fx_put('c','x','{}'); SELECT setval('powersync.fx_ops_op_id_seq', 100);
         SELECT powersync.fx_put('c','y','{}');`);
    const next = await s.until('checkpoint_complete');
    assert.deepEqual(next.map(keyOf), ['checkpoint_diff', 'data', 'checkpoint_complete']);
    s.close();
  });

  await T.test('more than 1000 buckets fails with PSYNC_S2305', async () => {
    await resetFixture();
    sql(`INSERT INTO powersync.fx_user_buckets SELECT 'many', 'b' || i, 3 FROM generate_series(1,1001) i;`);
    const r = await fetch(`${gw.base}/sync/stream`, { method: 'POST', headers: { authorization: `Token ${tok({ sub: 'many' })}` }, body: '{"raw_data":true}' });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, 'PSYNC_S2305');
  });

  await T.test('token_expires_in lines, then {"token_expires_in":0} ends the stream', async () => {
    await resetFixture();
    const now = Math.floor(Date.now() / 1000);
    const s = await openStream(gw.base, tok({ iat: now, exp: now + 3 }));
    const seen = [];
    for (;;) {
      const line = await s.next(8000, { keepTokenLines: true });
      if (line === null) break;
      if ('token_expires_in' in line) seen.push(line.token_expires_in);
    }
    assert.ok(seen.length >= 2, JSON.stringify(seen));
    assert.equal(seen[seen.length - 1], 0);
    assert.ok(seen.slice(0, -1).every((v) => v > 0 && v <= 3), JSON.stringify(seen));
  });

  await T.test('a token already expired (within tolerance) gets only {"token_expires_in":0}', async () => {
    const now = Math.floor(Date.now() / 1000);
    const s = await openStream(gw.base, tok({ iat: now - 100, exp: now - 10 }));
    assert.deepEqual(await s.next(3000, { keepTokenLines: true }), { token_expires_in: 0 });
    assert.equal(await s.next(3000, { keepTokenLines: true }), null);
  });

  await T.test('checkpoint-request keeps the highest id per client, 400 on a bad id', async () => {
    const post = (body) => fetch(`${gw.base}/sync/checkpoint-request`, { method: 'POST', headers: { authorization: `Token ${tok()}` }, body });
    assert.equal((await post('{"client_id":"c","checkpoint_request_id":"0"}')).status, 400);
    assert.equal((await post('{"client_id":"c","checkpoint_request_id":"x"}')).status, 400);
    const stored = async (id) => {
      const r = await post(JSON.stringify({ client_id: 'c', checkpoint_request_id: id }));
      assert.equal(r.status, 200);
      return (await r.json()).data.checkpoint_request_id;
    };
    assert.equal(await stored('5'), '5');
    assert.equal(await stored(3), '5');
    assert.equal(await stored('9'), '9');
  });

  await runCrudTests(gw);

  await T.test('429 beyond --max-connections; a closed stream frees its slot', async () => {
    await resetFixture();
    const small = await startGateway(['--max-connections', '2']);
    const a = await openStream(small.base, tok());
    const b = await openStream(small.base, tok());
    await a.until('checkpoint_complete');
    await b.until('checkpoint_complete');
    const r = await fetch(`${small.base}/sync/stream`, { method: 'POST', headers: { authorization: `Token ${tok()}` }, body: '{}' });
    assert.equal(r.status, 429);
    a.close();
    let ok = false;
    for (let i = 0; i < 20 && !ok; i++) {
      await new Promise((res) => setTimeout(res, 100));
      const c = await openStream(small.base, tok());
      ok = c.res.status === 200;
      c.close();
    }
    assert.ok(ok, 'slot freed after disconnect');
    b.close();
  });

  await T.test('SIGTERM ends open streams cleanly and exits 0', async () => {
    const g = await startGateway();
    const s = await openStream(g.base, tok());
    await s.until('checkpoint_complete');
    g.proc.kill('SIGTERM');
    assert.equal(await s.next(5000), null);
    assert.equal(s.endError, null, 'stream ended with a terminating chunk, not an error');
    const { code } = await g.exited;
    assert.equal(code, 0, g.stderr());
  });
}

async function runCrudTests(gw) {
  sql(`DROP TABLE IF EXISTS todos, lists, secrets;
       DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_user') THEN CREATE ROLE app_user; END IF; END $$;
       CREATE TABLE lists (id uuid PRIMARY KEY, name text NOT NULL,
         owner_id text DEFAULT (current_setting('request.jwt.claims', true)::jsonb->>'sub'));
       CREATE TABLE todos (id text PRIMARY KEY, list_id uuid REFERENCES lists(id), description text NOT NULL,
         completed boolean DEFAULT false, due timestamptz, amount numeric(10,2), tags text[], meta jsonb);
       CREATE TABLE secrets (id text PRIMARY KEY);
       GRANT ALL ON lists, todos TO app_user;
       ALTER TABLE lists ENABLE ROW LEVEL SECURITY;
       CREATE POLICY own ON lists USING (owner_id = current_setting('request.jwt.claims', true)::jsonb->>'sub');`);
  const L = '11111111-1111-1111-1111-111111111111';
  const upload = (batch, token = tok()) => fetch(`${gw.base}/api/crud`, {
    method: 'POST', headers: { authorization: `Token ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ batch }),
  });

  await T.test('CRUD upload: PUT/PATCH/DELETE in one transaction with SQLite values coerced', async () => {
    const r = await upload([
      { op_id: 1, op: 'PUT', type: 'lists', id: L, tx_id: 1, data: { name: 'Groceries' } },
      { op_id: 2, op: 'PUT', type: 'todos', id: 't1', tx_id: 1, data: { list_id: L, description: 'milk', completed: 1, due: '2026-01-02 03:04:05Z', amount: '12.50', tags: '["a","b"]', meta: '{"k":1}' } },
      { op_id: 3, op: 'PUT', type: 'todos', id: 't2', tx_id: 1, data: { list_id: L, description: 'bread', completed: 0 } },
      { op_id: 4, op: 'PATCH', type: 'todos', id: 't1', tx_id: 1, data: { completed: 0, description: 'oat milk' } },
      { op_id: 5, op: 'DELETE', type: 'todos', id: 't2', tx_id: 1 },
    ]);
    assert.equal(r.status, 200, await r.text());
    assert.equal(sql(`SELECT owner_id FROM lists`), 'u1');
    assert.equal(sql(`SELECT description || '|' || completed || '|' || (due AT TIME ZONE 'UTC') || '|' || amount || '|' || tags::text || '|' || meta::text FROM todos`),
      'oat milk|false|2026-01-02 03:04:05|12.50|{a,b}|{"k": 1}');
    assert.equal(sql(`SELECT count(*) FROM todos`), '1');
  });

  await T.test('CRUD upload: PUT of an existing id is an upsert', async () => {
    const r = await upload([{ op: 'PUT', type: 'todos', id: 't1', data: { list_id: L, description: 'again' } }]);
    assert.equal(r.status, 200);
    assert.equal(sql(`SELECT description FROM todos WHERE id = 't1'`), 'again');
  });

  await T.test('CRUD upload: a failing entry rolls back the whole batch and is named', async () => {
    const r = await upload([
      { op: 'PUT', type: 'todos', id: 't3', data: { list_id: L, description: 'ok' } },
      { op: 'PUT', type: 'todos', id: 't4', data: { list_id: L, completed: 'maybe', description: 'x' } },
    ]);
    assert.equal(r.status, 400);
    const body = await r.json();
    assert.equal(body.error.details.index, 1);
    assert.equal(body.error.details.entry.id, 't4');
    assert.ok(body.error.details.reason.includes('boolean'), body.error.details.reason);
    assert.equal(sql(`SELECT count(*) FROM todos WHERE id = 't3'`), '0');
  });

  await T.test('CRUD upload: tables outside the allow-list, unknown columns and bad bodies are rejected', async () => {
    assert.equal((await upload([{ op: 'PUT', type: 'secrets', id: 'x', data: {} }])).status, 403);
    const r = await upload([{ op: 'PUT', type: 'todos', id: 'x', data: { 'description"); drop table todos; --': 1 } }]);
    assert.equal(r.status, 400);
    assert.ok((await r.json()).error.details.reason.includes('no column'));
    const bad = await fetch(`${gw.base}/api/crud`, { method: 'POST', headers: { authorization: `Token ${tok()}` }, body: '{"batch":5}' });
    assert.equal(bad.status, 400);
    assert.equal(sql(`SELECT count(*) FROM todos`), '1');
  });

  await T.test('CRUD upload runs as the configured role with the JWT claims (row-level security)', async () => {
    // u2 cannot see u1's list, so its PATCH changes nothing.
    const r = await upload([{ op: 'PATCH', type: 'lists', id: L, data: { name: 'hijacked' } }], tok({ sub: 'u2' }));
    assert.equal(r.status, 200);
    assert.equal(sql(`SELECT name FROM lists`), 'Groceries');
    assert.equal((await upload([{ op: 'PUT', type: 'todos', id: 'z', data: { description: 'x' } }], 'bad')).status, 401);
  });
}

try {
  await main();
} catch (e) {
  await T.test('protocol suite setup', async () => { throw e; });
} finally {
  for (const g of gateways) if (g.proc.exitCode === null) g.proc.kill('SIGKILL');
}
process.exit(T.finish() ? 1 : 0);
