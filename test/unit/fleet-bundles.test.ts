// Bundle logic without a server: targeting (first match wins, all criteria, groups, doNotDeploy),
// per-cluster customization (substitution, patches through the API server's patch rules), content
// ids and chunking, workload readiness, and the staged rollout's partitions and health gate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { matchTargets, optionsFor, type ClusterInfo } from '../../src/fleet/targets.js';
import { parseResources, render, RenderError, type Patcher } from '../../src/fleet/customize.js';
import { contentConfigMaps, contentHash, deploymentId, unpackContent, CHUNK_BYTES } from '../../src/fleet/content.js';
import { planRollout, partition, scaled, type RolloutCluster } from '../../src/fleet/rollout.js';
import { podProblems, readiness } from '../../src/fleet/workloads.js';
import { fleetPatcher } from '../../src/server/fleet-patcher.js';
import { loadSchemaSet } from '../../src/api/schema.js';
import { bundleNameFor, normalizeRepoUrl, parseDuration, webhookRepos } from '../../src/fleet/gitrepo.js';

const clusters: ClusterInfo[] = [
  { name: 'a', labels: { region: 'eu', tier: 'edge' } },
  { name: 'b', labels: { region: 'eu' } },
  { name: 'c', labels: { region: 'us' } },
];
const groups = [{ name: 'edge', selector: { matchLabels: { tier: 'edge' } } }];

test('targets: first match wins, criteria AND, groups, doNotDeploy, empty target matches nothing', () => {
  const m = matchTargets([
    { name: 'edge', clusterGroup: 'edge', values: { v: 'edge' } },
    { name: 'eu', clusterSelector: { matchLabels: { region: 'eu' } }, values: { v: 'eu' } },
    { name: 'nothing' },
  ], clusters, groups);
  assert.deepEqual([...m.keys()].sort(), ['a', 'b']);
  assert.equal(m.get('a')!.target.name, 'edge');
  assert.equal(m.get('b')!.target.name, 'eu');
  const all = matchTargets([{ clusterName: 'c', doNotDeploy: true }, { clusterSelector: {} }], clusters, groups);
  assert.deepEqual([...all.keys()].sort(), ['a', 'b']);
  const both = matchTargets([{ clusterName: 'a', clusterSelector: { matchLabels: { region: 'us' } } }], clusters, groups);
  assert.equal(both.size, 0);
  assert.deepEqual(optionsFor({ defaultNamespace: 'x', values: { a: 1, b: 2 }, keepResources: true }, { values: { b: 3 } }),
    { defaultNamespace: 'x', values: { a: 1, b: 3 }, keepResources: true });
});

const patcher: Patcher = fleetPatcher(loadSchemaSet());
const opts = { clusterName: 'a', clusterLabels: { region: 'eu' }, values: { greeting: 'hello-${ .ClusterLabels.region }' } };
const cm = `apiVersion: v1
kind: ConfigMap
metadata: {name: site}
data:
  region: "\${ .ClusterLabels.region }"
  name: \${.ClusterName}
  greeting: \${ .Values.greeting }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: busybox}, {name: side, image: sidecar}]}
`;

test('customize: values substituted per cluster; strategic, merge and json patches per target', () => {
  const out = render([{ name: 'all.yaml', content: cm }, { name: 'README.md', content: 'not yaml: [' }], {
    ...opts,
    patches: [
      { kind: 'Deployment', name: 'web', patch: { spec: { template: { spec: { containers: [{ name: 'web', image: 'busybox:${ .ClusterLabels.region }' }] } } } } },
      { kind: 'ConfigMap', type: 'merge', patch: { data: { extra: 'x' } } },
      { kind: 'Deployment', type: 'json', patch: [{ op: 'replace', path: '/spec/replicas', value: 3 }] },
    ],
  }, patcher) as any[];
  assert.deepEqual(out[0].data, { region: 'eu', name: 'a', greeting: 'hello-eu', extra: 'x' });
  // strategic merge keeps the other container (merge key `name`), a merge patch would replace the list
  assert.deepEqual(out[1].spec.template.spec.containers.map((c: any) => c.image), ['busybox:eu', 'sidecar']);
  assert.equal(out[1].spec.replicas, 3);
  assert.throws(() => render([{ name: 'x.yaml', content: cm }], { clusterName: 'b', clusterLabels: {}, values: opts.values }, patcher),
    (e: Error) => e instanceof RenderError && /cluster "b" has no label "region"/.test(e.message));
  assert.throws(() => render([{ name: 'x.yaml', content: cm }], { ...opts, patches: [{ kind: 'Secret', patch: {} }] }, patcher), /matches no object of the bundle/);
  assert.throws(() => parseResources([{ name: 'bad.yaml', content: 'a: [1, 2\nb: }' }]), /bad\.yaml: invalid YAML/);
  assert.throws(() => parseResources([{ name: 'x.yaml', content: 'kind: ConfigMap' }]), /needs apiVersion, kind and metadata\.name/);
});

