// The site's apply loop (src/fleet/site-bundles.ts) against a real in-process API: what a site does
// with the manager's bundles stream. Server-side apply under the fleet's field manager with the
// cluster's values, the default namespace created, objects a new version drops deleted, a
// deployment removed from the manager's list deleted (or kept with keepResources), drift corrected,
// a render error reported, and the versions it runs remembered across a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Duplex } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalApi } from '../helpers/local-api.js';
import { eventually } from '../helpers/wait.js';
import { Resources } from '../../src/client/types.js';
import { SiteBundles, FLEET_FIELD_MANAGER } from '../../src/fleet/site-bundles.js';
import type { TunnelStream } from '../../src/tunnel/mux.js';
import type { FromSite, ToSite } from '../../src/fleet/protocol.js';
import { fleetPatcher } from '../../src/server/fleet-patcher.js';
import { loadSchemaSet } from '../../src/api/schema.js';

/** Both ends of a fake bundles stream: what the site writes is collected; `send` is the manager. */
function fakeStream() {
  const toSite = new PassThrough();
  const fromSite = new PassThrough();
  const stream = Duplex.from({ readable: toSite, writable: fromSite }) as unknown as TunnelStream;
  (stream as any).accept = () => undefined;
  stream.on('error', () => undefined);   // as a TunnelStream: destroying it is no crash
  const got: FromSite[] = [];
  let buf = '';
  fromSite.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) { got.push(JSON.parse(buf.slice(0, nl))); buf = buf.slice(nl + 1); }
  });
  return { stream, got, send: (m: ToSite) => toSite.write(JSON.stringify(m) + '\n') };
}

