// The scheduling loop against the real in-process API: the seed scenarios of issue 3 (arm/arm64 boards
// chosen by node affinity, anti-affinity spreading with a third replica left Pending and its exact
// FailedScheduling event, a master-tainted server left alone), pods unblocked by nodes that arrive later,
// and a restarted loop that places nothing twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startControllerEnv, eventually, type ControllerEnv } from '../helpers/controller-env.js';
import { startSchedulerController } from '../../src/controllers/scheduler-loop.js';
import { Resources } from '../../src/client/types.js';
import type { KObject } from '../../src/api/object.js';

const ARCH = 'kubernetes.io/arch';
const MASTER_TAINT = { key: 'node-role.kubernetes.io/master', effect: 'NoSchedule' };
const FAST = { initialBackoffMs: 50, maxBackoffMs: 200 };

function nodeObj(name: string, labels: Record<string, string>, taints?: object[]): KObject {
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
    spec: taints ? { taints } : {},
    status: {
      allocatable: { cpu: '4', memory: '8Gi', pods: '110' }, capacity: { cpu: '4', memory: '8Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }],
    },
  };
}

function podObj(name: string, spec: Record<string, unknown> = {}, labels: Record<string, string> = { app: 'web' }): KObject {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels },
    spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec },
  };
}

const seedNodes = (env: ControllerEnv) => Promise.all([
  env.api.client.create(Resources.nodes, undefined, nodeObj('server', { [ARCH]: 'arm64' }, [MASTER_TAINT])),
  env.api.client.create(Resources.nodes, undefined, nodeObj('pi3', { [ARCH]: 'arm' })),
  env.api.client.create(Resources.nodes, undefined, nodeObj('pi4', { [ARCH]: 'arm64' })),
]);

const getPod = async (env: ControllerEnv, name: string) => (await env.api.client.get(Resources.pods, 'default', name)) as any;
const nodeOf = async (env: ControllerEnv, name: string): Promise<string | undefined> => (await getPod(env, name))?.spec?.nodeName;
const eventsFor = async (env: ControllerEnv, name: string) =>
  (await env.api.client.list(Resources.events, 'default')).items.filter((e: any) => e.involvedObject?.name === name) as any[];

test('required nodeAffinity arch In [arm64] lands only on arm64 nodes, never on the tainted server', async (t) => {
  const env = await startControllerEnv(t);
  await seedNodes(env);
  await env.run((ctx) => startSchedulerController(ctx, FAST));
  const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: ARCH, operator: 'In', values: ['arm64'] }] }] } } };
  for (let i = 0; i < 6; i++) await env.api.client.create(Resources.pods, 'default', podObj(`arm64-${i}`, { affinity }));
  for (let i = 0; i < 6; i++) {
    assert.equal(await eventually(() => nodeOf(env, `arm64-${i}`), 5000, `arm64-${i} bound`), 'pi4');
  }
  const ev = await eventsFor(env, 'arm64-0');
  assert.ok(ev.some((e) => e.reason === 'Scheduled' && e.type === 'Normal' && e.message === 'Successfully assigned default/arm64-0 to pi4'), JSON.stringify(ev));
});

test('anti-affinity on arch: one replica per architecture, the third Pending with the exact FailedScheduling message', async (t) => {
  const env = await startControllerEnv(t);
  await seedNodes(env);
  await env.run((ctx) => startSchedulerController(ctx, FAST));
  const affinity = { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'web' } }, topologyKey: ARCH }] } };
  await env.api.client.create(Resources.pods, 'default', podObj('web-a', { affinity }));
  await env.api.client.create(Resources.pods, 'default', podObj('web-b', { affinity }));
  const a = await eventually(() => nodeOf(env, 'web-a'), 5000, 'web-a bound');
  const b = await eventually(() => nodeOf(env, 'web-b'), 5000, 'web-b bound');
  assert.deepEqual([a, b].sort(), ['pi3', 'pi4']);

  await env.api.client.create(Resources.pods, 'default', podObj('web-c', { affinity }));
  const message = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, 2 node(s) didn't match pod anti-affinity rules. "
    + 'preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.';
  const cond = await eventually(async () => (await getPod(env, 'web-c'))?.status?.conditions?.find((c: any) => c.type === 'PodScheduled'), 5000, 'PodScheduled condition');
  assert.equal(cond.status, 'False');
  assert.equal(cond.reason, 'Unschedulable');
  assert.equal(cond.message, message);
  const ev = await eventually(async () => (await eventsFor(env, 'web-c')).filter((e) => e.reason === 'FailedScheduling'), 5000, 'FailedScheduling event');
  assert.equal(ev.length, 1);
  assert.equal(ev[0].type, 'Warning');
  assert.equal(ev[0].message, message);
  assert.equal(await nodeOf(env, 'web-c'), undefined);

  // Retries with the same verdict (a node heartbeat, the periodic retry) do not record it again.
  await new Promise((r) => setTimeout(r, 400));
  const again = (await eventsFor(env, 'web-c')).filter((e) => e.reason === 'FailedScheduling');
  assert.equal(again.length, 1);
  assert.equal(again[0].count ?? 1, 1);
});