test('content: ids change with content or options; chunks round-trip past the chunk size', () => {
  const h = contentHash([{ name: 'a', content: 'x' }]);
  assert.notEqual(h, contentHash([{ name: 'a', content: 'y' }]));
  assert.equal(deploymentId(h, { b: 1, a: 2 }), deploymentId(h, { a: 2, b: 1 }));
  assert.notEqual(deploymentId(h, { a: 1 }), deploymentId(h, { a: 2 }));
  // Random (incompressible) content spans several chunks.
  const big = [{ name: 'big.yaml', content: randomBytes(700_000).toString('base64') }];
  const cms = contentConfigMaps('ns', contentHash(big), big);
  assert.ok(cms.length >= 2, `${cms.length} chunks`);
  for (const c of cms) assert.ok(Buffer.byteLength((c as any).binaryData.data) <= Math.ceil(CHUNK_BYTES / 3) * 4);
  assert.deepEqual(unpackContent(cms.reverse()), big);
  assert.equal(unpackContent(cms.slice(1)), undefined);
});

test('workload readiness: deployments, pods, jobs', () => {
  const dep = (status: any) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'w', namespace: 'd', generation: 2 }, spec: { replicas: 2 }, status });
  assert.equal(readiness(dep({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 })).ready, true);
  assert.equal(readiness(dep({ observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 })).ready, false);
  assert.equal(readiness(dep({ observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 })).message, 'deployment d/w: spec update not yet observed');
  // kubectl rollout status's order: new replicas updated, old ones gone, updated ones available.
  assert.equal(readiness(dep({ observedGeneration: 2, replicas: 3, updatedReplicas: 1, availableReplicas: 2 })).message, 'deployment d/w: 1 of 2 new replicas updated');
  assert.equal(readiness(dep({ observedGeneration: 2, replicas: 3, updatedReplicas: 2, availableReplicas: 3 })).message, 'deployment d/w: 1 old replicas pending termination');
  assert.equal(readiness(dep({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1 })).message, 'deployment d/w: 1 of 2 updated replicas available');
  // The old replicas' availability does not count for the new ones (a broken image behind a surge).
  assert.equal(readiness(dep({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1 })).ready, false);
  assert.match(readiness(dep({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }] })).message!, /exceeded its progress deadline/);
  assert.equal(readiness({ ...dep({ observedGeneration: 3, replicas: 0, updatedReplicas: 0, availableReplicas: 0 }), spec: { replicas: 0 } }).ready, true);
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'x:broken' }] }, status: { phase: 'Pending', containerStatuses: [{ name: 'c', state: { waiting: { reason: 'ImagePullBackOff' } } }] } };
  assert.equal(readiness(pod).message, 'pod p: ImagePullBackOff: x:broken');
  assert.equal(readiness({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }).ready, true);
});

