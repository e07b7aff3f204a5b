// --jwks-url tests of the gateway protocol suite (called from protocol.test.mjs with its helpers):
// keys served by a local HTTP and HTTPS server, rotation, bad documents and certificate checks.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { hmacToken } from './lib.mjs';

// --jwks-url: keys from a local HTTP server, refreshed every second; rotation and bad documents.
export async function runJwksUrlTests({ T, startGateway, freePort, authGet, expectError, tok }) {
  const http = await import('node:http');
  const crypto = await import('node:crypto');
  const secrets = { remote1: crypto.randomBytes(32), remote2: crypto.randomBytes(32) };
  const jwk = (kid) => ({ kty: 'oct', kid, alg: 'HS256', k: secrets[kid].toString('base64url') });
  let served = JSON.stringify({ keys: [jwk('remote1')] });
  let fetches = 0;
  const server = http.createServer((req, res) => {
    fetches++;
    res.writeHead(req.url === '/.well-known/jwks.json' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(served);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/.well-known/jwks.json`;
  const now = () => Math.floor(Date.now() / 1000);
  const remoteToken = (kid) => hmacToken(secrets[kid], { alg: 'HS256', kid }, { sub: 'jw', aud: 'powersync-test', iat: now(), exp: now() + 300 });
  const status = async (g, token) => (await authGet(g, '/write-checkpoint2.json', token)).status;
  const eventually = async (what, fn) => {
    for (let i = 0; i < 60; i++) {
      if (await fn()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  try {
    const g = await startGateway(['--jwks-url', url, '--jwks-refresh-seconds', '1'], { noFileKeys: true });
    await T.test('--jwks-url: keys of the fetched document verify tokens; only those keys', async () => {
      assert.equal(await status(g, remoteToken('remote1')), 200);
      assert.equal(await status(g, tok()), 401);  // the suite's file keys were not given to this gateway
    });
    await T.test('--jwks-url: a rotated document is picked up at the next refresh', async () => {
      served = JSON.stringify({ keys: [jwk('remote2')] });
      await eventually('the rotated key', async () => (await status(g, remoteToken('remote2'))) === 200);
      await expectError(await authGet(g, '/write-checkpoint2.json', remoteToken('remote1')), 401, 'PSYNC_S2102');
    });
    await T.test('--jwks-url: a bad document keeps the previous keys', async () => {
      served = '{"keys": 5}';
      const seen = fetches;
      await eventually('two more fetches', async () => fetches >= seen + 2);
      assert.equal(await status(g, remoteToken('remote2')), 200);
      assert.match(g.stderr(), /not loaded/);
    });
    await T.test('--jwks-url with a bad URL is refused at start with exit code 2', async () => {
      const bad = spawn(process.env.GW_BIN, ['--db', 'host=127.0.0.1', '--jwks-url', 'ftp://example/jwks', '--audience', 'a']);
      let err = '';
      bad.stderr.on('data', (d) => { err += d; });
      const code = await new Promise((r) => bad.on('exit', r));
      assert.equal(code, 2);
      assert.match(err, /--jwks-url "ftp:\/\/example\/jwks": the scheme must be http or https/);
    });
    g.proc.kill('SIGTERM');
    await runJwksHttpsTests({ T, startGateway, freePort, authGet }, jwk('remote1'), remoteToken('remote1'));
  } finally {
    server.close();
  }
}

// https: the certificate must verify against the CA store (SSL_CERT_FILE points OpenSSL's default
// store at the test's self-signed certificate) and name the host.
async function runJwksHttpsTests({ T, startGateway, freePort, authGet }, key, token) {
  const https = await import('node:https');
  const fs = await import('node:fs');
  const dir = process.env.WORK_DIR;
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-keyout', `${dir}/tls.key`, '-out', `${dir}/tls.crt`, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { stdio: 'ignore' });
  const server = https.createServer({ key: fs.readFileSync(`${dir}/tls.key`), cert: fs.readFileSync(`${dir}/tls.crt`) }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [key] }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${server.address().port}/jwks.json`;
  try {
    await T.test('--jwks-url over https: a certificate the CA store trusts is accepted', async () => {
      const prev = process.env.SSL_CERT_FILE;
      process.env.SSL_CERT_FILE = `${dir}/tls.crt`;
      try {
        const g = await startGateway(['--jwks-url', url], { noFileKeys: true });
        assert.equal((await authGet(g, '/write-checkpoint2.json', token)).status, 200);
        g.proc.kill('SIGTERM');
      } finally {
        if (prev === undefined) delete process.env.SSL_CERT_FILE;
        else process.env.SSL_CERT_FILE = prev;
      }
    });
    await T.test('--jwks-url over https: an untrusted certificate is refused (gateway stays not ready)', async () => {
      const port = await freePort();
      const g = spawn(process.env.GW_BIN, ['--db', `host=${process.env.PGHOST} port=${process.env.PGPORT} dbname=${process.env.PGDATABASE}`,
        '--listen', `127.0.0.1:${port}`, '--jwks-url', url, '--audience', 'powersync-test'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      g.stderr.on('data', (d) => { err += d; });
      try {
        for (let i = 0; i < 50 && !/TLS handshake failed/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
        assert.match(err, /TLS handshake failed: .*certificate verify failed/);
        const probe = await fetch(`http://127.0.0.1:${port}/probes/readiness`);
        assert.equal(probe.status, 400);
        assert.match((await probe.json()).reason, /JWKS/);
        assert.equal((await authGet({ base: `http://127.0.0.1:${port}` }, '/write-checkpoint2.json', token)).status, 401);
      } finally {
        g.kill('SIGKILL');
      }
    });
  } finally {
    server.close();
  }
}

