// One table per filter: which nodes a pod may land on, or the exact FailedScheduling message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { schedulePod } from '../../src/controllers/scheduler/schedule.js';
import type { Node, Pod, PodAffinityTerm, ScheduleOptions } from '../../src/controllers/scheduler/types.js';
import { byNode, node, placed, pod } from './scheduler-objects.js';

interface Case {
  name: string;
  nodes: Node[];
  existing?: Pod[];
  pod: Pod;
  /** The nodes the pod may land on, or the exact failure message. */
  want: string[] | string;
  opts?: ScheduleOptions;
}

function run(cases: Case[]): void {
  for (const c of cases) {
    const r = schedulePod(c.pod, c.nodes, byNode(c.existing ?? []), c.opts);
    if (typeof c.want === 'string') {
      assert.deepEqual(r, { node: undefined, message: c.want }, c.name);
    } else {
      assert.ok(r.node !== undefined && c.want.includes(r.node), `${c.name}: got ${JSON.stringify(r)}`);
    }
  }
}

const NOT_HELPFUL = (n: number) => `preemption: 0/${n} nodes are available: ${n} Preemption is not helpful for scheduling.`;
const NO_VICTIMS = (n: number) => `preemption: 0/${n} nodes are available: ${n} No preemption victims found for incoming pod.`;
const ARCH = 'kubernetes.io/arch';
const ZONE = 'topology.kubernetes.io/zone';
const archNodes = () => [node('a', { labels: { [ARCH]: 'arm', size: '2' } }), node('b', { labels: { [ARCH]: 'arm64', size: '8' } }), node('c', { labels: { size: 'x' } })];
const required = (...terms: object[]) => ({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } });
const expr = (key: string, operator: string, values?: string[]) => ({ matchExpressions: [{ key, operator, ...(values ? { values } : {}) }] });
const AFFINITY_MISS = (k: number, n: number) => `0/${n} nodes are available: ${k} node(s) didn't match Pod's node affinity/selector. ${NOT_HELPFUL(n)}`;

test('nodeSelector and required node affinity operators', () => {
  run([
    { name: 'nodeSelector', nodes: archNodes(), pod: pod('p', { nodeSelector: { [ARCH]: 'arm64' } }), want: ['b'] },
    { name: 'nodeSelector misses', nodes: archNodes(), pod: pod('p', { nodeSelector: { [ARCH]: 'x86' } }), want: AFFINITY_MISS(3, 3) },
    { name: 'In', nodes: archNodes(), pod: pod('p', { affinity: required(expr(ARCH, 'In', ['arm64', 'amd64'])) }), want: ['b'] },
    { name: 'NotIn matches nodes without the label', nodes: archNodes(), pod: pod('p', { affinity: required(expr(ARCH, 'NotIn', ['arm', 'arm64'])) }), want: ['c'] },
    { name: 'Exists', nodes: archNodes(), pod: pod('p', { affinity: required(expr(ARCH, 'Exists')) }), want: ['a', 'b'] },
    { name: 'DoesNotExist', nodes: archNodes(), pod: pod('p', { affinity: required(expr(ARCH, 'DoesNotExist')) }), want: ['c'] },
    { name: 'Gt compares integers, non-integers never match', nodes: archNodes(), pod: pod('p', { affinity: required(expr('size', 'Gt', ['4'])) }), want: ['b'] },
    { name: 'Lt', nodes: archNodes(), pod: pod('p', { affinity: required(expr('size', 'Lt', ['4'])) }), want: ['a'] },
    { name: 'terms are ORed', nodes: archNodes(), pod: pod('p', { affinity: required(expr(ARCH, 'In', ['arm']), expr('size', 'In', ['x'])) }), want: ['a', 'c'] },
    { name: 'expressions in a term are ANDed', nodes: archNodes(), pod: pod('p', { affinity: required({ matchExpressions: [{ key: ARCH, operator: 'Exists' }, { key: 'size', operator: 'Gt', values: ['4'] }] }) }), want: ['b'] },
    { name: 'an empty term matches nothing', nodes: archNodes(), pod: pod('p', { affinity: required({}) }), want: AFFINITY_MISS(3, 3) },
    { name: 'nodeSelector and affinity both apply', nodes: archNodes(), pod: pod('p', { nodeSelector: { size: '2' }, affinity: required(expr(ARCH, 'In', ['arm64'])) }), want: AFFINITY_MISS(3, 3) },
    { name: 'matchFields NotIn', nodes: archNodes(), pod: pod('p', { affinity: required({ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['a', 'b'] }] }) }), want: ['c'] },
    { name: 'matchFields In narrows the search', nodes: archNodes(), pod: pod('p', { affinity: required({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['b', 'gone'] }] }) }), want: ['b'] },
    {
      name: 'nodes outside a metadata.name pin are reported as skipped by the plugin',
      nodes: archNodes(),
      pod: pod('p', { affinity: required({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['a'] }], matchExpressions: [{ key: ARCH, operator: 'In', values: ['arm64'] }] }) }),
      want: `0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. ${NOT_HELPFUL(3)}`,
    },
    {
      name: 'contradictory metadata.name pins fail before filtering',
      nodes: archNodes(),
      pod: pod('p', { affinity: required({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['a'] }, { key: 'metadata.name', operator: 'In', values: ['b'] }] }) }),
      want: `0/3 nodes are available: pod affinity terms conflict. ${NOT_HELPFUL(3)}`,
    },
  ]);
});

