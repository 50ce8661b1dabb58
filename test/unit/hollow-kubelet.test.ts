// Hollow nodes against the real in-process API: registration, Lease renewal, pods reported Running
// and removed on delete, freezing, planned exits, and converging after a restart.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalApi, type LocalApi } from '../helpers/local-api.js';
import { eventually } from '../helpers/controller-env.js';
import { Resources } from '../../src/client/types.js';
import { HollowFleet } from '../../src/hollow/fleet.js';
import { EXIT_AFTER_ANNOTATION, EXIT_CODE_ANNOTATION, parseTaint, type Obj } from '../../src/hollow/objects.js';

const TIMINGS = { podStartDelayMs: 100, heartbeatIntervalMs: 100, nodeStatusIntervalMs: 150, terminationDelayMs: 50 };

async function setup(t: TestContext): Promise<{ api: LocalApi; fleet: HollowFleet }> {
  const api = await startLocalApi(t, { namespaces: ['default', 'kube-system', 'kube-node-lease'] });
  const fleet = new HollowFleet(TIMINGS);
  t.after(() => fleet.stop());
  return { api, fleet };
}

function pod(name: string, node: string, extra: Record<string, unknown> = {}): Obj {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
    spec: { nodeName: node, containers: [{ name: 'app', image: 'busybox' }], ...extra },
  };
}

/** Each fleet closes its clients when stopped: give every node a client of its own, as itself. */
const nodeClient = (api: LocalApi, name: string) => api.client.as({ user: `system:node:${name}`, groups: ['system:nodes'], manager: 'kubelet' });

const getPod = (api: LocalApi, name: string) => api.client.get<Obj>(Resources.pods, 'default', name);
/** The pod once `pred` holds for it. */
async function podWhere(api: LocalApi, name: string, pred: (p: Obj) => unknown, what: string): Promise<Obj> {
  let found: Obj | undefined;
  await eventually(async () => { const p = await getPod(api, name); if (p && pred(p)) found = p; return found; }, 5000, what);
  return found!;
}

const condition = (o: Obj | undefined, type: string) => o?.status?.conditions?.find((c: any) => c.type === type);

test('a hollow node registers like a kubelet and renews its Lease', async (t) => {
  const { api, fleet } = await setup(t);
  await fleet.startNode({
    name: 'h-0', ordinal: 0, client: nodeClient(api, 'h-0'), labels: { 'kubernetes.io/arch': 'arm64', zone: 'a' },
    taints: [parseTaint('dedicated=edge:NoSchedule')],
  });
  const node = (await api.client.get<Obj>(Resources.nodes, undefined, 'h-0'))!;
  assert.deepEqual(node.metadata.labels, {
    'kubernetes.io/hostname': 'h-0', 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'arm64',
    'node.kubernetes.io/instance-type': 'hollow', zone: 'a',
  });
  assert.deepEqual(node.spec.taints, [{ key: 'dedicated', value: 'edge', effect: 'NoSchedule' }]);
  assert.equal(node.status.capacity.pods, '110');
  assert.equal(node.status.allocatable.memory, '16Gi');
  assert.equal(node.status.nodeInfo.kubeletVersion, 'v1.32.4+skiff');
  assert.equal(node.status.nodeInfo.containerRuntimeVersion, 'hollow://1.0');
  assert.equal(node.status.nodeInfo.architecture, 'arm64');
  assert.equal(condition(node, 'Ready')?.status, 'True');
  assert.deepEqual(node.status.addresses[0], { type: 'InternalIP', address: '172.16.0.1' });

  const lease = (await api.client.get<Obj>(Resources.leases, 'kube-node-lease', 'h-0'))!;
  assert.equal(lease.spec.holderIdentity, 'h-0');
  assert.equal(lease.spec.leaseDurationSeconds, 40);
  assert.match(lease.spec.renewTime, /\.\d{6}Z$/);
  assert.equal(lease.metadata.ownerReferences?.[0]?.uid, node.metadata.uid);
  await eventually(async () => (await api.client.get<Obj>(Resources.leases, 'kube-node-lease', 'h-0'))!.spec.renewTime !== lease.spec.renewTime,
    3000, 'a renewed lease');
  await eventually(async () => condition(await api.client.get<Obj>(Resources.nodes, undefined, 'h-0'), 'Ready')?.lastHeartbeatTime
    !== condition(node, 'Ready').lastHeartbeatTime, 3000, 'a node status heartbeat');
});

