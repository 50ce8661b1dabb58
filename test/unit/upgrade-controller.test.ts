// The upgrade controller against the in-process API (src/controllers/upgrade/controller.ts): a plan
// naming a missing version is Invalid and touches no node; otherwise the server node gets its target
// first; the agent is cordoned and drained (its pod evicted; the test plays the kubelet that finishes
// the deletion) before it gets its target; once it reports the version and is Ready it is uncordoned,
// its annotations are cleared and the plan is Complete. The agents' side is played by the test.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startControllerEnv, eventually } from '../helpers/controller-env.js';
import { Resources } from '../../src/client/types.js';
import { startUpgradeController } from '../../src/controllers/upgrade/controller.js';
import { ANN, FINALIZER, UPGRADES, upgradeCrd, type Upgrade } from '../../src/controllers/upgrade/api.js';

const CRDS = { group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions' };
const ready = { conditions: [{ type: 'Ready', status: 'True' }] };
const node = (name: string, server: boolean) => ({
  apiVersion: 'v1', kind: 'Node',
  metadata: { name, labels: { 'kubernetes.io/arch': 'amd64', ...(server ? { 'node-role.kubernetes.io/control-plane': 'true' } : {}) }, annotations: { [ANN.runningVersion]: '0.1.0' } },
  spec: {}, status: ready,
});

/** The in-process API with the Upgrade CRD, a release dir (with 0.2.0 in it when `release`) and Ready `nodes` (name → is a server). */
async function setup(t: TestContext, nodes: [string, boolean][], release = true) {
  const env = await startControllerEnv(t);
  const c = env.api.client;
  await c.create(CRDS, undefined, upgradeCrd());
  const dir = mkdtempSync(join(tmpdir(), 'upgrade-ctl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  if (release) {
    writeFileSync(join(dir, 'skiff-0.2.0-linux-amd64.tar.gz'), 'not really a tarball');
    writeFileSync(join(dir, 'SHA256SUMS'), `${'a'.repeat(64)}  skiff-0.2.0-linux-amd64.tar.gz\n`);
  }
  for (const [n, s] of nodes) {
    await c.create(Resources.nodes, undefined, node(n, s));
    await c.patch(Resources.nodes, undefined, n, 'merge', { status: ready }, { subresource: 'status' });
  }
  return { env, c, dir };
}

test('upgrade controller: invalid version, server first, cordon + drain, target, uncordon, complete', async (t) => {
  const { env, c, dir } = await setup(t, [['s1', true], ['a1', false]]);
  await c.create(Resources.pods, 'default', {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'default', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'u1', controller: true }] },
    spec: { nodeName: 'a1', containers: [{ name: 'c', image: 'busybox' }] },
  });
  await env.run((ctx) => startUpgradeController(ctx, { releaseDir: dir }));
  const plan = async (name: string) => (await c.get<Upgrade>(UPGRADES, undefined, name))!;
  const ann = async (n: string) => (await c.get(Resources.nodes, undefined, n))!.metadata.annotations ?? {};

  await c.create(UPGRADES, undefined, { apiVersion: 'upgrade.skiff.io/v1alpha1', kind: 'Upgrade', metadata: { name: 'nope' }, spec: { version: '0.9.0' } });
  const invalid = await eventually(async () => { const p = await plan('nope'); return p.status?.display?.state === 'Invalid' && p; }, 10_000, 'Invalid') as Upgrade;
  assert.match(invalid.status!.conditions!.find((x) => x.type === 'Valid')!.message!, /no release skiff-0\.9\.0-linux-amd64\.tar\.gz in .* \(versions there for amd64: 0\.2\.0\)/);
  assert.equal((await ann('s1'))[ANN.plan], undefined, 'no node touched');
  await c.delete(UPGRADES, undefined, 'nope');

  await c.create(UPGRADES, undefined, { apiVersion: 'upgrade.skiff.io/v1alpha1', kind: 'Upgrade', metadata: { name: 'up' }, spec: { version: '0.2.0', drain: { timeoutSeconds: 60 } } });
  await eventually(async () => (await ann('s1'))[ANN.targetVersion] === '0.2.0', 10_000, 'the server targeted');
  const s1 = await ann('s1');
  assert.equal(s1[ANN.targetSha256], 'a'.repeat(64));
  assert.equal(s1[ANN.targetFile], 'skiff-0.2.0-linux-amd64.tar.gz');
  assert.equal((await ann('a1'))[ANN.plan], undefined, 'the agent waits for the server');
  await eventually(async () => /a1=Pending s1=Upgrading/.test((await plan('up')).status?.display?.nodes ?? ''), 10_000, 'the NODES column');

  // The server's agent: upgraded, Ready.
  await c.patch(Resources.nodes, undefined, 's1', 'merge', { metadata: { annotations: { [ANN.runningVersion]: '0.2.0', [ANN.state]: 'Upgraded', [ANN.stateVersion]: '0.2.0' } } });
  await eventually(async () => (await c.get<any>(Resources.nodes, undefined, 'a1'))!.spec?.unschedulable === true, 10_000, 'the agent cordoned');
  await eventually(async () => (await ann('s1'))[ANN.targetVersion] === undefined, 10_000, 'the server let go');
  // The eviction marks the pod terminating; the kubelet's part (finishing the deletion) is played here.
  await eventually(async () => (await c.get(Resources.pods, 'default', 'web-1'))?.metadata.deletionTimestamp || !(await c.get(Resources.pods, 'default', 'web-1')), 10_000, 'the pod evicted');
  assert.equal((await ann('a1'))[ANN.targetVersion], undefined, 'no target before the node is drained');
  if (await c.get(Resources.pods, 'default', 'web-1')) await c.delete(Resources.pods, 'default', 'web-1', { gracePeriodSeconds: 0 });
  await eventually(async () => (await ann('a1'))[ANN.targetVersion] === '0.2.0', 10_000, 'the agent targeted once drained');

  await c.patch(Resources.nodes, undefined, 'a1', 'merge', { metadata: { annotations: { [ANN.runningVersion]: '0.2.0' } } });
  const done = await eventually(async () => { const p = await plan('up'); return p.status?.display?.state === 'Complete' && p; }, 10_000, 'Complete') as Upgrade;
  assert.equal(done.status!.display!.progress, '2/2');
  await eventually(async () => (await c.get<any>(Resources.nodes, undefined, 'a1'))!.spec?.unschedulable !== true, 10_000, 'uncordoned');
  const a1 = await ann('a1');
  for (const k of [ANN.plan, ANN.targetVersion, ANN.cordoned]) assert.equal(a1[k], undefined, `${k} cleared`);
});