test('taints and tolerations', () => {
  const tainted = (effect: string, value?: string) => [node('t', { taints: [{ key: 'dedicated', ...(value ? { value } : {}), effect }] })];
  const msg = (value = '') => `0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: ${value}}. ${NOT_HELPFUL(1)}`;
  run([
    { name: 'NoSchedule', nodes: tainted('NoSchedule', 'gpu'), pod: pod('p'), want: msg('gpu') },
    { name: 'NoExecute', nodes: tainted('NoExecute'), pod: pod('p'), want: msg() },
    { name: 'PreferNoSchedule only scores', nodes: tainted('PreferNoSchedule'), pod: pod('p'), want: ['t'] },
    { name: 'Equal with the value', nodes: tainted('NoSchedule', 'gpu'), pod: pod('p', { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }] }), want: ['t'] },
    { name: 'Equal is the default operator', nodes: tainted('NoSchedule', 'gpu'), pod: pod('p', { tolerations: [{ key: 'dedicated', value: 'gpu' }] }), want: ['t'] },
    { name: 'Equal with another value', nodes: tainted('NoSchedule', 'gpu'), pod: pod('p', { tolerations: [{ key: 'dedicated', value: 'cpu' }] }), want: msg('gpu') },
    { name: 'Exists ignores the value', nodes: tainted('NoExecute', 'gpu'), pod: pod('p', { tolerations: [{ key: 'dedicated', operator: 'Exists' }] }), want: ['t'] },
    { name: 'wrong effect', nodes: tainted('NoExecute'), pod: pod('p', { tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }] }), want: msg() },
    { name: 'empty key with Exists tolerates everything', nodes: tainted('NoSchedule', 'gpu'), pod: pod('p', { tolerations: [{ operator: 'Exists' }] }), want: ['t'] },
    {
      name: 'the first untolerated taint is the one named',
      nodes: [node('t', { taints: [{ key: 'a', value: '1', effect: 'NoSchedule' }, { key: 'b', effect: 'NoSchedule' }] })],
      pod: pod('p', { tolerations: [{ key: 'a', operator: 'Exists' }] }),
      want: `0/1 nodes are available: 1 node(s) had untolerated taint {b: }. ${NOT_HELPFUL(1)}`,
    },
  ]);
});

