// The real PowerSync client (@powersync/node) against powersync-gateway and the real replication
// worker with priorities_rules.yaml: priority-0 partial completes, live diffs over a 2,500-row
// bucket, a removed dynamic bucket, and a gateway restart resuming from the client's positions.
// Env as for e2e.test.mjs, PGDATABASE holding the schema (items, vips) with those rules deployed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { PowerSyncDatabase, Schema, Table, column, SyncStreamConnectionMethod } from '@powersync/node';
import { mint, loadKeys, sql, runner } from '../gateway_http/lib.mjs';
import { startProxy } from './proxy.mjs';

const keys = loadKeys(process.env.KEYS_DIR);
const T = runner();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const gwPort = Number(process.env.GW_PORT);
let gateway = null;

async function startGateway() {
  const db = `host=${process.env.PGHOST} port=${process.env.PGPORT} dbname=${process.env.PGDATABASE} user=${process.env.PGUSER}`;
  const proc = spawn(process.env.GW_BIN, ['--db', db, '--listen', `127.0.0.1:${gwPort}`, '--jwks', `${process.env.KEYS_DIR}/jwks.json`,
    '--audience', 'powersync-test', '--bson-streams'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`http://127.0.0.1:${gwPort}/probes/readiness`)).status === 200) return { proc, exited }; } catch {}
    await sleep(100);
  }
  throw new Error('gateway not ready');
}

async function waitFor(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function main() {
  sql(`INSERT INTO vips VALUES ('u1');
       INSERT INTO items SELECT 'h' || i, 'u1', 'high', 'high ' || i FROM generate_series(1, 3) i;
       INSERT INTO items SELECT 'l' || i, 'u1', 'low', 'low ' || i FROM generate_series(1, 2500) i;
       INSERT INTO items VALUES ('other', 'u2', 'low', 'not for u1');`);
  sql(`SELECT powersync.wait_for_checkpoint()`);
  const proxy = await startProxy(gwPort);
  gateway = await startGateway();
  const dir = `${process.env.WORK_DIR}/clients`;
  fs.mkdirSync(dir, { recursive: true });
  const db = new PowerSyncDatabase({ schema: new Schema({ items: new Table({ v: column.text }) }), database: { dbFilename: 'priorities.db', dbLocation: dir } });
  const connector = {
    async fetchCredentials() { return { endpoint: `http://127.0.0.1:${proxy.port}`, token: mint(keys, 'es256', { sub: 'u1' }) }; },
    async uploadData() {},
  };
  await db.connect(connector, { connectionMethod: SyncStreamConnectionMethod.HTTP, retryDelayMs: 300 });
  const count = async (where = '1=1') => (await db.get(`SELECT count(*) AS n FROM items WHERE ${where}`)).n;

  await T.test('real client: priority 0 completes first, then the full checkpoint validates', async () => {
    await db.waitForFirstSync({ priority: 0 });
    await db.waitForFirstSync();
    assert.equal(await count(), 2503);
    assert.equal((await db.get(`SELECT v FROM items WHERE id = 'h2'`)).v, 'high 2');
    const lines = proxy.streams[0].lines;
    // The SDK asks for BSON (Accept q=0.9 over NDJSON's 0.8); with --bson-streams its core parses that.
    assert.equal(proxy.streams[0].contentType, 'application/vnd.powersync.bson-stream');
    assert.ok(lines.indexOf('partial_checkpoint_complete') < lines.indexOf('checkpoint_complete'));
  });

  await T.test('real client: live diff applies new ops and keeps checksums valid', async () => {
    sql(`UPDATE items SET v = 'changed' WHERE id = 'l1'; INSERT INTO items VALUES ('h9', 'u1', 'high', 'new');`);
    await waitFor('changes', async () => (await db.getOptional(`SELECT v FROM items WHERE id = 'l1'`))?.v === 'changed' && (await count(`id = 'h9'`)) === 1);
    assert.equal(proxy.streams.length, 1, 'no reconnect (a checksum mismatch would close the stream)');
  });

  await T.test('real client: a removed bucket disappears locally', async () => {
    sql(`DELETE FROM vips WHERE user_id = 'u1';`);
    await waitFor('removal', async () => (await count(`id LIKE 'h%'`)) === 0);
    assert.equal(await count(), 2500);
  });

  await T.test('real client: gateway restart resumes from the client positions', async () => {
    gateway.proc.kill('SIGTERM');
    assert.equal(await gateway.exited, 0);
    sql(`UPDATE items SET v = 'while down' WHERE id = 'l2'`);
    sql(`SELECT powersync.wait_for_checkpoint()`);
    const before = proxy.streams.length;
    gateway = await startGateway();
    await waitFor('resume', async () => (await db.getOptional(`SELECT v FROM items WHERE id = 'l2'`))?.v === 'while down');
    const resumed = proxy.streams.slice(before).find((s) => s.lines.includes('checkpoint'));
    assert.ok(resumed.request.buckets.every((b) => Number(b.after) > 0), JSON.stringify(resumed.request.buckets));
    assert.equal(resumed.ops, 1);
  });

  await db.close();
  proxy.close();
}

try {
  await main();
} catch (e) {
  await T.test('priorities client setup', async () => { throw e; });
} finally {
  if (gateway && gateway.proc.exitCode === null) gateway.proc.kill('SIGKILL');
}
process.exit(T.finish() ? 1 : 0);
