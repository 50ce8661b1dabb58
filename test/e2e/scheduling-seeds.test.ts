// Issue 3's seed scenarios end to end: real kubectl against `skiff server` with hollow nodes
// (`skiff hollow`) labelled arm and arm64 and a tainted "server" node; then a node that stops
// heartbeating goes Unknown and its pods are recreated elsewhere once their toleration expires
// (grace period and tolerations shortened by flags so the test takes seconds).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, REPO_ROOT, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
const hollows: ChildProcess[] = [];

function hollow(args: string[]): ChildProcess {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const p = spawn(join(REPO_ROOT, 'bin', 'skiff'), ['hollow', '--server', server.url, '--token', token,
    '--data-dir', join(server.dataDir, `hollow-${hollows.length}`), '--heartbeat-interval', '1', '--node-status-interval', '1',
    '--pod-start-delay', '100', ...args], { stdio: 'ignore' });
  hollows.push(p);
  return p;
}


const k = async (args: string[], input?: string) => ok(await server.kubectl(args, { input }));
const podsOf = async (ns: string, sel: string) =>
  JSON.parse(await k(['get', 'pods', '-n', ns, '-l', sel, '-o', 'json'])).items as any[];

before(async () => {
  server = await startServer({
    args: ['--node-monitor-grace-period', '4', '--default-unreachable-toleration-seconds', '2', '--default-not-ready-toleration-seconds', '2'],
  });
  hollow(['--count', '2', '--name-prefix', 'arm-', '--node-label', 'kubernetes.io/arch=arm']);
  hollow(['--count', '2', '--name-prefix', 'arm64-', '--node-label', 'kubernetes.io/arch=arm64']);
  hollow(['--count', '1', '--name-prefix', 'master-', '--node-label', 'kubernetes.io/arch=amd64',
    '--node-label', 'node-role.kubernetes.io/master=', '--node-taint', 'node-role.kubernetes.io/master=effect:NoSchedule']);
  await eventually(async () => {
    const out = await k(['get', 'nodes', '--no-headers']);
    return out.trim().split('\n').filter((l) => / Ready /.test(l)).length === 5;
  }, 'five Ready hollow nodes');
});

after(async () => {
  for (const p of hollows) if (p.exitCode === null) p.kill('SIGKILL');
});
process.on('exit', () => { for (const p of hollows) if (p.exitCode === null) p.kill('SIGKILL'); });

test('required nodeAffinity arch In [arm64] lands only on arm64 nodes', async () => {
  await k(['create', 'namespace', 'seeds-affinity']);
  await k(['apply', '-n', 'seeds-affinity', '-f', '-'], `
apiVersion: apps/v1
kind: Deployment
metadata: { name: only-arm64 }
spec:
  replicas: 4
  selector: { matchLabels: { app: only-arm64 } }
  template:
    metadata: { labels: { app: only-arm64 } }
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{ key: kubernetes.io/arch, operator: In, values: [arm64] }]
      containers: [{ name: c, image: busybox }]
`);
  ok(await server.kubectl(['rollout', 'status', 'deployment/only-arm64', '-n', 'seeds-affinity', '--timeout=60s']));
  const pods = await podsOf('seeds-affinity', 'app=only-arm64');
  assert.equal(pods.length, 4);
  for (const p of pods) assert.match(p.spec.nodeName, /^arm64-/, `${p.metadata.name} on ${p.spec.nodeName}`);
});