const cm = (name: string, extra = '') => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata:\n  region: \${ .ClusterLabels.region }\n${extra}`;
const options = { clusterName: 'shop-1', clusterLabels: { region: 'eu' }, defaultNamespace: 'shop' };

test('site bundles: apply, prune, remove, keep, drift, errors, restart', async (t) => {
  const api = await startLocalApi(t);
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-site-bundles-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const get = (name: string) => api.client.get(Resources.configMaps, 'shop', name);
  const lastStatus = (got: FromSite[], key: string) => [...got].reverse().find((m) => m.t === 'status' && m.key === key) as Extract<FromSite, { t: 'status' }> | undefined;

  const site = new SiteBundles({ client: api.client, dataDir, patcher: fleetPatcher(loadSchemaSet()), resyncMs: 300, readyPollMs: 100 });
  site.start();
  const a = fakeStream();
  site.serve(a.stream);
  await eventually(async () => a.got[0], 'hello');
  assert.deepEqual(a.got[0], { t: 'hello', applied: {} });

  a.send({ t: 'deploy', key: 'default/app.shop-1', deploymentID: 's-1:x', options, resources: [{ name: 'a.yaml', content: cm('a') }, { name: 'b.yaml', content: cm('b') }] });
  const s1 = await eventually(async () => { const s = lastStatus(a.got, 'default/app.shop-1'); return s?.appliedDeploymentID === 's-1:x' ? s : undefined; }, 'v1 applied');
  assert.equal(s1.ready, true);
  assert.equal(s1.resources, 2);
  const live = (await get('a')) as any;
  assert.deepEqual(live.data, { region: 'eu' });
  assert.equal(live.metadata.annotations['fleet.skiff.io/bundle-deployment'], 'default/app.shop-1');
  assert.equal(live.metadata.managedFields[0].manager, FLEET_FIELD_MANAGER);

  // v2 drops b: deleted.
  a.send({ t: 'deploy', key: 'default/app.shop-1', deploymentID: 's-2:x', options, resources: [{ name: 'a.yaml', content: cm('a', '  v: "2"\n') }] });
  await eventually(async () => (await get('b')) === undefined && ((await get('a')) as any)?.data?.v === '2', 'b pruned, a at v2');

  // Drift: a deleted by hand comes back within the resync period.
  await api.client.delete(Resources.configMaps, 'shop', 'a');
  await eventually(() => get('a'), 'a back');

  // A render error is reported, not thrown.
  a.send({ t: 'deploy', key: 'default/bad.shop-1', deploymentID: 's-3:x', options: { ...options, clusterLabels: {} }, resources: [{ name: 'c.yaml', content: cm('c') }] });
  const bad = await eventually(async () => { const s = lastStatus(a.got, 'default/bad.shop-1'); return s?.error ? s : undefined; }, 'error reported');
  assert.match(bad.message!, /cluster "shop-1" has no label "region"/);

  // keepResources: removed from the list, its objects stay; the other is deleted.
  a.send({ t: 'deploy', key: 'default/kept.shop-1', deploymentID: 's-4:x', options: { ...options, keepResources: true }, resources: [{ name: 'k.yaml', content: cm('k') }] });
  await eventually(() => get('k'), 'k applied');
  // Restart before the removal: the new process knows what it runs.
  await site.stop();
  const site2 = new SiteBundles({ client: api.client, dataDir, resyncMs: 60_000 });
  site2.start();
  t.after(() => site2.stop());
  const b = fakeStream();
  site2.serve(b.stream);
  const hello = await eventually(async () => b.got[0], 'hello after restart');
  assert.deepEqual(hello, { t: 'hello', applied: { 'default/app.shop-1': 's-2:x', 'default/kept.shop-1': 's-4:x' } });
  b.send({ t: 'sync', keys: [] });
  await eventually(async () => (await get('a')) === undefined, 'a deleted with its deployment');
  assert.ok(await get('k'), 'k kept (keepResources)');
});

test('site bundles: a Deployment that is not Ready is reported with its pods\' reasons, then Ready', async (t) => {
  const api = await startLocalApi(t);
  const site = new SiteBundles({ client: api.client, resyncMs: 60_000, readyPollMs: 100 });
  site.start();
  t.after(() => site.stop());
  const s = fakeStream();
  site.serve(s.stream);
  const key = 'default/web.shop-1';
  const lastStatus = () => [...s.got].reverse().find((m) => m.t === 'status' && m.key === key) as Extract<FromSite, { t: 'status' }> | undefined;
  const deployments = { group: 'apps', version: 'v1', resource: 'deployments' };
  const web = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: "reg/web:broken"}]}\n';
  s.send({ t: 'deploy', key, deploymentID: 's-1:x', options, resources: [{ name: 'web.yaml', content: web }] });
  await eventually(async () => lastStatus()?.appliedDeploymentID === 's-1:x', 'applied');
  // What a deployment controller and a kubelet would write (no control loop runs here): the new
  // replica's pod cannot pull its image; an unrelated pod in the namespace says nothing.
  const dep = (await api.client.get(deployments, 'shop', 'web'))!;
  await api.client.updateStatus(deployments, 'shop', { ...dep, status: { observedGeneration: dep.metadata.generation, replicas: 1, updatedReplicas: 1, availableReplicas: 0 } } as any);
  for (const [name, app] of [['web-1', 'web'], ['other', 'other']]) {
    const pod = await api.client.create(Resources.pods, 'shop', { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app } }, spec: { containers: [{ name: 'web', image: 'reg/web:broken' }] } } as any);
    await api.client.updateStatus(Resources.pods, 'shop', { ...pod, status: { phase: 'Pending', containerStatuses: [{ name: 'web', image: 'reg/web:broken', ready: false, restartCount: 0, imageID: '', state: { waiting: { reason: 'ImagePullBackOff' } } }] } } as any);
  }
  const st = await eventually(async () => (lastStatus()?.message?.includes('pod ') ? lastStatus() : undefined), 'the pod named');
  assert.equal(st.ready, false);
  assert.equal(st.message, 'deployment shop/web: 0 of 1 updated replicas available (pod web-1: ImagePullBackOff: reg/web:broken)');
  const dep2 = (await api.client.get(deployments, 'shop', 'web'))!;
  await api.client.updateStatus(deployments, 'shop', { ...dep2, status: { observedGeneration: dep2.metadata.generation, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1 } } as any);
  await eventually(async () => lastStatus()?.ready === true, 'Ready');
});
