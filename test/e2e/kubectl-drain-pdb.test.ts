// Acceptance (issue 3): `kubectl cordon` and `kubectl drain --ignore-daemonsets` move pods off a node
// and respect a PodDisruptionBudget. Real kubectl against `skiff server` with three hollow nodes
// (`skiff hollow`), the scheduler, the workload loops and the disruption controller.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, startServer, type TestServer, stopChild } from '../helpers/cluster.js';
import { fails, ok } from '../helpers/kubectl.js';

let server: TestServer;
let hollow: ChildProcess | undefined;
const HOLLOW_LOG = () => join(server.dataDir, 'hollow.log');

before(async () => {
  server = await startServer();
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const log = openSync(HOLLOW_LOG(), 'a');
  try {
    hollow = spawn(join(REPO_ROOT, 'bin', 'skiff'), ['hollow', '--count', '3', '--server', server.url, '--token', token, '--name-prefix', 'drain-'], {
      cwd: REPO_ROOT, stdio: ['ignore', log, log],
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKIFF_'))),
    });
  } finally {
    closeSync(log);
  }
});

after(async () => {
  await stopChild(hollow, 5000);
});
// The runner may exit without hooks (uncaught error): never leave the hollow process behind.
process.on('exit', () => { if (hollow && hollow.exitCode === null) hollow.kill('SIGKILL'); });

async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) {
      let tail = '';
      try { tail = readFileSync(HOLLOW_LOG(), 'utf8').split('\n').slice(-20).join('\n'); } catch { /* no log */ }
      throw new Error(`timed out waiting for ${what}\n--- hollow log tail\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function json(args: string[]): Promise<any> {
  return JSON.parse(ok(await server.kubectl([...args, '-o', 'json']), `kubectl ${args.join(' ')}`));
}

const running = (pods: any[]) => pods.filter((p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp);

const DAEMONSET = `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: busybox}]}
`;

test('drain evicts through the PodDisruptionBudget: blocked while it allows nothing, moves pods once it does', { timeout: 240_000 }, async () => {
  await eventually(async () => {
    const nodes = (await json(['get', 'nodes'])).items;
    return nodes.length === 3 && nodes.every((n: any) => n.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
  }, 'three Ready hollow nodes');

  ok(await server.kubectl(['create', 'deployment', 'web', '--image=busybox', '--replicas=2']));
  ok(await server.kubectl(['apply', '-f', '-'], { input: DAEMONSET }));
  ok(await server.kubectl(['rollout', 'status', 'deployment/web', '--timeout=60s'], { timeoutMs: 70_000 }));
  ok(await server.kubectl(['rollout', 'status', 'daemonset/agent', '--timeout=60s'], { timeoutMs: 70_000 }));

  ok(await server.kubectl(['create', 'poddisruptionbudget', 'web', '--selector=app=web', '--min-available=2']));
  await eventually(async () => {
    const s = (await json(['get', 'pdb', 'web'])).status;
    return s?.currentHealthy === 2 && s.desiredHealthy === 2 && s.expectedPods === 2 && s.disruptionsAllowed === 0;
  }, 'PDB status: 2 healthy, 0 disruptions allowed');

  const webPods = running((await json(['get', 'pods', '-l', 'app=web'])).items);
  const node: string = webPods[0].spec.nodeName;
  const onNode = webPods.filter((p: any) => p.spec.nodeName === node).map((p: any) => p.metadata.uid);

  assert.match(ok(await server.kubectl(['cordon', node])), new RegExp(`node/${node} cordoned`));
  assert.equal((await json(['get', 'node', node])).spec.unschedulable, true);

  // Without --ignore-daemonsets drain refuses to start; with it, the budget blocks the eviction.
  fails(await server.kubectl(['drain', node, '--timeout=5s']), /cannot delete DaemonSet-managed Pods/);
  fails(await server.kubectl(['drain', node, '--ignore-daemonsets', '--timeout=8s'], { timeoutMs: 30_000 }),
    /Cannot evict pod as it would violate the pod's disruption budget|disruption budget/);
  const stillThere = (await json(['get', 'pods', '-l', 'app=web'])).items.map((p: any) => p.metadata.uid);
  for (const uid of onNode) assert.ok(stillThere.includes(uid), 'the protected pod was not evicted');

  ok(await server.kubectl(['patch', 'pdb', 'web', '--type=merge', '-p', '{"spec":{"minAvailable":1}}']));
  await eventually(async () => (await json(['get', 'pdb', 'web'])).status?.disruptionsAllowed === 1, 'one disruption allowed');

  const drained = ok(await server.kubectl(['drain', node, '--ignore-daemonsets', '--timeout=90s'], { timeoutMs: 120_000 }));
  assert.match(drained, /evicting pod default\/web-/);
  assert.match(drained, new RegExp(`node/${node} drained`));

  // The ReplicaSet replaces the evicted pod on another node; the DaemonSet pod stays where it was.
  await eventually(async () => {
    const pods = running((await json(['get', 'pods', '-l', 'app=web'])).items);
    return pods.length === 2 && pods.every((p: any) => p.spec.nodeName !== node);
  }, 'two web pods running off the drained node');
  const agents = (await json(['get', 'pods', '-l', 'app=agent'])).items;
  assert.ok(agents.some((p: any) => p.spec.nodeName === node && !p.metadata.deletionTimestamp), 'DaemonSet pod left on the drained node');
  await eventually(async () => (await json(['get', 'pdb', 'web'])).status?.currentHealthy === 2, 'budget healthy again');

  assert.match(ok(await server.kubectl(['uncordon', node])), new RegExp(`node/${node} uncordoned`));
  assert.equal((await json(['get', 'node', node])).spec.unschedulable, undefined);
});
