// Scheduler placement benchmark: 10,000 pods from 100 Deployments onto 1,000 nodes in 10 zones,
// through the incremental ClusterSnapshot (each placed pod is recorded before the next is scheduled,
// as the scheduling loop does on bind). Run: node --import tsx bench/scheduler-algo.ts (a few seconds).
import { ClusterSnapshot } from '../src/controllers/scheduler/schedule.js';
import type { Node, Pod } from '../src/controllers/scheduler/types.js';

const NODES = 1000;
const PODS = 10_000;
const DEPLOYMENTS = 100;

function node(i: number): Node {
  const name = `node-${i}`;
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/arch': i % 2 ? 'arm64' : 'arm', 'topology.kubernetes.io/zone': `zone-${i % 10}` } },
    spec: i === 0 ? { taints: [{ key: 'node-role.kubernetes.io/master', effect: 'NoSchedule' }] } : {},
    status: { allocatable: { cpu: '4', memory: '8Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

function pod(i: number): Pod {
  const d = i % DEPLOYMENTS;
  return {
    metadata: {
      name: `web-${d}-${i}`, namespace: 'default', uid: `pod-${i}`, labels: { app: `web-${d}` },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `web-${d}`, uid: `rs-${d}`, controller: true }],
    },
    spec: {
      containers: [{ name: 'app', resources: { requests: { cpu: '100m', memory: '128Mi' } } }],
      // A tenth of the Deployments want arm64 boards.
      ...(d % 10 === 0 ? { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['arm64'] }] }] } } } } : {}),
    },
  };
}

const snap = new ClusterSnapshot();
for (let i = 0; i < NODES; i++) snap.addNode(node(i));
const pods = Array.from({ length: PODS }, (_, i) => pod(i));

const perNode = new Map<string, number>();
let unscheduled = 0;
const t0 = performance.now();
for (const p of pods) {
  const r = snap.schedule(p);
  if (r.node === undefined) { unscheduled++; continue; }
  snap.addPod(p, r.node);
  perNode.set(r.node, (perNode.get(r.node) ?? 0) + 1);
}
const secs = (performance.now() - t0) / 1000;
const counts = [...perNode.values()];
console.log(`scheduled ${PODS - unscheduled}/${PODS} pods on ${NODES} nodes in ${secs.toFixed(2)} s: ${Math.round(PODS / secs)} pods/s`);
console.log(`pods per node: min ${Math.min(...counts)}, max ${Math.max(...counts)}, nodes used ${perNode.size}; master got ${perNode.get('node-0') ?? 0}`);
