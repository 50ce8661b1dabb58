// Scoring: which feasible node wins, plugin by plugin, and the snapshot the loop keeps current.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterSnapshot, numFeasibleNodesToFind, schedulePod } from '../../src/controllers/scheduler/schedule.js';
import { NodeInfo, PodInfo, ROW } from '../../src/controllers/scheduler/node-info.js';
import { balancedAllocationScore, defaultNormalize, leastAllocatedScore, normalizeAffinityScores, normalizeSpreadScores } from '../../src/controllers/scheduler/scores.js';
import type { Pod } from '../../src/controllers/scheduler/types.js';
import { byNode, node, placed, pod } from './scheduler-objects.js';

const ZONE = 'topology.kubernetes.io/zone';

function info(name: string, pods: Pod[], allocatable = { cpu: '4', memory: '8Gi' }): NodeInfo {
  const n = new NodeInfo(name);
  n.setNode(node(name, { allocatable }));
  for (const p of pods) n.addPod(new PodInfo(p));
  return n;
}

test('least allocated and balanced allocation scores', () => {
  const incoming = new PodInfo(pod('p', { requests: { cpu: '1', memory: '2Gi' } }));
  const cases: [string, Pod[], number, number][] = [
    // [node, existing pods, least allocated, balanced]
    ['empty', [], 75, 100], // (4-1)/4 and (8-2)/8 → 75; both 25% used → perfectly balanced
    ['half', [pod('x', { requests: { cpu: '1', memory: '2Gi' } })], 50, 100],
    // cpu full → 0; memory counts x's 200Mi stand-in: (8192-2248)/8192 → 72; (0+72)/2. Fractions 1 and .25.
    ['cpu-heavy', [pod('x', { requests: { cpu: '3' } })], 36, 62],
    // Least allocated sees the 100m/200Mi stand-ins (72 each); balanced sees the real zero requests.
    ['no requests', [pod('x')], 72, 100],
  ];
  for (const [name, pods, least, balanced] of cases) {
    const n = info(name, pods);
    assert.equal(balancedAllocationScore(n, incoming), balanced, `${name} balanced`);
    assert.equal(leastAllocatedScore(n, incoming), least, `${name} least`);
  }
});

test('normalizations', () => {
  const run = (f: (s: Float64Array) => void, input: number[]) => { const s = Float64Array.from(input); f(s); return [...s]; };
  assert.deepEqual(run((s) => defaultNormalize(s, false), [0, 5, 10]), [0, 50, 100]);
  assert.deepEqual(run((s) => defaultNormalize(s, true), [0, 1, 2]), [100, 50, 0]);
  assert.deepEqual(run((s) => defaultNormalize(s, true), [0, 0]), [100, 100]);
  assert.deepEqual(run((s) => defaultNormalize(s, false), [0, 0]), [0, 0]);
  assert.deepEqual(run(normalizeAffinityScores, [-10, 0, 10]), [0, 50, 100]);
  assert.deepEqual(run(normalizeAffinityScores, [3, 3]), [0, 0]);
  assert.deepEqual(run(normalizeSpreadScores, [2, 4, Number.NaN]), [100, 50, 0]);
  assert.deepEqual(run(normalizeSpreadScores, [0, 0]), [100, 100]);
});

