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
let ops = 0, bytes = 0, complete = false;
let tail = Buffer.alloc(0);  // last bytes of the previous chunk, for matches across the boundary
const count = (buf, from) => {
  let n = 0;
  for (let i = from; (i = buf.indexOf(needle, i)) !== -1; i += needle.length) n++;
  return n;
};
const reader = res.body.getReader();
while (!complete) {
  const { value, done: end } = await reader.read();
  if (end) break;
  const chunk = Buffer.from(value.buffer, value.byteOffset, value.length);
  bytes += chunk.length;
  ops += count(chunk, 0);
  // Only the junction of the two chunks can hide a match split in two.
  const junction = Buffer.concat([tail, chunk.subarray(0, done.length)]);
  ops += count(junction, 0) - count(tail, 0) - count(chunk.subarray(0, done.length), 0);
  if (chunk.indexOf(done) !== -1 || junction.indexOf(done) !== -1) complete = true;
  tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - done.length)));
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await reader.cancel().catch(() => {});
console.log(JSON.stringify({ ops, expected: Number(expected), bytes, seconds: +seconds.toFixed(3), ops_per_second: Math.round(ops / seconds), complete }));
process.exit(ops === Number(expected) && complete ? 0 : 1);
