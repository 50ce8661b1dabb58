// The TLS front (src/server/tls-front.ts): TLS in a worker thread, each connection handed to an HTTP
// server on this thread over the worker's message port. Real sockets, a real worker and real certificates.
import { test, after, before } from 'node:test';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureServerPki, type ServerPki } from '../../src/pki/certs.js';
import { TlsFront } from '../../src/server/tls-front.js';
import { SERVER_TLS_SECURE_OPTIONS } from '../../src/apiserver/server.js';

const dirs: string[] = [];
let pki: ServerPki;
let client: { certPem: string; keyPem: string };
before(async () => {
  const dataDir = tempDir();
  pki = await ensureServerPki({ dataDir, sans: { dns: ['localhost'], ips: ['127.0.0.1'] } });
  client = await pki.issueClientCert('system:node:n1', ['system:nodes']);
});
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), `skiff-tls-front-${process.pid}-`));
  dirs.push(d);
  return d;
}

interface Running { front: TlsFront; server: http.Server; port: number; connections: Socket[] }

/** A front on a free port before an HTTP server whose handler is `handler`. */
async function startFront(handler: http.RequestListener, o: { maxConnectionsPerAddress?: number } = {}): Promise<Running> {
  const server = http.createServer(handler);
  const connections: Socket[] = [];
  server.on('connection', (s: Socket) => connections.push(s));
  const front = new TlsFront({ extraAcceptHandles: 0, handshakeMs: 5000, maxConnectionsPerAddress: o.maxConnectionsPerAddress ?? 100 });
  front.serve(server, { cert: pki.servingCertPem, key: pki.servingKeyPem, ca: pki.clientCaPem, secureOptions: SERVER_TLS_SECURE_OPTIONS });
  await front.listen({ port: 0, host: '127.0.0.1', backlog: 511 });
  return { front, server, port: front.port!, connections };
}

function request(port: number, o: { method?: string; path?: string; body?: Buffer | string; cert?: boolean; agent?: https.Agent } = {}): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, servername: 'localhost', method: o.method ?? 'GET', path: o.path ?? '/', ca: pki.serverCaPem,
      ...(o.cert === false ? {} : { cert: client.certPem, key: client.keyPem }),
      agent: o.agent ?? false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Writes `chunk` until `total` bytes are out, waiting for 'drain' whenever the stream asks, then ends it. */
function writeAll(out: NodeJS.WritableStream, chunk: Buffer, total: number, progress?: (written: number) => void): void {
  let written = 0;
  const more = () => {
    while (written < total) {
      written += chunk.length;
      progress?.(written);
      if (!out.write(chunk)) { out.once('drain', more); return; }
    }
    out.end();
  };
  more();
}

/**
 * `p`, or a failure saying `what` after 30 s: a guard, not a measurement, so that a test whose
 * mechanism is broken fails with a message instead of hanging until the shard's limit.
 */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(what)), 30_000).unref())]);
}

/** What the handler saw of the connection, as the API server's authentication reads it. */
const describePeer: http.RequestListener = (req, res) => {
  const s = req.socket as tls.TLSSocket;
  const cert = s.getPeerCertificate();
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({
    encrypted: s.encrypted === true, authorized: s.authorized, remoteAddress: s.remoteAddress, remotePort: s.remotePort,
    cn: cert.subject?.CN ?? null, o: cert.subject?.O ?? null, validTo: cert.valid_to ?? null, fingerprint: cert.fingerprint256 ?? null,
    alpn: s.alpnProtocol,
  }));
};

