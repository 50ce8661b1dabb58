// The pure parts of node lifecycle: which taints follow from a node's conditions, how ours are merged
// into the node's own, what a silent node's conditions become, how long a pod tolerates a taint, and
// the DefaultTolerationSeconds admission step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredTaints, minTolerationSeconds, reconcileTaints, unknownConditions } from '../../src/controllers/node-lifecycle.js';
import { addDefaultTolerations } from '../../src/apiserver/default-tolerations.js';
import type { Node } from '../../src/controllers/scheduler/types.js';

const node = (conditions: object[], spec: object = {}): Node =>
  ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n', creationTimestamp: '2026-01-01T00:00:00Z' }, spec, status: { conditions } } as Node);
const keys = (taints: { key: string; effect: string }[]) => taints.map((t) => `${t.key}:${t.effect}`);

test('desired taints follow Ready, the pressure conditions and cordoning', () => {
  assert.deepEqual(keys(desiredTaints(node([{ type: 'Ready', status: 'True' }]), false)), []);
  assert.deepEqual(keys(desiredTaints(node([{ type: 'Ready', status: 'False' }]), false)),
    ['node.kubernetes.io/not-ready:NoSchedule', 'node.kubernetes.io/not-ready:NoExecute']);
  assert.deepEqual(keys(desiredTaints(node([{ type: 'Ready', status: 'Unknown' }]), false)),
    ['node.kubernetes.io/unreachable:NoSchedule', 'node.kubernetes.io/unreachable:NoExecute']);
  assert.deepEqual(keys(desiredTaints(node([{ type: 'Ready', status: 'Unknown' }]), true)), ['node.kubernetes.io/unreachable:NoSchedule'],
    'full disruption withholds NoExecute');
  assert.deepEqual(keys(desiredTaints(node([{ type: 'Ready', status: 'True' }, { type: 'DiskPressure', status: 'True' }, { type: 'MemoryPressure', status: 'False' }], { unschedulable: true }), false)),
    ['node.kubernetes.io/disk-pressure:NoSchedule', 'node.kubernetes.io/unschedulable:NoSchedule']);
});

test('reconcileTaints keeps foreign taints and the timeAdded of kept ones, adds with timeAdded, removes stale', () => {
  const master = { key: 'node-role.kubernetes.io/master', effect: 'NoSchedule' };
  const oldNoSchedule = { key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule', timeAdded: '2026-01-01T00:00:00Z' };
  const oldNoExecute = { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: '2026-01-01T00:00:00Z' };
  // Unchanged: nothing to write.
  assert.equal(reconcileTaints([master, oldNoSchedule], [{ key: oldNoSchedule.key, effect: 'NoSchedule' }]), undefined);
  // Unknown → False: the unreachable pair goes, the not-ready pair comes with a fresh timeAdded.
  const next = reconcileTaints([master, oldNoSchedule, oldNoExecute], [
    { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }, { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' },
  ])!;
  assert.deepEqual(keys(next), ['node-role.kubernetes.io/master:NoSchedule', 'node.kubernetes.io/not-ready:NoSchedule', 'node.kubernetes.io/not-ready:NoExecute']);
  assert.ok(next.slice(1).every((t) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(t.timeAdded!)));
  // Back to Ready: only the foreign taint is left.
  assert.deepEqual(reconcileTaints(next, []), [master]);
  // A user's own NoExecute taint with another key is not ours to remove.
  const custom = { key: 'example.com/drain', effect: 'NoExecute' };
  assert.equal(reconcileTaints([custom], []), undefined);
});

test('a silent node: kubelet conditions become Unknown, heartbeats stay, missing ones are "never updated"', () => {
  const n = node([
    { type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: '2026-01-01T00:00:05Z', lastTransitionTime: '2026-01-01T00:00:01Z' },
    { type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated' },
  ]);
  const c = unknownConditions(n)!;
  const ready = c.find((x) => x.type === 'Ready')!;
  assert.equal(ready.status, 'Unknown');
  assert.equal(ready.reason, 'NodeStatusUnknown');
  assert.equal(ready.message, 'Kubelet stopped posting node status.');
  assert.equal(ready.lastHeartbeatTime, '2026-01-01T00:00:05Z');
  assert.notEqual(ready.lastTransitionTime, '2026-01-01T00:00:01Z');
  assert.equal(c.find((x) => x.type === 'NetworkUnavailable')!.status, 'False', 'not the kubelet\'s');
  const mem = c.find((x) => x.type === 'MemoryPressure')!;
  assert.deepEqual([mem.status, mem.reason, mem.message, mem.lastHeartbeatTime], ['Unknown', 'NodeStatusNeverUpdated', 'Kubelet never posted node status.', '2026-01-01T00:00:00Z']);
  assert.deepEqual(c.map((x) => x.type), ['Ready', 'NetworkUnavailable', 'MemoryPressure', 'DiskPressure', 'PIDPressure']);
  // Already Unknown: nothing to write.
  assert.equal(unknownConditions(node(c)), undefined);
});

test('minTolerationSeconds: the smallest, zero for non-positive, -1 for forever', () => {
  assert.equal(minTolerationSeconds([]), 0);
  assert.equal(minTolerationSeconds([{ key: 'a', tolerationSeconds: 300 }, { key: 'b', tolerationSeconds: 30 }]), 30);
  assert.equal(minTolerationSeconds([{ key: 'a' }, { key: 'b', tolerationSeconds: 30 }]), 30);
  assert.equal(minTolerationSeconds([{ key: 'a' }]), -1);
  assert.equal(minTolerationSeconds([{ key: 'a', tolerationSeconds: -5 }, { key: 'b', tolerationSeconds: 30 }]), 0);
});

test('DefaultTolerationSeconds adds both tolerations unless the pod already tolerates the taint', () => {
  const opts = { notReadySeconds: 300, unreachableSeconds: 120 };
  const pod = { spec: { containers: [] as object[] } } as { spec: Record<string, any> };
  assert.equal(addDefaultTolerations(pod, opts), pod, 'mutates and returns the same pod');
  assert.deepEqual(pod.spec.tolerations, [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 120 },
  ]);
  // Idempotent.
  addDefaultTolerations(pod, opts);
  assert.equal(pod.spec.tolerations.length, 2);

  const own = { spec: { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 5 }] } };
  addDefaultTolerations(own, opts);
  assert.deepEqual(own.spec.tolerations.map((t: any) => [t.key, t.tolerationSeconds]), [['node.kubernetes.io/unreachable', 5], ['node.kubernetes.io/not-ready', 300]]);

  // A toleration with no key (and no effect or NoExecute) covers both; one for NoSchedule covers neither.
  const all = { spec: { tolerations: [{ operator: 'Exists' }] } };
  addDefaultTolerations(all, opts);
  assert.equal(all.spec.tolerations.length, 1);
  const noSchedule = { spec: { tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoSchedule' }] } };
  addDefaultTolerations(noSchedule, opts);
  assert.equal(noSchedule.spec.tolerations.length, 3);
});