test('upgrade controller: deleting a plan mid-run lets go of its nodes (uncordon what it cordoned), then its finalizer goes', async (t) => {
  const { env, c, dir } = await setup(t, [['s1', true], ['a1', false], ['a2', false], ['a3', false]]);
  // a2 was cordoned by its admin before the plan: it stays so. a3 is held by a plan that is gone (one
  // from before the finalizer, or whose finalizer was removed by hand): let go at once.
  await c.patch(Resources.nodes, undefined, 'a2', 'merge', { spec: { unschedulable: true } });
  await c.patch(Resources.nodes, undefined, 'a3', 'merge', { metadata: { annotations: { [ANN.plan]: 'ghost', [ANN.cordoned]: 'true', [ANN.targetVersion]: '0.2.0' } }, spec: { unschedulable: true } });
  await env.run((ctx) => startUpgradeController(ctx, { releaseDir: dir }));
  const get = async (n: string) => (await c.get<any>(Resources.nodes, undefined, n))!;
  await eventually(async () => { const a3 = await get('a3'); return a3.spec?.unschedulable !== true && !a3.metadata.annotations?.[ANN.plan]; }, 10_000, 'the ghost plan\'s node let go');
  assert.equal((await get('a3')).metadata.annotations[ANN.targetVersion], undefined);

  await c.create(UPGRADES, undefined, { apiVersion: 'upgrade.skiff.io/v1alpha1', kind: 'Upgrade', metadata: { name: 'up' },
    spec: { version: '0.2.0', cordon: true, concurrency: 2 } });
  await eventually(async () => (await c.get<Upgrade>(UPGRADES, undefined, 'up'))?.metadata.finalizers?.includes(FINALIZER), 10_000, 'the finalizer added');
  await eventually(async () => (await get('s1')).metadata.annotations?.[ANN.targetVersion] === '0.2.0', 10_000, 'the server targeted');
  assert.equal((await get('s1')).spec?.unschedulable, true, 'the server cordoned');
  await c.patch(Resources.nodes, undefined, 's1', 'merge', { metadata: { annotations: { [ANN.runningVersion]: '0.2.0' } } });
  await eventually(async () => (await get('a1')).metadata.annotations?.[ANN.targetVersion] === '0.2.0' && (await get('a2')).metadata.annotations?.[ANN.targetVersion] === '0.2.0', 10_000, 'both agents targeted');
  assert.equal((await get('a1')).metadata.annotations[ANN.cordoned], 'true');
  assert.equal((await get('a2')).metadata.annotations[ANN.cordoned], 'already');
  await eventually(async () => (await get('s1')).spec?.unschedulable === undefined, 10_000, 'the upgraded server uncordoned');
  // a1's agent has begun (it carries on alone); a2's has not picked its target up yet.
  await c.patch(Resources.nodes, undefined, 'a1', 'merge', { metadata: { annotations: { [ANN.state]: 'Downloading', [ANN.stateVersion]: '0.2.0' } } });

  await c.delete(UPGRADES, undefined, 'up');
  await eventually(async () => !(await c.get(UPGRADES, undefined, 'up')), 10_000, 'the plan gone once its nodes are let go');
  const [a1, a2] = [await get('a1'), await get('a2')];
  assert.equal(a1.spec?.unschedulable, undefined, 'a1 uncordoned (the plan cordoned it)');
  assert.equal(a2.spec?.unschedulable, true, 'a2 stays cordoned (it was before the plan)');
  for (const n of [a1, a2]) {
    for (const k of [ANN.plan, ANN.targetVersion, ANN.targetFile, ANN.targetSha256, ANN.healthTimeout, ANN.targetTime, ANN.cordoned]) {
      assert.equal(n.metadata.annotations?.[k], undefined, `${n.metadata.name}: ${k} cleared`);
    }
  }
  assert.equal(a1.metadata.annotations[ANN.state], 'Downloading', 'the agent\'s own report stays');
});

