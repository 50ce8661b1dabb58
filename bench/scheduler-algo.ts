// Scheduler placement benchmark: 10,000 pods from 100 Deployments onto 1,000 nodes in 10 zones,
// through the incremental ClusterSnapshot (each placed pod is recorded before the next is scheduled,
// as the scheduling loop does on bind); then one DaemonSet's pods, each pinned to its node by the
// `metadata.name` field affinity the DaemonSet controller sets. Run (a few seconds):
//   node --import tsx bench/scheduler-algo.ts [--nodes 1000] [--pods 10000]
import { ClusterSnapshot } from '../src/controllers/scheduler/schedule.js';
import type { Node, Pod } from '../src/controllers/scheduler/types.js';
import { intArg } from './lib/args.js';

const NODES = intArg('--nodes', 1000);
const PODS = intArg('--pods', 10_000);
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

// One DaemonSet: a pod per node, pinned by name (what every node's agent pods look like).
const dsPods: Pod[] = Array.from({ length: NODES }, (_, i) => ({
  metadata: {
    name: `agent-${i}`, namespace: 'kube-system', uid: `ds-pod-${i}`, labels: { app: 'agent' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'ds-0', controller: true }],
  },
  spec: {
    containers: [{ name: 'agent', resources: { requests: { cpu: '10m', memory: '16Mi' } } }],
    tolerations: [{ operator: 'Exists' }],
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [`node-${i}`] }] }] } } },
  },
}));
let misplaced = 0;
const t1 = performance.now();
for (const [i, p] of dsPods.entries()) {
  const r = snap.schedule(p);
  if (r.node !== `node-${i}`) { misplaced++; continue; }
  snap.addPod(p, r.node);
}
const dsSecs = (performance.now() - t1) / 1000;
console.log(`DaemonSet: ${NODES - misplaced}/${NODES} pods on their own node in ${dsSecs.toFixed(2)} s: ${Math.round(NODES / dsSecs)} pods/s`);
console.log(`SUMMARY scheduler-algo: nodes=${NODES} podsPerSec=${Math.round(PODS / secs)} daemonSetPodsPerSec=${Math.round(NODES / dsSecs)}`);