test('the handler sees the TLS connection it stands for: peer address, client certificate, or none', async () => {
  const r = await startFront(describePeer);
  try {
    const withCert = JSON.parse((await request(r.port)).body.toString());
    assert.equal(withCert.encrypted, true);
    assert.equal(withCert.authorized, true);
    assert.equal(withCert.cn, 'system:node:n1');
    assert.equal(withCert.o, 'system:nodes');
    assert.equal(withCert.remoteAddress, '127.0.0.1');
    assert.equal(typeof withCert.remotePort, 'number');
    assert.match(withCert.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.ok(Date.parse(withCert.validTo) > Date.now());
    assert.equal(withCert.alpn, false, 'no ALPN offered by this client');
    const without = JSON.parse((await request(r.port, { cert: false })).body.toString());
    assert.equal(without.authorized, false);
    assert.equal(without.cn, null, 'no certificate: getPeerCertificate() is empty');
  } finally {
    await r.front.close();
  }
});

test('bodies both ways arrive whole, keep-alive requests share a connection, and a closing response is not cut short', async () => {
  const r = await startFront((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/close') res.setHeader('connection', 'close');
      // Echoes the body, or 8 MB when there is none (more than any socket buffer holds).
      res.end(body.length ? body : Buffer.alloc(8 * 2 ** 20, 'x'));
    });
  });
  try {
    const big = Buffer.alloc(3 * 2 ** 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const echoed = await request(r.port, { method: 'PUT', body: big });
    assert.ok(echoed.body.equals(big), 'the request body came back byte for byte');
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await request(r.port, { agent })).body.length, 8 * 2 ** 20);
      assert.equal(r.connections.length, 2, 'three requests on one kept-alive connection (after the PUT\'s own)');
    } finally {
      agent.destroy();
    }
    const closing = await request(r.port, { path: '/close' });
    assert.equal(closing.body.length, 8 * 2 ** 20, 'all of a response whose server closes the connection');
  } finally {
    await r.front.close();
  }
});

test('an upgraded connection streams both ways through the front', async () => {
  const r = await startFront((_req, res) => res.end());
  r.server.on('upgrade', (_req, socket: Socket, head: Buffer) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    if (head.length) socket.write(head);
    socket.pipe(socket);
  });
  try {
    const s = tls.connect({ host: '127.0.0.1', port: r.port, servername: 'localhost', ca: pki.serverCaPem, cert: client.certPem, key: client.keyPem });
    await new Promise<void>((resolve, reject) => s.once('secureConnect', resolve).once('error', reject));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => { got += d; });
    s.write('GET /stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    for (let i = 0; i < 5; i++) s.write(`ping ${i};`);
    const want = Array.from({ length: 5 }, (_, i) => `ping ${i};`).join('');
    for (let t = 0; t < 100 && !got.endsWith(want); t++) await new Promise((res) => setTimeout(res, 50));
    assert.match(got, /^HTTP\/1.1 101 /);
    assert.ok(got.endsWith(want), `echoed: ${JSON.stringify(got.slice(-80))}`);
    s.destroy();
  } finally {
    await r.front.close();
  }
});

test('connections past the per-address limit are closed; a renewed certificate is served to new connections; close frees the port', async () => {
  const r = await startFront(describePeer, { maxConnectionsPerAddress: 2 });
  const held: tls.TLSSocket[] = [];
  try {
    const open = () => new Promise<tls.TLSSocket | Error>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: r.port, servername: 'localhost', ca: pki.serverCaPem, cert: client.certPem, key: client.keyPem });
      s.once('secureConnect', () => resolve(s)).once('error', (e) => resolve(e)).once('close', () => resolve(new Error('closed')));
    });
    for (let i = 0; i < 2; i++) { const s = await open(); assert.ok(!(s instanceof Error), 'within the limit'); held.push(s); }
    assert.ok(await open() instanceof Error, 'the third connection from the address is closed');
    for (const s of held.splice(0)) s.destroy();
    // Another serving certificate (another data dir's): new connections get it.
    const other = await ensureServerPki({ dataDir: tempDir(), sans: { dns: ['localhost'], ips: ['127.0.0.1'] } });
    r.front.setSecureContext({ cert: other.servingCertPem, key: other.servingKeyPem, ca: pki.clientCaPem, secureOptions: SERVER_TLS_SECURE_OPTIONS });
    const serial = () => new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: r.port, servername: 'localhost', rejectUnauthorized: false }, () => { resolve(s.getPeerX509Certificate()!.serialNumber); s.destroy(); });
      s.on('error', reject);
    });
    // The worker counts the two closed connections out when it sees them close.
    let served = '';
    for (let i = 0; i < 40 && !served; i++) served = await serial().catch(async () => { await new Promise((res) => setTimeout(res, 50)); return ''; });
    assert.equal(served, new X509Certificate(other.servingCertPem).serialNumber);
  } finally {
    for (const s of held) s.destroy();
    await r.front.close();
  }
  const again = http.createServer();
  await new Promise<void>((resolve, reject) => { again.once('error', reject); again.listen(r.port, '127.0.0.1', () => resolve()); });
  await new Promise<void>((resolve) => again.close(() => resolve()));
});

