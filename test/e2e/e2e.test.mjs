// End-to-end: the real PowerSync client (@powersync/node, SQLite via better-sqlite3) against
// powersync-gateway and a Postgres running the extension with the demo schema and sync rules.
// Env: GW_BIN, PGHOST/PGPORT/PGDATABASE/PGUSER, KEYS_DIR, WORK_DIR.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { PowerSyncDatabase, Schema, Table, column, SyncStreamConnectionMethod } from '@powersync/node';
import { mint, loadKeys, sql, runner } from '../gateway_http/lib.mjs';
import { startProxy } from './proxy.mjs';

const keys = loadKeys(process.env.KEYS_DIR);
const T = runner();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let gateway = null;
const gwPort = Number(process.env.GW_PORT);

async function startGateway() {
  const db = `host=${process.env.PGHOST} port=${process.env.PGPORT} dbname=${process.env.PGDATABASE} user=${process.env.PGUSER}`;
  const proc = spawn(process.env.GW_BIN, ['--db', db, '--listen', `127.0.0.1:${gwPort}`, '--jwks', `${process.env.KEYS_DIR}/jwks.json`,
    '--audience', 'powersync-test', '--enable-crud-upload', '--crud-tables', 'lists,todos', '--crud-role', 'app_user',
    '--keepalive-seconds', '2'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${gwPort}/probes/readiness`)).status === 200) return { proc, exited };
    } catch {}
    await sleep(100);
  }
  throw new Error('gateway not ready');
}

async function waitFor(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

const schema = new Schema({
  lists: new Table({ name: column.text, owner_id: column.text, created_at: column.text }),
  todos: new Table({ list_id: column.text, description: column.text, completed: column.integer, created_by: column.text, completed_at: column.text }),
});

// A client for one user; tokenLifetime controls how soon it must fetch a new token.
async function openClient(name, user, proxyPort, { tokenLifetime = 600 } = {}) {
  const stats = { credentials: 0, uploads: 0, uploadErrors: [] };
  const dir = `${process.env.WORK_DIR}/clients`;
  fs.mkdirSync(dir, { recursive: true });
  const db = new PowerSyncDatabase({ schema, database: { dbFilename: `${name}.db`, dbLocation: dir } });
  const connector = {
    async fetchCredentials() {
      stats.credentials++;
      const now = Math.floor(Date.now() / 1000);
      return { endpoint: `http://127.0.0.1:${proxyPort}`, token: mint(keys, 'hs256', { sub: user, iat: now, exp: now + tokenLifetime }) };
    },
    async uploadData(database) {
      const tx = await database.getNextCrudTransaction();
      if (!tx) return;
      const now = Math.floor(Date.now() / 1000);
      const res = await fetch(`http://127.0.0.1:${proxyPort}/api/crud`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Token ${mint(keys, 'hs256', { sub: user, iat: now, exp: now + 600 })}` },
        body: JSON.stringify({ batch: tx.crud.map((e) => e.toJSON()) }),
      });
      if (!res.ok) {
        stats.uploadErrors.push(await res.text());
        throw new Error(`upload failed: ${res.status}`);
      }
      stats.uploads++;
      await tx.complete();
    },
  };
  await db.connect(connector, { connectionMethod: SyncStreamConnectionMethod.HTTP, retryDelayMs: 300, crudUploadThrottleMs: 50 });
  return { db, stats };
}

async function main() {
  const proxy = await startProxy(gwPort);
  gateway = await startGateway();
  const L1 = '10000000-0000-0000-0000-000000000001', L2 = '10000000-0000-0000-0000-000000000002', L3 = '10000000-0000-0000-0000-000000000003';
  sql(`INSERT INTO lists (id, name, owner_id) VALUES ('${L1}', 'Groceries', 'u1'), ('${L2}', 'Work', 'u1'), ('${L3}', 'Other', 'u2');
       INSERT INTO todos (list_id, description) SELECT '${L1}', 'buy ' || i FROM generate_series(1, 20) i;
       INSERT INTO todos (list_id, description) SELECT '${L2}', 'task ' || i FROM generate_series(1, 5) i;
       INSERT INTO todos (list_id, description) VALUES ('${L3}', 'not for u1');
       SELECT powersync.wait_for_checkpoint();`);
  const { db, stats } = await openClient('u1', 'u1', proxy.port, { tokenLifetime: 600 });
  const count = async (q) => (await db.get(q)).n;

  await T.test('initial sync of several buckets (lists + todos of each list)', async () => {
    await db.waitForFirstSync();
    assert.equal(await count('SELECT count(*) AS n FROM lists'), 2);
    assert.equal(await count('SELECT count(*) AS n FROM todos'), 25);
    assert.equal(await count(`SELECT count(*) AS n FROM todos WHERE description = 'not for u1'`), 0);
    const buckets = proxy.streams[0].lines.filter((l) => l === 'data').length;
    assert.ok(buckets >= 3, `data for at least 3 buckets, got ${buckets}`);
  });

  await T.test('powersync.sync_lines() gives one complete protocol pass in SQL', async () => {
    const lines = sql(`SELECT powersync.sync_lines('{"sub":"u1"}', '{"raw_data":true}')`).split('\n').map((l) => JSON.parse(l));
    assert.equal(Object.keys(lines[0])[0], 'checkpoint');
    assert.equal(lines[0].checkpoint.buckets.length, 3);
    assert.deepEqual(Object.keys(lines[lines.length - 1]), ['checkpoint_complete']);
    assert.equal(lines.filter((l) => l.data).reduce((n, l) => n + l.data.data.filter((o) => o.op === 'PUT' && o.object_type === 'todos').length, 0), 25);
    const resumed = sql(`SELECT powersync.sync_lines('{"sub":"u1"}', '{"raw_data":true,"buckets":${JSON.stringify(lines[0].checkpoint.buckets.map((b) => ({ name: b.bucket, after: lines[0].checkpoint.last_op_id })))}}')`).split('\n');
    assert.equal(resumed.length, 3, 'an up-to-date client gets checkpoint, partial (priority 1) and complete only');
  });

  await T.test('live insert, update and delete on the server appear locally', async () => {
    sql(`INSERT INTO todos (id, list_id, description) VALUES ('20000000-0000-0000-0000-000000000001', '${L1}', 'live one')`);
    await waitFor('insert', async () => (await count(`SELECT count(*) AS n FROM todos WHERE description = 'live one'`)) === 1);
    sql(`UPDATE todos SET completed = true, description = 'live one (done)' WHERE id = '20000000-0000-0000-0000-000000000001'`);
    await waitFor('update', async () => (await db.getOptional(`SELECT completed FROM todos WHERE description = 'live one (done)'`))?.completed === 1);
    sql(`DELETE FROM todos WHERE id = '20000000-0000-0000-0000-000000000001'`);
    await waitFor('delete', async () => (await count(`SELECT count(*) AS n FROM todos WHERE id = '20000000-0000-0000-0000-000000000001'`)) === 0);
  });

  await T.test('a row moving between buckets follows its bucket', async () => {
    const id = sql(`SELECT id FROM todos WHERE description = 'task 1'`);
    sql(`UPDATE todos SET list_id = '${L1}' WHERE id = '${id}'`);  // between two of u1's buckets
    await waitFor('move within user', async () => (await db.getOptional(`SELECT list_id FROM todos WHERE id = '${id}'`))?.list_id === L1);
    sql(`UPDATE todos SET list_id = '${L3}' WHERE id = '${id}'`);  // into u2's bucket: gone for u1
    await waitFor('move away', async () => (await count(`SELECT count(*) AS n FROM todos WHERE id = '${id}'`)) === 0);
    sql(`UPDATE lists SET owner_id = 'u2' WHERE id = '${L2}'`);  // a whole list changes owner
    await waitFor('list leaves', async () => (await count(`SELECT count(*) AS n FROM lists WHERE id = '${L2}'`)) === 0 &&
      (await count(`SELECT count(*) AS n FROM todos WHERE list_id = '${L2}'`)) === 0);
  });

  await T.test('a local write is uploaded through /api/crud and seen back via the write checkpoint', async () => {
    await db.execute(`INSERT INTO todos (id, list_id, description, completed) VALUES ('30000000-0000-0000-0000-000000000001', ?, 'written offline', 1)`, [L1]);
    await waitFor('upload', async () => sql(`SELECT count(*) FROM todos WHERE id = '30000000-0000-0000-0000-000000000001' AND completed AND created_by = 'u1'`) === '1');
    assert.deepEqual(stats.uploadErrors, []);
    // After the upload the queue is empty; the client applies new server data only once a checkpoint
    // carries its write checkpoint, so a server-side edit arriving proves the round trip.
    await waitFor('crud queue drained', async () => (await count('SELECT count(*) AS n FROM ps_crud')) === 0);
    sql(`UPDATE todos SET description = 'written offline (server saw it)' WHERE id = '30000000-0000-0000-0000-000000000001'`);
    await waitFor('server edit visible', async () => (await db.getOptional(`SELECT description FROM todos WHERE id = '30000000-0000-0000-0000-000000000001'`))?.description === 'written offline (server saw it)');
    assert.ok(proxy.streams.some((s) => s.lines.includes('checkpoint_diff')));
  });

  await T.test('gateway restart mid-stream: the client resumes from its positions', async () => {
    const before = proxy.streams.length;
    gateway.proc.kill('SIGTERM');
    assert.equal(await gateway.exited, 0);
    sql(`INSERT INTO todos (list_id, description) VALUES ('${L1}', 'while the gateway was down'); SELECT powersync.wait_for_checkpoint();`);
    gateway = await startGateway();
    await waitFor('data after restart', async () => (await count(`SELECT count(*) AS n FROM todos WHERE description = 'while the gateway was down'`)) === 1);
    const resumed = proxy.streams.slice(before).find((s) => s.lines.includes('checkpoint'));
    assert.ok(resumed, 'a new stream after the restart');
    assert.ok(resumed.request.buckets.length >= 2 && resumed.request.buckets.every((b) => Number(b.after) > 0), JSON.stringify(resumed.request.buckets));
    assert.ok(resumed.ops <= 3, `resumed download sent ${resumed.ops} ops, not a full re-download`);
  });

  await T.test('token expiry: the client fetches a new token and continues', async () => {
    const proxy2 = await startProxy(gwPort);
    const c = await openClient('u1-short', 'u1', proxy2.port, { tokenLifetime: 4 });
    await c.db.waitForFirstSync();
    await waitFor('expiry line and reconnect', async () => c.stats.credentials >= 2 && proxy2.streams.length >= 2, 20000);
    assert.ok(proxy2.streams[0].lines.includes('token_expires_in'));
    sql(`INSERT INTO todos (list_id, description) VALUES ('${L1}', 'after token refresh')`);
    await waitFor('data after refresh', async () => (await c.db.get(`SELECT count(*) AS n FROM todos WHERE description = 'after token refresh'`)).n === 1);
    await c.db.close();
    proxy2.close();
  });

  await db.close();
  proxy.close();
}

try {
  await main();
} catch (e) {
  await T.test('end-to-end setup', async () => { throw e; });
} finally {
  if (gateway && gateway.proc.exitCode === null) gateway.proc.kill('SIGKILL');
}
process.exit(T.finish() ? 1 : 0);