test('pods bound to a hollow node become Running and Ready, and deleted ones go away', async (t) => {
  const { api, fleet } = await setup(t);
  await fleet.startNode({ name: 'h-0', ordinal: 3, client: nodeClient(api, 'h-0'), labels: {}, taints: [] });
  const created = Date.now();
  await api.client.create(Resources.pods, 'default', pod('web', 'h-0', { initContainers: [{ name: 'init', image: 'busybox' }] }));
  await api.client.create(Resources.pods, 'default', pod('other', 'elsewhere'));
  const running = await podWhere(api, 'web', (p) => p.status?.phase === 'Running', 'web Running');
  assert.ok(Date.now() - created >= TIMINGS.podStartDelayMs, 'the start delay is honoured');
  const st = running.status;
  for (const type of ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled']) {
    assert.equal(condition(running, type)?.status, 'True', type);
  }
  assert.equal(st.podIP, '100.64.3.2');
  assert.deepEqual(st.podIPs, [{ ip: '100.64.3.2' }]);
  assert.equal(st.hostIP, '172.16.0.4');
  assert.ok(st.startTime);
  assert.equal(st.containerStatuses[0].ready, true);
  assert.ok(st.containerStatuses[0].state.running.startedAt);
  assert.equal(st.initContainerStatuses[0].state.terminated.reason, 'Completed');
  assert.equal(st.qosClass, 'BestEffort', 'fields the kubelet does not own are kept');
  assert.equal((await getPod(api, 'other'))?.status?.phase, 'Pending', 'pods of other nodes are left alone');

  await api.client.create(Resources.pods, 'default', pod('second', 'h-0'));
  const second = await podWhere(api, 'second', (p) => p.status?.podIP, 'second Running');
  assert.equal(second.status.podIP, '100.64.3.3', 'each pod gets its own address');

  const deleted = await api.client.delete<Obj>(Resources.pods, 'default', 'web');
  assert.ok(deleted.metadata.deletionTimestamp, 'a pod on a node terminates gracefully');
  await eventually(async () => !(await getPod(api, 'web')), 5000, 'web removed');
});

test('a frozen node stops renewing and leaves its pods alone until thawed', async (t) => {
  const { api, fleet } = await setup(t);
  const kubelet = await fleet.startNode({ name: 'h-0', ordinal: 0, client: nodeClient(api, 'h-0'), labels: {}, taints: [] });
  await api.client.create(Resources.pods, 'default', pod('web', 'h-0'));
  await eventually(async () => (await getPod(api, 'web'))?.status?.phase === 'Running', 5000, 'web Running');

  fleet.setFrozen(true);
  assert.equal(kubelet.isFrozen(), true);
  await new Promise((r) => setTimeout(r, 150));   // a renewal in flight lands
  const renew = async () => (await api.client.get<Obj>(Resources.leases, 'kube-node-lease', 'h-0'))!.spec.renewTime;
  const frozenAt = await renew();
  await api.client.delete(Resources.pods, 'default', 'web');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await renew(), frozenAt, 'no renewal while frozen');
  assert.ok((await getPod(api, 'web'))?.metadata.deletionTimestamp, 'the pod stays Terminating on a dead node');

  fleet.setFrozen(false);
  await eventually(async () => (await renew()) !== frozenAt, 3000, 'renewal after thaw');
  await eventually(async () => !(await getPod(api, 'web')), 5000, 'web removed after thaw');
});

