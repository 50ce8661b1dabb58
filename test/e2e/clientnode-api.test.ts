// The official JavaScript client (@kubernetes/client-node 2.x), unchanged, against a skiff server:
// typed CRUD, paging, watch, the four patch content types, and an informer that survives a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  KubeConfig, CoreV1Api, AppsV1Api, Watch, makeInformer, ApiException, PatchStrategy, setHeaderOptions,
  type V1ConfigMap, type V1Deployment,
} from '../helpers/client-node.js';
import { startServer, type TestServer, API_ONLY } from '../helpers/cluster.js';

let server: TestServer;
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;

before(async () => {
  server = await startServer({ args: API_ONLY });
  kc = new KubeConfig();
  kc.loadFromFile(server.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
});

after(async () => { await server?.dispose(); });

async function namespace(name: string): Promise<string> {
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

/** Runs `fn`, which must fail with an ApiException carrying a Status of this code and reason. */
async function rejectsWith(fn: () => Promise<unknown>, code: number, reason: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof ApiException, `expected ApiException, got ${e}`);
    assert.equal(e.code, code, `HTTP code: ${e.message}`);
    const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
    assert.equal(body.kind, 'Status');
    assert.equal(body.reason, reason, JSON.stringify(body));
    return;
  }
  assert.fail(`expected HTTP ${code} ${reason}, the call succeeded`);
}

function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

test('ConfigMap CRUD with typed calls', async () => {
  const ns = await namespace('cn-cm');
  const created = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'one', labels: { app: 'a' } }, data: { k: 'v' } } });
  assert.equal(created.metadata?.name, 'one');
  assert.equal(created.metadata?.namespace, ns);
  assert.ok(created.metadata?.uid, 'uid set');
  assert.ok(created.metadata?.resourceVersion, 'resourceVersion set');
  assert.ok(created.metadata?.creationTimestamp instanceof Date, 'creationTimestamp parsed as a date');

  const read = await core.readNamespacedConfigMap({ name: 'one', namespace: ns });
  assert.deepEqual(read.data, { k: 'v' });
  assert.equal(read.metadata?.uid, created.metadata?.uid);

  read.data = { k: 'v2', extra: 'x' };
  const replaced = await core.replaceNamespacedConfigMap({ name: 'one', namespace: ns, body: read });
  assert.deepEqual(replaced.data, { k: 'v2', extra: 'x' });
  assert.notEqual(replaced.metadata?.resourceVersion, created.metadata?.resourceVersion);

  // Replacing with the old resourceVersion conflicts.
  await rejectsWith(() => core.replaceNamespacedConfigMap({ name: 'one', namespace: ns, body: { ...created, data: { k: 'stale' } } }), 409, 'Conflict');
  await rejectsWith(() => core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'one' } } }), 409, 'AlreadyExists');

  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'two', labels: { app: 'b' } } } });
  const onlyA = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'app=a' });
  assert.deepEqual(onlyA.items.map((i) => i.metadata?.name), ['one']);
  const notA = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'app!=a' });
  assert.ok(notA.items.every((i) => i.metadata?.name !== 'one'));
  assert.ok(notA.items.some((i) => i.metadata?.name === 'two'));
  const setBased = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'app in (a,b)' });
  assert.deepEqual(setBased.items.map((i) => i.metadata?.name).sort(), ['one', 'two']);
  const byName = await core.listNamespacedConfigMap({ namespace: ns, fieldSelector: 'metadata.name=two' });
  assert.deepEqual(byName.items.map((i) => i.metadata?.name), ['two']);

  await core.deleteNamespacedConfigMap({ name: 'one', namespace: ns });
  await rejectsWith(() => core.readNamespacedConfigMap({ name: 'one', namespace: ns }), 404, 'NotFound');
  await rejectsWith(() => core.deleteNamespacedConfigMap({ name: 'one', namespace: ns }), 404, 'NotFound');
});

