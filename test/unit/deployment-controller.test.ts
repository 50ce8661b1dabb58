// The Deployment controller with the ReplicaSet controller against the real in-process API: the
// ReplicaSets, revisions and status fields kubectl reads, rolling and recreate rollouts within their
// budgets, rollback as kubectl 1.32 does it, history limits, pause/resume, the progress deadline and
// a restart mid-rollout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Resources } from '../../src/client/types.js';
import { InformerFactory } from '../../src/client/informer-factory.js';
import { startReplicaSetController } from '../../src/controllers/replicaset/controller.js';
import { startDeploymentController } from '../../src/controllers/deployment/controller.js';
import type { ControllerContext } from '../../src/controllers/context.js';
import type { RunningController } from '../../src/client/controller.js';
import { eventually, startControllerEnv, type ControllerEnv } from '../helpers/controller-env.js';
import { startStandInKubelet } from './replicaset-stand-in-kubelet.js';

type Obj = KObject & Record<string, any>;

/** eventually(), typed for the falsy-until-ready predicates these tests poll. */
const until = <T>(fn: () => Promise<T | false | undefined | null>, ms?: number, what?: string): Promise<T> =>
  eventually(fn, ms, what) as Promise<T>;

const both = (ctx: ControllerContext): RunningController => {
  const rs = startReplicaSetController(ctx);
  const d = startDeploymentController(ctx);
  return { name: 'deployment+replicaset', stop: async () => { await d.stop(); await rs.stop(); } };
};

function deployment(name: string, replicas: number, spec: Record<string, any> = {}): Obj {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } },
      ...spec,
    },
  };
}

const get = (env: ControllerEnv, name: string) => env.api.client.get<Obj>(Resources.deployments, 'default', name);

async function replicaSets(env: ControllerEnv, app: string): Promise<Obj[]> {
  const { items } = await env.api.client.list<Obj>(Resources.replicaSets, 'default', { labelSelector: `app=${app}` });
  return items;
}

async function livePods(env: ControllerEnv, app: string): Promise<Obj[]> {
  const { items } = await env.api.client.list<Obj>(Resources.pods, 'default', { labelSelector: `app=${app}` });
  return items.filter((p) => !p.metadata.deletionTimestamp);
}

/** kubectl rollout status's test: the latest spec observed and every replica updated and available. */
async function rolledOut(env: ControllerEnv, name: string): Promise<Obj | false> {
  const d = await get(env, name);
  if (!d) return false;
  const s = d.status ?? {};
  const want = d.spec.replicas;
  const ok = d.metadata.generation! <= (s.observedGeneration ?? 0) && (s.updatedReplicas ?? 0) >= want &&
    (s.replicas ?? 0) <= (s.updatedReplicas ?? 0) && (s.availableReplicas ?? 0) >= (s.updatedReplicas ?? 0);
  return ok && d;
}

const condition = (d: Obj, type: string) => (d.status?.conditions ?? []).find((c: any) => c.type === type);
const revision = (o: Obj) => o.metadata.annotations?.['deployment.kubernetes.io/revision'];

