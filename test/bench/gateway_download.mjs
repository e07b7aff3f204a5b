// Benchmark client: downloads one sync pass of POST /sync/stream and discards it, counting ops
// (occurrences of "op_id") until checkpoint_complete. Prints ops, seconds and ops/s.
// usage: node gateway_download.mjs URL TOKEN EXPECTED_OPS
const [url, token, expected] = process.argv.slice(2);
const started = process.hrtime.bigint();
const res = await fetch(`${url}/sync/stream`, {
  method: 'POST',
  headers: { authorization: `Token ${token}`, 'content-type': 'application/json' },
  body: JSON.stringify({ raw_data: true, buckets: [] }),
});
if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
const needle = Buffer.from('"op_id"');
const done = Buffer.from('{"checkpoint_complete"');
let ops = 0, bytes = 0, carry = Buffer.alloc(0), complete = false;
const reader = res.body.getReader();
while (!complete) {
  const { value, done: end } = await reader.read();
  if (end) break;
  bytes += value.length;
  // Keep a few bytes across chunk boundaries so a split needle is still found once.
  const buf = carry.length ? Buffer.concat([carry, Buffer.from(value.buffer, value.byteOffset, value.length)]) : Buffer.from(value.buffer, value.byteOffset, value.length);
  // Matches lying wholly inside the carried-over bytes were counted with the previous chunk.
  let i = Math.max(0, carry.length - needle.length + 1);
  while ((i = buf.indexOf(needle, i)) !== -1) { ops++; i += needle.length; }
  if (buf.indexOf(done) !== -1) complete = true;
  carry = buf.subarray(Math.max(0, buf.length - (done.length - 1)));
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await reader.cancel().catch(() => {});
console.log(JSON.stringify({ ops, expected: Number(expected), bytes, seconds: +seconds.toFixed(3), ops_per_second: Math.round(ops / seconds), complete }));
process.exit(ops === Number(expected) && complete ? 0 : 1);
