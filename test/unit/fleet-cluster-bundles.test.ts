// Bundles ready per Cluster (issue 17 item 5): each BundleDeployment's state in the Bundle summary's
// terms, their sum into a Cluster's status.summary and the `Bundles-Ready` column's display value
// (offline clusters count nothing Ready), and the manager keeping it current from BundleDeployment
// changes with writes coalesced per cluster, not one per event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterBundleSummary, deploymentState, desiredStatus, type StatusTiming } from '../../src/fleet/status.js';
import { BUNDLES, BUNDLE_DEPLOYMENTS, CLUSTERS, FLEET_API_VERSION, fleetCrds, type BundleDeployment, type Cluster } from '../../src/fleet/api.js';
import { startLocalApi } from '../helpers/local-api.js';
import { eventually } from '../helpers/wait.js';
import { Resources } from '../../src/client/types.js';
import { InformerFactory } from '../../src/client/informer-factory.js';
import { FleetManager } from '../../src/fleet/manager.js';

const T0 = Date.parse('2026-12-05T10:00:00Z');
const timing = (now: number): StatusTiming => ({ now, graceMs: 40_000, managerStartMs: T0 - 3_600_000, lastSeenResolutionMs: 60_000 });

function bd(bundle: string, o: { staged?: string; released?: string; applied?: string; ready?: boolean; message?: string; failed?: boolean } = {}): BundleDeployment {
  return {
    apiVersion: FLEET_API_VERSION, kind: 'BundleDeployment', metadata: { name: `${bundle}.a`, namespace: 'default' },
    spec: { bundle, cluster: 'a', stagedDeploymentID: o.staged ?? 'v2', deploymentID: o.released ?? o.staged ?? 'v2' },
    status: {
      ...(o.applied ? { appliedDeploymentID: o.applied } : {}), ...(o.ready !== undefined ? { ready: o.ready } : {}), ...(o.message ? { message: o.message } : {}),
      ...(o.failed ? { conditions: [{ type: 'Deployed', status: 'False' as const }] } : {}),
    },
  };
}

test('a BundleDeployment\'s state: ready only applied, Ready and online; pending, waitApplied, errApplied, notReady, offline', () => {
  assert.equal(deploymentState(bd('x', { applied: 'v2', ready: true }), true), 'ready');
  assert.equal(deploymentState(bd('x', { applied: 'v2', ready: true }), false), 'offline', 'an offline cluster\'s last report is not Ready');
  assert.equal(deploymentState(bd('x', { released: 'v1', applied: 'v1', ready: true }), true), 'pending', 'v2 waits for its partition');
  assert.equal(deploymentState(bd('x', { applied: 'v1', ready: true }), true), 'waitApplied');
  assert.equal(deploymentState(bd('x', {}), true), 'waitApplied', 'never reported');
  assert.equal(deploymentState(bd('x', { applied: 'v1', message: 'bad.yaml: invalid', failed: true }), true), 'errApplied');
  assert.equal(deploymentState(bd('x', { applied: 'v2', ready: false, message: 'ErrImagePull' }), true), 'notReady');
});

test('a Cluster\'s bundle summary: counts, the not-Ready bundles named (at most 10), and Bundles-Ready as ready/total', () => {
  const list = [
    bd('a', { applied: 'v2', ready: true }), bd('b', { applied: 'v2', ready: true }),
    bd('c', { applied: 'v2', ready: false, message: 'ErrImagePull' }), bd('d', { released: 'v1', applied: 'v1', ready: true }),
  ];
  const s = clusterBundleSummary(list, true);
  assert.deepEqual(s, { desiredReady: 4, ready: 2, notReady: 1, pending: 1, waitApplied: 0, errApplied: 0, offline: 0, nonReadyBundles: ['default/c', 'default/d'] });
  assert.deepEqual(clusterBundleSummary([], true), { desiredReady: 0, ready: 0, notReady: 0, pending: 0, waitApplied: 0, errApplied: 0, offline: 0 });
  const many = Array.from({ length: 25 }, (_, i) => bd(`b${String(i).padStart(2, '0')}`));
  const m = clusterBundleSummary(many, true);
  assert.equal(m.waitApplied, 25);
  assert.equal(m.nonReadyBundles?.length, 10, 'names are a hint; the counts are exact');

  // Into the Cluster's status: written when the counts move, not when nothing did.
  const report = { version: 'v1', labels: {}, nodes: { ready: 1, total: 1 }, capacity: { cpu: '1', memory: '1Gi', pods: '10' } };
  const a = desiredStatus(undefined, { lastSeenMs: T0, report, deployments: list }, timing(T0));
  assert.deepEqual(a.status.display, { nodes: '1/1', state: 'Ready', readyBundles: '2/4' });
  assert.equal(a.status.summary?.notReady, 1);
  assert.equal(desiredStatus(a.status, { lastSeenMs: T0 + 1000, report, deployments: list }, timing(T0 + 1000)).changed, false);
  const fixed = list.map((d) => ({ ...d, status: { appliedDeploymentID: 'v2', ready: true } }));
  const b = desiredStatus(a.status, { lastSeenMs: T0 + 2000, report, deployments: fixed }, timing(T0 + 2000));
  assert.equal(b.changed, true);
  assert.equal(b.status.display?.readyBundles, '4/4');
  assert.equal(b.status.summary?.nonReadyBundles, undefined);
  // Offline: nothing is counted Ready on the last report.
  const c = desiredStatus(b.status, { lastSeenMs: T0 + 2000, report, deployments: fixed }, timing(T0 + 60_000));
  assert.equal(c.status.display?.state, 'Offline');
  assert.equal(c.status.display?.readyBundles, '0/4');
  assert.equal(c.status.summary?.offline, 4);
});

