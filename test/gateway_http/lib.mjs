// Helpers for the gateway's HTTP tests: key generation (JWKS), token minting with node's crypto,
// SQL through psql, and an NDJSON stream reader over fetch.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// Writes DIR/jwks.json (public keys for the gateway) and DIR/private.json (for minting).
export function generateKeys(dir) {
  const priv = {};
  const pub = [];
  const add = (kid, alg, keyObject, secret) => {
    if (secret) {
      priv[kid] = { alg, secret: b64url(secret) };
      pub.push({ kty: 'oct', kid, alg, k: b64url(secret) });
      return;
    }
    const jwk = keyObject.export({ format: 'jwk' });
    priv[kid] = { alg, jwk };
    const { d, p, q, dp, dq, qi, ...publicPart } = jwk;
    pub.push({ ...publicPart, kid, alg });
  };
  for (const bits of [256, 384, 512]) add(`hs${bits}`, `HS${bits}`, null, crypto.randomBytes(32));
  for (const bits of [256, 384, 512]) add(`rs${bits}`, `RS${bits}`, crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  add('es256', 'ES256', crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  add('es384', 'ES384', crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey);
  add('es512', 'ES512', crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey);
  fs.writeFileSync(`${dir}/jwks.json`, JSON.stringify({ keys: pub }, null, 1));
  fs.writeFileSync(`${dir}/private.json`, JSON.stringify(priv));
}

export function loadKeys(dir) {
  return JSON.parse(fs.readFileSync(`${dir}/private.json`, 'utf8'));
}

const now = () => Math.floor(Date.now() / 1000);

// Mints a token with key `kid`; `claims` override the defaults, `header` the JOSE header.
export function mint(keys, kid, claims = {}, header = {}) {
  const k = keys[kid];
  const h = { alg: k.alg, kid, typ: 'JWT', ...header };
  const payload = { sub: 'u1', aud: 'powersync-test', iat: now(), exp: now() + 600, ...claims };
  for (const [key, v] of Object.entries(payload)) if (v === undefined) delete payload[key];
  const input = `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(payload))}`;
  let sig;
  const bits = k.alg.slice(2);
  if (k.alg.startsWith('HS')) {
    sig = crypto.createHmac(`sha${bits}`, Buffer.from(k.secret, 'base64url')).update(input).digest();
  } else {
    const key = crypto.createPrivateKey({ key: k.jwk, format: 'jwk' });
    sig = crypto.sign(`sha${bits}`, Buffer.from(input), k.alg.startsWith('ES') ? { key, dsaEncoding: 'ieee-p1363' } : key);
  }
  return `${input}.${b64url(sig)}`;
}

export function hmacToken(secretBytes, header, claims) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(crypto.createHmac('sha256', secretBytes).update(input).digest())}`;
}

export function sql(query) {
  return execFileSync('psql', ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', query], { encoding: 'utf8' }).trim();
}

// Opens POST /sync/stream and returns a reader of parsed lines.
export async function openStream(base, token, body = { raw_data: true }, extraHeaders = {}) {
  const controller = new AbortController();
  const res = await fetch(`${base}/sync/stream`, {
    method: 'POST',
    headers: { authorization: `Token ${token}`, 'content-type': 'application/json', ...extraHeaders },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: controller.signal,
  });
  const queue = [];
  let waiter = null;
  let ended = false;
  let endError = null;
  const wake = () => { if (waiter) { const w = waiter; waiter = null; w(); } };
  (async () => {
    if (!res.body) { ended = true; return; }
    const decoder = new TextDecoder();
    let buf = '';
    let bin = Buffer.alloc(0);
    const isBson = res.headers.get('content-type') === 'application/vnd.powersync.bson-stream';
    try {
      for await (const chunk of res.body) {
        if (isBson) {
          const [docs, rest] = bsonDocuments(Buffer.concat([bin, Buffer.from(chunk)]));
          bin = rest;
          queue.push(...docs);
          wake();
          continue;
        }
        buf += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) queue.push(JSON.parse(line));
        }
        wake();
      }
    } catch (e) {
      endError = e;
    }
    ended = true;
    wake();
  })();
  const reader = {
    res,
    // Next line (skipping token_expires_in unless asked); null at end; throws on timeout.
    async next(timeoutMs = 5000, { keepTokenLines = false } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (queue.length) {
          const line = queue.shift();
          if (!keepTokenLines && 'token_expires_in' in line) continue;
          return line;
        }
        if (ended) return null;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('timeout waiting for a sync line');
        await new Promise((resolve) => { waiter = resolve; setTimeout(resolve, left); });
      }
    },
    // Lines until (and including) the first line whose key is `key`.
    async until(key, timeoutMs = 5000) {
      const lines = [];
      for (;;) {
        const line = await reader.next(timeoutMs);
        if (line === null) throw new Error(`stream ended before ${key}; got ${JSON.stringify(lines)}`);
        lines.push(line);
        if (key in line) return lines;
      }
    },
    // True when nothing but token lines arrives within ms.
    async quiet(ms) {
      try {
        const line = await reader.next(ms);
        if (line === null) return true;
        queue.unshift(line);
        return false;
      } catch {
        return true;
      }
    },
    get ended() { return ended; },
    get endError() { return endError; },
    close() { controller.abort(); },
  };
  return reader;
}

// Minimal test runner printing "ok - name" / "FAIL - name" and the closing counts line.
export function runner() {
  let passed = 0, failed = 0;
  return {
    async test(name, fn) {
      try {
        await fn();
        passed++;
        console.log(`ok   - ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL - ${name}: ${e && e.stack ? e.stack : e}`);
      }
    },
    skip(name, why) { console.log(`skipped: ${name} (${why})`); },
    finish() {
      console.log(`${passed} passed, ${failed} failed`);
      return failed;
    },
  };
}

export const keyOf = (line) => Object.keys(line)[0];

// Decodes one BSON document (the types sync lines use) at `off`; returns [value, next offset].
function bsonDocument(buf, off, isArray) {
  const end = off + buf.readInt32LE(off);
  const out = isArray ? [] : {};
  let p = off + 4;
  while (p < end - 1) {
    const type = buf[p++];
    const keyEnd = buf.indexOf(0, p);
    const key = buf.toString('utf8', p, keyEnd);
    p = keyEnd + 1;
    let v;
    switch (type) {
      case 0x01: v = buf.readDoubleLE(p); p += 8; break;
      case 0x02: { const n = buf.readInt32LE(p); v = buf.toString('utf8', p + 4, p + 4 + n - 1); p += 4 + n; break; }
      case 0x03: case 0x04: [v, p] = bsonDocument(buf, p, type === 0x04); break;
      case 0x08: v = buf[p++] === 1; break;
      case 0x0a: v = null; break;
      case 0x10: v = buf.readInt32LE(p); p += 4; break;
      case 0x12: v = Number(buf.readBigInt64LE(p)); p += 8; break;
      default: throw new Error(`BSON type 0x${type.toString(16)} not expected in a sync line`);
    }
    if (isArray) out.push(v);
    else out[key] = v;
  }
  return [out, end];
}

// Splits a BSON stream buffer into complete documents; returns [documents, rest].
export function bsonDocuments(buf) {
  const docs = [];
  let off = 0;
  while (buf.length - off >= 4 && buf.length - off >= buf.readInt32LE(off)) {
    const [doc, next] = bsonDocument(buf, off, false);
    docs.push(doc);
    off = next;
  }
  return [docs, buf.subarray(off)];
}