test('each preference moves the pod to the node it favours', () => {
  const nodes = () => [node('n1', { labels: { [ZONE]: 'a', disk: 'ssd' } }), node('n2', { labels: { [ZONE]: 'b', disk: 'hdd' } })];
  const prefer = (weight: number, key: string, values: string[]) => ({ weight, preference: { matchExpressions: [{ key, operator: 'In', values }] } });
  const weighted = (labels: Record<string, string>, weight = 50) => [{ weight, podAffinityTerm: { labelSelector: { matchLabels: labels }, topologyKey: ZONE } }];
  const cases: { name: string; existing?: Pod[]; pod: Pod; want: string; nodes?: ReturnType<typeof nodes> }[] = [
    { name: 'preferred node affinity', pod: pod('p', { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [prefer(10, 'disk', ['hdd'])] } } }), want: 'n2' },
    {
      name: 'heavier preference wins',
      pod: pod('p', { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [prefer(10, 'disk', ['hdd']), prefer(90, ZONE, ['a'])] } } }), want: 'n1',
    },
    { name: 'preferred pod affinity', existing: [placed('db', 'n2', { labels: { app: 'db' } }), placed('o', 'n1', { labels: { app: 'other' } })], pod: pod('p', { affinity: { podAffinity: { preferredDuringSchedulingIgnoredDuringExecution: weighted({ app: 'db' }) } } }), want: 'n2' },
    { name: 'preferred pod anti-affinity', existing: [placed('db', 'n1', { labels: { app: 'db' } }), placed('o', 'n2', { labels: { app: 'other' } })], pod: pod('p', { affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: weighted({ app: 'db' }) } } }), want: 'n2' },
    {
      name: 'an existing pod\'s preference attracts the incoming pod',
      existing: [placed('cache', 'n2', { affinity: { podAffinity: { preferredDuringSchedulingIgnoredDuringExecution: weighted({ app: 'web' }, 100) } } }), placed('o', 'n1')],
      pod: pod('p', { labels: { app: 'web' } }), want: 'n2',
    },
    {
      name: 'an existing pod\'s required affinity attracts too (hard weight 1)',
      existing: [placed('cache', 'n1', { affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'web' } }, topologyKey: ZONE }] } } }), placed('o', 'n2')],
      pod: pod('p', { labels: { app: 'web' } }), want: 'n1',
    },
    {
      name: 'PreferNoSchedule taints repel',
      nodes: [node('n1', { taints: [{ key: 'spot', effect: 'PreferNoSchedule' }] }), node('n2', {})],
      pod: pod('p'), want: 'n2',
    },
    {
      name: 'ScheduleAnyway spread constraints score',
      existing: [placed('w1', 'n1', { labels: { app: 'web' } }), placed('w2', 'n1', { labels: { app: 'web' } })],
      pod: pod('p', { labels: { app: 'web' }, topologySpreadConstraints: [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { app: 'web' } } }] }),
      want: 'n2',
    },
    { name: 'least allocated', existing: [placed('big', 'n1', { requests: { cpu: '2' } })], pod: pod('p', { requests: { cpu: '1' } }), want: 'n2' },
  ];
  for (const c of cases) assert.deepEqual(schedulePod(c.pod, c.nodes ?? nodes(), byNode(c.existing ?? [])), { node: c.want }, c.name);
});

test('a controller\'s replicas spread over nodes, then over zones', () => {
  const snap = new ClusterSnapshot();
  for (const name of ['n1', 'n2', 'n3']) snap.addNode(node(name));
  const counts = new Map<string, number>();
  for (let i = 0; i < 9; i++) {
    const p = pod(`web-${i}`, { owner: 'web', labels: { app: 'web' } });
    const r = snap.schedule(p);
    snap.addPod(p, r.node);
    counts.set(r.node!, (counts.get(r.node!) ?? 0) + 1);
  }
  assert.deepEqual([...counts.values()], [3, 3, 3]);

  // Every node holds one pod, so resources tie; zone a already has a replica, zone b none.
  const nodes = [node('a1', { labels: { [ZONE]: 'a' } }), node('a2', { labels: { [ZONE]: 'a' } }), node('b1', { labels: { [ZONE]: 'b' } }), node('b2', { labels: { [ZONE]: 'b' } })];
  const existing = [placed('web-0', 'a1', { owner: 'web' }), placed('f1', 'a2', { owner: 'other' }), placed('f2', 'b1', { owner: 'other' }), placed('f3', 'b2', { owner: 'other' })];
  for (let i = 1; i < 6; i++) {
    const r = schedulePod(pod(`web-${i}`, { owner: 'web' }), nodes, byNode(existing));
    assert.ok(r.node === 'b1' || r.node === 'b2', `replica ${i} went to ${r.node}`);
  }
});

