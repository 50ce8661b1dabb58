// The informer over a LocalClient on a real store: sync, handlers, indexes, selectors, resync, and
// recovery: resuming after a broken watch, relisting when the version is compacted (410).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalApi } from '../helpers/local-api.js';
import { Resources, type ApiClient, type WatchHandle } from '../../src/client/types.js';
import { Informer, keyOf, splitKey, type InformerOptions } from '../../src/client/informer.js';
import { InformerFactory } from '../../src/client/informer-factory.js';
import type { KObject } from '../../src/api/object.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(2);
  }
}

const pod = (name: string, nodeName?: string, labels?: Record<string, string>): KObject => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, labels },
  spec: { nodeName, containers: [{ name: 'c', image: 'busybox' }] },
});

/** The real client with faults injected where a network would put them. */
class FaultyClient {
  readonly watches = new Set<{ inner: WatchHandle; fail: (e: Error) => void }>();
  listFailures = 0;
  /** While set, new watches fail at once, as against a server that is down. */
  refuseWatches = false;
  lists = 0;
  watchCalls: (string | undefined)[] = [];

  constructor(readonly inner: ApiClient) {}

  wrap(): ApiClient {
    const self = this;
    return {
      ...this.inner,
      get: this.inner.get.bind(this.inner),
      async list(ref, ns, opts) {
        self.lists++;
        if (self.listFailures > 0) { self.listFailures--; throw new Error('connect ECONNREFUSED'); }
        return self.inner.list(ref, ns, opts);
      },
      watch(ref, ns, rv, onEvent, opts) {
        self.watchCalls.push(rv);
        if (self.refuseWatches) return { stop() {}, done: Promise.resolve(new Error('connect ECONNREFUSED')) };
        const inner = self.inner.watch(ref, ns, rv, onEvent, opts);
        let fail!: (e: Error) => void;
        const broken = new Promise<Error>((r) => { fail = r; });
        const entry = { inner, fail };
        self.watches.add(entry);
        const done = Promise.race([inner.done, broken]).then((e) => { inner.stop(); self.watches.delete(entry); return e; });
        return { stop: () => inner.stop(), done };
      },
    } as ApiClient;
  }

  /** Every open watch ends with `err`, as when the connection drops. */
  breakWatches(err = new Error('socket hang up')): void {
    for (const w of this.watches) w.fail(err);
  }
}

function informer<T extends KObject>(t: TestContext, opts: InformerOptions<T>): Informer<T> {
  const inf = new Informer<T>({ backoff: { initialMs: 5, maxMs: 20 }, ...opts });
  t.after(() => inf.stop());
  return inf;
}

test('syncs the existing objects, then follows changes with add/update/delete handlers', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.pods, 'default', pod('a'));
  await client.create(Resources.pods, 'kube-system', pod('b'));

  const log: string[] = [];
  const inf = informer(t, { client, resource: Resources.pods });
  inf.addHandlers({
    onAdd: (o) => log.push(`add ${keyOf(o)}`),
    onUpdate: (o, n) => log.push(`update ${keyOf(n)} ${o.metadata.resourceVersion}->${n.metadata.resourceVersion}`),
    onDelete: (o) => log.push(`delete ${keyOf(o)}`),
  });
  assert.equal(inf.hasSynced(), false);
  inf.start();
  await inf.waitForSync(2000);
  assert.ok(inf.hasSynced());
  assert.deepEqual(log.sort(), ['add default/a', 'add kube-system/b']);
  assert.deepEqual(inf.keys().sort(), ['default/a', 'kube-system/b']);
  assert.equal(inf.lastSyncResourceVersion(), (await client.list(Resources.pods)).resourceVersion);

  log.length = 0;
  const c = await client.create(Resources.pods, 'default', pod('c'));
  const c2 = await client.patch(Resources.pods, 'default', 'c', 'merge', { metadata: { labels: { x: 'y' } } });
  await client.delete(Resources.pods, 'default', 'a');
  assert.deepEqual(log, [
    'add default/c',
    `update default/c ${c.metadata.resourceVersion}->${c2.metadata.resourceVersion}`,
    'delete default/a',
  ]);
  assert.equal(inf.getByName('default', 'c')?.metadata.labels?.x, 'y');
  assert.equal(inf.get('default/a'), undefined);
  assert.ok(Object.isFrozen(inf.get('default/c')));
  assert.deepEqual(splitKey('default/c'), { namespace: 'default', name: 'c' });
  assert.deepEqual(splitKey('node-1'), { name: 'node-1' });

  // A handler added late first sees the cache as adds.
  const late: string[] = [];
  inf.addHandlers({ onAdd: (o) => late.push(keyOf(o)) });
  assert.deepEqual(late.sort(), ['default/c', 'kube-system/b']);
});

