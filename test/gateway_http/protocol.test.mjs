// Protocol tests of powersync-gateway over real HTTP against a real Postgres running the extension:
// rules.yaml deployed, rows written to schema.sql's tables, the replication worker's checkpoints. Env: GW_BIN, PGHOST/PGPORT/PGDATABASE/PGUSER, KEYS_DIR, WORK_DIR.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import net from 'node:net';
import { mint, hmacToken, loadKeys, sql, openStream, runner, keyOf } from './lib.mjs';
import { runJwksUrlTests } from './jwks_url.test.mjs';

const keys = loadKeys(process.env.KEYS_DIR);
const T = runner();
const gateways = [];

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function startGateway(extra = [], { noFileKeys = false } = {}) {
  const port = await freePort();
  const db = `host=${process.env.PGHOST} port=${process.env.PGPORT} dbname=${process.env.PGDATABASE} user=${process.env.PGUSER}`;
  const keyArgs = noFileKeys ? [] : ['--jwks', `${process.env.KEYS_DIR}/jwks.json`];
  const args = ['--db', db, '--listen', `127.0.0.1:${port}`, ...keyArgs, '--audience', 'powersync-test', ...extra];
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

const lsnValue = (lsn) => { const [hi, lo] = lsn.split('/'); return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`); };

// Runs `statements` (source-table writes), waits until the replication worker has a checkpoint past
// them and until the gateway has seen that checkpoint (so tests never race the notice); returns its
// op id as a BigInt.
async function commit(statements = '') {
  if (statements) sql(statements);  // committed before waiting: psql -c runs one transaction
  const [op, lsn] = sql(`SELECT powersync.wait_for_checkpoint(); SELECT op_id || ' ' || lsn FROM powersync.checkpoint();`)
    .split('\n').pop().split(' ');
  for (const gw of mainGateway ? [mainGateway] : []) {
    for (let i = 0; i < 250; i++) {
      const seen = (await (await fetch(`${gw.base}/probes/readiness`)).json()).checkpoint;
      if (seen) {
        const [seenOp, seenLsn] = seen.split('@');
        if (BigInt(seenOp) >= BigInt(op) && lsnValue(seenLsn) >= lsnValue(lsn)) return BigInt(op);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`gateway never saw checkpoint ${op}@${lsn}`);
  }
  return BigInt(op);
}

// Bucket ids carry the active rules version ("<version>#name[...]").
let version = null;
const bucket = (name, ...params) => `${version}#${name}${JSON.stringify(params)}`;
const ids = (ops) => ops.map((o) => BigInt(o.op_id));
const ascending = (xs) => xs.every((x, i) => i === 0 || xs[i - 1] < x);

// The backends serving the gateway's checkpoint-notice connection (LISTEN + checkpoint reads).
function listenerPids() {
  return sql(`SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
                AND (query LIKE 'LISTEN powersync_checkpoint%' OR query LIKE '%FROM powersync.checkpoint() cp%'
                     OR query LIKE '%FROM powersync.checkpoint_changes(%')`)
    .split(' ').filter(Boolean).map(Number);
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
  const gw = await startGateway(['--bson-streams', '--keepalive-seconds', '1', '--enable-crud-upload', '--crud-tables', 'todos,public.lists',
    '--crud-role', 'app_user', '--max-body-bytes', '65536']);
  mainGateway = gw;
  version = sql(`SELECT id FROM powersync.sync_rules WHERE state = 'ACTIVE'`);
  assert.ok(/^[0-9]+$/.test(version), `no active sync rules version: ${version}`);

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

  await T.test('first checkpoint, data by priority, partial and full complete (real rules and worker)', async () => {
    const cp = await commit(`INSERT INTO urgent VALUES ('u1', 'p1', 'now');
      INSERT INTO items VALUES ('i1', 'p1', 'one'), ('i3', 'p1', E'é\\n"q"');`);
    const s = await openStream(gw.base, tok({ sub: 'p1' }));
    assert.equal(s.res.status, 200);
    assert.equal(s.res.headers.get('content-type'), 'application/x-ndjson');
    assert.equal(s.res.headers.get('x-accel-buffering'), 'no');
    const lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines.map(keyOf), ['checkpoint', 'data', 'partial_checkpoint_complete', 'data', 'checkpoint_complete']);
    const c = lines[0].checkpoint;
    assert.ok(BigInt(c.last_op_id) >= cp, `${c.last_op_id} < ${cp}`);
    const byName = Object.fromEntries(c.buckets.map((b) => [b.bucket, b]));
    assert.deepEqual(Object.keys(byName).sort(), [bucket('everyone'), bucket('mine', 'p1'), bucket('urgent', 'p1')].sort());
    assert.deepEqual([byName[bucket('everyone')].checksum, byName[bucket('everyone')].count], [0, 0]);
    assert.equal(byName[bucket('urgent', 'p1')].priority, 0);
    assert.equal(byName[bucket('mine', 'p1')].priority, 3);
    assert.equal(lines[1].data.bucket, bucket('urgent', 'p1'));
    assert.deepEqual(lines[2].partial_checkpoint_complete, { last_op_id: c.last_op_id, priority: 0 });
    const d = lines[3].data;
    assert.equal(d.bucket, bucket('mine', 'p1'));
    assert.equal(d.data.length, 2);
    assert.ok(ascending(ids(d.data)) && ids(d.data).every((id) => id <= BigInt(c.last_op_id)));
    const row = Object.fromEntries(d.data.map((o) => [o.object_id, o]));
    assert.equal(row.i3.op, 'PUT');
    assert.equal(row.i3.object_type, 'items');
    assert.equal(typeof row.i3.data, 'string');
    assert.deepEqual(JSON.parse(row.i3.data), { id: 'i3', v: 'é\n"q"' });
    assert.equal(typeof row.i3.subkey, 'string');
    for (const [line, b] of [[lines[1].data, byName[bucket('urgent', 'p1')]], [d, byName[bucket('mine', 'p1')]]]) {
      assert.equal(u32(b.checksum), u32(line.data.reduce((acc, o) => acc + o.checksum, 0)), line.bucket);
      assert.equal(b.count, line.data.length);
    }
    assert.ok(c.buckets.every((b) => b.checksum >= -2147483648 && b.checksum <= 2147483647));
    assert.deepEqual(lines[4], { checkpoint_complete: { last_op_id: c.last_op_id } });
    s.close();
  });

  await T.test('BSON stream for clients that prefer it (Accept as the JS SDK sends it), same lines as NDJSON', async () => {
    const accept = { accept: 'application/vnd.powersync.bson-stream;q=0.9,application/x-ndjson;q=0.8' };
    const b = await openStream(gw.base, tok({ sub: 'p1' }), { raw_data: true }, accept);
    assert.equal(b.res.headers.get('content-type'), 'application/vnd.powersync.bson-stream');
    const bsonLines = await b.until('checkpoint_complete');
    b.close();
    const n = await openStream(gw.base, tok({ sub: 'p1' }));
    const jsonLines = await n.until('checkpoint_complete');
    n.close();
    assert.deepEqual(bsonLines, jsonLines);
    assert.equal(typeof bsonLines[3].data.data[0].data, 'string');
    for (const other of ['application/x-ndjson', '*/*', 'application/x-ndjson;q=1, application/vnd.powersync.bson-stream;q=0.5',
      'application/vnd.powersync.bson-stream;q=0']) {
      const s = await openStream(gw.base, tok({ sub: 'p1' }), { raw_data: true }, { accept: other });
      assert.equal(s.res.headers.get('content-type'), 'application/x-ndjson', other);
      s.close();
    }
    const plain = await startGateway();  // without --bson-streams: NDJSON for everyone
    const p = await openStream(plain.base, tok({ sub: 'p1' }), { raw_data: true }, accept);
    assert.equal(p.res.headers.get('content-type'), 'application/x-ndjson');
    p.close();
    plain.proc.kill('SIGTERM');
  });

  await T.test('empty bucket set still gets checkpoint_complete', async () => {
    const s = await openStream(gw.base, tok({ sub: 'nobody' }));
    const lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines.map(keyOf), ['checkpoint', 'checkpoint_complete']);
    assert.deepEqual(lines[0].checkpoint.buckets, []);
    s.close();
  });

  await T.test('live changes: diff of changed buckets only; unrelated commits send nothing; removals', async () => {
    await commit(`INSERT INTO items VALUES ('l-a', 'live', 'a'); INSERT INTO members VALUES ('live:g1', 'live', 'g1');
      INSERT INTO group_items VALUES ('g-a', 'g1', 'x');`);
    const s = await openStream(gw.base, tok({ sub: 'live' }));
    const first = await s.until('checkpoint_complete');
    assert.ok(first[0].checkpoint.buckets.some((b) => b.bucket === bucket('groups', 'g1')));
    const firstMine = first.find((l) => l.data && l.data.bucket === bucket('mine', 'live')).data.data;
    const cp2 = await commit(`INSERT INTO items VALUES ('l-b', 'live', 'b');`);
    let lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines.map(keyOf), ['checkpoint_diff', 'data', 'checkpoint_complete']);
    const diff = lines[0].checkpoint_diff;
    assert.ok(BigInt(diff.last_op_id) >= cp2);
    assert.deepEqual(diff.updated_buckets.map((b) => [b.bucket, b.count]), [[bucket('mine', 'live'), 2]]);
    assert.deepEqual(diff.removed_buckets, []);
    assert.equal(lines[1].data.after, firstMine[firstMine.length - 1].op_id);  // the position reached
    assert.deepEqual(lines[1].data.data.map((o) => o.object_id), ['l-b']);
    const sum = (ops) => ops.reduce((acc, o) => acc + o.checksum, 0);
    assert.equal(u32(diff.updated_buckets[0].checksum), u32(sum(firstMine) + sum(lines[1].data.data)));
    assert.deepEqual(lines[2], { checkpoint_complete: { last_op_id: diff.last_op_id } });

    await commit(`INSERT INTO items VALUES ('other-1', 'someone-else', 'z');`);
    assert.ok(await s.quiet(800), 'a commit not touching the client must send nothing');

    await commit(`DELETE FROM members WHERE id = 'live:g1';`);
    lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines.map(keyOf), ['checkpoint_diff', 'checkpoint_complete']);
    assert.deepEqual(lines[0].checkpoint_diff.removed_buckets, [bucket('groups', 'g1')]);
    assert.deepEqual(lines[0].checkpoint_diff.updated_buckets, []);
    s.close();
  });

  await T.test('client positions: only ops after "after" are sent; unknown buckets are dropped', async () => {
    await commit(`INSERT INTO items SELECT 'pos-' || i, 'pos', 'v' FROM generate_series(1, 5) i;`);
    const all = await openStream(gw.base, tok({ sub: 'pos' }));
    const ops = (await all.until('checkpoint_complete')).find((l) => l.data && l.data.bucket === bucket('mine', 'pos')).data.data;
    all.close();
    assert.equal(ops.length, 5);
    const s = await openStream(gw.base, tok({ sub: 'pos' }), { raw_data: true,
      buckets: [{ name: bucket('mine', 'pos'), after: ops[2].op_id }, { name: 'gone', after: '1' }] });
    const lines = await s.until('checkpoint_complete');
    const data = lines.filter((l) => l.data && l.data.bucket === bucket('mine', 'pos'));
    assert.equal(data.length, 1);
    assert.deepEqual(data[0].data.data.map((o) => o.op_id), [ops[3].op_id, ops[4].op_id]);
    assert.equal(data[0].data.after, ops[2].op_id);
    assert.ok(!lines[0].checkpoint.buckets.some((b) => b.bucket === 'gone'));
    s.close();
  });

  await T.test('data is chunked at 1000 ops with after/next_after/has_more', async () => {
    await commit(`INSERT INTO items SELECT 'big-' || i, 'big', 'v' FROM generate_series(1, 2500) i;`);
    const s = await openStream(gw.base, tok({ sub: 'big' }));
    const lines = await s.until('checkpoint_complete');
    const data = lines.filter((l) => l.data && l.data.bucket === bucket('mine', 'big')).map((l) => l.data);
    assert.deepEqual(data.map((d) => d.data.length), [1000, 1000, 500]);
    assert.deepEqual(data.map((d) => [d.after, d.has_more]), [['0', true], [data[0].next_after, true], [data[1].next_after, false]]);
    for (const d of data) assert.equal(d.next_after, d.data[d.data.length - 1].op_id);
    assert.ok(ascending(data.flatMap((d) => ids(d.data))));
    s.close();
  });

  await T.test('legacy clients (raw_data absent) get rows as nested objects', async () => {
    await commit(`INSERT INTO items VALUES ('leg-1', 'legacy', 'n');`);
    const s = await openStream(gw.base, tok({ sub: 'legacy' }), {});
    const lines = await s.until('checkpoint_complete');
    const d = lines.find((l) => l.data && l.data.bucket === bucket('mine', 'legacy')).data;
    assert.deepEqual(d.data[0].data, { id: 'leg-1', v: 'n' });
    s.close();
  });

  await T.test('client parameters reach the rules (request.parameters())', async () => {
    await commit(`INSERT INTO project_items VALUES ('pi-1', 'apollo', 'launch');`);
    const s = await openStream(gw.base, tok({ sub: 'nobody' }), { raw_data: true, parameters: { project: 'apollo' } });
    const lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines[0].checkpoint.buckets.map((b) => b.bucket), [bucket('by_project', 'apollo')]);
    assert.deepEqual(lines[1].data.data.map((o) => o.object_id), ['pi-1']);
    s.close();
  });

  await T.test('write checkpoint round trip: endpoint value appears in a later checkpoint_diff', async () => {
    const s = await openStream(gw.base, tok({ sub: 'nobody' }), { raw_data: true, client_id: 'client-1' });
    const first = await s.until('checkpoint_complete');
    assert.equal(first[0].checkpoint.write_checkpoint, undefined);
    const r = await authGet(gw, '/write-checkpoint2.json?client_id=client-1', tok({ sub: 'nobody' }));
    assert.deepEqual(await r.json(), { data: { write_checkpoint: '1' } });
    await commit();  // the worker passes the recorded WAL head (an empty checkpoint is enough)
    const lines = await s.until('checkpoint_complete');
    assert.deepEqual(lines.map(keyOf), ['checkpoint_diff', 'checkpoint_complete']);
    const diff = lines[0].checkpoint_diff;
    assert.deepEqual({ ...diff, last_op_id: undefined }, { last_op_id: undefined, write_checkpoint: '1', updated_buckets: [], removed_buckets: [] });
    s.close();
  });

  await T.test('compaction (powersync.compact) past the stream checkpoint withholds checkpoint_complete', async () => {
    const c1 = await commit(`INSERT INTO items VALUES ('cmp-x', 'cmp', 'v1');`);
    // Hold back the gateway's checkpoint notices, so it keeps serving c1 while the database moves on.
    const pids = listenerPids();
    assert.equal(pids.length, 1, `one notice connection expected, found ${pids}`);
    process.kill(pids[0], 'SIGSTOP');
    let c2;
    try {
      sql(`UPDATE items SET v = 'v2' WHERE id = 'cmp-x'`);
      c2 = BigInt(sql(`SELECT powersync.wait_for_checkpoint()`));
      const moved = sql(`SELECT ops_moved FROM powersync.compact()`);
      assert.ok(Number(moved) >= 1, `compact() moved ${moved} ops`);
      const s = await openStream(gw.base, tok({ sub: 'cmp' }));
      // (the empty priority-0 bucket 'urgent' completes first; the MOVE is in priority 3)
      const first = await s.until('data');
      assert.deepEqual(first.map(keyOf), ['checkpoint', 'partial_checkpoint_complete', 'data']);
      assert.equal(BigInt(first[0].checkpoint.last_op_id), c1);
      const move = first[2].data;
      assert.equal(move.bucket, bucket('mine', 'cmp'));
      assert.deepEqual(Object.keys(move.data[0]).sort(), ['checksum', 'op', 'op_id']);
      assert.equal(move.data[0].op, 'MOVE');
      assert.ok(await s.quiet(800), 'no complete line for a checkpoint invalidated by compaction');
      process.kill(pids[0], 'SIGCONT');
      const next = await s.until('checkpoint_complete');
      assert.deepEqual(next.map(keyOf), ['checkpoint_diff', 'data', 'checkpoint_complete']);
      assert.ok(BigInt(next[0].checkpoint_diff.last_op_id) >= c2);
      assert.deepEqual(next[1].data.data.map((o) => [o.op, o.object_id]), [['PUT', 'cmp-x']]);
      s.close();
    } finally {
      process.kill(pids[0], 'SIGCONT');
    }
  });

  await T.test('after compact(), checkpoint_diff counts equal a fresh stream\'s checkpoint counts', async () => {
    await commit(`INSERT INTO items VALUES ('cd-1', 'cdiff', 'a'), ('cd-2', 'cdiff', 'b');`);
    const s = await openStream(gw.base, tok({ sub: 'cdiff' }));
    await s.until('checkpoint_complete');
    await commit(`DELETE FROM items WHERE id IN ('cd-1', 'cd-2'); INSERT INTO items VALUES ('cd-3', 'cdiff', 'c');`);
    await s.until('checkpoint_complete');
    // Two PUTs superseded by their REMOVEs: compaction replaces the leading four ops by one CLEAR, so
    // the bucket stores fewer ops than its running total counts.
    assert.ok(Number(sql(`SELECT ops_cleared FROM powersync.compact()`)) >= 3);
    await commit(`INSERT INTO items VALUES ('cd-4', 'cdiff', 'd');`);
    const lines = await s.until('checkpoint_complete');
    assert.equal(keyOf(lines[0]), 'checkpoint_diff');
    const fresh = await openStream(gw.base, tok({ sub: 'cdiff' }));
    const full = (await fresh.until('checkpoint_complete'))[0].checkpoint;
    fresh.close();
    s.close();
    assert.equal(full.last_op_id, lines[0].checkpoint_diff.last_op_id);
    const updated = lines[0].checkpoint_diff.updated_buckets;
    assert.deepEqual(updated.map((b) => b.bucket), [bucket('mine', 'cdiff')]);
    const inFull = full.buckets.find((b) => b.bucket === updated[0].bucket);
    assert.deepEqual([updated[0].count, updated[0].checksum], [inFull.count, inFull.checksum]);
    assert.equal(inFull.count, 3);  // CLEAR, PUT cd-3, PUT cd-4
  });

  await T.test('more than 1000 parameter results fail with PSYNC_S2305', async () => {
    await commit(`INSERT INTO members SELECT 'many:' || i, 'many', 'mg' || i FROM generate_series(1, 1001) i;`);
    const r = await fetch(`${gw.base}/sync/stream`, { method: 'POST', headers: { authorization: `Token ${tok({ sub: 'many' })}` }, body: '{"raw_data":true}' });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, 'PSYNC_S2305');
  });

  await T.test('token_expires_in lines, then {"token_expires_in":0} ends the stream', async () => {
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

  await runJwksUrlTests({ T, startGateway, freePort, authGet, expectError, tok });

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