test('ties are broken per pod: stable for one pod, varied across pods', () => {
  const nodes = ['n1', 'n2', 'n3', 'n4'].map((n) => node(n));
  const chosen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const p = pod(`p${i}`);
    const r = schedulePod(p, nodes, new Map());
    assert.deepEqual(schedulePod(p, nodes, new Map()), r);
    chosen.add(r.node!);
  }
  assert.ok(chosen.size > 1, `all 20 pods went to ${[...chosen]}`);
});

test('large clusters score a sample, starting where the last search stopped', () => {
  assert.equal(numFeasibleNodesToFind(50), 50);
  assert.equal(numFeasibleNodesToFind(100), 100);
  assert.equal(numFeasibleNodesToFind(1000), 420);
  assert.equal(numFeasibleNodesToFind(5000), 500);
  assert.equal(numFeasibleNodesToFind(100_000), 5000);
  assert.equal(numFeasibleNodesToFind(1000, 100), 1000);
  assert.equal(numFeasibleNodesToFind(1000, 20), 200);

  const snap = new ClusterSnapshot();
  for (let i = 0; i < 1000; i++) snap.addNode(node(`n${i}`));
  snap.schedule(pod('a'));
  assert.equal(snap.nextStartNodeIndex, 420);
  snap.schedule(pod('b'));
  assert.equal(snap.nextStartNodeIndex, 840);
  snap.schedule(pod('c'));
  assert.equal(snap.nextStartNodeIndex, 260);
});

test('the snapshot follows pods and nodes as they come and go', () => {
  const snap = new ClusterSnapshot();
  const hog = pod('hog', { requests: { cpu: '3' } });
  // A pod bound to a node the snapshot has not seen yet is kept and counted once the node appears.
  snap.addPod(hog, 'n1');
  snap.addNode(node('n1'));
  const p = pod('p', { requests: { cpu: '2' } });
  assert.deepEqual(snap.schedule(p), { node: undefined, message: '0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.' });
  snap.updatePod({ ...hog, spec: { ...hog.spec, containers: [{ name: 'c', resources: { requests: { cpu: '1' } } }] } }, 'n1');
  assert.deepEqual(snap.schedule(p), { node: 'n1' });
  snap.addPod(p, 'n1');
  assert.ok(snap.schedule(pod('q', { requests: { cpu: '2' } })).node === undefined);
  snap.removePod(hog);
  snap.removePod(p);
  assert.deepEqual(snap.schedule(pod('q', { requests: { cpu: '4' } })), { node: 'n1' });

  snap.updateNode(node('n1', { unschedulable: true }));
  assert.match((snap.schedule(pod('r')) as { message: string }).message, /1 node\(s\) were unschedulable/);
  snap.addNode(node('n2'));
  assert.deepEqual(snap.schedule(pod('r')), { node: 'n2' });
  snap.removeNode('n2');
  snap.removeNode('n1');
  assert.deepEqual(snap.schedule(pod('r')), { node: undefined, message: 'no nodes available to schedule pods' });

  // Affinity bookkeeping: once the only anti-affinity pod leaves, nothing refuses the incoming pod.
  snap.addNode(node('n3'));
  const guard = placed('guard', 'n3', { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: {}, topologyKey: 'kubernetes.io/hostname' }] } } });
  snap.addPod(guard);
  assert.equal(snap.podsWithRequiredAntiAffinity, 1);
  assert.match((snap.schedule(pod('s')) as { message: string }).message, /existing pods anti-affinity rules/);
  snap.removePod(guard);
  assert.equal(snap.podsWithRequiredAntiAffinity, 0);
  assert.deepEqual(snap.schedule(pod('s')), { node: 'n3' });
  // The label index forgets removed pods too.
  const loner = pod('loner', { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'db' } }, topologyKey: 'kubernetes.io/hostname' }] } } });
  const db = placed('db', 'n3', { labels: { app: 'db' } });
  snap.addPod(db);
  assert.match((snap.schedule(loner) as { message: string }).message, /didn't match pod anti-affinity rules/);
  snap.removePod(db);
  assert.deepEqual(snap.schedule(loner), { node: 'n3' });
});