test('cordoned and not-ready nodes', () => {
  const DEFAULT_TOLERATIONS = [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  ];
  run([
    { name: 'unschedulable', nodes: [node('n', { unschedulable: true })], pod: pod('p'), want: `0/1 nodes are available: 1 node(s) were unschedulable. ${NOT_HELPFUL(1)}` },
    {
      name: 'unschedulable tolerated',
      nodes: [node('n', { unschedulable: true })],
      pod: pod('p', { tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }] }),
      want: ['n'],
    },
    { name: 'Ready=False', nodes: [node('n', { ready: 'False' })], pod: pod('p', { tolerations: DEFAULT_TOLERATIONS }), want: `0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. ${NOT_HELPFUL(1)}` },
    { name: 'Ready=Unknown', nodes: [node('n', { ready: 'Unknown' })], pod: pod('p'), want: `0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. ${NOT_HELPFUL(1)}` },
    { name: 'no Ready condition yet', nodes: [node('n', { ready: null })], pod: pod('p'), want: `0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. ${NOT_HELPFUL(1)}` },
    {
      name: 'not-ready tolerated (as DaemonSets do)',
      nodes: [node('n', { ready: 'False' })],
      pod: pod('p', { tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoSchedule' }] }),
      want: ['n'],
    },
    { name: 'ready nodes are preferred to none', nodes: [node('n', { ready: 'False' }), node('m')], pod: pod('p'), want: ['m'] },
  ]);
});

test('resources: requests against allocatable minus what is already requested', () => {
  const small = () => [node('s1', { allocatable: { cpu: '1', memory: '1Gi', pods: '2' } }), node('s2', { allocatable: { cpu: '2', memory: '1Gi', pods: '2' } })];
  const busy = [placed('x', 's1', { requests: { cpu: '600m', memory: '512Mi' } }), placed('y', 's2', { requests: { cpu: '1500m' } })];
  run([
    { name: 'fits on the one with room', nodes: small(), existing: busy, pod: pod('p', { requests: { cpu: '500m' } }), want: ['s2'] },
    { name: 'Insufficient cpu', nodes: small(), existing: busy, pod: pod('p', { requests: { cpu: '800m' } }), want: `0/2 nodes are available: 2 Insufficient cpu. ${NO_VICTIMS(2)}` },
    {
      name: 'several reasons from one node all count',
      nodes: small(), existing: busy, pod: pod('p', { requests: { cpu: '800m', memory: '768Mi' } }),
      want: `0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu. ${NO_VICTIMS(2)}`,
    },
    { name: 'a node too small is skipped', nodes: small(), pod: pod('p', { requests: { cpu: '1500m' } }), want: ['s2'] },
    {
      name: 'more than a whole node: preemption cannot help',
      nodes: small(), pod: pod('p', { requests: { cpu: '3' } }),
      want: `0/2 nodes are available: 2 Insufficient cpu. ${NOT_HELPFUL(2)}`,
    },
    {
      name: 'ephemeral-storage and extended resources',
      nodes: [node('g', { allocatable: { 'nvidia.com/gpu': '1' } }), node('h')],
      pod: pod('p', { requests: { 'nvidia.com/gpu': '1', 'ephemeral-storage': '60Gi' } }),
      want: `0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 2 Insufficient ephemeral-storage. ${NOT_HELPFUL(2)}`,
    },
    { name: 'extended resource available', nodes: [node('g', { allocatable: { 'nvidia.com/gpu': '1' } }), node('h')], pod: pod('p', { requests: { 'nvidia.com/gpu': '1' } }), want: ['g'] },
    {
      name: 'pod count', nodes: small(), existing: [...busy, placed('z1', 's1'), placed('z2', 's2')], pod: pod('p'),
      want: `0/2 nodes are available: 2 Too many pods. ${NO_VICTIMS(2)}`,
    },
    {
      name: 'a node without allocatable pods takes none',
      nodes: [{ metadata: { name: 'bare' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } }], pod: pod('p'),
      want: `0/1 nodes are available: 1 Too many pods. ${NO_VICTIMS(1)}`,
    },
    {
      name: 'init containers count at their peak',
      nodes: small(), pod: pod('p', { initContainers: [{ resources: { requests: { cpu: '1500m' } } }] }), want: ['s2'],
    },
    {
      name: 'overhead counts',
      nodes: [node('o', { allocatable: { cpu: '1' } })], pod: pod('p', { requests: { cpu: '950m' }, overhead: { cpu: '100m' } }),
      want: `0/1 nodes are available: 1 Insufficient cpu. ${NOT_HELPFUL(1)}`,
    },
  ]);
});