test('custom indexes follow every change (pods by node, by owner uid)', async (t) => {
  const { client } = await startLocalApi(t);
  const inf = informer<KObject>(t, {
    client, resource: Resources.pods, namespace: 'default',
    indexers: {
      node: (p) => ((p.spec as any)?.nodeName ? [(p.spec as any).nodeName] : []),
      owner: (p) => (p.metadata.ownerReferences ?? []).map((r) => r.uid),
      app: (p) => (p.metadata.labels?.app ? [p.metadata.labels.app] : []),
    },
  });
  inf.start();
  await inf.waitForSync(2000);
  await client.create(Resources.pods, 'default', pod('a', 'n1'));
  await client.create(Resources.pods, 'default', pod('b', 'n1'));
  await client.create(Resources.pods, 'default', { ...pod('c'), metadata: { name: 'c', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u1' }] } });
  await client.create(Resources.pods, 'kube-system', pod('other', 'n1'));
  const names = (l: KObject[]) => l.map((o) => o.metadata.name).sort();
  assert.deepEqual(names(inf.byIndex('node', 'n1')), ['a', 'b']);
  assert.deepEqual(names(inf.byIndex('owner', 'u1')), ['c']);

  // A change of the indexed value moves the object; deleting removes it.
  await client.patch(Resources.pods, 'default', 'b', 'merge', { metadata: { labels: { app: 'web' } } });
  assert.deepEqual(names(inf.byIndex('app', 'web')), ['b']);
  await client.patch(Resources.pods, 'default', 'b', 'merge', { metadata: { labels: { app: 'db' } } });
  assert.deepEqual(inf.byIndex('app', 'web'), []);
  assert.deepEqual(names(inf.byIndex('app', 'db')), ['b']);
  await client.delete(Resources.pods, 'default', 'a', { gracePeriodSeconds: 0 });
  assert.deepEqual(names(inf.byIndex('node', 'n1')), ['b']);
  assert.deepEqual(inf.byIndex('node', 'nowhere'), []);
  assert.throws(() => inf.byIndex('missing', 'x'), /no index "missing"/);
});

test('selectors: an object leaving them is deleted from the cache', async (t) => {
  const { client } = await startLocalApi(t);
  const deleted: string[] = [];
  const inf = informer(t, { client, resource: Resources.configMaps, labelSelector: 'team=a' });
  inf.addHandlers({ onDelete: (o) => deleted.push(o.metadata.name!) });
  inf.start();
  await inf.waitForSync(2000);
  await client.create(Resources.configMaps, 'default', { metadata: { name: 'x', labels: { team: 'a' } } });
  await client.create(Resources.configMaps, 'default', { metadata: { name: 'y', labels: { team: 'b' } } });
  assert.deepEqual(inf.keys(), ['default/x']);
  await client.patch(Resources.configMaps, 'default', 'x', 'merge', { metadata: { labels: { team: 'b' } } });
  assert.deepEqual(inf.keys(), []);
  assert.deepEqual(deleted, ['x']);
});

test('a broken watch resumes from the last version seen, without a relist', async (t) => {
  const api = await startLocalApi(t);
  const faulty = new FaultyClient(api.client);
  const adds: string[] = [];
  const inf = informer(t, { client: faulty.wrap(), resource: Resources.configMaps, namespace: 'default' });
  inf.addHandlers({ onAdd: (o) => adds.push(o.metadata.name!) });
  inf.start();
  await inf.waitForSync(2000);
  await api.client.create(Resources.configMaps, 'default', { metadata: { name: 'a' } });
  const seen = inf.lastSyncResourceVersion();

  faulty.refuseWatches = true;
  faulty.breakWatches();
  // Written while no watch is open: the resumed watch replays them.
  await api.client.create(Resources.configMaps, 'default', { metadata: { name: 'b' } });
  faulty.refuseWatches = false;
  await until(() => inf.get('default/b') !== undefined, 'b after the resumed watch');
  assert.equal(faulty.lists, 1, 'no relist');
  assert.equal(faulty.watchCalls.at(-1), seen);
  assert.deepEqual(adds, ['a', 'b']);
});

test('a compacted version (410) makes it relist; the difference becomes events', async (t) => {
  const api = await startLocalApi(t, { ringSize: 3 });
  const faulty = new FaultyClient(api.client);
  const log: string[] = [];
  await api.client.create(Resources.configMaps, 'default', { metadata: { name: 'keep' } });
  await api.client.create(Resources.configMaps, 'default', { metadata: { name: 'doomed' } });
  const inf = informer(t, { client: faulty.wrap(), resource: Resources.configMaps, namespace: 'default' });
  inf.addHandlers({
    onAdd: (o) => log.push(`add ${o.metadata.name}`),
    onUpdate: (o, n) => log.push(`update ${n.metadata.name}`),
    onDelete: (o) => log.push(`delete ${o.metadata.name}`),
  });
  faulty.listFailures = 2;   // the first lists fail: retried with backoff
  inf.start();
  await inf.waitForSync(2000);
  assert.equal(faulty.lists, 3);
  log.length = 0;

  faulty.refuseWatches = true;
  faulty.breakWatches();
  // More changes than the ring keeps, while disconnected: resuming is impossible.
  await api.client.delete(Resources.configMaps, 'default', 'doomed');
  for (let i = 0; i < 4; i++) await api.client.create(Resources.configMaps, 'default', { metadata: { name: `n${i}` } });
  faulty.refuseWatches = false;
  await until(() => inf.keys().length === 5, 'relisted cache');
  assert.equal(faulty.lists, 4, 'relisted once');
  assert.deepEqual(log.sort(), ['add n0', 'add n1', 'add n2', 'add n3', 'delete doomed']);
  assert.equal(inf.get('default/keep')?.metadata.name, 'keep');

  // And it follows live changes again.
  await api.client.create(Resources.configMaps, 'default', { metadata: { name: 'after' } });
  await until(() => inf.get('default/after') !== undefined, 'live after relist');
});

test('resync offers every cached object to onUpdate periodically', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.configMaps, 'default', { metadata: { name: 'a' } });
  let resyncs = 0;
  const inf = informer(t, { client, resource: Resources.configMaps, namespace: 'default', resyncMs: 10 });
  inf.addHandlers({ onUpdate: (o, n) => { if (o === n) resyncs++; } });
  inf.start();
  await inf.waitForSync(2000);
  await until(() => resyncs >= 2, 'two resyncs');
});

test('stop() ends it cleanly; waiting for sync on a stopped informer fails', async (t) => {
  const api = await startLocalApi(t);
  const faulty = new FaultyClient(api.client);
  faulty.listFailures = 1000;
  const inf = new Informer({ client: faulty.wrap(), resource: Resources.configMaps, backoff: { initialMs: 10_000 } });
  inf.start();
  const waiting = inf.waitForSync();
  await until(() => faulty.lists === 1, 'first list');
  await inf.stop();   // must not wait out the 10 s backoff
  await assert.rejects(waiting, /stopped before it synced/);
  await assert.rejects(inf.waitForSync(), /stopped/);
  await assert.rejects(new Informer({ client: api.client, resource: Resources.configMaps }).waitForSync(5), /not synced after 5 ms/);
});

test('the factory shares one informer per resource and selectors, indexes added by each user', async (t) => {
  const { client } = await startLocalApi(t);
  await client.create(Resources.pods, 'default', pod('a', 'n1'));
  const factory = new InformerFactory(client);
  t.after(() => factory.stop());
  const forScheduler = factory.informerFor(Resources.pods, { indexers: { node: (p: any) => (p.spec?.nodeName ? [p.spec.nodeName] : []) } });
  const forGc = factory.informerFor(Resources.pods, { indexers: { owner: (p) => (p.metadata.ownerReferences ?? []).map((r) => r.uid) } });
  assert.equal(forScheduler, forGc);
  assert.notEqual(factory.informerFor(Resources.pods, { namespace: 'kube-system' }), forGc);
  assert.throws(() => factory.informerFor(Resources.pods, { indexers: { node: () => [] } }), /index "node" already exists/);
  assert.deepEqual(factory.unsynced(), ['pods.v1', 'pods.v1 in kube-system'], 'what the informer-sync health check reports before start');
  factory.start();
  await factory.waitForSync(2000);
  assert.deepEqual(factory.unsynced(), []);
  assert.deepEqual(forGc.byIndex('node', 'n1').map((p) => p.metadata.name), ['a']);
  // An informer asked for after start starts at once.
  const late = factory.informerFor(Resources.configMaps);
  await late.waitForSync(2000);
  // An index added after sync files the cached objects.
  forGc.addIndexers({ name: (p) => [p.metadata.name!] });
  assert.equal(forGc.byIndex('name', 'a').length, 1);
});