test('a client that does not read holds the server back (bounded buffering), then gets every byte', async () => {
  const total = 64 * 2 ** 20, chunk = Buffer.alloc(2 ** 16, 'y');
  let writtenBeforeRead = -1, written = 0;
  const r = await startFront((_req, res) => {
    res.setHeader('content-length', total);
    writeAll(res, chunk, total, (n) => { written = n; });
  });
  try {
    const got = await new Promise<number>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: r.port, servername: 'localhost', ca: pki.serverCaPem, cert: client.certPem, key: client.keyPem, agent: false }, (res) => {
        res.pause();
        // Long enough for an unbounded writer to have pushed all 64 MB.
        setTimeout(() => {
          writtenBeforeRead = written;
          let n = 0;
          res.on('data', (d: Buffer) => { n += d.length; }).on('end', () => resolve(n));
          res.resume();
        }, 1500);
      }).on('error', reject);
    });
    assert.equal(got, total);
    assert.ok(writtenBeforeRead > 0 && writtenBeforeRead < 24 * 2 ** 20, `written before the client read: ${writtenBeforeRead} bytes`);
  } finally {
    await r.front.close();
  }
});

test('a request body the server does not read holds the client back (bounded buffering), then arrives whole', async () => {
  const total = 64 * 2 ** 20, chunk = Buffer.alloc(2 ** 16, 'z');
  let sentBeforeRead = -1;
  let clientSocket: tls.TLSSocket | undefined;
  const r = await startFront((req, res) => {
    req.pause();
    // Long enough for an unbounded relay to have taken all 64 MB.
    setTimeout(() => {
      sentBeforeRead = clientSocket?.bytesWritten ?? -1;
      let n = 0;
      req.on('data', (d: Buffer) => { n += d.length; }).on('end', () => res.end(String(n)));
      req.resume();
    }, 1500);
  });
  try {
    const answer = await new Promise<string>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: r.port, servername: 'localhost', method: 'PUT', ca: pki.serverCaPem, cert: client.certPem, key: client.keyPem, agent: false,
        headers: { 'content-length': total } }, (res) => {
        let b = '';
        res.on('data', (d) => { b += d; }).on('end', () => resolve(b));
      });
      req.on('socket', (s) => { clientSocket = s as tls.TLSSocket; });
      req.on('error', reject);
      writeAll(req, chunk, total);
    });
    assert.equal(Number(answer), total);
    assert.ok(sentBeforeRead > 0 && sentBeforeRead < 32 * 2 ** 20, `sent before the server read: ${sentBeforeRead} bytes`);
  } finally {
    await r.front.close();
  }
});