test('a new Deployment gets one ReplicaSet <name>-<hash> and reports the fields kubectl reads', async (t) => {
  const env = await startControllerEnv(t);
  startStandInKubelet(t, env.api.client);
  await env.run(both);
  const created = await env.api.client.create<Obj>(Resources.deployments, 'default', deployment('web', 3));

  const d = await until(() => rolledOut(env, 'web'), 10_000, 'rollout');
  const [rs] = await replicaSets(env, 'web');
  const hash = rs.metadata.labels!['pod-template-hash'];
  assert.match(hash, /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
  assert.equal(rs.metadata.name, `web-${hash}`);
  assert.deepEqual(rs.spec.selector.matchLabels, { app: 'web', 'pod-template-hash': hash });
  assert.equal(rs.spec.template.metadata.labels['pod-template-hash'], hash);
  assert.deepEqual(rs.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: created.metadata.uid, controller: true, blockOwnerDeletion: true }]);
  assert.equal(revision(rs), '1');
  assert.equal(rs.metadata.annotations!['deployment.kubernetes.io/desired-replicas'], '3');
  assert.equal(rs.metadata.annotations!['deployment.kubernetes.io/max-replicas'], '4');   // 3 + ceil(25% of 3)
  for (const p of await livePods(env, 'web')) assert.equal(p.metadata.labels!['pod-template-hash'], hash);

  assert.equal(revision(d), '1');
  assert.deepEqual({ ...d.status, conditions: undefined }, {
    observedGeneration: 1, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3, conditions: undefined,
  });
  assert.deepEqual([condition(d, 'Available').status, condition(d, 'Available').reason], ['True', 'MinimumReplicasAvailable']);
  const progressing = await until(async () => { const c = condition((await get(env, 'web'))!, 'Progressing'); return c?.reason === 'NewReplicaSetAvailable' && c; });
  assert.equal(progressing.status, 'True');
  assert.equal(progressing.message, `ReplicaSet "web-${hash}" has successfully progressed.`);
});

