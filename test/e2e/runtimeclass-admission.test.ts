// RuntimeClass end to end with real kubectl (issue 10): a pod naming a RuntimeClass is admitted only
// if the class exists (Kubernetes' message), the class's overhead becomes the pod's spec.overhead and
// the scheduler counts it (a hollow node with 4 CPUs), and the class's node selector and tolerations
// are merged into the pod, a conflicting selector being refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, REPO_ROOT, type TestServer } from '../helpers/cluster.js';
import { ok, fails } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
let hollow: ChildProcess | undefined;
const NODE = `rc-${process.pid}-0`;

before(async () => {
  server = await startServer();
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  hollow = spawn(join(REPO_ROOT, 'bin', 'skiff'), ['hollow', '--server', server.url, '--token', token,
    '--data-dir', join(server.dataDir, 'hollow'), '--count', '1', '--name-prefix', `rc-${process.pid}-`,
    '--node-label', 'sandbox=gvisor', '--heartbeat-interval', '1', '--node-status-interval', '1', '--pod-start-delay', '100'], { stdio: 'ignore' });
  await eventually(async () => / Ready /.test((await server.kubectl(['get', 'node', NODE, '--no-headers'])).stdout), 'the hollow node Ready', 60_000, () => server.logTail());
  ok(await server.kubectl(['apply', '-f', '-'], { input: `apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: heavy}
handler: kata
overhead: {podFixed: {cpu: "3", memory: 120Mi}}
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: sandboxed}
handler: runsc
scheduling:
  nodeSelector: {sandbox: gvisor}
  tolerations: [{key: sandbox, operator: Equal, value: gvisor, effect: NoSchedule}]
` }));
});

after(() => { if (hollow && hollow.exitCode === null) hollow.kill('SIGKILL'); });
process.on('exit', () => { if (hollow && hollow.exitCode === null) hollow.kill('SIGKILL'); });

const podYaml = (name: string, rc: string | undefined, cpu: string, extra = '') => `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
${rc ? `  runtimeClassName: ${rc}\n` : ''}${extra}  containers: [{name: c, image: busybox, resources: {requests: {cpu: "${cpu}"}}}]
`;

const getPod = async (name: string) => JSON.parse(ok(await server.kubectl(['get', 'pod', name, '-o', 'json'])));

test('a pod naming a RuntimeClass that does not exist is refused as Kubernetes refuses it', async () => {
  fails(await server.kubectl(['apply', '-f', '-'], { input: podYaml('nope', 'missing', '100m') }),
    /pods "nope" is forbidden: pod rejected: RuntimeClass "missing" not found/);
  fails(await server.kubectl(['apply', '-f', '-'], { input: podYaml('own-overhead', undefined, '100m', '  overhead: {cpu: 1}\n') }),
    /pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead/);
});

test('the class overhead is added to the pod and counted by the scheduler', async () => {
  // 1.5 CPU fits the 4-CPU node alone; with the class's 3 CPU overhead it cannot.
  ok(await server.kubectl(['apply', '-f', '-'], { input: podYaml('plain', undefined, '1500m') }));
  await eventually(async () => (await getPod('plain')).spec.nodeName === NODE, 'plain pod scheduled');
  ok(await server.kubectl(['delete', 'pod', 'plain', '--grace-period=0', '--force']));

  ok(await server.kubectl(['apply', '-f', '-'], { input: podYaml('heavy', 'heavy', '1500m') }));
  const p = await getPod('heavy');
  assert.deepEqual(p.spec.overhead, { cpu: '3', memory: '120Mi' });
  const ev = await eventually(async () => {
    const out = ok(await server.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=heavy,reason=FailedScheduling', '-o', 'jsonpath={.items[*].message}']));
    return out.trim() || undefined;
  }, 'FailedScheduling event for the heavy pod', 30_000, () => server.logTail());
  assert.match(ev, /0\/1 nodes are available: 1 Insufficient cpu/);
  assert.equal((await getPod('heavy')).spec.nodeName, undefined);

  // 0.5 CPU + 3 CPU overhead fits.
  ok(await server.kubectl(['apply', '-f', '-'], { input: podYaml('heavy-small', 'heavy', '500m') }));
  await eventually(async () => (await getPod('heavy-small')).spec.nodeName === NODE, 'heavy-small scheduled');
  // spec.overhead is immutable afterwards, like every pod spec field but a few.
  fails(await server.kubectl(['patch', 'pod', 'heavy-small', '--type=merge', '-p', '{"spec":{"overhead":{"cpu":"1"}}}']), /Forbidden: pod updates may not change fields other than/);
});

test('the class scheduling constraints are merged into the pod; a conflicting selector is refused', async () => {
  ok(await server.kubectl(['apply', '-f', '-'], { input: podYaml('sandboxed', 'sandboxed', '100m') }));
  const p = await getPod('sandboxed');
  assert.deepEqual(p.spec.nodeSelector, { sandbox: 'gvisor' });
  assert.ok(p.spec.tolerations.some((t: any) => t.key === 'sandbox' && t.value === 'gvisor' && t.effect === 'NoSchedule'), JSON.stringify(p.spec.tolerations));
  await eventually(async () => (await getPod('sandboxed')).spec.nodeName === NODE, 'sandboxed pod on the labelled node');

  fails(await server.kubectl(['apply', '-f', '-'], { input: podYaml('conflict', 'sandboxed', '100m', '  nodeSelector: {sandbox: kata}\n') }),
    /pods "conflict" is forbidden: pod rejected: conflict: runtimeClass\.scheduling\.nodeSelector\[sandbox\] = gvisor; pod\.spec\.nodeSelector\[sandbox\] = kata/);
});