test('preemption wording follows priorities and preemptionPolicy', () => {
  const nodes = [node('n', { allocatable: { cpu: '1' } })];
  const low = [placed('low', 'n', { requests: { cpu: '800m' }, priority: 0 })];
  // A lower-priority pod whose eviction would make room: Kubernetes would preempt and add no verdict.
  run([
    { name: 'victims would help', nodes, existing: low, pod: pod('p', { requests: { cpu: '500m' }, priority: 1000 }), want: '0/1 nodes are available: 1 Insufficient cpu.' },
    { name: 'same priority', nodes, existing: low, pod: pod('p', { requests: { cpu: '500m' } }), want: `0/1 nodes are available: 1 Insufficient cpu. ${NO_VICTIMS(1)}` },
    {
      name: 'preemptionPolicy Never', nodes, existing: low, pod: pod('p', { requests: { cpu: '500m' }, priority: 1000, preemptionPolicy: 'Never' }),
      want: '0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.',
    },
    { name: 'no nodes at all', nodes: [], pod: pod('p'), want: 'no nodes available to schedule pods' },
  ]);
});

test('host ports conflict on port, protocol and overlapping host IP', () => {
  const port = (hostPort: number, protocol?: string, hostIP?: string) => [{ name: 'c', ports: [{ containerPort: 80, hostPort, ...(protocol ? { protocol } : {}), ...(hostIP ? { hostIP } : {}) }] }];
  const nodes = () => [node('n')];
  const CONFLICT = `0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. ${NO_VICTIMS(1)}`;
  const using = (containers: ReturnType<typeof port>) => [placed('x', 'n', { containers })];
  run([
    { name: 'same port', nodes: nodes(), existing: using(port(80)), pod: pod('p', { containers: port(80) }), want: CONFLICT },
    { name: 'other protocol', nodes: nodes(), existing: using(port(80)), pod: pod('p', { containers: port(80, 'UDP') }), want: ['n'] },
    { name: 'other port', nodes: nodes(), existing: using(port(80)), pod: pod('p', { containers: port(81) }), want: ['n'] },
    { name: 'distinct IPs', nodes: nodes(), existing: using(port(80, 'TCP', '10.0.0.1')), pod: pod('p', { containers: port(80, 'TCP', '10.0.0.2') }), want: ['n'] },
    { name: 'wildcard vs IP', nodes: nodes(), existing: using(port(80, 'TCP', '10.0.0.1')), pod: pod('p', { containers: port(80) }), want: CONFLICT },
    { name: 'IP vs wildcard', nodes: nodes(), existing: using(port(80)), pod: pod('p', { containers: port(80, 'TCP', '10.0.0.1') }), want: CONFLICT },
    { name: 'containerPort alone takes no host port', nodes: nodes(), existing: using(port(0)), pod: pod('p', { containers: port(0) }), want: ['n'] },
  ]);
});