test('the manager keeps a Cluster\'s bundles ready from BundleDeployment changes, coalesced per cluster', async (t) => {
  const { client } = await startLocalApi(t);
  for (const crd of fleetCrds()) await client.create(Resources.customResourceDefinitions, undefined, crd);
  await eventually(async () => (await client.list(BUNDLE_DEPLOYMENTS).then(() => true, () => false)) && (await client.list(CLUSTERS).then(() => true, () => false)), 'fleet CRDs served');
  // A Cluster the manager has seen Ready (a long grace period keeps it so without a site heartbeating).
  const c = await client.create<Cluster>(CLUSTERS, undefined, { apiVersion: FLEET_API_VERSION, kind: 'Cluster', metadata: { name: 'a', labels: { region: 'eu' } }, spec: {} });
  await client.updateStatus(CLUSTERS, undefined, { ...c, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
  const manager = new FleetManager({
    client, serverCaPem: '', issueClusterCert: () => Promise.reject(new Error('not in this test')), upgradeHead: () => undefined, offlineGraceMs: 600_000,
  });
  manager.start();
  // Count the Cluster's writes from the outside.
  const watcher = new InformerFactory(client);
  let writes = 0;
  watcher.informerFor<Cluster>(CLUSTERS).addHandlers({ onUpdate: () => { writes++; } });
  watcher.start();
  t.after(async () => { await manager.stop(); await watcher.stop(); });

  const cluster = () => client.get<Cluster>(CLUSTERS, undefined, 'a');
  await eventually(async () => (await cluster())?.status?.display?.readyBundles === '0/0', 'a 0/0 before any bundle');
  const N = 30;
  for (let i = 0; i < N; i++) {
    await client.create(BUNDLES, 'default', {
      apiVersion: FLEET_API_VERSION, kind: 'Bundle', metadata: { name: `b${i}`, namespace: 'default' },
      spec: { resources: [{ name: 'cm.yaml', content: `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm${i}}\n` }], targets: [{ clusterName: 'a' }] },
    });
  }
  await eventually(async () => (await cluster())?.status?.display?.readyBundles === `0/${N}`, `a 0/${N}`, 60_000);
  const before = writes;
  // The site reports every one applied and Ready: N status writes on BundleDeployments.
  const list = (await client.list<BundleDeployment>(BUNDLE_DEPLOYMENTS, 'default')).items;
  assert.equal(list.length, N);
  await Promise.all(list.map((d) => client.patch(BUNDLE_DEPLOYMENTS, 'default', d.metadata.name!, 'merge',
    { status: { appliedDeploymentID: d.spec!.deploymentID, ready: true } }, { subresource: 'status' })));
  const done = await eventually(async () => { const x = await cluster(); return x?.status?.display?.readyBundles === `${N}/${N}` ? x : undefined; }, `a ${N}/${N}`, 60_000);
  assert.equal(done.status!.summary!.ready, N);
  const burst = writes - before;
  t.diagnostic(`${N} BundleDeployment reports → ${burst} Cluster write(s)`);
  assert.ok(burst < N / 2, `${burst} Cluster writes for ${N} BundleDeployment changes: not coalesced`);
  // A deployment going away is counted out.
  await client.delete(BUNDLES, 'default', 'b0');
  await eventually(async () => (await cluster())?.status?.display?.readyBundles === `${N - 1}/${N - 1}`, 'b0 counted out', 60_000);
});