test('podAntiAffinity on kubernetes.io/arch: one replica per architecture, a third stays Pending with the FailedScheduling message', async () => {
  await k(['create', 'namespace', 'seeds-anti']);
  const manifest = (replicas: number) => `
apiVersion: apps/v1
kind: Deployment
metadata: { name: spread }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: spread } }
  template:
    metadata: { labels: { app: spread } }
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - topologyKey: kubernetes.io/arch
            labelSelector: { matchLabels: { app: spread } }
      containers: [{ name: c, image: busybox }]
`;
  await k(['apply', '-n', 'seeds-anti', '-f', '-'], manifest(2));
  ok(await server.kubectl(['rollout', 'status', 'deployment/spread', '-n', 'seeds-anti', '--timeout=60s']));
  const placed = await podsOf('seeds-anti', 'app=spread');
  const arches = placed.map((p) => p.spec.nodeName.split('-')[0]).sort();
  assert.deepEqual(arches, ['arm', 'arm64']);
  await k(['scale', 'deployment/spread', '-n', 'seeds-anti', '--replicas=3']);
  const pending = await eventually(async () => {
    const pods = await podsOf('seeds-anti', 'app=spread');
    return pods.find((p) => !p.spec.nodeName && (p.status.conditions ?? []).some((c: any) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'));
  }, 'a Pending third replica');
  const msg = pending.status.conditions.find((c: any) => c.type === 'PodScheduled').message;
  assert.equal(msg, "0/5 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: effect}, 4 node(s) didn't match pod anti-affinity rules. preemption: 0/5 nodes are available: 1 Preemption is not helpful for scheduling, 4 No preemption victims found for incoming pod.");
  const events = await k(['get', 'events', '-n', 'seeds-anti', '--field-selector', `involvedObject.name=${pending.metadata.name},reason=FailedScheduling`, '-o', 'jsonpath={.items[*].message}']);
  assert.ok(events.includes("didn't match pod anti-affinity rules"), events);
  const described = await k(['describe', 'pod', pending.metadata.name, '-n', 'seeds-anti']);
  assert.match(described, /FailedScheduling/);
});

test('a node tainted node-role.kubernetes.io/master:NoSchedule receives no pod without a toleration', async () => {
  await k(['create', 'namespace', 'seeds-taint']);
  await k(['create', 'deployment', 'many', '-n', 'seeds-taint', '--image=busybox', '--replicas=10']);
  ok(await server.kubectl(['rollout', 'status', 'deployment/many', '-n', 'seeds-taint', '--timeout=60s']));
  const pods = await podsOf('seeds-taint', 'app=many');
  assert.equal(pods.length, 10);
  for (const p of pods) assert.doesNotMatch(p.spec.nodeName, /^master-/);
});

test('a node that stops heartbeating becomes Unknown and its pods are recreated elsewhere', async () => {
  await k(['create', 'namespace', 'seeds-failover']);
  // A node of its own, so freezing it touches nothing the other tests use.
  const lonely = hollow(['--count', '1', '--name-prefix', 'lonely-', '--node-label', 'kubernetes.io/arch=riscv64']);
  await eventually(async () => / Ready /.test(await k(['get', 'node', 'lonely-0', '--no-headers']).catch(() => '')), 'lonely-0 Ready');
  await k(['apply', '-n', 'seeds-failover', '-f', '-'], `
apiVersion: apps/v1
kind: Deployment
metadata: { name: mover }
spec:
  replicas: 1
  selector: { matchLabels: { app: mover } }
  template:
    metadata: { labels: { app: mover } }
    spec:
      affinity:
        nodeAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference: { matchExpressions: [{ key: kubernetes.io/arch, operator: In, values: [riscv64] }] }
      containers: [{ name: c, image: busybox }]
`);
  ok(await server.kubectl(['rollout', 'status', 'deployment/mover', '-n', 'seeds-failover', '--timeout=60s']));
  const [before] = await podsOf('seeds-failover', 'app=mover');
  assert.equal(before.spec.nodeName, 'lonely-0');
  const frozenAt = Date.now();
  lonely.kill('SIGUSR1');   // freeze its heartbeats
  await eventually(async () => {
    const n = JSON.parse(await k(['get', 'node', 'lonely-0', '-o', 'json']));
    return n.status.conditions.find((c: any) => c.type === 'Ready')?.status === 'Unknown'
      && (n.spec.taints ?? []).some((t: any) => t.key === 'node.kubernetes.io/unreachable' && t.effect === 'NoExecute');
  }, 'lonely-0 Ready=Unknown with the unreachable taint', 30_000);
  const unknownAfter = Date.now() - frozenAt;
  assert.ok(unknownAfter >= 3000, `marked Unknown after ${unknownAfter} ms, before the 4 s grace period`);
  assert.match(await k(['get', 'node', 'lonely-0', '--no-headers']), /NotReady/);
  const moved = await eventually(async () => {
    const pods = await podsOf('seeds-failover', 'app=mover');
    return pods.find((p) => p.metadata.uid !== before.metadata.uid && p.spec.nodeName && p.spec.nodeName !== 'lonely-0' && p.status.phase === 'Running');
  }, 'a replacement pod Running on another node', 45_000);
  assert.notEqual(moved.spec.nodeName, 'lonely-0');
});
