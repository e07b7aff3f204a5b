// Benchmark client: opens N sync streams (user s<i> -> bucket b<i>), waits until every stream has
// its first checkpoint_complete, then signals the driver (prints "READY"), waits for "GO <op_id>"
// on stdin, and measures the time until every stream has received checkpoint_complete for that
// checkpoint. Prints one JSON line of figures.
// usage: node gateway_idle_streams.mjs URL N TOKENS_FILE
import fs from 'node:fs';
import readline from 'node:readline';

const [url, nText, tokensFile] = process.argv.slice(2);
const n = Number(nText);
const tokens = fs.readFileSync(tokensFile, 'utf8').trim().split('\n');

let target = null;
const firstComplete = new Array(n).fill(false);
const targetReached = new Array(n).fill(0n);
let firstCount = 0, reachedCount = 0, failures = 0;
const readyAt = process.hrtime.bigint();

async function openOne(i) {
  const res = await fetch(`${url}/sync/stream`, {
    method: 'POST', headers: { authorization: `Token ${tokens[i]}`, 'content-type': 'application/json' }, body: '{"raw_data":true}',
  });
  if (res.status !== 200) { failures++; return; }
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.startsWith('{"checkpoint_complete"')) continue;
      if (!firstComplete[i]) { firstComplete[i] = true; firstCount++; }
      const op = JSON.parse(line).checkpoint_complete.last_op_id;
      if (target !== null && op === target && !targetReached[i]) { targetReached[i] = process.hrtime.bigint(); reachedCount++; }
    }
  }
}

// Open in waves so the listen backlog is never overrun.
for (let i = 0; i < n; i += 500) {
  for (let j = i; j < Math.min(n, i + 500); j++) openOne(j).catch(() => { failures++; });
  await new Promise((r) => setTimeout(r, 50));
}
const deadline = Date.now() + 300000;
while (firstCount + failures < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
const connectSeconds = Number(process.hrtime.bigint() - readyAt) / 1e9;
console.log(`READY ${firstCount} ${failures} ${connectSeconds.toFixed(2)}`);

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.startsWith('GO ')) continue;
  target = line.slice(3).trim();
  break;
}
const start = process.hrtime.bigint();
const deadline2 = Date.now() + 120000;
while (reachedCount < firstCount && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 5));
const times = targetReached.filter((t) => t).map((t) => Number(t - start) / 1e6).sort((a, b) => a - b);
const pct = (p) => times.length ? times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(1) : null;
console.log(JSON.stringify({ streams: firstCount, failures, connect_seconds: +connectSeconds.toFixed(2), notified: reachedCount,
  ms_p50: pct(0.5), ms_p99: pct(0.99), ms_all: times.length ? times[times.length - 1].toFixed(1) : null }));
process.exit(0);