test('workload readiness: a workload not Ready names its pods\' reasons (the paused rollout shows them)', () => {
  const dep = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop', generation: 2 }, spec: { replicas: 1 },
    status: { observedGeneration: 2, replicas: 2, updatedReplicas: 1, availableReplicas: 1 } };
  const pod = (name: string, status: any, extra: any = {}) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', ...extra }, spec: { containers: [{ name: 'web', image: 'reg/web:2' }] }, status });
  const pods = [
    pod('web-old', { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }),
    pod('web-new', { phase: 'Pending', containerStatuses: [{ name: 'web', image: 'reg/web:2', state: { waiting: { reason: 'ErrImagePull', message: 'dial tcp: refused' } } }] }),
    pod('web-gone', { phase: 'Pending', containerStatuses: [{ name: 'web', state: { waiting: { reason: 'ImagePullBackOff' } } }] }, { deletionTimestamp: '2026-12-05T00:00:00Z' }),
    pod('web-creating', { phase: 'Pending', containerStatuses: [{ name: 'web', state: { waiting: { reason: 'ContainerCreating' } } }] }),
  ];
  assert.equal(readiness(dep, pods).message, 'deployment shop/web: 1 old replicas pending termination (pod web-new: ErrImagePull: reg/web:2)');
  assert.deepEqual(podProblems([
    pod('crash', { phase: 'Running', containerStatuses: [{ name: 'web', state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1 } } }] }),
    pod('failed', { phase: 'Running', containerStatuses: [{ name: 'web', state: { terminated: { exitCode: 2, reason: 'Error' } } }] }),
    pod('pending', { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available' }] }),
  ]), ['pod crash: CrashLoopBackOff: reg/web:2', 'pod failed: Error (exit 2): web', 'pod pending: Unschedulable: 0/1 nodes are available']);
  // Ready workloads ignore their pods.
  assert.equal(readiness({ ...dep, status: { observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1 } }, pods).ready, true);
});

const rc = (name: string, o: Partial<RolloutCluster> = {}): RolloutCluster =>
  ({ name, labels: { n: name }, groups: [], online: true, desired: 'v2', deployed: 'v1', applied: 'v1', ready: true, ...o });

test('rollout: partitions by selector (rest last) or automatic size', () => {
  const cs = ['a', 'b', 'c', 'd', 'e'].map((n) => rc(n, { labels: { ring: n === 'a' ? 'canary' : n < 'd' ? 'early' : 'late' } }));
  const p = partition({ partitions: [{ name: 'canary', clusterSelector: { matchLabels: { ring: 'canary' } } }, { name: 'early', clusterSelector: { matchLabels: { ring: 'early' } } }] }, cs);
  assert.deepEqual(p.map((x) => [x.p.name, x.members.map((m) => m.name)]), [['canary', ['a']], ['early', ['b', 'c']], ['unpartitioned', ['d', 'e']]]);
  assert.deepEqual(partition({ autoPartitionSize: 2 }, cs).map((x) => x.members.length), [2, 2, 1]);
  assert.deepEqual(partition({}, cs).map((x) => x.members.length), [2, 2, 1]);   // 25 % of 5, rounded up
  assert.equal(scaled('50%', 5, 1), 3);
  assert.equal(scaled(undefined, 5, '100%'), 5);
});

test('rollout: a partition starts only when the previous one is applied and Ready; a failing one holds the rest', () => {
  const strategy = { partitions: [{ name: 'p1', clusterName: 'a' }, { name: 'p2', clusterSelector: { matchLabels: { n: 'b' } } }, { name: 'p3', clusterSelector: {} }] };
  let cs = ['a', 'b', 'c'].map((n) => rc(n));
  let plan = planRollout(strategy, cs);
  assert.deepEqual([...plan.release], ['a']);
  assert.deepEqual(plan.waiting, { partition: 'p1', clusters: ['a'], holding: 2 });
  // a took v2 but is not Ready (a broken image): still only a
  cs = cs.map((c) => (c.name === 'a' ? { ...c, deployed: 'v2', applied: 'v2', ready: false } : c));
  plan = planRollout(strategy, cs);
  assert.deepEqual([...plan.release], ['a']);
  assert.equal(plan.partitions[0]!.done, false);
  // fixed (v3 everywhere): a gets v3 first, then b when a is Ready on v3
  cs = cs.map((c) => ({ ...c, desired: 'v3' }));
  assert.deepEqual([...planRollout(strategy, cs).release], ['a']);
  cs = cs.map((c) => (c.name === 'a' ? { ...c, deployed: 'v3', applied: 'v3', ready: true } : c));
  plan = planRollout(strategy, cs);
  assert.deepEqual([...plan.release].sort(), ['a', 'b']);
  cs = cs.map((c) => (c.name === 'b' ? { ...c, deployed: 'v3', applied: 'v3', ready: true } : c));
  plan = planRollout(strategy, cs);
  assert.deepEqual([...plan.release].sort(), ['a', 'b', 'c']);
  assert.deepEqual(plan.waiting, { partition: 'p3', clusters: ['c'], holding: 0 }, 'the last partition holds nobody back');
  // A first deployment releases everyone at once: the first partition not yet Ready holds nobody.
  const first = planRollout(strategy, ['a', 'b', 'c'].map((n) => rc(n, { deployed: undefined, applied: undefined, ready: undefined })));
  assert.equal(first.release.size, 3);
  assert.deepEqual(first.waiting, { partition: 'p1', clusters: ['a'], holding: 0 });
  // No strategy: everyone at once. A cluster with no version yet: at once too.
  assert.equal(planRollout(undefined, ['a', 'b'].map((n) => rc(n))).release.size, 2);
  assert.ok(planRollout(strategy, [rc('a'), rc('c', { deployed: undefined })]).release.has('c'));
});