test('inter-pod affinity and anti-affinity, both directions, across namespaces', () => {
  const zoned = () => [
    node('a1', { labels: { [ZONE]: 'a' } }), node('a2', { labels: { [ZONE]: 'a' } }),
    node('b1', { labels: { [ZONE]: 'b' } }), node('x', {}),
  ];
  const term = (labels: Record<string, string>, topologyKey: string, extra: Partial<PodAffinityTerm> = {}): PodAffinityTerm => ({ labelSelector: { matchLabels: labels }, topologyKey, ...extra });
  const podAffinity = (...terms: PodAffinityTerm[]) => ({ podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: terms } });
  const podAnti = (...terms: PodAffinityTerm[]) => ({ podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: terms } });
  const db = [placed('db', 'a1', { labels: { app: 'db' } })];
  const HOST = 'kubernetes.io/hostname';
  run([
    { name: 'affinity to a zone holding a match', nodes: zoned(), existing: db, pod: pod('p', { affinity: podAffinity(term({ app: 'db' }, ZONE)) }), want: ['a1', 'a2'] },
    {
      name: 'no match anywhere',
      nodes: zoned(), pod: pod('p', { affinity: podAffinity(term({ app: 'db' }, ZONE)) }),
      want: `0/4 nodes are available: 4 node(s) didn't match pod affinity rules. ${NOT_HELPFUL(4)}`,
    },
    {
      name: 'the first of a self-affine group goes wherever the topology key exists',
      nodes: zoned(), pod: pod('p', { labels: { app: 'db' }, affinity: podAffinity(term({ app: 'db' }, ZONE)) }), want: ['a1', 'a2', 'b1'],
    },
    { name: 'anti-affinity by zone', nodes: zoned(), existing: db, pod: pod('p', { affinity: podAnti(term({ app: 'db' }, ZONE)) }), want: ['b1', 'x'] },
    { name: 'anti-affinity by hostname', nodes: zoned(), existing: db, pod: pod('p', { affinity: podAnti(term({ app: 'db' }, HOST)) }), want: ['a2', 'b1', 'x'] },
    {
      name: 'existing pods\' anti-affinity refuses the incoming pod (symmetry)',
      nodes: zoned(), existing: [placed('guard', 'b1', { affinity: podAnti(term({ app: 'web' }, ZONE)) })],
      pod: pod('p', { labels: { app: 'web' }, nodeSelector: { [ZONE]: 'b' } }),
      want: `0/4 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules, 3 node(s) didn't match Pod's node affinity/selector. `
        + 'preemption: 0/4 nodes are available: 1 No preemption victims found for incoming pod, 3 Preemption is not helpful for scheduling.',
    },
    {
      name: 'terms look in the pod\'s own namespace by default',
      nodes: zoned(), existing: [placed('db', 'a1', { namespace: 'other', labels: { app: 'db' } })],
      pod: pod('p', { affinity: podAnti(term({ app: 'db' }, HOST)), nodeSelector: { [ZONE]: 'a' } }), want: ['a1', 'a2'],
    },
    {
      name: 'namespaces list',
      nodes: zoned(), existing: [placed('db', 'a1', { namespace: 'other', labels: { app: 'db' } })],
      pod: pod('p', { affinity: podAnti(term({ app: 'db' }, HOST, { namespaces: ['other'] })), nodeSelector: { [ZONE]: 'a' } }), want: ['a2'],
    },
    {
      name: 'namespaceSelector reads namespace labels',
      nodes: zoned(), existing: [placed('db1', 'a1', { namespace: 'team-a', labels: { app: 'db' } }), placed('db2', 'a2', { namespace: 'team-b', labels: { app: 'db' } })],
      pod: pod('p', { affinity: podAnti(term({ app: 'db' }, HOST, { namespaceSelector: { matchLabels: { team: 'a' } } })), nodeSelector: { [ZONE]: 'a' } }),
      opts: { namespaces: (ns) => (ns === 'team-a' ? { team: 'a' } : { team: 'b' }) },
      want: ['a2'],
    },
    {
      name: 'an empty namespaceSelector means all namespaces',
      nodes: zoned(), existing: [placed('db1', 'a1', { namespace: 'team-a', labels: { app: 'db' } }), placed('db2', 'a2', { namespace: 'team-b', labels: { app: 'db' } })],
      pod: pod('p', { affinity: podAnti(term({ app: 'db' }, HOST, { namespaceSelector: {} })), nodeSelector: { [ZONE]: 'a' } }),
      want: `0/4 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, 2 node(s) didn't match pod anti-affinity rules. `
        + 'preemption: 0/4 nodes are available: 2 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.',
    },
    {
      name: 'expression selectors (one value and several)',
      nodes: zoned(), existing: [...db, placed('cache', 'a2', { labels: { app: 'cache' } })],
      pod: pod('p', { affinity: podAnti({ labelSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] }, topologyKey: HOST }, { labelSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['cache', 'queue'] }] }, topologyKey: HOST }) }),
      want: ['b1', 'x'],
    },
    {
      name: 'a term without labelSelector matches no pod',
      nodes: zoned(), existing: db, pod: pod('p', { affinity: podAnti({ topologyKey: ZONE }) }), want: ['a1', 'a2', 'b1', 'x'],
    },
    {
      name: 'matchLabelKeys narrows the selector to the pod\'s own value',
      nodes: zoned(), existing: [placed('v1', 'a1', { labels: { app: 'web', rev: '1' } })],
      pod: pod('p', { labels: { app: 'web', rev: '2' }, affinity: podAnti(term({ app: 'web' }, HOST, { matchLabelKeys: ['rev'] })), nodeSelector: { [ZONE]: 'a' } }),
      want: ['a1', 'a2'],
    },
  ]);
});

