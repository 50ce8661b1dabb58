// The HttpClient's bounded connection pool: requests beyond its connections wait rather than fail,
// watches (which hold a connection for minutes) never take the requests' places, and connections
// are kept for the next request or watch rather than paying a new TLS handshake.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { HttpClient } from '../../src/client/http.js';
import { Resources, type WatchHandle } from '../../src/client/types.js';

let server: TestServer;
let client: HttpClient;

before(async () => {
  server = await startServer();
  client = HttpClient.fromKubeconfig(server.kubeconfigPath, { maxConnections: 2 });
});

after(async () => {
  client?.close();
  await server?.dispose();
});

test('more watches and concurrent requests than connections all proceed', { timeout: 20_000 }, async () => {
  const watches: WatchHandle[] = [];
  try {
    const events: string[] = [];
    for (let i = 0; i < 4; i++) {
      watches.push(client.watch(Resources.configMaps, 'default', undefined, (e) => {
        if (e.type === 'ADDED' && e.object.metadata.name!.startsWith('pool-')) events.push(e.object.metadata.name!);
      }, { timeoutSeconds: 60 }));
    }
    const names = Array.from({ length: 12 }, (_, i) => `pool-${i}`);
    await Promise.all(names.map((name) => client.create(Resources.configMaps, 'default',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: 'v' } })));
    const got = await Promise.all(names.map((name) => client.get(Resources.configMaps, 'default', name)));
    assert.deepEqual(got.map((c) => c?.metadata.name), names);
    // Every watch is live although the two request connections were busy all along.
    const deadline = Date.now() + 10_000;
    while (events.length < 4 * names.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(events.length, 4 * names.length);
  } finally {
    for (const w of watches) w.stop();
  }
});

/** Runs `fn` and returns, for each HTTP request it made, whether the request went out on a kept-alive connection. */
async function reuseOf(fn: () => Promise<unknown>): Promise<boolean[]> {
  const reused: boolean[] = [];
  // Published once the request has its connection (reusedSocket is set by then).
  const onStart = (msg: unknown) => { reused.push((msg as { request: ClientRequest }).request.reusedSocket); };
  subscribe('http.client.request.start', onStart);
  try {
    await fn();
  } finally {
    unsubscribe('http.client.request.start', onStart);
  }
  return reused;
}

test('a watch the server ends leaves its connection to the next watch', { timeout: 20_000 }, async () => {
  const c = HttpClient.fromKubeconfig(server.kubeconfigPath);
  try {
    const first = await reuseOf(async () => {
      const err = await c.watch(Resources.configMaps, 'default', undefined, () => {}, { timeoutSeconds: 1 }).done;
      assert.equal(err, undefined, 'the server ends the watch at its timeout');
    });
    assert.deepEqual(first, [false]);
    const second = await reuseOf(async () => {
      const w = c.watch(Resources.configMaps, 'default', undefined, () => {}, { timeoutSeconds: 60 });
      await new Promise((r) => setTimeout(r, 300));
      w.stop();
      await w.done;
    });
    assert.deepEqual(second, [true], 'the second watch went out on the first one\'s connection');
  } finally {
    c.close();
  }
});

test('a client keeps as many idle connections as asked, and no more', { timeout: 20_000 }, async () => {
  const burst = (c: HttpClient) => Promise.all(Array.from({ length: 6 }, () => c.get(Resources.namespaces, undefined, 'default')));
  for (const [idle, reusedAfter] of [[6, 6], [2, 2]] as const) {
    const c = HttpClient.fromKubeconfig(server.kubeconfigPath, { maxConnections: 6, idleConnections: idle });
    try {
      // Six requests at once open six connections; when they are done, `idle` of them stay open.
      assert.deepEqual(await reuseOf(() => burst(c)), [false, false, false, false, false, false]);
      const again = await reuseOf(() => burst(c));
      assert.equal(again.filter(Boolean).length, reusedAfter, `idleConnections ${idle}: ${JSON.stringify(again)}`);
    } finally {
      c.close();
    }
  }
});