test('upgrade controller: a release the dir lacks is fetched from the other servers (HA) before the plan is judged', async (t) => {
  const { env, c, dir } = await setup(t, [['s1', true]], false);
  const asked: string[] = [];
  await env.run((ctx) => startUpgradeController(ctx, {
    releaseDir: dir,
    async fetchMissing(file) {
      asked.push(file);
      if (!file.includes('0.2.0')) return 'no other server gave it (https://10.0.0.2:6443: HTTP 404)';
      writeFileSync(join(dir, file), 'from a peer');
      writeFileSync(join(dir, 'SHA256SUMS'), `${'b'.repeat(64)}  ${file}\n`);
      return { file };
    },
  }));
  const plan = async (name: string) => (await c.get<Upgrade>(UPGRADES, undefined, name))!;
  await c.create(UPGRADES, undefined, { apiVersion: 'upgrade.skiff.io/v1alpha1', kind: 'Upgrade', metadata: { name: 'nope' }, spec: { version: '0.9.0' } });
  const invalid = await eventually(async () => { const p = await plan('nope'); return p.status?.display?.state === 'Invalid' && p; }, 10_000, 'Invalid') as Upgrade;
  assert.match(invalid.status!.conditions!.find((x) => x.type === 'Valid')!.message!, /no release skiff-0\.9\.0-linux-amd64\.tar\.gz in .*; no other server gave it \(https:\/\/10\.0\.0\.2:6443: HTTP 404\)/);
  await c.create(UPGRADES, undefined, { apiVersion: 'upgrade.skiff.io/v1alpha1', kind: 'Upgrade', metadata: { name: 'up' }, spec: { version: '0.2.0' } });
  await eventually(async () => (await c.get(Resources.nodes, undefined, 's1'))!.metadata.annotations?.[ANN.targetSha256] === 'b'.repeat(64), 10_000, 'the server targeted with the fetched release');
  assert.ok(asked.includes('skiff-0.2.0-linux-amd64.tar.gz'));
});

test('upgrade controller: the finalizer joins others a plan already has, and leaves them when it goes', async (t) => {
  const { env, c, dir } = await setup(t, [], false);
  await env.run((ctx) => startUpgradeController(ctx, { releaseDir: dir }));
  await c.create(UPGRADES, undefined, { apiVersion: 'upgrade.skiff.io/v1alpha1', kind: 'Upgrade', metadata: { name: 'p', finalizers: ['example.com/keep'] }, spec: { version: '0.2.0' } });
  await eventually(async () => (await c.get<Upgrade>(UPGRADES, undefined, 'p'))?.metadata.finalizers?.length === 2, 10_000, 'the finalizer added');
  assert.deepEqual((await c.get<Upgrade>(UPGRADES, undefined, 'p'))!.metadata.finalizers, ['example.com/keep', FINALIZER]);
  await c.delete(UPGRADES, undefined, 'p');
  await eventually(async () => (await c.get<Upgrade>(UPGRADES, undefined, 'p'))?.metadata.finalizers?.length === 1, 10_000, 'ours removed');
  const left = (await c.get<Upgrade>(UPGRADES, undefined, 'p'))!;
  assert.deepEqual(left.metadata.finalizers, ['example.com/keep']);
  assert.ok(left.metadata.deletionTimestamp, 'still deleting, waiting for the other finalizer');
});
