// An informer over HttpClient survives a server restart: its watch breaks, it backs off while the
// server is down, resumes from its last resourceVersion, and sees what changed after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withServer } from '../helpers/cluster.js';
import { HttpClient } from '../../src/client/http.js';
import { Resources, type ApiClient } from '../../src/client/types.js';
import { Informer, keyOf } from '../../src/client/informer.js';

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('informer over HTTPS survives a server restart and resumes without relisting', async () => {
  await withServer(async (server) => {
    const http = HttpClient.fromKubeconfig(server.kubeconfigPath);
    let lists = 0;
    const counting: ApiClient = Object.assign(Object.create(http) as ApiClient, {
      list: (...args: Parameters<ApiClient['list']>) => { lists++; return http.list(...args); },
    });
    const log: string[] = [];
    // Only this test's ConfigMaps: the root CA publisher writes kube-root-ca.crt into `default` too.
    const inf = new Informer({ client: counting, resource: Resources.configMaps, namespace: 'default', labelSelector: 'suite=informer', backoff: { initialMs: 50, maxMs: 200 } });
    inf.addHandlers({
      onAdd: (o) => log.push(`add ${keyOf(o)}`),
      onDelete: (o) => log.push(`delete ${keyOf(o)}`),
    });
    try {
      await http.create(Resources.configMaps, 'default', { metadata: { name: 'before', labels: { suite: 'informer' } } });
      inf.start();
      await inf.waitForSync(5000);
      assert.deepEqual(log, ['add default/before']);

      await server.restart();
      await http.create(Resources.configMaps, 'default', { metadata: { name: 'after', labels: { suite: 'informer' } } });
      await http.delete(Resources.configMaps, 'default', 'before');
      await until(() => inf.get('default/after') !== undefined && inf.get('default/before') === undefined, 'changes after the restart');
      assert.deepEqual(log, ['add default/before', 'add default/after', 'delete default/before']);
      assert.equal(lists, 1, 'resumed from its resourceVersion instead of relisting');
      assert.equal(inf.lastSyncResourceVersion(), (await http.list(Resources.configMaps, 'default')).resourceVersion);
    } finally {
      await inf.stop();
      http.close();
    }
  });
});
