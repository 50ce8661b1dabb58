// Node lifecycle and taint eviction against the real in-process API, with short times: a node whose
// Lease stops being renewed turns Unknown and gets the unreachable taints, its pods are marked not ready
// and evicted after their tolerationSeconds; a node that comes back loses the taints and pending
// evictions are cancelled; a restarted server gives nodes a grace period (longer while others are still
// reconnecting); kubelet-reported NotReady and
// cordoning give their taints; with no node ready at all, nothing is evicted.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startControllerEnv, eventually, type ControllerEnv } from '../helpers/controller-env.js';
import { startNodeLifecycleController, startTaintEvictionController } from '../../src/controllers/node-lifecycle.js';
import { Resources } from '../../src/client/types.js';
import type { KObject } from '../../src/api/object.js';

const GRACE_MS = 600;
const microTime = (ms = Date.now()) => new Date(ms).toISOString().replace('Z', '000Z');
const UNREACHABLE = 'node.kubernetes.io/unreachable';
const NOT_READY = 'node.kubernetes.io/not-ready';

async function env(t: TestContext, graceMs = GRACE_MS): Promise<ControllerEnv> {
  return startControllerEnv(t, { nodeMonitorGracePeriodMs: graceMs }, { namespaces: ['default', 'kube-system', 'kube-node-lease'] });
}

function readyNode(name: string): KObject {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } }, spec: {},
    status: {
      allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
      conditions: [
        { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', lastHeartbeatTime: now, lastTransitionTime: now },
        { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now },
      ],
    },
  };
}

/** A node with its Lease; `beat()` renews the lease, `stop()` ends the heartbeats started by `start()`. */
async function addNode(e: ControllerEnv, t: TestContext, name: string, renewAt = Date.now()) {
  await e.api.client.create(Resources.nodes, undefined, readyNode(name));
  await e.api.client.create(Resources.leases, 'kube-node-lease', {
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: 'kube-node-lease' },
    spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime(renewAt) },
  });
  let timer: NodeJS.Timeout | undefined;
  const beat = () => e.api.client.patch(Resources.leases, 'kube-node-lease', name, 'merge', { spec: { renewTime: microTime() } }).catch(() => undefined);
  const handle = {
    beat,
    start() { timer = setInterval(beat, 100); },
    stop() { if (timer) clearInterval(timer); timer = undefined; },
  };
  t.after(() => handle.stop());
  return handle;
}

const IMMEDIATE = ['node.kubernetes.io/unreachable', 'node.kubernetes.io/not-ready']
  .map((key) => ({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 0 }));

async function boundPod(e: ControllerEnv, name: string, node: string, tolerations?: object[], ready = true): Promise<void> {
  await e.api.client.create(Resources.pods, 'default', {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
    // Admission gives every pod 300 s tolerations for not-ready/unreachable; a pod meant to be evicted
    // at once says so with tolerationSeconds 0.
    spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }], tolerations: tolerations ?? IMMEDIATE },
  });
  if (ready) {
    await e.api.client.patch(Resources.pods, 'default', name, 'merge',
      { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }, { subresource: 'status' });
  }
}

const getNode = async (e: ControllerEnv, name: string) => (await e.api.client.get(Resources.nodes, undefined, name)) as any;
const getPod = async (e: ControllerEnv, name: string) => (await e.api.client.get(Resources.pods, 'default', name)) as any;
const readyCond = (n: any) => n?.status?.conditions?.find((c: any) => c.type === 'Ready');
const taintKeys = (n: any) => (n?.spec?.taints ?? []).map((t: any) => `${t.key}:${t.effect}`).sort();
const terminating = async (e: ControllerEnv, name: string) => Boolean((await getPod(e, name))?.metadata?.deletionTimestamp);
const events = async (e: ControllerEnv, ns: string | undefined) => (await e.api.client.list(Resources.events, ns)).items as any[];

async function start(e: ControllerEnv): Promise<void> {
  await e.run(startNodeLifecycleController);
  await e.run(startTaintEvictionController);
}