test('rollout: maxUnavailable bounds updates at once within a partition', () => {
  const cs = ['a', 'b', 'c', 'd'].map((n) => rc(n));
  assert.equal(planRollout({ autoPartitionSize: 4, maxUnavailable: 1 }, cs).release.size, 1);
  assert.equal(planRollout({ autoPartitionSize: 4, maxUnavailable: '50%' }, cs).release.size, 2);
  // one already updating uses the budget
  const busy = cs.map((c) => (c.name === 'a' ? { ...c, deployed: 'v2', applied: 'v1', ready: false } : c));
  assert.deepEqual([...planRollout({ autoPartitionSize: 4, maxUnavailable: 2 }, busy).release].sort(), ['a', 'b']);
});

test('rollout: offline clusters are skipped (released for their return) or counted as unavailable', () => {
  const strategy = { partitions: [{ name: 'p1', clusterSelector: { matchExpressions: [{ key: 'n', operator: 'In', values: ['a', 'b'] }] } }, { name: 'p2', clusterName: 'c' }] };
  const cs = [rc('a', { deployed: 'v2', applied: 'v2' }), rc('b', { online: false }), rc('c')];
  const skip = planRollout(strategy, cs);
  assert.deepEqual([...skip.release].sort(), ['a', 'b', 'c'], 'b is released (it takes v2 on return) and does not hold p1');
  const count = planRollout({ ...strategy, offlineClusters: 'CountUnavailable' as const }, cs);
  assert.deepEqual([...count.release].sort(), ['a', 'c'], 'b uses p1\'s budget (maxUnavailable 100% of 2) and p1 passes');
  const strict = planRollout({ ...strategy, maxUnavailable: 0, offlineClusters: 'CountUnavailable' as const }, [rc('a', { deployed: 'v2', applied: 'v2' }), rc('b', { online: false }), rc('d', { online: false, labels: { n: 'a' } }), rc('c')]);
  assert.equal(strict.waiting?.partition, 'p1');
  assert.equal(strict.waiting?.holding, 1, 'c waits');
  assert.deepEqual(strict.waiting?.clusters.sort(), ['b', 'd']);
});

test('gitrepo: polling intervals, bundle names, webhook payloads', () => {
  assert.equal(parseDuration('15s'), 15_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('15'), undefined);
  assert.equal(parseDuration('soon'), undefined);
  assert.equal(bundleNameFor('shops', '/'), 'shops');
  assert.equal(bundleNameFor('shops', 'apps/Web_1/'), 'shops-apps-web-1');
  assert.ok(bundleNameFor('r', 'x'.repeat(100)).length <= 63);
  assert.deepEqual(webhookRepos({ repository: { clone_url: 'https://h/o/r.git', html_url: 'https://h/o/r' } }), ['https://h/o/r.git', 'https://h/o/r']);
  assert.deepEqual(webhookRepos({ project: { git_http_url: 'https://gl/o/r.git' } }), ['https://gl/o/r.git']);
  assert.deepEqual(webhookRepos('nonsense'), []);
  assert.equal(normalizeRepoUrl('https://H/o/r.git/'), normalizeRepoUrl('https://h/o/r'));
});

test('strategic merge on a custom resource is refused, as the API server refuses it', () => {
  assert.throws(() => render([{ name: 'x.yaml', content: 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {a: 1}\n' }],
    { ...opts, patches: [{ kind: 'Widget', patch: { spec: { a: 2 } } }] }, patcher), /strategic merge patch is not supported for Widget; use type: merge or json/);
  const [w] = render([{ name: 'x.yaml', content: 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {a: 1}\n' }],
    { ...opts, patches: [{ kind: 'Widget', type: 'merge', patch: { spec: { a: 2 } } }] }, patcher) as any[];
  assert.equal(w.spec.a, 2);
});
