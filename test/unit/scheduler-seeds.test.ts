// The seed scenarios of issue 3, end to end through schedulePod: arm/arm64 boards chosen by node
// affinity, replicas spread one per architecture by anti-affinity, and a tainted master left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterSnapshot, schedulePod } from '../../src/controllers/scheduler/schedule.js';
import type { Pod } from '../../src/controllers/scheduler/types.js';
import { byNode, node, placed, pod } from './scheduler-objects.js';

const ARCH = 'kubernetes.io/arch';
const MASTER_TAINT = { key: 'node-role.kubernetes.io/master', effect: 'NoSchedule' };
const cluster = () => [
  node('server', { labels: { [ARCH]: 'arm64' }, taints: [MASTER_TAINT] }),
  node('pi3', { labels: { [ARCH]: 'arm' } }),
  node('pi4', { labels: { [ARCH]: 'arm64' } }),
];

test('required nodeAffinity arch In [arm64] lands only on arm64 nodes', () => {
  const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: ARCH, operator: 'In', values: ['arm64'] }] }] } } };
  const snap = new ClusterSnapshot();
  const nodes = [...cluster(), node('pi4b', { labels: { [ARCH]: 'arm64' } }), node('pi3b', { labels: { [ARCH]: 'arm' } })];
  for (const n of nodes) snap.addNode(n);
  const used = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const p = pod(`web-${i}`, { labels: { app: 'web' }, owner: 'web', affinity });
    const r = snap.schedule(p);
    assert.ok(r.node === 'pi4' || r.node === 'pi4b', `placed on ${r.node}`);
    snap.addPod(p, r.node);
    used.add(r.node);
  }
  assert.equal(used.size, 2, 'replicas spread over both arm64 boards');
});

test('podAntiAffinity on kubernetes.io/arch: one replica per architecture, the third stays Pending', () => {
  const anti = { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'web' } }, topologyKey: ARCH }] } };
  const replica = (name: string) => pod(name, { labels: { app: 'web' }, owner: 'web', affinity: anti });
  const bound: Pod[] = [];
  for (const name of ['web-a', 'web-b']) {
    const r = schedulePod(replica(name), cluster(), byNode(bound));
    assert.ok(r.node, `${name} scheduled`);
    bound.push(placed(name, r.node, { labels: { app: 'web' }, owner: 'web', affinity: anti }));
  }
  assert.deepEqual(bound.map((p) => p.spec!.nodeName).sort(), ['pi3', 'pi4']);
  assert.deepEqual(schedulePod(replica('web-c'), cluster(), byNode(bound)), {
    node: undefined,
    message: "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, 2 node(s) didn't match pod anti-affinity rules. "
      + 'preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.',
  });
});

test('a master-tainted node gets nothing without a toleration, and pods with one may go there', () => {
  const onlyMaster = [cluster()[0]!];
  assert.deepEqual(schedulePod(pod('p'), onlyMaster, new Map()), {
    node: undefined,
    message: '0/1 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.',
  });
  const snap = new ClusterSnapshot();
  for (const n of cluster()) snap.addNode(n);
  for (let i = 0; i < 30; i++) {
    const p = pod(`p${i}`, { owner: 'many' });
    const r = snap.schedule(p);
    assert.notEqual(r.node, 'server');
    snap.addPod(p, r.node);
  }
  const tolerant = pod('t', { tolerations: [{ key: 'node-role.kubernetes.io/master', operator: 'Exists', effect: 'NoSchedule' }] });
  assert.deepEqual(schedulePod(tolerant, onlyMaster, new Map()), { node: 'server' });
});

test('the brief\'s example message: taint plus node affinity, sorted by count then text', () => {
  const p = pod('p', { nodeSelector: { [ARCH]: 'riscv' } });
  assert.deepEqual(schedulePod(p, cluster(), new Map()), {
    node: undefined,
    message: "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
  });
});
