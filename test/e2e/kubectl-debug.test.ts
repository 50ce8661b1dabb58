// `kubectl debug` (issue 10 item 7) on a real node: a `skiff server` and a `skiff agent` (own
// containerd, runc, bridge CNI) on this host, a pod of two busybox containers, and the real kubectl
// 1.27, 1.32 and 1.33. An ephemeral container with --target shares the target container's process
// namespace (its `ps` shows the target's process and not the other container's), `-i` attaches to a
// shell fed through stdin, one without --target sees only itself; ephemeral containers run once and
// appear in status.ephemeralContainerStatuses; the pods/ephemeralcontainers subresource refuses what
// Kubernetes refuses, with its messages; RBAC checks the subresource. Everything is removed afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { TestServer } from '../helpers/cluster.js';
import { ok, fails, kubectlBinary, type KubectlVersion } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { localAgentRequirements, startLocalAgent, type LocalAgent } from '../helpers/local-agent.js';

let node: LocalAgent;
let server: TestServer;
let NODE = '';
const k = (args: string[], input?: string) => node.k(args, input);
const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms?: number) => node.eventually(fn, what, ms);
const getPod = async (name: string): Promise<any> => JSON.parse(await k(['get', 'pod', name, '-o', 'json']));
const ephemeralStatus = (pod: any, name: string) => pod.status?.ephemeralContainerStatuses?.find((c: any) => c.name === name);

before(async () => {
  const missing = localAgentRequirements();
  if (missing.length) throw new Error(`the kubectl debug end-to-end test needs: ${missing.join(', ')}`);
  node = await startLocalAgent({ tag: 'dbg' });
  server = node.server;
  NODE = node.nodeName;
  // Two containers with processes told apart by their arguments.
  await k(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'target', labels: { suite: 'kubectl-debug' } },
    spec: {
      nodeName: NODE, terminationGracePeriodSeconds: 1,
      containers: [
        { name: 'app', image: TEST_IMAGE, command: ['sleep', '3601'] },
        { name: 'other', image: TEST_IMAGE, command: ['sleep', '3602'] },
      ],
    },
  }));
  await eventually(async () => {
    const p = await getPod('target');
    return p.status?.phase === 'Running' && p.status.containerStatuses?.every((c: any) => c.state?.running) ? p : undefined;
  }, 'pod target Running');
});

after(async () => { await node?.stop(); });

/** The ephemeral container kubectl debug added last (it names them debugger-xxxxx). */
async function newestEphemeral(before: number): Promise<any> {
  const list = (await getPod('target')).spec.ephemeralContainers ?? [];
  assert.equal(list.length, before + 1, 'kubectl debug added one ephemeral container');
  return list[list.length - 1];
}

for (const version of ['1.27', '1.32', '1.33'] as KubectlVersion[]) {
  test(`kubectl ${version} debug -it target --image=busybox --target=app -- ps: the target's processes`, async () => {
    const count = ((await getPod('target')).spec.ephemeralContainers ?? []).length;
    const r = await server.kubectl(['debug', '-it', 'target', `--image=${TEST_IMAGE}`, '--target=app', '--', 'ps'], { version, timeoutMs: 120_000 });
    const ec = await newestEphemeral(count);
    assert.equal(ec.targetContainerName, 'app');
    assert.equal(ec.stdin, true);
    assert.equal(ec.tty, true);
    const done = await eventually(async () => ephemeralStatus(await getPod('target'), ec.name)?.state?.terminated, `${ec.name} terminated`);
    assert.equal(done.exitCode, 0);
    // `ps` may finish before kubectl attaches: kubectl then prints the container's log instead, or,
    // when it attached in the instant between the exit and the status saying so, nothing (as with
    // Kubernetes). What `ps` saw is in the container's log either way.
    const out = r.stdout + r.stderr + await k(['logs', 'target', '-c', ec.name]);
    assert.match(out, /sleep 3601/, `the target's process is visible:\n${out}`);
    assert.doesNotMatch(out, /sleep 3602/, 'the other container has its own process namespace');
  });
}

