// alpnWithoutPooledCopies (src/apiserver/connection-limits.ts): each connection's copy of the server's
// ALPN list must not be a slice of Buffer's shared 8 KB pool, which one long-lived connection would keep
// alive whole; and the negotiation must be what it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls, { type TLSSocket } from 'node:tls';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ensureServerPki } from '../../src/pki/certs.js';
import { alpnWithoutPooledCopies } from '../../src/apiserver/connection-limits.js';

test('a connection\'s ALPN copy has a buffer of its own, and http/1.1 is still negotiated', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-alpn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await ensureServerPki({ dataDir: dir, sans: { dns: [], ips: ['127.0.0.1'] } });
  const server = https.createServer({ cert: pki.servingCertPem, key: pki.servingKeyPem }, (_req, res) => res.end('ok'));
  alpnWithoutPooledCopies(server);
  const backing: number[] = [];
  let bothSeen!: () => void;
  const seen = new Promise<void>((r) => { bothSeen = r; });
  server.on('secureConnection', (s: TLSSocket) => {
    const copy = (s as TLSSocket & { _tlsOptions: { ALPNProtocols: Uint8Array } })._tlsOptions.ALPNProtocols;
    backing.push(copy.buffer.byteLength);
    if (backing.length === 2) bothSeen();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
  const port = (server.address() as AddressInfo).port;
  const clients: tls.TLSSocket[] = [];
  t.after(() => { for (const c of clients) c.destroy(); });
  for (const offered of [['h2', 'http/1.1'], ['http/1.1']]) {
    const client = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: offered, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => { client.once('secureConnect', resolve); client.once('error', reject); });
    clients.push(client);
    assert.equal(client.alpnProtocol, 'http/1.1');
  }
  await seen; // the server's side of a handshake can finish after the client's
  // Node's default copy is a view of the 8,192-byte pool; this one is the list's 9 bytes.
  for (const n of backing) assert.ok(n < 64, `the ALPN copy's buffer is ${n} bytes`);
});