test('Secret CRUD: stringData is folded into base64 data', async () => {
  const ns = await namespace('cn-secret');
  const created = await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 's' }, stringData: { password: 'hunter2' } } });
  assert.equal(created.type, 'Opaque', 'type defaults to Opaque');
  assert.equal(created.stringData, undefined, 'stringData is write-only');
  assert.equal(Buffer.from(created.data!.password!, 'base64').toString(), 'hunter2');
  const read = await core.readNamespacedSecret({ name: 's', namespace: ns });
  read.data = { ...read.data, user: Buffer.from('root').toString('base64') };
  const replaced = await core.replaceNamespacedSecret({ name: 's', namespace: ns, body: read });
  assert.deepEqual(Object.keys(replaced.data ?? {}).sort(), ['password', 'user']);
  const listed = await core.listNamespacedSecret({ namespace: ns });
  assert.ok(listed.items.some((i) => i.metadata?.name === 's'));
  await core.deleteNamespacedSecret({ name: 's', namespace: ns });
  await rejectsWith(() => core.readNamespacedSecret({ name: 's', namespace: ns }), 404, 'NotFound');
});

function deployment(name: string, replicas = 1): V1Deployment {
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'main', image: 'busybox:1', env: [{ name: 'A', value: '1' }] }] },
      },
    },
  };
}

test('Deployment CRUD with AppsV1Api', async () => {
  const ns = await namespace('cn-deploy');
  const created = await apps.createNamespacedDeployment({ namespace: ns, body: deployment('web', 2) });
  assert.equal(created.spec?.replicas, 2);
  assert.equal(created.metadata?.generation, 1);
  assert.equal(created.spec?.strategy?.type, 'RollingUpdate', 'strategy defaulted');
  const read = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
  assert.equal(read.spec?.template.spec?.containers[0]?.image, 'busybox:1');
  read.spec!.replicas = 3;
  const replaced = await apps.replaceNamespacedDeployment({ name: 'web', namespace: ns, body: read });
  assert.equal(replaced.spec?.replicas, 3);
  assert.equal(replaced.metadata?.generation, 2, 'a spec change bumps generation');
  const list = await apps.listNamespacedDeployment({ namespace: ns });
  assert.deepEqual(list.items.map((d) => d.metadata?.name), ['web']);
  const all = await apps.listDeploymentForAllNamespaces({ labelSelector: 'app=web' });
  assert.ok(all.items.some((d) => d.metadata?.namespace === ns));
  await rejectsWith(() => apps.createNamespacedDeployment({ namespace: ns, body: deployment('bad', -1) }), 422, 'Invalid');
  await apps.deleteNamespacedDeployment({ name: 'web', namespace: ns });
  await rejectsWith(() => apps.readNamespacedDeployment({ name: 'web', namespace: ns }), 404, 'NotFound');
});

test('list with limit/continue pages over 55 objects, also with a labelSelector', async () => {
  const ns = await namespace('cn-page');
  const names: string[] = [];
  for (let i = 0; i < 55; i++) names.push(`item-${String(i).padStart(2, '0')}`);
  await Promise.all(names.map((name, i) => core.createNamespacedConfigMap({
    namespace: ns, body: { metadata: { name, labels: { parity: i % 2 ? 'odd' : 'even' } } },
  })));

  const pageThrough = async (labelSelector?: string) => {
    const seen: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    let firstRv: string | undefined;
    do {
      const page = await core.listNamespacedConfigMap({ namespace: ns, limit: 10, _continue: cont, labelSelector });
      pages++;
      assert.ok(page.items.length <= 10, `page of ${page.items.length}`);
      if (pages === 1) {
        firstRv = page.metadata?.resourceVersion;
        // Kubernetes counts what is left only when nothing is filtered out (it cannot know otherwise).
        assert.equal(page.metadata?.remainingItemCount, labelSelector ? undefined : 55 - 10, 'remainingItemCount of the first page');
      } else {
        // Every page of one list is served at the first page's revision.
        assert.equal(page.metadata?.resourceVersion, firstRv);
      }
      seen.push(...page.items.map((i) => i.metadata!.name!));
      cont = page.metadata?._continue || undefined;
      assert.ok(pages < 20, 'paging does not end');
    } while (cont);
    return { seen, pages };
  };

  const all = await pageThrough();
  assert.deepEqual(all.seen, [...names].sort(), 'all objects, each once, in name order');
  assert.equal(all.pages, 6);
  const odd = await pageThrough('parity=odd');
  assert.deepEqual(odd.seen, names.filter((_, i) => i % 2).sort());
  assert.equal(odd.pages, 3);

  // Writes made while paging do not show up in the pages of a list already started.
  const first = await core.listNamespacedConfigMap({ namespace: ns, limit: 10 });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'item-99-late' } } });
  const rest: string[] = [];
  for (let cont = first.metadata?._continue; cont;) {
    const page = await core.listNamespacedConfigMap({ namespace: ns, limit: 10, _continue: cont });
    rest.push(...page.items.map((i) => i.metadata!.name!));
    cont = page.metadata?._continue || undefined;
  }
  assert.ok(!rest.includes('item-99-late'), 'a create after the first page leaked into the snapshot');
  assert.equal(first.items.length + rest.length, 55);
});

