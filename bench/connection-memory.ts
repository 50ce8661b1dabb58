// What one idle client connection costs the API server's process (issue 15): an HTTPS server set up
// as skiff's is (requestCert against a client CA, keep-alive), in a child process, and N clients that
// each open their own TLS connection with a client certificate, make one request and keep the
// connection open, as a node's keep-alive request connection or its watch does. The child reports
// RSS, V8 heap (after a full GC) and external memory before and after; the difference per connection
// is the figure. Every hollow or real node holds two such connections (requests and its pod watch)
// over HTTP/1.1.
//   node --import tsx bench/connection-memory.ts [--connections 2000]
import https from 'node:https';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { ensureServerPki } from '../src/pki/certs.js';

interface Mem { rss: number; heap: number; external: number }
type Msg = { port: number; mem: Mem } | { mem: Mem };

if (process.argv[2] === 'child') {
  const { cert, key, ca } = JSON.parse(process.argv[3]!) as { cert: string; key: string; ca: string };
  const server = https.createServer({ cert, key, ca, requestCert: true, rejectUnauthorized: false, keepAliveTimeout: 600_000 },
    (req, res) => { res.end((req.socket as import('node:tls').TLSSocket).authorized ? 'ok' : 'no'); });
  const mem = (): Mem => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss, heap: m.heapUsed, external: m.external };
  };
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port, mem: mem() }));
  process.on('message', () => process.send!({ mem: mem() }));
} else {
  const i = process.argv.indexOf('--connections');
  const n = i > 0 ? Number(process.argv[i + 1]) : 2000;
  if (!Number.isInteger(n) || n < 1) throw new Error('--connections: expected a positive integer');
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-connmem-'));
  try {
    const pki = await ensureServerPki({ dataDir: dir, sans: { dns: ['localhost'], ips: ['127.0.0.1'] } });
    const client = await pki.issueClientCert('system:node:bench', ['system:nodes']);
    const child = fork(fileURLToPath(import.meta.url), ['child', JSON.stringify({ cert: pki.servingCertPem, key: pki.servingKeyPem, ca: pki.clientCaPem })],
      { execArgv: ['--import', 'tsx', '--expose-gc'] });
    const next = () => new Promise<Msg>((resolve) => child.once('message', (m) => resolve(m as Msg)));
    const first = await next() as { port: number; mem: Mem };
    const agents: https.Agent[] = [];
    let ok = 0;
    for (let c = 0; c < n; c++) {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.serverCaPem, cert: client.certPem, key: client.keyPem });
      agents.push(agent);
      const body = await new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: first.port, path: '/', agent, servername: 'localhost' }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d)).on('end', () => resolve(b));
        }).on('error', reject);
      });
      if (body === 'ok') ok++;
      if ((c + 1) % 500 === 0) console.log(`${c + 1} connections open`);
    }
    if (ok !== n) throw new Error(`${n - ok} connections were not authenticated by their client certificate`);
    await new Promise((r) => setTimeout(r, 1000));
    child.send('measure');
    const after = (await next()).mem;
    const kb = (bytes: number) => (bytes / 1024 / n).toFixed(1);
    console.log(`per idle TLS connection (client certificate, keep-alive): RSS ${kb(after.rss - first.mem.rss)} KB, `
      + `V8 heap ${kb(after.heap - first.mem.heap)} KB, external ${kb(after.external - first.mem.external)} KB`);
    console.log(`SUMMARY connection-memory: connections=${n} rssPerConnKB=${kb(after.rss - first.mem.rss)} heapPerConnKB=${kb(after.heap - first.mem.heap)}`);
    for (const a of agents) a.destroy();
    child.kill();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
