// What one idle client connection costs the API server's process (issue 15): an HTTPS server set up
// as skiff's is (requestCert against a client CA, keep-alive), in a child process, and N clients that
// each open their own TLS connection with a client certificate, make one request and keep the
// connection open, as a node's keep-alive request connection or its watch does. The child reports
// RSS, V8 heap (after a full GC), external memory and its CPU time before and after; the difference
// per connection is the figure (the CPU is the TLS handshake and one request).
//
// Every hollow or real node holds two such connections over HTTP/1.1 (requests and its pod watch).
// The same is measured for HTTP/2 (Node's http2 server with HTTP/1.1 allowed, one session per
// client), where a node would hold one: the last line compares a node's cost both ways.
//   node --import tsx bench/connection-memory.ts [--connections 2000] [--protocol http1|h2|both] [--pooled-alpn]
import https from 'node:https';
import http2 from 'node:http2';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ensureServerPki } from '../src/pki/certs.js';
import { alpnWithoutPooledCopies } from '../src/apiserver/connection-limits.js';

interface Mem { rss: number; heap: number; external: number; cpuUs: number }
type Msg = { port: number; mem: Mem } | { mem: Mem };
type Protocol = 'http1' | 'h2';

if (process.argv[2] === 'child') {
  const { cert, key, ca, protocol } = JSON.parse(process.argv[3]!) as { cert: string; key: string; ca: string; protocol: Protocol };
  const tls = { cert, key, ca, requestCert: true, rejectUnauthorized: false };
  const answer = (socket: TLSSocket) => (socket.authorized ? 'ok' : 'no');
  const server = protocol === 'h2'
    ? http2.createSecureServer({ ...tls, allowHTTP1: true }, (req, res) => { res.end(answer(req.socket as TLSSocket)); })
    : https.createServer({ ...tls, keepAliveTimeout: 600_000 }, (req, res) => { res.end(answer(req.socket as TLSSocket)); });
  // As the API server does (src/apiserver/server.ts); `--pooled-alpn` measures Node's default.
  if (!process.argv.includes('--pooled-alpn')) alpnWithoutPooledCopies(server);
  const mem = (): Mem => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    const c = process.cpuUsage();
    return { rss: m.rss, heap: m.heapUsed, external: m.external, cpuUs: c.user + c.system };
  };
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port, mem: mem() }));
  process.on('message', () => process.send!({ mem: mem() }));
} else {
  const arg = (flag: string) => { const i = process.argv.indexOf(flag); return i > 0 ? process.argv[i + 1] : undefined; };
  const n = Number(arg('--connections') ?? 2000);
  if (!Number.isInteger(n) || n < 1) throw new Error('--connections: expected a positive integer');
  const which = arg('--protocol') ?? 'both';
  if (!['http1', 'h2', 'both'].includes(which)) throw new Error('--protocol: expected http1, h2 or both');
  const protocols: Protocol[] = which === 'both' ? ['http1', 'h2'] : [which as Protocol];
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-connmem-'));
  try {
    const pki = await ensureServerPki({ dataDir: dir, sans: { dns: ['localhost'], ips: ['127.0.0.1'] } });
    const client = await pki.issueClientCert('system:node:bench', ['system:nodes']);
    const creds = { ca: pki.serverCaPem, cert: client.certPem, key: client.keyPem, servername: 'localhost' };
    const per: Partial<Record<Protocol, { rssKB: number; heapKB: number; cpuUs: number }>> = {};
    for (const protocol of protocols) {
      const child = fork(fileURLToPath(import.meta.url), ['child', JSON.stringify({ cert: pki.servingCertPem, key: pki.servingKeyPem, ca: pki.clientCaPem, protocol }),
        ...(process.argv.includes('--pooled-alpn') ? ['--pooled-alpn'] : [])],
        { execArgv: ['--import', 'tsx', '--expose-gc'] });
      const next = () => new Promise<Msg>((resolve) => child.once('message', (m) => resolve(m as Msg)));
      const first = await next() as { port: number; mem: Mem };
      const closers: (() => void)[] = [];
      const url = `https://127.0.0.1:${first.port}`;
      // One request on a new connection (HTTP/1.1) or session (HTTP/2), which then stays open.
      const open = (): Promise<string> => new Promise((resolve, reject) => {
        if (protocol === 'h2') {
          const session = http2.connect(url, creds);
          closers.push(() => session.close());
          session.on('error', reject);
          const stream = session.request({ ':path': '/' });
          let b = '';
          stream.setEncoding('utf8');
          stream.on('data', (d: string) => (b += d)).on('end', () => resolve(b)).on('error', reject);
          stream.end();
          return;
        }
        const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...creds });
        closers.push(() => agent.destroy());
        https.get({ host: '127.0.0.1', port: first.port, path: '/', agent, servername: 'localhost' }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d)).on('end', () => resolve(b));
        }).on('error', reject);
      });
      let ok = 0;
      for (let c = 0; c < n; c++) {
        if (await open() === 'ok') ok++;
        if ((c + 1) % 500 === 0) console.log(`${protocol}: ${c + 1} connections open`);
      }
      if (ok !== n) throw new Error(`${protocol}: ${n - ok} connections were not authenticated by their client certificate`);
      await new Promise((r) => setTimeout(r, 1000));
      child.send('measure');
      const after = (await next()).mem;
      const kb = (bytes: number) => bytes / 1024 / n;
      const m = per[protocol] = { rssKB: kb(after.rss - first.mem.rss), heapKB: kb(after.heap - first.mem.heap), cpuUs: (after.cpuUs - first.mem.cpuUs) / n };
      console.log(`${protocol}: per idle TLS connection (client certificate, keep-alive): RSS ${m.rssKB.toFixed(1)} KB, `
        + `V8 heap ${m.heapKB.toFixed(1)} KB, external ${kb(after.external - first.mem.external).toFixed(1)} KB; `
        + `server CPU for its handshake and one request ${m.cpuUs.toFixed(0)} µs`);
      for (const close of closers) close();
      child.kill();
    }
    const parts = Object.entries(per).map(([p, v]) => `${p}RssPerConnKB=${v.rssKB.toFixed(1)} ${p}HeapPerConnKB=${v.heapKB.toFixed(1)} ${p}CpuPerConnUs=${v.cpuUs.toFixed(0)}`);
    if (per.http1 && per.h2) {
      console.log(`a node's connections (two over HTTP/1.1, one over HTTP/2): RSS ${(2 * per.http1.rssKB).toFixed(0)} → ${per.h2.rssKB.toFixed(0)} KB, `
        + `server CPU to connect ${(2 * per.http1.cpuUs).toFixed(0)} → ${per.h2.cpuUs.toFixed(0)} µs`);
    }
    console.log(`SUMMARY connection-memory: connections=${n} ${parts.join(' ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