test('each node\'s row of numbers matches its pods and allocatable through churn, rows reused', () => {
  const snap = new ClusterSnapshot();
  let seed = 7;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const live = new Map<string, Pod>();
  const check = (when: string) => {
    for (const n of snap.nodes) {
      const d = n.rows.data;
      const got = [ROW.allocMilliCPU, ROW.allocMemory, ROW.allocStorage, ROW.allocPods, ROW.reqMilliCPU, ROW.reqMemory, ROW.reqStorage, ROW.pods]
        .map((f) => d[n.row + f]);
      const a = n.allocatable, r = n.requested;
      assert.deepEqual(got, [a.milliCPU, a.memory, a.ephemeralStorage, a.pods, r.milliCPU, r.memory, r.ephemeralStorage, n.pods.size], `${when}: ${n.name}`);
      let cpu = 0, mem = 0;
      for (const p of n.pods.values()) { cpu += p.nonZeroCPU; mem += p.nonZeroMemory; }
      assert.deepEqual([d[n.row + ROW.nonZeroCPU], d[n.row + ROW.nonZeroMemory]], [cpu, mem], `${when}: ${n.name} non-zero requests`);
    }
    // No two nodes share a row.
    assert.equal(new Set(snap.nodes.map((n) => n.row)).size, snap.nodes.length, when);
  };
  for (let step = 0; step < 3000; step++) {
    const r = rnd(100);
    const nodeName = `n${rnd(40)}`;
    if (r < 10) snap.addNode(node(nodeName, { allocatable: { cpu: String(1 + rnd(8)), memory: `${1 + rnd(16)}Gi` } }));
    else if (r < 15) snap.removeNode(nodeName);
    else if (r < 65) {
      const name = `p${step}`;
      const p = placed(name, nodeName, rnd(3) ? { requests: { cpu: `${rnd(500)}m`, memory: `${rnd(300)}Mi`, 'ephemeral-storage': `${rnd(5)}Gi` } } : {});
      snap.addPod(p);
      live.set(name, p);
    } else if (live.size) {
      const names = [...live.keys()];
      const name = names[rnd(names.length)]!;
      snap.removePod(live.get(name)!);
      live.delete(name);
    }
    if (step % 50 === 0) check(`step ${step}`);
  }
  check('end');
  // Rows of dropped nodes are taken again: 40 node names never need more than 40 rows at once.
  for (let round = 0; round < 5; round++) {
    for (const p of live.values()) snap.removePod(p);
    live.clear();
    for (let i = 0; i < 40; i++) snap.removeNode(`n${i}`);
    for (let i = 0; i < 40; i++) snap.addNode(node(`n${i}`));
    check(`round ${round}`);
  }
  assert.equal(snap.nodes[0]!.rows.data.length, 64 * 10, 'rows allotted');
});

test('a pod version that changes nothing the scheduler reads replaces the kept object only', () => {
  const snap = new ClusterSnapshot();
  snap.addNode(node('n1', { allocatable: { cpu: '2' } }));
  const v1 = placed('web', 'n1', { requests: { cpu: '1500m' }, labels: { app: 'web' } });
  snap.addPod(v1);
  const info = snap.node('n1')!;
  const worked = [...info.pods.values()][0]!;
  // A status write: the same spec and labels objects, a new status.
  const v2 = { ...v1, metadata: { ...v1.metadata, resourceVersion: '2' }, status: { phase: 'Running' } } as Pod;
  snap.updatePod(v2);
  assert.equal([...info.pods.values()][0], worked, 'nothing worked out again');
  assert.equal(worked.pod, v2, 'the newest version is kept');
  assert.equal(info.requested.milliCPU, 1500, 'counted once');
  assert.match((snap.schedule(pod('big', { requests: { cpu: '1' } })) as { message: string }).message, /Insufficient cpu/);
  // A spec change (new requests) is worked out again.
  snap.updatePod({ ...v2, spec: { ...v2.spec!, containers: [{ name: 'c', resources: { requests: { cpu: '500m' } } }] } });
  assert.equal(info.requested.milliCPU, 500);
  assert.deepEqual(snap.schedule(pod('big', { requests: { cpu: '1' } })), { node: 'n1' });
  snap.removePod(v2);
  assert.equal(info.pods.size, 0);
  assert.equal(info.requested.milliCPU, 0);
});
