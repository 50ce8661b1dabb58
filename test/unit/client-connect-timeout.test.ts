// A client's connect timeout: a new connection whose SYNs go unanswered (a server's full accept
// queue drops them) is given up in time, for requests and watches alike, so that the caller's retry
// dials afresh instead of waiting out the kernel's SYN backoff. The limit ends at the TCP connect, so
// a slow answer (and, by the same token, a slow TLS handshake, not exercised here) is left alone, and
// kept-alive connections are not touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { HttpClient } from '../../src/client/http.js';
import { Resources } from '../../src/client/types.js';
import { selfSignedServingCert } from '../../src/pki/certs.js';

test('SYNs a full accept queue drops: the attempt is given up; a slow answer is not', { timeout: 30_000 }, async () => {
  // A listener with a one-deep accept queue in a process that is then stopped: the kernel completes
  // connections into the queue until it is full, then drops SYNs, as at a restarted server.
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, function () { console.log(this.address().port); })`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fillers: net.Socket[] = [];
  const { certPem, keyPem } = await selfSignedServingCert('localhost');
  const answering = https.createServer({ cert: certPem, key: keyPem }, (_req, res) => {
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Namespace', metadata: { name: 'default' } })), 600);
  });
  const clients: HttpClient[] = [];
  try {
    const [line] = await once(child.stdout!, 'data') as [Buffer];
    const port = Number(String(line).trim());
    child.kill('SIGSTOP');
    // Fill the queue: connections the kernel completes while nobody accepts (one more than the backlog).
    for (let i = 0; i < 2; i++) {
      const s = net.connect(port, '127.0.0.1');
      fillers.push(s);
      await once(s, 'connect');
    }
    const dropped = new HttpClient({ server: `https://localhost:${port}`, caPem: certPem, connectTimeoutMs: 300 });
    clients.push(dropped);
    const err = await dropped.get(Resources.namespaces, undefined, 'default').then(() => undefined, (e: unknown) => e as Error);
    assert.match(String(err?.message), /GET \/api\/v1\/namespaces\/default: not connected within 300 ms/);
    const watchErr = await dropped.watch(Resources.pods, 'default', undefined, () => {}).done;
    assert.match(String(watchErr?.message), /watch \/api\/v1\/namespaces\/default\/pods\?.*: not connected within 300 ms/);

    // A server that answers slower than the connect timeout: the wait for its answer is not the timeout's business.
    await new Promise<void>((r) => answering.listen(0, '127.0.0.1', r));
    const working = new HttpClient({ server: `https://localhost:${(answering.address() as AddressInfo).port}`, caPem: certPem, connectTimeoutMs: 300 });
    clients.push(working);
    assert.equal((await working.get<{ metadata: { name: string } }>(Resources.namespaces, undefined, 'default'))?.metadata.name, 'default');
    // Again on the kept-alive connection.
    assert.equal((await working.get<{ metadata: { name: string } }>(Resources.namespaces, undefined, 'default'))?.metadata.name, 'default');
  } finally {
    for (const c of clients) c.close();
    for (const s of fillers) s.destroy();
    child.kill('SIGKILL');
    answering.closeAllConnections();
    if (answering.listening) await new Promise((r) => answering.close(r));
  }
});