test('kubectl debug -i target --target=app -- sh, with ps fed through stdin, attaches', async () => {
  const count = ((await getPod('target')).spec.ephemeralContainers ?? []).length;
  // sh blocks reading stdin until kubectl attaches, so the commands can only arrive through attach.
  // stdin stays open until the answer is back: kubectl debug does not set stdinOnce, and containerd
  // detaches a client whose stdin closes (as with a kubelet), dropping what comes after.
  const child = spawn(kubectlBinary('1.33'), ['--kubeconfig', server.kubeconfigPath, '--cache-dir', join(server.dataDir, 'kubectl-cache-dbg'),
    'debug', '-i', 'target', `--image=${TEST_IMAGE}`, '--target=app', '--', 'sh'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<number | null>((r) => child.on('close', r));
  try {
    child.stdin!.write('ps\necho attached-$((6*7))\n');
    await eventually(async () => stdout.includes('attached-42'), `the shell's answer (stdout so far: ${stdout}; stderr: ${stderr})`, 120_000);
    child.stdin!.end('exit 0\n');
    assert.equal(await exited, 0, stderr);
  } finally {
    child.kill('SIGKILL');
  }
  assert.match(stdout, /sleep 3601/);
  assert.doesNotMatch(stdout, /sleep 3602/);
  const ec = await newestEphemeral(count);
  assert.equal(ec.stdin, true);
  assert.notEqual(ec.tty, true);
  const st = await eventually(async () => ephemeralStatus(await getPod('target'), ec.name)?.state?.terminated, `${ec.name} terminated`);
  assert.equal(st.exitCode, 0);
});

test('kubectl debug without --target: its own process namespace, runs once, status in ephemeralContainerStatuses', async () => {
  const count = ((await getPod('target')).spec.ephemeralContainers ?? []).length;
  // PID 1 ignores signals it has no handler for; this one exits 3 on SIGTERM.
  await k(['debug', 'target', `--image=${TEST_IMAGE}`, '--container=idle', '--', 'sh', '-c', 'trap "exit 3" TERM; sleep 3603 & wait']);
  const ec = await newestEphemeral(count);
  assert.equal(ec.name, 'idle');
  assert.equal(ec.targetContainerName, undefined);
  const st = await eventually(async () => { const s = ephemeralStatus(await getPod('target'), 'idle'); return s?.state?.running ? s : undefined; }, 'idle running');
  assert.match(st.containerID, /^containerd:\/\//);
  assert.equal(st.ready, false);
  const ps = await k(['exec', 'target', '-c', 'idle', '--', 'ps']);
  assert.match(ps, /sleep 3603/);
  assert.doesNotMatch(ps, /sleep 3601|sleep 3602/);
  // The pod stays Ready: an ephemeral container is no part of its service.
  const pod = await getPod('target');
  assert.equal(pod.status.conditions.find((c: any) => c.type === 'Ready')?.status, 'True');
  assert.deepEqual(pod.status.containerStatuses.map((c: any) => c.name).sort(), ['app', 'other']);
  // Exited ephemeral containers are not restarted.
  // The exec's own process dies with the container when PID 1 exits first: 137 is that race, not a failure.
  const killed = await server.kubectl(['exec', 'target', '-c', 'idle', '--', 'kill', '1'], { timeoutMs: 60_000 });
  assert.ok(killed.code === 0 || killed.code === 137, `kill 1 in idle: exit ${killed.code}: ${killed.stderr}`);
  const ended = await eventually(async () => ephemeralStatus(await getPod('target'), 'idle')?.state?.terminated ? await getPod('target') : undefined, 'idle terminated');
  await new Promise((r) => setTimeout(r, 3000));
  const later = ephemeralStatus(await getPod('target'), 'idle');
  assert.ok(later.state.terminated, `still terminated: ${JSON.stringify(later.state)}`);
  assert.equal(later.state.terminated.exitCode, 3);
  assert.equal(later.restartCount, 0);
  assert.equal(later.containerID, ephemeralStatus(ended, 'idle').containerID);
  assert.equal((await getPod('target')).status.phase, 'Running');
});

test('pods/ephemeralcontainers refuses what Kubernetes refuses, with its messages (422)', async () => {
  const path = '/api/v1/namespaces/default/pods/target/ephemeralcontainers';
  const live = (await server.request('GET', path)).json();
  assert.equal(live.kind, 'Pod');
  const existing: any[] = live.spec.ephemeralContainers;
  assert.ok(existing.length >= 2);
  // Each write starts from a fresh read: the agent keeps writing the pod's status meanwhile.
  const put = async (mutate: (pod: any) => void) => {
    for (;;) {
      const pod = (await server.request('GET', path)).json();
      mutate(pod);
      const r = await server.request('PUT', path, { body: pod });
      if (r.status !== 409) return r;
    }
  };
  const invalid = async (mutate: (pod: any) => void, message: RegExp) => {
    const r = await put(mutate);
    assert.equal(r.status, 422, r.body);
    assert.equal(r.json().reason, 'Invalid');
    assert.match(r.json().message, message);
  };
  const first = existing[0].name;
  await invalid((p) => { p.spec.ephemeralContainers.shift(); },
    new RegExp(`^Pod "target" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers "${first}" may not be removed`));
  await invalid((p) => { p.spec.ephemeralContainers[0].image = 'busybox:other'; },
    new RegExp(`spec.ephemeralContainers: Forbidden: existing ephemeral containers "${first}" may not be changed`));
  const add = (extra: object) => (p: any) => { p.spec.ephemeralContainers.push({ name: 'x', image: TEST_IMAGE, imagePullPolicy: 'IfNotPresent', terminationMessagePolicy: 'File', ...extra }); };
  const n = existing.length;
  await invalid(add({ ports: [{ containerPort: 80 }] }), new RegExp(`spec.ephemeralContainers\\[${n}\\].ports: Forbidden: cannot be set for an Ephemeral Container`));
  await invalid(add({ readinessProbe: { exec: { command: ['true'] } } }), /readinessProbe: Forbidden: cannot be set for an Ephemeral Container/);
  await invalid(add({ lifecycle: { preStop: { exec: { command: ['true'] } } } }), /lifecycle: Forbidden: cannot be set for an Ephemeral Container/);
  await invalid(add({ resources: { limits: { cpu: '1' } } }), /resources: Forbidden: cannot be set for an Ephemeral Container/);
  await invalid(add({ name: 'app' }), new RegExp(`spec.ephemeralContainers\\[${n}\\].name: Duplicate value: "app"`));
  await invalid(add({ targetContainerName: 'nope' }), new RegExp(`spec.ephemeralContainers\\[${n}\\].targetContainerName: Not found: "nope"`));
  // Other changes sent to the subresource are ignored; only ephemeral containers are written there.
  const r = await put((p) => { p.metadata.labels.extra = 'no'; p.spec.containers[0].image = 'busybox:ignored'; p.spec.activeDeadlineSeconds = 5; });
  assert.equal(r.status, 200, r.body);
  const now = await getPod('target');
  assert.equal(now.metadata.labels.extra, undefined);
  assert.equal(now.spec.containers[0].image, TEST_IMAGE);
  // A plain pod update may not touch ephemeral containers.
  const plain = await server.request('PUT', '/api/v1/namespaces/default/pods/target', {
    body: { ...now, metadata: { ...now.metadata, resourceVersion: undefined }, spec: { ...now.spec, ephemeralContainers: [...now.spec.ephemeralContainers, { name: 'y', image: TEST_IMAGE, imagePullPolicy: 'IfNotPresent', terminationMessagePolicy: 'File' }] } },
  });
  assert.equal(plain.status, 422, plain.body);
  assert.match(plain.json().message, /spec: Forbidden: pod updates may not change fields other than/);
  // kubectl reports the same.
  fails(await server.kubectl(['debug', 'target', `--image=${TEST_IMAGE}`, '--target=nope', '--', 'true']),
    /spec.ephemeralContainers\[\d+\].targetContainerName: Not found: "nope"/);
  fails(await server.kubectl(['debug', 'target', `--image=${TEST_IMAGE}`, '--container=other', '--', 'true']),
    /spec.ephemeralContainers\[\d+\].name: Duplicate value: "other"/);
});

test('RBAC: kubectl debug needs patch on pods/ephemeralcontainers', async () => {
  const as = ['--as=system:serviceaccount:default:dbg'];
  await k(['create', 'serviceaccount', 'dbg']);
  await k(['create', 'role', 'pods-only', '--verb=get,list,watch,patch,update', '--resource=pods']);
  await k(['create', 'rolebinding', 'dbg-pods', '--role=pods-only', '--serviceaccount=default:dbg']);
  fails(await server.kubectl(['debug', 'target', `--image=${TEST_IMAGE}`, ...as, '--', 'true']),
    /pods "target" is forbidden: User "system:serviceaccount:default:dbg" cannot patch resource "pods\/ephemeralcontainers" in API group "" in the namespace "default"/);
  assert.equal((await k(['auth', 'can-i', 'patch', 'pods', '--subresource=ephemeralcontainers', ...as]).catch(() => 'no')).trim(), 'no');
  await k(['create', 'role', 'debugger', '--verb=patch', '--resource=pods/ephemeralcontainers']);
  await k(['create', 'rolebinding', 'dbg-debug', '--role=debugger', '--serviceaccount=default:dbg']);
  assert.equal((await k(['auth', 'can-i', 'patch', 'pods', '--subresource=ephemeralcontainers', ...as])).trim(), 'yes');
  ok(await server.kubectl(['debug', 'target', `--image=${TEST_IMAGE}`, '--container=by-sa', ...as, '--', 'true']));
  assert.ok((await getPod('target')).spec.ephemeralContainers.some((c: any) => c.name === 'by-sa'));
});