test('topology spread constraints (DoNotSchedule)', () => {
  const zoned = () => [
    node('a1', { labels: { [ZONE]: 'a' } }), node('a2', { labels: { [ZONE]: 'a' } }),
    node('b1', { labels: { [ZONE]: 'b' } }), node('x'),
  ];
  const spread = (maxSkew: number, extra: object = {}) => [{ maxSkew, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'web' } }, ...extra }];
  const web = (name: string, on: string) => placed(name, on, { labels: { app: 'web' } });
  run([
    { name: 'goes to the emptier zone', nodes: zoned(), existing: [web('w1', 'a1')], pod: pod('p', { labels: { app: 'web' }, topologySpreadConstraints: spread(1) }), want: ['b1'] },
    { name: 'within skew', nodes: zoned(), existing: [web('w1', 'a1'), web('w2', 'b1')], pod: pod('p', { labels: { app: 'web' }, topologySpreadConstraints: spread(1) }), want: ['a1', 'a2', 'b1'] },
    {
      name: 'minDomains above the domain count makes the global minimum 0',
      nodes: zoned(), existing: [web('w1', 'a1'), web('w2', 'b1')],
      pod: pod('p', { labels: { app: 'web' }, topologySpreadConstraints: spread(1, { minDomains: 3 }) }),
      want: `0/4 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label), 3 node(s) didn't match pod topology spread constraints. `
        + 'preemption: 0/4 nodes are available: 1 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod.',
    },
    {
      name: 'pods in other namespaces and terminating pods do not count',
      nodes: zoned(),
      existing: [placed('o', 'a1', { namespace: 'other', labels: { app: 'web' } }), { ...web('t', 'a2'), metadata: { ...web('t', 'a2').metadata, deletionTimestamp: '2024-01-01T00:00:00Z' } }],
      pod: pod('p', { labels: { app: 'web' }, topologySpreadConstraints: spread(1) }), want: ['a1', 'a2', 'b1'],
    },
    {
      name: 'nodes excluded by the pod\'s node affinity do not form domains',
      nodes: zoned(), existing: [web('w1', 'a1')],
      pod: pod('p', { labels: { app: 'web' }, nodeSelector: { [ZONE]: 'a' }, topologySpreadConstraints: spread(1) }), want: ['a1', 'a2'],
    },
  ]);
});
