// Clients sharing a Reachability: after one refused dial the others fail at once, with the same
// error code, without dialling; a probe notices the server listening again and requests go through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { HttpClient } from '../../src/client/http.js';
import { Reachability, RefusedError } from '../../src/client/reachability.js';
import { Resources } from '../../src/client/types.js';
import { selfSignedServingCert } from '../../src/pki/certs.js';

/** A port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('a refusal is shared: later attempts fail without dialling until the server listens again', { timeout: 20_000 }, async () => {
  const port = await closedPort();
  const { certPem, keyPem } = await selfSignedServingCert('localhost');
  const reachability = new Reachability({ host: 'localhost', port, probeIntervalMs: 50 });
  const mk = () => new HttpClient({ server: `https://localhost:${port}`, caPem: certPem, reachability, timeoutMs: 5_000 });
  const [a, b] = [mk(), mk()];
  let server: https.Server | undefined;
  try {
    // The first attempt dials and is refused by the kernel.
    const first = await a.get(Resources.namespaces, undefined, 'default').catch((e: unknown) => e);
    assert.equal((first as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    assert.ok(!(first instanceof RefusedError), 'the first attempt must really dial');
    assert.equal(reachability.isDown(), true);

    // Another client's request and watch fail at once with the same code, not dialled.
    const second = await b.get(Resources.namespaces, undefined, 'default').catch((e: unknown) => e);
    assert.ok(second instanceof RefusedError);
    assert.equal((second as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    const watched = await b.watch(Resources.pods, 'default', undefined, () => {}).done;
    assert.ok(watched instanceof RefusedError);

    // The server comes back: the probe opens the way and a request is answered.
    let served = 0;
    server = https.createServer({ cert: certPem, key: keyPem }, (_req, res) => {
      served++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }));
    });
    // No host: both families, whichever `localhost` resolves to.
    await new Promise<void>((r) => server!.listen(port, r));
    const deadline = Date.now() + 10_000;
    while (reachability.isDown() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(reachability.isDown(), false, 'the probe should have seen the server listening');
    const ns = await b.get(Resources.namespaces, undefined, 'default');
    assert.equal(ns?.metadata.name, 'default');
    assert.equal(served, 1);
  } finally {
    a.close();
    b.close();
    reachability.close();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
  }
});