test('a silent node turns Unknown with unreachable taints; its pods are evicted after their tolerationSeconds', async (t) => {
  const e = await env(t);
  const alive = await addNode(e, t, 'alive');
  const silent = await addNode(e, t, 'silent');
  alive.start();
  silent.start();
  await boundPod(e, 'intolerant', 'silent');
  await boundPod(e, 'tolerates-2s', 'silent', [{ key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 2 }]);
  await boundPod(e, 'tolerates-forever', 'silent', [{ key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute' }]);
  await boundPod(e, 'elsewhere', 'alive');
  await start(e);

  await new Promise((r) => setTimeout(r, GRACE_MS * 1.5));
  assert.equal(readyCond(await getNode(e, 'silent')).status, 'True', 'a renewing node stays Ready');

  silent.stop();
  const stoppedAt = Date.now();
  const cond = await eventually(async () => { const c = readyCond(await getNode(e, 'silent')); return c?.status === 'Unknown' && c; }, 5000, 'Ready=Unknown');
  // The last renewal was up to 100 ms before the heartbeats stopped.
  assert.ok(Date.now() - stoppedAt >= GRACE_MS - 150, 'not before the grace period');
  assert.equal(cond.reason, 'NodeStatusUnknown');
  assert.equal(cond.message, 'Kubelet stopped posting node status.');
  const node = await eventually(async () => { const n = await getNode(e, 'silent'); return n.spec.taints?.length === 2 && n; }, 5000, 'taints');
  assert.deepEqual(taintKeys(node), [`${UNREACHABLE}:NoExecute`, `${UNREACHABLE}:NoSchedule`]);
  for (const taint of node.spec.taints) assert.match(taint.timeAdded, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const mem = node.status.conditions.find((c: any) => c.type === 'MemoryPressure');
  assert.equal(mem.status, 'Unknown');
  assert.equal(readyCond(await getNode(e, 'alive')).status, 'True');

  // No toleration: out at once. Pods on the silent node are marked not ready.
  await eventually(() => terminating(e, 'intolerant'), 3000, 'intolerant pod evicted');
  const evicted = await getPod(e, 'intolerant');
  assert.ok(evicted.status.conditions.some((c: any) => c.type === 'DisruptionTarget' && c.status === 'True' && c.reason === 'DeletionByTaintManager'));
  assert.equal(await terminating(e, 'tolerates-2s'), false, 'tolerating pod still there');
  await eventually(async () => readyCond(await getPod(e, 'tolerates-forever'))?.status === 'False', 3000, 'pod marked not ready');

  // Two seconds after the taint (timeAdded has whole seconds, so 1 to 2 s after we saw it).
  await eventually(() => terminating(e, 'tolerates-2s'), 5000, 'pod evicted after its toleration');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await terminating(e, 'tolerates-forever'), false, 'a forever toleration keeps the pod');
  assert.equal(await terminating(e, 'elsewhere'), false, 'pods on healthy nodes stay');

  const nodeEvents = (await events(e, 'default')).filter((ev) => ev.involvedObject.kind === 'Node' && ev.involvedObject.name === 'silent');
  assert.ok(nodeEvents.some((ev) => ev.reason === 'NodeNotReady' && ev.message === 'Node silent status is now: NodeNotReady'), JSON.stringify(nodeEvents));
  const podEvents = (await events(e, 'default')).filter((ev) => ev.involvedObject.name === 'intolerant');
  assert.ok(podEvents.some((ev) => ev.reason === 'TaintManagerEviction' && ev.message === 'Marking for deletion Pod default/intolerant'), JSON.stringify(podEvents));
  assert.ok((await events(e, 'default')).some((ev) => ev.involvedObject.name === 'tolerates-forever' && ev.reason === 'NodeNotReady' && ev.type === 'Warning' && ev.message === 'Node is not ready'));
});

test('a node that comes back loses its taints and pending evictions are cancelled', async (t) => {
  const e = await env(t);
  const alive = await addNode(e, t, 'alive');
  const flaky = await addNode(e, t, 'flaky');
  alive.start();
  await boundPod(e, 'patient', 'flaky', [{ key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }]);
  await start(e);
  await eventually(async () => taintKeys(await getNode(e, 'flaky')).length === 2, 5000, 'flaky tainted');

  // The kubelet is back: it renews its lease and posts Ready=True with a new heartbeat.
  flaky.start();
  const node = await getNode(e, 'flaky');
  const now = new Date(Date.now() + 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const conditions = node.status.conditions.map((c: any) => ({ ...c, status: c.type === 'Ready' ? 'True' : 'False', reason: 'KubeletReady', message: '', lastHeartbeatTime: now, lastTransitionTime: now }));
  await e.api.client.patch(Resources.nodes, undefined, 'flaky', 'merge', { status: { conditions } }, { subresource: 'status' });
  await eventually(async () => taintKeys(await getNode(e, 'flaky')).length === 0, 5000, 'taints removed');
  await eventually(async () => (await events(e, 'default')).some((ev) => ev.involvedObject.name === 'patient' && ev.message === 'Cancelling deletion of Pod default/patient'), 3000, 'cancel event');
  await new Promise((r) => setTimeout(r, GRACE_MS * 1.5));
  assert.equal(readyCond(await getNode(e, 'flaky')).status, 'True', 'stays Ready while the lease is renewed');
  assert.equal(await terminating(e, 'patient'), false);
});

test('after a restart every node gets one grace period before it is judged', async (t) => {
  const e = await env(t, 800);
  // Leases last renewed long ago: the server was down; the kubelets may be fine.
  await addNode(e, t, 'a', Date.now() - 3600_000);
  await addNode(e, t, 'b', Date.now() - 3600_000);
  await start(e);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(readyCond(await getNode(e, 'a')).status, 'True', 'not marked at startup');
  await eventually(async () => readyCond(await getNode(e, 'a')).status === 'Unknown', 5000, 'marked after the grace period');
});

test('while nodes known before a restart are still coming back, the rest are judged from the latest comeback', async (t) => {
  const GRACE = 1000;
  const e = await env(t, GRACE);
  const stale = Date.now() - 3600_000;
  await addNode(e, t, 'never', stale);
  const early = await addNode(e, t, 'early', stale);
  const late = await addNode(e, t, 'late', stale);
  await start(e);
  const started = Date.now();
  // Two nodes come back one after the other, each within a grace period of the one before.
  await new Promise((r) => setTimeout(r, GRACE * 0.6));
  await early.beat();
  early.start();
  await new Promise((r) => setTimeout(r, GRACE * 0.6));
  await late.beat();
  const lastComeback = Date.now();
  late.start();
  await eventually(async () => readyCond(await getNode(e, 'never')).status === 'Unknown', 8000, 'the node that never came back is marked');
  const markedAfter = Date.now() - lastComeback;
  // Judged from the start alone it would have been marked about 0.2 s after the last comeback.
  assert.ok(markedAfter >= GRACE - 150, `marked ${markedAfter} ms after the last comeback (${lastComeback - started} ms after the start)`);
  assert.equal(readyCond(await getNode(e, 'early')).status, 'True');
  assert.equal(readyCond(await getNode(e, 'late')).status, 'True');
});

test('Ready=False from the kubelet gives the not-ready taints; cordoning gives the unschedulable taint', async (t) => {
  const e = await env(t, 60_000);
  await addNode(e, t, 'sick');
  await addNode(e, t, 'well');
  await boundPod(e, 'on-sick', 'sick');
  await start(e);
  const node = await getNode(e, 'sick');
  const conditions = node.status.conditions.map((c: any) => (c.type === 'Ready' ? { ...c, status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down' } : c));
  await e.api.client.patch(Resources.nodes, undefined, 'sick', 'merge', { status: { conditions } }, { subresource: 'status' });
  await eventually(async () => taintKeys(await getNode(e, 'sick')).join() === `${NOT_READY}:NoExecute,${NOT_READY}:NoSchedule`, 5000, 'not-ready taints');
  await eventually(() => terminating(e, 'on-sick'), 3000, 'pod without toleration evicted');

  await e.api.client.patch(Resources.nodes, undefined, 'well', 'merge', { spec: { unschedulable: true } });
  await eventually(async () => taintKeys(await getNode(e, 'well')).join() === 'node.kubernetes.io/unschedulable:NoSchedule', 5000, 'cordon taint');
  await e.api.client.patch(Resources.nodes, undefined, 'well', 'merge', { spec: { unschedulable: null } });
  await eventually(async () => taintKeys(await getNode(e, 'well')).length === 0, 5000, 'uncordoned');
});

test('when no node is ready, NoExecute taints are withheld and nothing is evicted', async (t) => {
  const e = await env(t, 400);
  await addNode(e, t, 'lonely');
  await boundPod(e, 'keep-me', 'lonely');
  await start(e);
  await eventually(async () => readyCond(await getNode(e, 'lonely')).status === 'Unknown', 5000, 'Unknown');
  await eventually(async () => taintKeys(await getNode(e, 'lonely')).join() === `${UNREACHABLE}:NoSchedule`, 5000, 'only the NoSchedule taint');
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(taintKeys(await getNode(e, 'lonely')), [`${UNREACHABLE}:NoSchedule`]);
  assert.equal(await terminating(e, 'keep-me'), false);
});