test('connections taken before there is a server wait, handshake done, and are served once it serves', async () => {
  const front = new TlsFront({ extraAcceptHandles: 0, handshakeMs: 5000, maxConnectionsPerAddress: 100 });
  const tlsOptions = { cert: pki.servingCertPem, key: pki.servingKeyPem, ca: pki.clientCaPem, secureOptions: SERVER_TLS_SECURE_OPTIONS };
  const connect = () => tls.connect({ host: '127.0.0.1', port: front.port!, servername: 'localhost', ca: pki.serverCaPem, cert: client.certPem, key: client.keyPem });
  try {
    await front.acceptEarly({ port: 0, host: '127.0.0.1', backlog: 511 }, tlsOptions);
    // Handshakes finish with nothing serving yet; one client leaves before anything does.
    const early = connect();
    await once(early, 'secureConnect');
    const gone = connect();
    await once(gone, 'secureConnect');
    gone.destroy();
    const body = 'x'.repeat(100_000);
    let settled = false;
    const answered = request(front.port!, { method: 'POST', body }).finally(() => { settled = true; });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(settled, false, 'nothing answers before the server serves');

    const server = http.createServer((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => { n += c.length; }).on('end', () => res.end(`${req.method} ${n}`));
    });
    front.serve(server, tlsOptions);
    await front.listen({ port: front.port!, host: '127.0.0.1', backlog: 511 });
    // A front that dropped held connections would never answer.
    const r = await within(answered, 'the held request was never answered');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), `POST ${body.length}`);
    // The connection made first is served too, and so is a new one.
    early.write('GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    const chunks: Buffer[] = [];
    for await (const c of early) chunks.push(c as Buffer);
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 200[\s\S]*GET 0$/);
    assert.equal((await request(front.port!)).body.toString(), 'GET 0');
  } finally {
    await front.close();
  }
});

test('held requests pass a window at a time, health probes first', async () => {
  const front = new TlsFront({ extraAcceptHandles: 0, handshakeMs: 20_000, maxConnectionsPerAddress: 1000 });
  const tlsOptions = { cert: pki.servingCertPem, key: pki.servingKeyPem, ca: pki.clientCaPem, secureOptions: SERVER_TLS_SECURE_OPTIONS };
  const held = 600;   // more than the window of 512
  const sockets: tls.TLSSocket[] = [];
  /** A connection whose request is written once its handshake is done; resolves with the whole answer. */
  const ask = async (path: string): Promise<{ sent: Promise<void>; answer: Promise<string> }> => {
    const s = tls.connect({ host: '127.0.0.1', port: front.port!, servername: 'localhost', ca: pki.serverCaPem, cert: client.certPem, key: client.keyPem });
    sockets.push(s);
    const chunks: Buffer[] = [];
    const answer = new Promise<string>((resolve, reject) => {
      s.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks).toString())).on('error', reject);
    });
    await once(s, 'secureConnect');
    const sent = new Promise<void>((resolve) => s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, () => resolve()));
    return { sent, answer };
  };
  try {
    await front.acceptEarly({ port: 0, host: '127.0.0.1', backlog: 1024 }, tlsOptions);
    const work = await Promise.all(Array.from({ length: held }, (_, i) => ask(`/work/${i}`)));
    await Promise.all(work.map((w) => w.sent));
    // Past the kernel: let the worker read them before the probe comes.
    await new Promise((r) => setTimeout(r, 500));
    const probe = await ask('/readyz');
    await probe.sent;
    await new Promise((r) => setTimeout(r, 500));

    const seen: string[] = [];
    const parked: http.ServerResponse[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.url!);
      if (req.url === '/readyz') res.end('ok');
      else parked.push(res);
    });
    front.serve(server, tlsOptions);
    await front.listen({ port: front.port!, host: '127.0.0.1', backlog: 1024 });
    // A probe queued behind the parked requests would never be answered.
    assert.match(await within(probe.answer, 'the probe waited behind the held requests'), /ok$/);
    assert.equal(seen[0], '/readyz', 'the probe passes before the requests held with it');
    // Nothing is answered yet, so no more than the window of held requests reached the server.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(seen.length - 1, 512);
    // Each answer lets another in, until all are served.
    const timer = setInterval(() => { for (const res of parked.splice(0)) res.end('done'); }, 20);
    try {
      const answers = await Promise.all(work.map((w) => w.answer));
      assert.ok(answers.every((a) => /^HTTP\/1\.1 200[\s\S]*done$/.test(a)));
    } finally {
      clearInterval(timer);
    }
    assert.equal(seen.length, held + 1);
  } finally {
    for (const s of sockets) s.destroy();
    await front.close();
  }
});