test('a container told to exit completes the pod (restartPolicy Never)', async (t) => {
  const { api, fleet } = await setup(t);
  await fleet.startNode({ name: 'h-0', ordinal: 0, client: nodeClient(api, 'h-0'), labels: {}, taints: [] });
  const job = (name: string, code: string, restartPolicy: string) => {
    const p = pod(name, 'h-0', { restartPolicy });
    p.metadata.annotations = { [EXIT_AFTER_ANNOTATION]: '100', [EXIT_CODE_ANNOTATION]: code };
    return p;
  };
  await api.client.create(Resources.pods, 'default', job('ok', '0', 'Never'));
  await api.client.create(Resources.pods, 'default', job('bad', '3', 'Never'));
  await api.client.create(Resources.pods, 'default', job('always', '0', 'Always'));
  const ok = await podWhere(api, 'ok', (p) => p.status?.phase === 'Succeeded', 'ok Succeeded');
  assert.equal(ok.status.containerStatuses[0].state.terminated.exitCode, 0);
  assert.equal(condition(ok, 'Ready')?.reason, 'PodCompleted');
  const bad = await podWhere(api, 'bad', (p) => p.status?.phase === 'Failed', 'bad Failed');
  assert.equal(bad.status.containerStatuses[0].state.terminated.exitCode, 3);
  // On a busy machine 'always' may start after the others ended: wait for it, then past its exit time.
  await podWhere(api, 'always', (p) => p.status?.phase === 'Running', 'always Running');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await getPod(api, 'always'))?.status?.phase, 'Running', 'restartPolicy Always keeps running');
});

test('a restarted hollow node keeps its Node and running pods', async (t) => {
  const { api, fleet } = await setup(t);
  await fleet.startNode({ name: 'h-0', ordinal: 0, client: nodeClient(api, 'h-0'), labels: {}, taints: [] });
  await api.client.create(Resources.pods, 'default', pod('web', 'h-0'));
  const before = await podWhere(api, 'web', (p) => p.status?.phase === 'Running', 'web Running');
  const uid = (await api.client.get<Obj>(Resources.nodes, undefined, 'h-0'))!.metadata.uid;
  await fleet.stop();

  const again = new HollowFleet(TIMINGS);
  t.after(() => again.stop());
  const kubelet = await again.startNode({ name: 'h-0', ordinal: 0, client: nodeClient(api, 'h-0'), labels: {}, taints: [] });
  await kubelet.waitForPodSync(5000);
  await api.client.create(Resources.pods, 'default', pod('next', 'h-0'));
  const next = await podWhere(api, 'next', (p) => p.status?.podIP, 'next Running');
  assert.equal((await api.client.get<Obj>(Resources.nodes, undefined, 'h-0'))!.metadata.uid, uid, 'the same Node');
  assert.equal((await getPod(api, 'web'))!.metadata.resourceVersion, before.metadata.resourceVersion, 'a running pod is not rewritten');
  assert.notEqual(next.status.podIP, before.status.podIP, 'addresses in use are not given out again');
});

test('a running pod marked not ready by someone else is reported Ready again, with its IP and start time kept', async (t) => {
  const { api, fleet } = await setup(t);
  await fleet.startNode({ name: 'h-0', ordinal: 1, client: nodeClient(api, 'h-0'), labels: {}, taints: [] });
  await api.client.create(Resources.pods, 'default', pod('web', 'h-0'));
  const running = await podWhere(api, 'web', (p) => condition(p, 'Ready')?.status === 'True', 'web Ready');
  // What the node lifecycle controller does to the pods of a node it has not heard from.
  await api.client.patch(Resources.pods, 'default', 'web', 'strategic',
    { status: { conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: new Date().toISOString() }] } }, { subresource: 'status' });
  const again = await podWhere(api, 'web', (p) => condition(p, 'Ready')?.status === 'True' && p.metadata.resourceVersion !== running.metadata.resourceVersion, 'web Ready again');
  assert.equal(again.metadata.uid, running.metadata.uid);
  assert.equal(again.status.podIP, running.status.podIP);
  assert.equal(again.status.startTime, running.status.startTime);
  assert.equal(again.status.containerStatuses[0].state.running.startedAt, running.status.containerStatuses[0].state.running.startedAt);
});