test('a pod that fits nowhere is placed as soon as a suitable node arrives', async (t) => {
  const env = await startControllerEnv(t);
  await env.api.client.create(Resources.nodes, undefined, nodeObj('server', { [ARCH]: 'arm64' }, [MASTER_TAINT]));
  await env.run((ctx) => startSchedulerController(ctx, { ...FAST, unschedulableRetryMs: 60_000 }));
  await env.api.client.create(Resources.pods, 'default', podObj('waiting', { nodeSelector: { [ARCH]: 'arm' } }));
  await eventually(async () => (await eventsFor(env, 'waiting')).some((e) => e.reason === 'FailedScheduling'), 5000, 'FailedScheduling');
  assert.equal(await nodeOf(env, 'waiting'), undefined);
  // No periodic retry within the test (60 s): only the node event can place it.
  await env.api.client.create(Resources.nodes, undefined, nodeObj('pi3', { [ARCH]: 'arm' }));
  assert.equal(await eventually(() => nodeOf(env, 'waiting'), 5000, 'bound after the node arrived'), 'pi3');
});

test('a pod waiting for room is placed once a bound pod is deleted', async (t) => {
  const env = await startControllerEnv(t);
  const small = nodeObj('tiny', {});
  (small as any).status.allocatable.pods = '1';
  await env.api.client.create(Resources.nodes, undefined, small);
  await env.run((ctx) => startSchedulerController(ctx, { ...FAST, unschedulableRetryMs: 60_000 }));
  await env.api.client.create(Resources.pods, 'default', podObj('first'));
  assert.equal(await eventually(() => nodeOf(env, 'first'), 5000, 'first bound'), 'tiny');
  await env.api.client.create(Resources.pods, 'default', podObj('second'));
  const cond = await eventually(async () => (await getPod(env, 'second'))?.status?.conditions?.find((c: any) => c.type === 'PodScheduled'), 5000, 'Unschedulable');
  assert.equal(cond.message, '0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.');
  await env.api.client.delete(Resources.pods, 'default', 'first', { gracePeriodSeconds: 0 });
  assert.equal(await eventually(() => nodeOf(env, 'second'), 5000, 'second bound'), 'tiny');
  // The binding turned the Unschedulable condition into a scheduled one, in the same write.
  const bound = (await getPod(env, 'second'))!.status.conditions.find((c: any) => c.type === 'PodScheduled');
  assert.equal(bound.status, 'True');
  assert.equal(bound.reason, undefined);
  assert.equal(bound.message, undefined);
  assert.ok(Date.parse(bound.lastTransitionTime) >= Date.parse(cond.lastTransitionTime));
});

test('pods for another scheduler, terminating pods and gated pods are left alone', async (t) => {
  const env = await startControllerEnv(t);
  await env.api.client.create(Resources.nodes, undefined, nodeObj('pi3', {}));
  await env.run((ctx) => startSchedulerController(ctx, FAST));
  await env.api.client.create(Resources.pods, 'default', podObj('other', { schedulerName: 'my-scheduler' }));
  await env.api.client.create(Resources.pods, 'default', podObj('gated', { schedulingGates: [{ name: 'example.com/wait' }] }));
  await env.api.client.create(Resources.pods, 'default', podObj('mine'));
  await eventually(() => nodeOf(env, 'mine'), 5000, 'mine bound');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await nodeOf(env, 'other'), undefined);
  assert.equal(await nodeOf(env, 'gated'), undefined);
  // Removing the gate makes it schedulable.
  await env.api.client.patch(Resources.pods, 'default', 'gated', 'json', [{ op: 'remove', path: '/spec/schedulingGates' }]);
  assert.equal(await eventually(() => nodeOf(env, 'gated'), 5000, 'gated bound after the gate went'), 'pi3');
});

test('a restarted loop resumes from the API: bound pods count, nothing is placed twice', async (t) => {
  const env = await startControllerEnv(t);
  const n = nodeObj('only', {});
  (n as any).status.allocatable.pods = '3';
  await env.api.client.create(Resources.nodes, undefined, n);
  const first = await env.run((ctx) => startSchedulerController(ctx, FAST));
  for (const name of ['p1', 'p2']) await env.api.client.create(Resources.pods, 'default', podObj(name));
  await eventually(async () => (await nodeOf(env, 'p1')) && (await nodeOf(env, 'p2')), 5000, 'p1 and p2 bound');
  await first.stop();
  for (const name of ['p3', 'p4']) await env.api.client.create(Resources.pods, 'default', podObj(name));
  await env.run((ctx) => startSchedulerController(ctx, FAST));
  // Exactly one of p3/p4 fits: the restarted loop must know p1 and p2 are already there.
  await eventually(async () => Boolean(await nodeOf(env, 'p3')) !== Boolean(await nodeOf(env, 'p4')), 5000, 'one of p3/p4 bound');
  await new Promise((r) => setTimeout(r, 300));
  const bound = (await env.api.client.list(Resources.pods, 'default')).items.filter((p: any) => p.spec.nodeName);
  assert.equal(bound.length, 3);
});
