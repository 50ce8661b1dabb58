// The manager's bundle loop (src/fleet/bundle-controller.ts) against a real in-process API with the
// fleet CRDs: one BundleDeployment per targeted cluster, dependsOn holding a cluster until the
// dependency is Ready there, paused freezing the released version, a cluster that stops matching
// losing its deployment, invalid content refused with a condition, and the Bundle's summary.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalApi } from '../helpers/local-api.js';
import type { LocalClient } from '../../src/apiserver/local-client.js';
import { eventually } from '../helpers/wait.js';
import { InformerFactory } from '../../src/client/informer-factory.js';
import { Resources } from '../../src/client/types.js';
import { BundleController } from '../../src/fleet/bundle-controller.js';
import { BUNDLES, BUNDLE_DEPLOYMENTS, CLUSTERS, FLEET_API_VERSION, fleetCrds, type Bundle, type BundleDeployment } from '../../src/fleet/api.js';


/** The fleet CRDs, Ready Clusters with `labels`, and a running BundleController on the in-process API. */
async function startBundleController(t: TestContext, client: LocalClient, clusters: Record<string, Record<string, string>>): Promise<void> {
  for (const crd of fleetCrds()) await client.create(Resources.customResourceDefinitions, undefined, crd);
  await eventually(async () => (await client.list(BUNDLE_DEPLOYMENTS).then(() => true, () => false)) && (await client.list(CLUSTERS).then(() => true, () => false)), 'fleet CRDs served');
  for (const [name, labels] of Object.entries(clusters)) {
    const c = await client.create(CLUSTERS, undefined, { apiVersion: FLEET_API_VERSION, kind: 'Cluster', metadata: { name, labels }, spec: {} });
    await client.updateStatus(CLUSTERS, undefined, { ...c, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
  }
  const informers = new InformerFactory(client);
  const controller = new BundleController(client, informers);
  controller.start();
  informers.start();
  t.after(async () => { await controller.stop(); await informers.stop(); });
}

test('bundle controller: targets, dependsOn, paused, retargeting, invalid content, summary', async (t) => {
  const { client } = await startLocalApi(t);
  await startBundleController(t, client, { a: { region: 'eu' }, b: { region: 'eu' }, c: { region: 'us' } });

  const bundle = (name: string, spec: Record<string, unknown>) => ({ apiVersion: FLEET_API_VERSION, kind: 'Bundle', metadata: { name, namespace: 'default' }, spec });
  const content = (v: string) => [{ name: 'cm.yaml', content: `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {v: "${v}"}\n` }];
  const eu = [{ clusterSelector: { matchLabels: { region: 'eu' } } }];
  const bd = (name: string) => client.get<BundleDeployment>(BUNDLE_DEPLOYMENTS, 'default', name);
  const ready = async (name: string) => {
    const d = (await bd(name))!;
    await client.patch(BUNDLE_DEPLOYMENTS, 'default', name, 'merge', { status: { appliedDeploymentID: d.spec!.deploymentID, ready: true } }, { subresource: 'status' });
  };

  await client.create(BUNDLES, 'default', bundle('base', { resources: content('1'), targets: eu }));
  await eventually(async () => (await bd('base.a'))?.spec?.deploymentID && (await bd('base.b'))?.spec?.deploymentID, 'base on a and b');
  assert.equal(await bd('base.c'), undefined, 'c is not targeted');
  const d = (await bd('base.a'))!;
  assert.equal(d.spec!.options!.clusterName, 'a');
  assert.deepEqual(d.metadata.labels, { 'fleet.skiff.io/bundle-name': 'base', 'fleet.skiff.io/bundle-namespace': 'default', 'fleet.skiff.io/cluster': 'a' });
  assert.ok((await client.list(Resources.configMaps, 'default', { labelSelector: 'fleet.skiff.io/content' })).items.length >= 1, 'content stored');

  // dependsOn: app waits on each cluster until base is Ready there.
  await client.create(BUNDLES, 'default', bundle('app', { resources: content('a1'), targets: eu, dependsOn: [{ name: 'base' }] }));
  await eventually(async () => (await bd('app.a'))?.spec?.stagedDeploymentID, 'app staged');
  assert.equal((await bd('app.a'))!.spec!.deploymentID, undefined);
  await ready('base.a');
  await eventually(async () => (await bd('app.a'))?.spec?.deploymentID, 'app released on a once base is Ready there');
  assert.equal((await bd('app.b'))!.spec!.deploymentID, undefined, 'b still waits');
  const summary = await eventually(async () => { const b = await client.get<Bundle>(BUNDLES, 'default', 'base'); return b?.status?.summary?.ready === 1 ? b.status : undefined; }, 'base summary');
  assert.equal(summary.display?.readyClusters, '1/2');

  // paused: the released version stays while the bundle changes.
  const released = (await bd('app.a'))!.spec!.deploymentID;
  const cur = (await client.get<Bundle>(BUNDLES, 'default', 'app'))!;
  await client.update(BUNDLES, 'default', { ...cur, spec: { ...cur.spec, paused: true, resources: content('a2') } });
  await eventually(async () => { const x = await bd('app.a'); return x?.spec?.paused && x.spec.stagedDeploymentID !== released; }, 'app paused with a new staged version');
  assert.equal((await bd('app.a'))!.spec!.deploymentID, released);

  // b leaves region eu: its deployments go.
  const b = (await client.get(CLUSTERS, undefined, 'b'))!;
  await client.update(CLUSTERS, undefined, { ...b, metadata: { ...b.metadata, labels: { region: 'us' } } });
  await eventually(async () => (await bd('base.b')) === undefined && (await bd('app.b')) === undefined, 'b\'s deployments deleted');

  // Invalid content: a condition, and the deployments keep their version.
  const before = (await bd('base.a'))!.spec!.deploymentID;
  const base = (await client.get<Bundle>(BUNDLES, 'default', 'base'))!;
  await client.update(BUNDLES, 'default', { ...base, spec: { ...base.spec, resources: [{ name: 'bad.yaml', content: 'a: [1' }] } });
  const st = await eventually(async () => { const x = await client.get<Bundle>(BUNDLES, 'default', 'base'); return x?.status?.display?.state === 'InvalidContent' ? x.status : undefined; }, 'InvalidContent');
  assert.match(st.conditions!.find((c) => c.type === 'Ready')!.message!, /bad\.yaml: invalid YAML/);
  assert.equal((await bd('base.a'))!.spec!.deploymentID, before);
});

test('bundle controller: a rollout is paused only while its gate holds clusters back', async (t) => {
  const { client } = await startLocalApi(t);
  await startBundleController(t, client, { a: {}, b: {} });
  const bd = (name: string) => client.get<BundleDeployment>(BUNDLE_DEPLOYMENTS, 'default', name);
  const report = async (name: string, ready: boolean, message?: string) => {
    const d = (await bd(name))!;
    await client.patch(BUNDLE_DEPLOYMENTS, 'default', name, 'merge', { status: { appliedDeploymentID: d.spec!.deploymentID, ready, message: message ?? null } }, { subresource: 'status' });
  };
  const status = async (want: (s: NonNullable<Bundle['status']>) => boolean, what: string) =>
    eventually(async () => { const s = (await client.get<Bundle>(BUNDLES, 'default', 'web'))?.status; return s && want(s) ? s : undefined; }, what);
  const paused = (s: NonNullable<Bundle['status']>) => s.conditions?.find((c) => c.type === 'RolloutPaused');
  const spec = (v: string) => ({
    resources: [{ name: 'cm.yaml', content: `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {v: "${v}"}\n` }],
    targets: [{ clusterSelector: {} }],
    rolloutStrategy: { partitions: [{ name: 'p1', clusterName: 'a' }, { name: 'p2', clusterName: 'b' }] },
  });

  // First deployment: both at once, nobody held back: not Ready yet, but not paused.
  await client.create(BUNDLES, 'default', { apiVersion: FLEET_API_VERSION, kind: 'Bundle', metadata: { name: 'web', namespace: 'default' }, spec: spec('1') });
  let s = await status((x) => paused(x)?.reason === 'AllPartitionsReleased', 'first deployment released everywhere');
  assert.equal(paused(s)?.status, 'False');
  assert.notEqual(s.display?.state, 'RolloutPaused');
  assert.match(s.display?.message ?? '', /^partition "p1" is not Ready on a$/);
  await report('web.a', true);
  await report('web.b', true);
  s = await status((x) => x.display?.state === 'Ready', 'v1 Ready');
  assert.equal(paused(s)?.reason, 'AllPartitionsReady');

  // A change: a takes it and fails; b is held back: paused, naming a and why.
  const cur = (await client.get<Bundle>(BUNDLES, 'default', 'web'))!;
  await client.update(BUNDLES, 'default', { ...cur, spec: spec('2') });
  await eventually(async () => { const x = await bd('web.a'); return x?.spec?.deploymentID === x?.spec?.stagedDeploymentID && x?.spec?.deploymentID !== undefined && x.status?.appliedDeploymentID !== x.spec?.deploymentID; }, 'a released');
  await report('web.a', false, 'deployment shop/web: 1 old replicas pending termination (pod web-1: ImagePullBackOff: x:2)');
  s = await status((x) => paused(x)?.status === 'True' && /ImagePullBackOff/.test(paused(x)?.message ?? ''), 'paused at p1');
  assert.equal(paused(s)?.message, 'partition "p1" is not Ready on a (deployment shop/web: 1 old replicas pending termination (pod web-1: ImagePullBackOff: x:2)); the next partitions wait (1 cluster)');
  assert.equal(s.display?.state, 'RolloutPaused');
  const heldB = (await bd('web.b'))!;
  assert.notEqual(heldB.spec!.deploymentID, heldB.spec!.stagedDeploymentID, 'b held back');

  // a Ready: b is released; the last partition not yet Ready holds nobody, so not paused.
  await report('web.a', true);
  s = await status((x) => paused(x)?.reason === 'AllPartitionsReleased', 'b released');
  assert.equal(s.display?.message, 'partition "p2" is not Ready on b');
  await report('web.b', true);
  s = await status((x) => x.display?.state === 'Ready', 'v2 Ready');
  assert.equal(paused(s)?.reason, 'AllPartitionsReady');
});
