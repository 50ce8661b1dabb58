// The HttpClient's bounded connection pool: requests beyond its connections wait rather than fail,
// and watches (which hold a connection for minutes) never take the requests' places.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
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
