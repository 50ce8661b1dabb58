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
// With `--requests N`, every open connection then makes N more requests, one at a time (a PUT of a
// small JSON body answered with a pod-sized one, as a node's status update), and the server's CPU
// per request is reported for each protocol: what HTTP/2 would cost the server on every request.
// `front` is HTTP/1.1 with TLS in the API server's worker thread (src/server/tls-front.ts): for each
// protocol the CPU of the server's main thread is reported beside the whole process's.
// Memory is reported as RSS and as virtual size: Node's TLS reads a connection's bytes straight into
// a buffer of libuv's suggested read size (64 KB), kept for the connection's life, so a connection
// costs what its largest read touched of it; `--body-bytes` sizes the PUTs' bodies to show that.
// malloc reserves its heaps 64 MB at a time, so the virtual figure means something with thousands of
// connections, not hundreds. The child is forked, not started through bin/skiff: run the bench with
// MALLOC_MMAP_THRESHOLD_=65536 for the malloc setting the launcher gives the server (scale.md item 31).
//   node --import tsx bench/connection-memory.ts [--connections 2000] [--protocol http1|h2|front|both|all] [--requests 0]
//     [--body-bytes <n>] [--pooled-alpn]
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ensureServerPki } from '../src/pki/certs.js';
import { alpnWithoutPooledCopies } from '../src/apiserver/connection-limits.js';
import { procStatusKb } from './lib/server.js';

interface Mem { rss: number; vsz: number; heap: number; external: number; cpuUs: number; mainCpuUs: number }
/** About the size of a hollow node's pod as the server answers its status update (1.5 KB). */
const POD = Buffer.from(JSON.stringify({
  kind: 'Pod', apiVersion: 'v1',
  metadata: { name: 'web-7d4b9c6f5d-x2x7q', namespace: 'default', uid: '0'.repeat(36), resourceVersion: '123456', labels: { app: 'web', 'pod-template-hash': '7d4b9c6f5d' } },
  spec: { nodeName: 'hollow-0001', containers: [{ name: 'app', image: 'registry.local/pause:3.9', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] },
  status: {
    phase: 'Running', podIP: '10.42.0.7', hostIP: '10.0.0.1', startTime: '2026-12-06T00:00:00Z',
    conditions: ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: '2026-12-06T00:00:00Z' })),
    containerStatuses: [{ name: 'app', ready: true, restartCount: 0, started: true, image: 'registry.local/pause:3.9', imageID: 'sha256:' + '0'.repeat(64), containerID: 'containerd://' + '0'.repeat(64), state: { running: { startedAt: '2026-12-06T00:00:01Z' } } }],
  },
}));
const arg = (flag: string) => { const i = process.argv.indexOf(flag); return i > 0 ? process.argv[i + 1] : undefined; };
const bodyBytes = Number(arg('--body-bytes') ?? 0);
if (!Number.isInteger(bodyBytes) || bodyBytes < 0) throw new Error('--body-bytes: expected a whole number');
/** A PUT's body: a status update, padded with a message to `--body-bytes` (a pod's whole status is a few KB). */
const STATUS_BODY = JSON.stringify({ status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } });
const padded = (n: number) => JSON.stringify({ status: { phase: 'Running', message: 'x'.repeat(n) } });
const PUT_BODY = bodyBytes > STATUS_BODY.length ? padded(bodyBytes - padded(0).length) : STATUS_BODY;
type Msg = { port: number; mem: Mem } | { mem: Mem };
type Protocol = 'http1' | 'h2' | 'front';

