// A recording HTTP proxy between the PowerSync client and the gateway: it forwards everything
// unchanged and keeps, per /sync/stream request, the request body and the ops received, so tests
// can tell a resumed download from a full re-download.
import http from 'node:http';
import { bsonDocuments } from '../gateway_http/lib.mjs';

export function startProxy(targetPort) {
  const streams = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const record = req.url.startsWith('/sync/stream') ? { request: safeJson(body), ops: 0, lines: [] } : null;
      if (record) streams.push(record);
      const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        let buf = '';
        let bin = Buffer.alloc(0);
        const note = (line) => {
          record.lines.push(Object.keys(line)[0]);
          if (line.data) record.ops += line.data.data.length;
        };
        if (record) record.contentType = ur.headers['content-type'];
        ur.on('data', (c) => {
          if (record && record.contentType === 'application/vnd.powersync.bson-stream') {
            const [docs, rest] = bsonDocuments(Buffer.concat([bin, c]));
            bin = rest;
            docs.forEach(note);
          } else if (record) {
            buf += c.toString('utf8');
            let nl;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = safeJson(buf.slice(0, nl));
              buf = buf.slice(nl + 1);
              if (line) note(line);
            }
          }
          res.write(c);
        });
        ur.on('end', () => res.end());
        ur.on('error', () => res.destroy());
      });
      up.on('error', () => { res.writeHead(502); res.end(); });
      res.on('close', () => up.destroy());
      up.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ port: server.address().port, streams, close: () => server.close() }));
  });
}

function safeJson(b) {
  try { return JSON.parse(b.toString()); } catch { return null; }
}