test('Watch delivers ADDED, MODIFIED and DELETED in order', async () => {
  const ns = await namespace('cn-watch');
  const list = await core.listNamespacedConfigMap({ namespace: ns });
  const events: { type: string; name: string; rv: string; data?: Record<string, string> }[] = [];
  let doneErr: unknown = 'not done';
  const ctl = await new Watch(kc).watch(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: list.metadata?.resourceVersion },
    (type, obj: V1ConfigMap) => events.push({ type, name: obj.metadata!.name!, rv: obj.metadata!.resourceVersion!, data: obj.data }),
    (err) => { doneErr = err; });
  try {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'w' }, data: { n: '1' } } });
    await core.patchNamespacedConfigMap({ name: 'w', namespace: ns, body: { data: { n: '2' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await core.deleteNamespacedConfigMap({ name: 'w', namespace: ns });
    await until(() => events.length >= 3, `3 watch events (got ${JSON.stringify(events)})`);
    assert.deepEqual(events.map((e) => e.type), ['ADDED', 'MODIFIED', 'DELETED']);
    assert.deepEqual(events.map((e) => e.data?.n), ['1', '2', '2']);
    const rvs = events.map((e) => BigInt(e.rv));
    assert.ok(rvs[0]! < rvs[1]! && rvs[1]! < rvs[2]!, `resourceVersions grow: ${rvs.join(', ')}`);
    assert.equal(doneErr, 'not done', `watch ended early: ${doneErr}`);
  } finally {
    ctl.abort();
  }
});

test('patch with every content type the library offers', async () => {
  const ns = await namespace('cn-patch');
  await apps.createNamespacedDeployment({ namespace: ns, body: deployment('p') });

  // The library's default for patch calls is a JSON patch (RFC 6902).
  const jsonPatched = await apps.patchNamespacedDeployment({
    name: 'p', namespace: ns, body: [{ op: 'replace', path: '/spec/replicas', value: 4 }, { op: 'add', path: '/metadata/labels/tier', value: 'web' }],
  });
  assert.equal(jsonPatched.spec?.replicas, 4);
  assert.equal(jsonPatched.metadata?.labels?.tier, 'web');

  const merged = await apps.patchNamespacedDeployment({ name: 'p', namespace: ns, body: { metadata: { labels: { tier: null, team: 'x' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  assert.deepEqual(merged.metadata?.labels, { app: 'p', team: 'x' });

  // Strategic merge: containers merge by name and env by name, instead of replacing the lists.
  const smp = await apps.patchNamespacedDeployment({
    name: 'p', namespace: ns,
    body: { spec: { template: { spec: { containers: [{ name: 'side', image: 'busybox:2' }, { name: 'main', env: [{ name: 'B', value: '2' }] }] } } } },
  }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
  const containers = smp.spec!.template.spec!.containers;
  assert.deepEqual(containers.map((c) => c.name).sort(), ['main', 'side']);
  const main = containers.find((c) => c.name === 'main')!;
  assert.equal(main.image, 'busybox:1', 'strategic merge kept the untouched container field');
  assert.deepEqual(main.env?.map((e) => e.name).sort(), ['A', 'B']);

  // Server-side apply with a field manager: creates when missing, then updates what it owns.
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied', namespace: ns }, data: { a: '1' } };
  const applied = await core.patchNamespacedConfigMap({ name: 'applied', namespace: ns, body: cm, fieldManager: 'cn-test', force: true },
    setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply));
  assert.deepEqual(applied.data, { a: '1' });
  assert.ok(applied.metadata?.managedFields?.some((m) => m.manager === 'cn-test' && m.operation === 'Apply'), 'managedFields records the applier');
  const reapplied = await core.patchNamespacedConfigMap({ name: 'applied', namespace: ns, body: { ...cm, data: { b: '2' } }, fieldManager: 'cn-test', force: true },
    setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply));
  assert.deepEqual(reapplied.data, { b: '2' }, 'a field the manager stopped applying is removed');

  // A failing JSON-patch test op changes nothing.
  const before = await apps.readNamespacedDeployment({ name: 'p', namespace: ns });
  await rejectsWith(() => apps.patchNamespacedDeployment({ name: 'p', namespace: ns, body: [{ op: 'test', path: '/spec/replicas', value: 99 }, { op: 'replace', path: '/spec/replicas', value: 0 }] }), 422, 'Invalid');
  const afterFailed = await apps.readNamespacedDeployment({ name: 'p', namespace: ns });
  assert.equal(afterFailed.metadata?.resourceVersion, before.metadata?.resourceVersion);
});

test('an informer keeps working across a server restart', async () => {
  const ns = await namespace('cn-informer');
  const seen: { verb: string; name: string; n?: string }[] = [];
  let errors = 0;
  const informer = makeInformer<V1ConfigMap>(kc, `/api/v1/namespaces/${ns}/configmaps`,
    () => core.listNamespacedConfigMap({ namespace: ns }));
  informer.on('add', (o) => seen.push({ verb: 'add', name: o.metadata!.name!, n: o.data?.n }));
  informer.on('update', (o) => seen.push({ verb: 'update', name: o.metadata!.name!, n: o.data?.n }));
  informer.on('delete', (o) => seen.push({ verb: 'delete', name: o.metadata!.name! }));
  // client-node's informer stops on a connection error; restarting it from the error handler is
  // the library's documented pattern, and it resumes from its last resourceVersion.
  let stopped = false;
  informer.on('error', () => { errors++; if (!stopped) setTimeout(() => { if (!stopped) void informer.start(); }, 200); });
  const has = (verb: string, name: string, n?: string) => seen.some((e) => e.verb === verb && e.name === name && (n === undefined || e.n === n));
  try {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'before' }, data: { n: '1' } } });
    await informer.start();
    await until(() => has('add', 'before'), 'add of "before"');

    await server.restart();

    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'after' }, data: { n: '1' } } });
    await until(() => has('add', 'after'), `add of "after" after the restart (events ${JSON.stringify(seen)}, ${errors} errors)`, 20_000);
    await core.patchNamespacedConfigMap({ name: 'after', namespace: ns, body: { data: { n: '2' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await until(() => has('update', 'after', '2'), `update of "after" (events ${JSON.stringify(seen)})`);
    await core.deleteNamespacedConfigMap({ name: 'before', namespace: ns });
    await until(() => has('delete', 'before'), `delete of "before" (events ${JSON.stringify(seen)})`);
    assert.deepEqual(informer.list(ns).map((o) => o.metadata?.name), ['after']);
    assert.equal(informer.get('after', ns)?.data?.n, '2');
    // Nothing was delivered twice as an add for the object that existed before the restart.
    assert.equal(seen.filter((e) => e.verb === 'add' && e.name === 'before').length, 1, JSON.stringify(seen));
  } finally {
    stopped = true;
    await informer.stop();
  }
});