if (process.argv[2] === 'child') {
  const { cert, key, ca, protocol } = JSON.parse(process.argv[3]!) as { cert: string; key: string; ca: string; protocol: Protocol };
  const tls = { cert, key, ca, requestCert: true, rejectUnauthorized: false };
  const answer = (socket: TLSSocket) => (socket.authorized ? 'ok' : 'no');
  // A PUT's body is decoded and answered with about a pod's worth of JSON; the first GET with 'ok'.
  const handle = (req: http2.Http2ServerRequest | IncomingMessage, res: http2.Http2ServerResponse | ServerResponse) => {
    if (req.method !== 'PUT') { res.end(answer(req.socket as TLSSocket)); return; }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      (res as ServerResponse).writeHead(200, { 'content-type': 'application/json', 'content-length': POD.length });
      res.end(POD);
    });
  };
  // The main thread's own CPU time (utime + stime in clock ticks), without the worker's or V8's helpers'.
  const tick = 1e6 / 100;
  const mainCpuUs = () => {
    const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * tick;
  };
  const mem = (): Mem => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    const c = process.cpuUsage();
    // Virtual size beside RSS: memory malloc handed out that no one wrote yet (a TLS connection's
    // read buffer is 64 KB of which a small request touches a page or two) shows only here.
    return { rss: m.rss, vsz: procStatusKb(process.pid, 'VmSize') * 1024, heap: m.heapUsed, external: m.external, cpuUs: c.user + c.system, mainCpuUs: mainCpuUs() };
  };
  if (protocol === 'front') {
    const { TlsFront } = await import('../src/server/tls-front.js');
    const { constants } = await import('node:crypto');
    const server = http.createServer({ keepAliveTimeout: 600_000 }, handle);
    const front = new TlsFront({ extraAcceptHandles: 0, handshakeMs: 10_000, maxConnectionsPerAddress: 1_000_000 });
    front.serve(server, { cert, key, ca, secureOptions: constants.SSL_OP_NO_TICKET });
    await front.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
    process.send!({ port: front.port!, mem: mem() });
  } else {
    const server = protocol === 'h2'
      ? http2.createSecureServer({ ...tls, allowHTTP1: true }, handle)
      : https.createServer({ ...tls, keepAliveTimeout: 600_000 }, handle);
    // As the API server does (src/apiserver/server.ts); `--pooled-alpn` measures Node's default.
    if (!process.argv.includes('--pooled-alpn')) alpnWithoutPooledCopies(server);
    server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port, mem: mem() }));
  }
  process.on('message', () => process.send!({ mem: mem() }));
} else {
  const n = Number(arg('--connections') ?? 2000);
  if (!Number.isInteger(n) || n < 1) throw new Error('--connections: expected a positive integer');
  const requests = Number(arg('--requests') ?? 0);
  if (!Number.isInteger(requests) || requests < 0) throw new Error('--requests: expected a whole number');
  const which = arg('--protocol') ?? 'both';
  if (!['http1', 'h2', 'front', 'both', 'all'].includes(which)) throw new Error('--protocol: expected http1, h2, front, both or all');
  const protocols: Protocol[] = which === 'both' ? ['http1', 'h2'] : which === 'all' ? ['http1', 'h2', 'front'] : [which as Protocol];
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-connmem-'));
  try {
    const pki = await ensureServerPki({ dataDir: dir, sans: { dns: ['localhost'], ips: ['127.0.0.1'] } });
    const client = await pki.issueClientCert('system:node:bench', ['system:nodes']);
    const creds = { ca: pki.serverCaPem, cert: client.certPem, key: client.keyPem, servername: 'localhost' };
    const per: Partial<Record<Protocol, { rssKB: number; vszKB: number; heapKB: number; cpuUs: number; mainCpuUs: number; requestUs?: number; mainRequestUs?: number; busyRssKB?: number }>> = {};
    for (const protocol of protocols) {
      const child = fork(fileURLToPath(import.meta.url), ['child', JSON.stringify({ cert: pki.servingCertPem, key: pki.servingKeyPem, ca: pki.clientCaPem, protocol }),
        ...(process.argv.includes('--pooled-alpn') ? ['--pooled-alpn'] : [])],
        { execArgv: ['--import', 'tsx', '--expose-gc'] });
      const next = () => new Promise<Msg>((resolve) => child.once('message', (m) => resolve(m as Msg)));
      const first = await next() as { port: number; mem: Mem };
      const closers: (() => void)[] = [];
      const url = `https://127.0.0.1:${first.port}`;
      // A new connection (HTTP/1.1) or session (HTTP/2), which then stays open: `send` makes a
      // request on it and resolves with the answer's text.
      const open = (): ((method: 'GET' | 'PUT') => Promise<string>) => {
        if (protocol === 'h2') {
          const session = http2.connect(url, creds);
          closers.push(() => session.close());
          return (method) => new Promise((resolve, reject) => {
            const stream = session.request({ ':path': '/', ':method': method, ...(method === 'PUT' ? { 'content-type': 'application/json' } : {}) });
            let b = '';
            stream.setEncoding('utf8');
            stream.on('data', (d: string) => (b += d)).on('end', () => resolve(b)).on('error', reject);
            stream.end(method === 'PUT' ? PUT_BODY : undefined);
          });
        }
        const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...creds });
        closers.push(() => agent.destroy());
        return (method) => new Promise((resolve, reject) => {
          const headers = method === 'PUT' ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(PUT_BODY) } : {};
          https.request({ host: '127.0.0.1', port: first.port, path: '/', method, agent, servername: 'localhost', headers }, (res) => {
            let b = '';
            res.on('data', (d) => (b += d)).on('end', () => resolve(b));
          }).on('error', reject).end(method === 'PUT' ? PUT_BODY : undefined);
        });
      };
      const sends: ((method: 'GET' | 'PUT') => Promise<string>)[] = [];
      let ok = 0;
      for (let c = 0; c < n; c++) {
        const send = open();
        sends.push(send);
        if (await send('GET') === 'ok') ok++;
        if ((c + 1) % 500 === 0) console.log(`${protocol}: ${c + 1} connections open`);
      }
      if (ok !== n) throw new Error(`${protocol}: ${n - ok} connections were not authenticated by their client certificate`);
      await new Promise((r) => setTimeout(r, 1000));
      child.send('measure');
      const after = (await next()).mem;
      const kb = (bytes: number) => bytes / 1024 / n;
      const m: NonNullable<typeof per[Protocol]> = per[protocol] = {
        rssKB: kb(after.rss - first.mem.rss), vszKB: kb(after.vsz - first.mem.vsz), heapKB: kb(after.heap - first.mem.heap),
        cpuUs: (after.cpuUs - first.mem.cpuUs) / n, mainCpuUs: (after.mainCpuUs - first.mem.mainCpuUs) / n,
      };
      console.log(`${protocol}: per idle TLS connection (client certificate, keep-alive): RSS ${m.rssKB.toFixed(1)} KB, `
        + `virtual ${m.vszKB.toFixed(1)} KB, V8 heap ${m.heapKB.toFixed(1)} KB, external ${kb(after.external - first.mem.external).toFixed(1)} KB; `
        + `server CPU for its handshake and one request ${m.cpuUs.toFixed(0)} µs (main thread ${m.mainCpuUs.toFixed(0)} µs)`);
      if (requests > 0) {
        // Every connection busy at once, each with one request at a time, as nodes are.
        await Promise.all(sends.map(async (send) => { for (let i = 0; i < requests; i++) await send('PUT'); }));
        child.send('measure');
        const done = (await next()).mem;
        m.requestUs = (done.cpuUs - after.cpuUs) / (n * requests);
        m.mainRequestUs = (done.mainCpuUs - after.mainCpuUs) / (n * requests);
        m.busyRssKB = kb(done.rss - first.mem.rss);
        console.log(`${protocol}: server CPU per request on an open connection ${m.requestUs.toFixed(0)} µs, main thread ${m.mainRequestUs.toFixed(0)} µs (${n * requests} requests, `
          + `${Buffer.byteLength(PUT_BODY)} bytes in, ${POD.length} out); per connection after them: RSS ${m.busyRssKB.toFixed(1)} KB, virtual ${kb(done.vsz - first.mem.vsz).toFixed(1)} KB`);
      }
      for (const close of closers) close();
      child.kill();
    }
    const parts = Object.entries(per).map(([p, v]) => `${p}RssPerConnKB=${v.rssKB.toFixed(1)} ${p}VirtualPerConnKB=${v.vszKB.toFixed(1)} ${p}HeapPerConnKB=${v.heapKB.toFixed(1)} ${p}CpuPerConnUs=${v.cpuUs.toFixed(0)} ${p}MainCpuPerConnUs=${v.mainCpuUs.toFixed(0)}`
      + (v.requestUs !== undefined ? ` ${p}CpuPerRequestUs=${v.requestUs.toFixed(0)} ${p}MainCpuPerRequestUs=${v.mainRequestUs!.toFixed(0)} ${p}BusyRssPerConnKB=${v.busyRssKB!.toFixed(1)}` : ''));
    if (per.http1 && per.h2) {
      console.log(`a node's connections (two over HTTP/1.1, one over HTTP/2): RSS ${(2 * per.http1.rssKB).toFixed(0)} → ${per.h2.rssKB.toFixed(0)} KB, `
        + `server CPU to connect ${(2 * per.http1.cpuUs).toFixed(0)} → ${per.h2.cpuUs.toFixed(0)} µs`
        + (per.http1.requestUs !== undefined && per.h2.requestUs !== undefined
          ? `, per request ${per.http1.requestUs.toFixed(0)} → ${per.h2.requestUs.toFixed(0)} µs` : ''));
    }
    console.log(`SUMMARY connection-memory: connections=${n} ${parts.join(' ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
