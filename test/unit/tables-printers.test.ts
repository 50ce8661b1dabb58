import { test } from 'node:test';
import assert from 'node:assert/strict';
import { customResourceTable, humanDuration, tableColumns, tableRow } from '../../src/apiserver/tables.js';

const NOW = Date.parse('2025-01-10T12:00:00Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();
const meta = (name: string, ageSeconds = 300, extra: Record<string, unknown> = {}) =>
  ({ name, namespace: 'default', creationTimestamp: ago(ageSeconds), ...extra });

test('ages read like kubectl (duration.HumanDuration)', () => {
  const cases: [number, string][] = [
    [-5, '<invalid>'], [-1, '0s'], [0, '0s'], [5, '5s'], [119, '119s'], [120, '2m'], [182, '3m2s'], [600, '10m'],
    [179 * 60, '179m'], [3 * 3600, '3h'], [4 * 3600 + 300, '4h5m'], [20 * 3600, '20h'], [47 * 3600, '47h'],
    [51 * 3600, '2d3h'], [3 * 86400, '3d'], [45 * 86400, '45d'], [800 * 86400, '2y70d'], [730 * 86400, '2y'], [9 * 365 * 86400, '9y'],
  ];
  for (const [s, want] of cases) assert.equal(humanDuration(s * 1000), want, `${s}s`);
});

test('pod columns and the wide ones', () => {
  const cols = tableColumns('', 'pods');
  assert.deepEqual(cols.map((c) => [c.name, c.priority]), [
    ['Name', 0], ['Ready', 0], ['Status', 0], ['Restarts', 0], ['Age', 0],
    ['IP', 1], ['Node', 1], ['Nominated Node', 1], ['Readiness Gates', 1],
  ]);
  assert.equal(cols[0].format, 'name');
  assert.match(cols[0].description, /Name must be unique/);
});

const container = (name: string, state: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  ({ name, ready: false, restartCount: 0, state, ...extra });

test('pod STATUS, READY and RESTARTS follow kubectl', () => {
  const pod = (status: Record<string, unknown>, spec: Record<string, unknown> = {}, m: Record<string, unknown> = {}) => tableRow('', 'pods', {
    metadata: meta('p', 60, m), spec: { containers: [{ name: 'a' }], nodeName: 'n1', ...spec }, status,
  }, NOW);
  assert.deepEqual(pod({ phase: 'Pending' }), ['p', '0/1', 'Pending', '0', '60s', '<none>', 'n1', '<none>', '<none>']);
  assert.equal(pod({ phase: 'Pending', containerStatuses: [container('a', { waiting: { reason: 'ContainerCreating' } })] })[2], 'ContainerCreating');
  const running = pod({
    phase: 'Running', podIPs: [{ ip: '10.42.0.5' }],
    containerStatuses: [container('a', { running: { startedAt: ago(30) } }, {
      ready: true, restartCount: 3, lastState: { terminated: { exitCode: 1, finishedAt: ago(12) } },
    })],
  });
  assert.deepEqual(running.slice(0, 6), ['p', '1/1', 'Running', '3 (12s ago)', '60s', '10.42.0.5']);
  assert.equal(pod({ phase: 'Running', containerStatuses: [container('a', { waiting: { reason: 'CrashLoopBackOff' } }, { restartCount: 5 })] })[2], 'CrashLoopBackOff');
  assert.equal(pod({ phase: 'Succeeded', containerStatuses: [container('a', { terminated: { exitCode: 0, reason: 'Completed' } })] })[2], 'Completed');
  assert.equal(pod({ phase: 'Running', containerStatuses: [container('a', { terminated: { exitCode: 137 } })] })[2], 'ExitCode:137');
  assert.equal(pod({ phase: 'Running', containerStatuses: [container('a', { running: {} }, { ready: true })] }, {}, { deletionTimestamp: ago(1) })[2], 'Terminating');
  assert.equal(pod({ phase: 'Pending', initContainerStatuses: [container('i', { waiting: { reason: 'PodInitializing' } })] },
    { initContainers: [{ name: 'i' }] })[2], 'Init:0/1');
  assert.equal(pod({ phase: 'Pending', initContainerStatuses: [container('i', { terminated: { exitCode: 2, reason: 'Error' } })] },
    { initContainers: [{ name: 'i' }] })[2], 'Init:Error');
  assert.equal(pod({ phase: 'Running', conditions: [{ type: 'gate', status: 'True' }] }, { readinessGates: [{ conditionType: 'gate' }, { conditionType: 'g2' }] })[8], '1/2');
});

test('nodes: status, roles, wide columns', () => {
  const node = (labels: Record<string, string>, ready: string, unschedulable = false) => tableRow('', 'nodes', {
    metadata: meta('n1', 3 * 86400, { labels }), spec: { unschedulable },
    status: {
      conditions: [{ type: 'Ready', status: ready }], addresses: [{ type: 'InternalIP', address: '192.168.1.10' }],
      nodeInfo: { kubeletVersion: 'v1.32.0+skiff', osImage: 'Debian GNU/Linux 12', kernelVersion: '6.1.0', containerRuntimeVersion: 'containerd://1.6.20' },
    },
  }, NOW);
  assert.deepEqual(node({ 'node-role.kubernetes.io/control-plane': 'true', 'node-role.kubernetes.io/master': 'true' }, 'True'), [
    'n1', 'Ready', 'control-plane,master', '3d', 'v1.32.0+skiff', '192.168.1.10', '<none>', 'Debian GNU/Linux 12', '6.1.0', 'containerd://1.6.20',
  ]);
  assert.deepEqual(node({}, 'False', true).slice(1, 3), ['NotReady,SchedulingDisabled', '<none>']);
  assert.deepEqual(tableColumns('', 'nodes').map((c) => c.name), ['Name', 'Status', 'Roles', 'Age', 'Version', 'Internal-IP', 'External-IP', 'OS-Image', 'Kernel-Version', 'Container-Runtime']);
});

test('services, deployments, jobs, configmaps, secrets, events', () => {
  const svc = (spec: Record<string, unknown>, status = {}) => tableRow('', 'services', { metadata: meta('s'), spec, status }, NOW);
  assert.deepEqual(svc({ type: 'ClusterIP', clusterIPs: ['10.43.0.10'], ports: [{ port: 80, protocol: 'TCP' }], selector: { app: 'web' } }),
    ['s', 'ClusterIP', '10.43.0.10', '<none>', '80/TCP', '5m', 'app=web']);
  assert.equal(svc({ type: 'NodePort', clusterIPs: ['10.43.0.11'], ports: [{ port: 80, nodePort: 30123, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }] })[4], '80:30123/TCP,53/UDP');
  assert.equal(svc({ type: 'LoadBalancer', ports: [] })[3], '<pending>');
  assert.equal(svc({ type: 'LoadBalancer', ports: [] }, { loadBalancer: { ingress: [{ ip: '192.168.1.10' }] } })[3], '192.168.1.10');

  assert.deepEqual(tableRow('apps', 'deployments', {
    metadata: meta('web'), spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { spec: { containers: [{ name: 'nginx', image: 'nginx:1' }] } } },
    status: { readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 },
  }, NOW), ['web', '2/3', 3, 2, '5m', 'nginx', 'nginx:1', 'app=web']);

  assert.deepEqual(tableRow('batch', 'jobs', {
    metadata: meta('j'), spec: { completions: 1, template: { spec: { containers: [] } }, selector: { matchLabels: { a: 'b' } } },
    status: { succeeded: 1, startTime: ago(100), completionTime: ago(40), conditions: [{ type: 'Complete', status: 'True' }] },
  }, NOW).slice(0, 5), ['j', 'Complete', '1/1', '60s', '5m']);

  assert.deepEqual(tableRow('', 'configmaps', { metadata: meta('c'), data: { a: '1', b: '2' }, binaryData: { c: '' } }, NOW), ['c', 3, '5m']);
  assert.deepEqual(tableRow('', 'secrets', { metadata: meta('s'), type: 'Opaque', data: { a: '' } }, NOW), ['s', 'Opaque', 1, '5m']);
  assert.deepEqual(tableRow('', 'events', {
    metadata: meta('p.1'), involvedObject: { kind: 'Pod', name: 'p' }, reason: 'Scheduled', type: 'Normal',
    message: 'Successfully assigned default/p to n1 ', source: { component: 'default-scheduler' }, firstTimestamp: ago(50), lastTimestamp: ago(20), count: 2,
  }, NOW), ['20s', 'Normal', 'Scheduled', 'pod/p', '', 'default-scheduler', 'Successfully assigned default/p to n1', '50s', 2, 'p.1']);
  assert.deepEqual(tableColumns('', 'events').filter((c) => !c.priority).map((c) => c.name), ['Last Seen', 'Type', 'Reason', 'Object', 'Message']);
});

test('kinds without a printer get NAME and CREATED AT', () => {
  assert.deepEqual(tableColumns('rbac.authorization.k8s.io', 'clusterroles').map((c) => [c.name, c.type]), [['Name', 'string'], ['Created At', 'date']]);
  assert.deepEqual(tableRow('rbac.authorization.k8s.io', 'clusterroles', { metadata: { name: 'admin', creationTimestamp: '2025-01-01T10:00:00.123Z' } }, NOW),
    ['admin', '2025-01-01T10:00:00Z']);
});

test('custom resources: printer columns by JSONPath, AGE by default', () => {
  const t = customResourceTable([
    { name: 'Spec', type: 'string', jsonPath: '.spec.cronSpec' },
    { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas', priority: 1 },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'Label', type: 'string', jsonPath: ".metadata.labels['app\\.kubernetes\\.io/name']" },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ]);
  assert.deepEqual(t.columns.map((c) => c.name), ['Name', 'Spec', 'Replicas', 'Ready', 'Label', 'Age']);
  assert.equal(t.columns[1].description, 'Custom resource definition column (in JSONPath format): .spec.cronSpec');
  const obj = {
    metadata: meta('ct', 7200, { labels: { 'app.kubernetes.io/name': 'cron' } }), spec: { cronSpec: '* * * * */5', replicas: 2 },
    status: { conditions: [{ type: 'Synced', status: 'False' }, { type: 'Ready', status: 'True' }] },
  };
  assert.deepEqual(t.row(obj, NOW), ['ct', '* * * * */5', 2, 'True', 'cron', '120m']);
  assert.deepEqual(t.row({ metadata: { name: 'bare' } }, NOW), ['bare', null, null, null, null, null]);
  const d = customResourceTable(undefined);
  assert.deepEqual(d.columns.map((c) => [c.name, c.type]), [['Name', 'string'], ['Age', 'date']]);
  assert.deepEqual(d.row(obj, NOW), ['ct', '120m']);
});