test('a rolling update stays within maxSurge and maxUnavailable and ends on revision 2', async (t) => {
  const env = await startControllerEnv(t);
  const kubelet = startStandInKubelet(t, env.api.client);
  await env.run(both);
  await env.api.client.create(Resources.deployments, 'default', deployment('roll', 4, { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } } }));
  await until(() => rolledOut(env, 'roll'));

  // Pods become ready slowly, so the rollout proceeds step by step and each step can be checked.
  kubelet.hold(() => true);
  let violations = '';
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const pods = await livePods(env, 'roll');
      const ready = pods.filter((p) => p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
      const wanted = (await replicaSets(env, 'roll')).reduce((n, rs) => n + rs.spec.replicas, 0);
      if (wanted > 5) violations += `ReplicaSets ask for ${wanted} pods (> 4 + surge 1); `;
      if (ready.length < 3) violations += `${ready.length} ready pods (< 4 - 1); `;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await env.api.client.patch(Resources.deployments, 'default', 'roll', 'strategic', { spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox:2' }] } } } });
  for (let i = 0; i < 200 && !(await rolledOut(env, 'roll')); i++) {
    kubelet.hold(undefined);
    await kubelet.resync();
    kubelet.hold(() => true);
    await new Promise((r) => setTimeout(r, 30));
  }
  kubelet.hold(undefined);
  await kubelet.resync();
  const d = await until(() => rolledOut(env, 'roll'));
  sampling = false;
  await sampler;
  assert.equal(violations, '');
  assert.equal(revision(d), '2');
  const rss = await replicaSets(env, 'roll');
  assert.equal(rss.length, 2);
  const byRevision = Object.fromEntries(rss.map((rs) => [revision(rs), rs]));
  assert.equal(byRevision['1'].spec.replicas, 0);
  assert.equal(byRevision['2'].spec.replicas, 4);
  assert.equal(byRevision['2'].spec.template.spec.containers[0].image, 'busybox:2');
  assert.equal((await livePods(env, 'roll')).length, 4);
});

test('rollback as kubectl 1.32 does it: the old ReplicaSet becomes the newest revision, no new set', async (t) => {
  const env = await startControllerEnv(t);
  startStandInKubelet(t, env.api.client);
  await env.run(both);
  await env.api.client.create(Resources.deployments, 'default', deployment('undo', 2));
  await until(() => rolledOut(env, 'undo'));
  await env.api.client.patch(Resources.deployments, 'default', 'undo', 'strategic', { spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox:2' }] } } } });
  await until(async () => { const d = await rolledOut(env, 'undo'); return d && revision(d) === '2' && d; });

  // `kubectl rollout undo`: the revision-1 template (without its hash label) and annotations, by JSON patch.
  const first = (await replicaSets(env, 'undo')).find((rs) => revision(rs) === '1')!;
  const template = structuredClone(first.spec.template);
  delete template.metadata.labels['pod-template-hash'];
  const current = (await get(env, 'undo'))!;
  await env.api.client.patch(Resources.deployments, 'default', 'undo', 'json', [
    { op: 'replace', path: '/spec/template', value: template },
    { op: 'replace', path: '/metadata/annotations', value: { 'deployment.kubernetes.io/revision': revision(current) } },
  ]);
  const d = await until(async () => { const x = await rolledOut(env, 'undo'); return x && revision(x) === '3' && x; });
  const rss = await replicaSets(env, 'undo');
  assert.equal(rss.length, 2, 'no third ReplicaSet');
  const back = rss.find((rs) => rs.metadata.name === first.metadata.name)!;
  assert.equal(revision(back), '3');
  assert.equal(back.metadata.annotations!['deployment.kubernetes.io/revision-history'], '1');
  assert.equal(back.spec.replicas, 2);
  assert.equal(d.spec.template.spec.containers[0].image, 'busybox:1');
});

test('revisionHistoryLimit deletes the oldest scaled-down ReplicaSets', async (t) => {
  const env = await startControllerEnv(t);
  startStandInKubelet(t, env.api.client);
  await env.run(both);
  await env.api.client.create(Resources.deployments, 'default', deployment('hist', 1, { revisionHistoryLimit: 1 }));
  for (const image of ['busybox:2', 'busybox:3', 'busybox:4']) {
    await until(() => rolledOut(env, 'hist'));
    await env.api.client.patch(Resources.deployments, 'default', 'hist', 'strategic', { spec: { template: { spec: { containers: [{ name: 'c', image }] } } } });
  }
  await until(async () => { const d = await rolledOut(env, 'hist'); return d && revision(d) === '4'; });
  const rss = await until(async () => { const r = await replicaSets(env, 'hist'); return r.length === 2 && r; });
  assert.deepEqual(rss.map(revision).sort(), ['3', '4']);
});

test('Recreate scales every old pod away before the new ReplicaSet gets any', async (t) => {
  const env = await startControllerEnv(t);
  startStandInKubelet(t, env.api.client);
  await env.run(both);
  await env.api.client.create(Resources.deployments, 'default', deployment('rec', 3, { strategy: { type: 'Recreate' } }));
  await until(() => rolledOut(env, 'rec'));
  let mixed = false;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const images = new Set((await livePods(env, 'rec')).map((p) => p.spec.containers[0].image));
      if (images.size > 1) mixed = true;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  await env.api.client.patch(Resources.deployments, 'default', 'rec', 'strategic', { spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox:2' }] } } } });
  await until(async () => { const d = await rolledOut(env, 'rec'); return d && revision(d) === '2'; });
  sampling = false;
  await sampler;
  assert.equal(mixed, false, 'old and new pods ran side by side');
  assert.equal((await livePods(env, 'rec')).length, 3);
});

test('pause holds a template change back; resume rolls it out', async (t) => {
  const env = await startControllerEnv(t);
  startStandInKubelet(t, env.api.client);
  await env.run(both);
  await env.api.client.create(Resources.deployments, 'default', deployment('pz', 2));
  await until(() => rolledOut(env, 'pz'));
  await env.api.client.patch(Resources.deployments, 'default', 'pz', 'merge', { spec: { paused: true } });
  await env.api.client.patch(Resources.deployments, 'default', 'pz', 'strategic', { spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox:2' }] } } } });
  const paused = await until(async () => {
    const d = (await get(env, 'pz'))!;
    return d.status?.observedGeneration === d.metadata.generation && condition(d, 'Progressing')?.reason === 'DeploymentPaused' && d;
  });
  assert.equal(condition(paused, 'Progressing').status, 'Unknown');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await replicaSets(env, 'pz')).length, 1, 'no new ReplicaSet while paused');

  await env.api.client.patch(Resources.deployments, 'default', 'pz', 'merge', { spec: { paused: false } });
  const d = await until(async () => { const x = await rolledOut(env, 'pz'); return x && revision(x) === '2' && condition(x, 'Progressing')?.reason === 'NewReplicaSetAvailable' && x; });
  assert.equal(d.spec.template.spec.containers[0].image, 'busybox:2');
});

test('no progress within progressDeadlineSeconds: Progressing=False ProgressDeadlineExceeded', async (t) => {
  const env = await startControllerEnv(t);
  const kubelet = startStandInKubelet(t, env.api.client);
  kubelet.hold(() => true);
  await env.run(both);
  await env.api.client.create(Resources.deployments, 'default', deployment('stuck', 1, { progressDeadlineSeconds: 1 }));
  const d = await until(async () => {
    const x = (await get(env, 'stuck'))!;
    return condition(x, 'Progressing')?.reason === 'ProgressDeadlineExceeded' && x;
  }, 8000);
  const c = condition(d, 'Progressing');
  assert.equal(c.status, 'False');
  assert.match(c.message, /^ReplicaSet "stuck-[a-z0-9]+" has timed out progressing\.$/);
  assert.deepEqual([condition(d, 'Available').status, condition(d, 'Available').reason], ['False', 'MinimumReplicasUnavailable']);
  assert.equal(d.status.unavailableReplicas, 1);
});

test('scaling resizes the ReplicaSet without a new revision', async (t) => {
  const env = await startControllerEnv(t);
  startStandInKubelet(t, env.api.client);
  await env.run(both);
  await env.api.client.create(Resources.deployments, 'default', deployment('sc', 2));
  await until(() => rolledOut(env, 'sc'));
  await env.api.client.patch(Resources.deployments, 'default', 'sc', 'merge', { spec: { replicas: 5 } });
  await until(async () => { const d = await rolledOut(env, 'sc'); return d && d.status.replicas === 5; });
  const rss = await replicaSets(env, 'sc');
  assert.equal(rss.length, 1);
  assert.equal(revision(rss[0]), '1');
  assert.equal(rss[0].metadata.annotations!['deployment.kubernetes.io/desired-replicas'], '5');
  assert.equal((await livePods(env, 'sc')).length, 5);
});

test('restarting the controllers mid-rollout completes it without duplicate ReplicaSets or pods', async (t) => {
  const env = await startControllerEnv(t);
  const kubelet = startStandInKubelet(t, env.api.client);
  const first = await env.run(both);
  await env.api.client.create(Resources.deployments, 'default', deployment('rs', 6, { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 2, maxUnavailable: 0 } } }));
  await until(() => rolledOut(env, 'rs'));
  kubelet.hold(() => true);
  await env.api.client.patch(Resources.deployments, 'default', 'rs', 'strategic', { spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox:2' }] } } } });
  await until(async () => (await livePods(env, 'rs')).length === 8, 10_000, 'surge pods');
  await first.stop();

  const informers = new InformerFactory(env.api.client);
  t.after(() => informers.stop());
  const second = both({ ...env.ctx, informers });
  t.after(() => second.stop());
  informers.start();
  kubelet.hold(undefined);
  await kubelet.resync();
  let maxPods = 0;
  const d = await until(async () => {
    maxPods = Math.max(maxPods, (await livePods(env, 'rs')).length);
    await kubelet.resync();
    const x = await rolledOut(env, 'rs');
    return x && revision(x) === '2' && x;
  });
  assert.ok(maxPods <= 8, `at most replicas + maxSurge pods, saw ${maxPods}`);
  assert.equal((await replicaSets(env, 'rs')).length, 2);
  assert.equal((await livePods(env, 'rs')).length, 6);
  assert.equal(d.status.updatedReplicas, 6);
});
