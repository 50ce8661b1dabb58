// Issue 4, "host reboot: pods come back". An agent runs as its own host in a network namespace; the
// test then reboots that host as far as a process can: kill -9 of the agent, containerd, every shim and
// container process, unmounting what a reboot unmounts (rootfs, shm, pod netns, memory-backed volumes),
// removing the pods' cgroups and the host's whole network (namespace, bridge, veths, iptables), and
// clearing containerd's runtime state under /run (tmpfs on a real host). Twice: once with that state
// left behind (a /run that is not a tmpfs, or `skiff killall` without a reboot), once cleared. After
// each, the agent starts again and kubectl must show the same pods Running and Ready, in new sandboxes,
// with restart counts one higher (the kubelet's count after a reboot: the old containers are still in
// containerd's persistent records), serving again, and the Deployment not duplicated.
// Needs root, iproute2 and containerd; everything it creates is removed, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/cluster.js';
import {
  createHostNetwork, eventually as waitFor, netnsAgentRequirements, prepareAgentDir, removeHostNetwork, startNetnsAgent, type NetnsHost,
} from '../helpers/netns-host.js';
import { ok } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { mountsUnder, teardownRuntime } from '../../src/agent/runtime/teardown.js';
import { containerdPaths } from '../../src/agent/runtime/containerd-config.js';
import { CriClient } from '../../src/agent/runtime/cri-client.js';
import { CNI_NETWORK_NAME } from '../../src/agent/runtime/cni-config.js';
import { CONTAINER_NAME_LABEL, NODE_LABEL, POD_UID_LABEL, RESTART_COUNT_ANNOTATION } from '../../src/agent/pods/labels.js';

const run = process.pid % 1000;
const NODE = 'reboot-a';
const host: NetnsHost = { name: NODE, netns: `skrb${run}`, hostIf: `skrb${run}h`, hostIp: '10.198.1.1', ip: '10.198.1.2', dir: '' };
let agent: ChildProcess | undefined;
let server: TestServer;
let token = '';

function startAgent(): void {
  agent = startNetnsAgent(host, server, token);
}

async function killAgent(): Promise<void> {
  const p = agent;
  agent = undefined;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
}

/** A power cut and boot, minus the kernel: see the file's header. */
async function reboot(clearRunState: boolean, podUids: string[]): Promise<void> {
  await killAgent();
  await teardownRuntime({ dataDir: host.dir, cgroupParents: podUids.map((uid) => `/kubepods/pod${uid}`) });
  const state = containerdPaths(host.dir).state;
  assert.deepEqual([...mountsUnder(host.dir), ...mountsUnder(state)], [], 'nothing of the old boot is mounted');
  if (clearRunState) rmSync(state, { recursive: true, force: true });
  removeHostNetwork(host);
  createHostNetwork(host);
  startAgent();
}

const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 90_000) => waitFor(fn, what, ms, [host]);

const k = async (args: string[]) => ok(await server.kubectl(args));
const readyOf = (obj: any) => obj.status.conditions?.find((c: any) => c.type === 'Ready')?.status;
const appPods = async () => JSON.parse(await k(['get', 'pods', '-l', 'app=boot', '-o', 'json'])).items as any[];
const web = (pod: any) => pod.status.containerStatuses?.find((s: any) => s.name === 'web');
const fetchPod = (ip: string) => spawnSync('nsenter', [`--net=/var/run/netns/${host.netns}`, 'curl', '-s', '-m', '3', `http://${ip}:8080/page.txt`], { encoding: 'utf8' }).stdout;

/** The pods back after a boot: same pods, Running and Ready, restarted `restarts` times, serving. */
async function expectPodsBack(before: any[], restarts: number): Promise<any[]> {
  const uids = before.map((p) => p.metadata.uid).sort();
  const pods = await eventually(async () => {
    const ps = await appPods();
    return ps.length === uids.length && ps.every((p) => p.status.phase === 'Running' && readyOf(p) === 'True' && web(p)?.restartCount === restarts) && ps;
  }, `both pods Running and Ready with restartCount ${restarts}`);
  assert.deepEqual(pods.map((p) => p.metadata.uid).sort(), uids, 'the same pods (no new ones, none duplicated)');
  assert.equal(JSON.parse(await k(['get', 'replicasets', '-l', 'app=boot', '-o', 'json'])).items.length, 1, 'one ReplicaSet');
  const rs = JSON.parse(await k(['get', 'deployment', 'boot', '-o', 'json'])).status;
  assert.equal(rs.replicas, 2);
  for (const p of pods) {
    const old = before.find((b) => b.metadata.uid === p.metadata.uid);
    assert.notEqual(web(p).containerID, web(old).containerID, 'a new container');
    assert.ok(web(p).lastState.terminated, `lastState shows the container of the previous boot: ${JSON.stringify(web(p).lastState)}`);
    // The configMap volume is back (its content is what the pod serves).
    await eventually(async () => fetchPod(p.status.podIP) === 'from-configmap\n', `${p.metadata.name} serving its configMap page at ${p.status.podIP}`, 20_000);
  }
  // In containerd: one ready sandbox per pod, and exactly the running containers the API reports.
  const cri = new CriClient(containerdPaths(host.dir).socket);
  try {
    const sel = { labelSelector: { [NODE_LABEL]: NODE } };
    const boxes = await cri.listPodSandbox(sel);
    const ready = boxes.filter((b) => b.state === 'SANDBOX_READY');
    assert.deepEqual(ready.map((b) => b.labels[POD_UID_LABEL]).sort(), uids, 'one ready sandbox per pod');
    // Besides, each pod keeps the sandbox of the previous boot (its containers are lastState and logs
    // --previous), stopped; older ones are removed.
    assert.deepEqual(boxes.filter((b) => b.state !== 'SANDBOX_READY').map((b) => b.labels[POD_UID_LABEL]).sort(), uids, 'one old sandbox per pod');
    const running = (await cri.listContainers(sel)).filter((c) => c.state === 'CONTAINER_RUNNING');
    assert.deepEqual(running.map((c) => `containerd://${c.id}`).sort(), pods.map((p) => web(p).containerID).sort(), 'running containers are the ones the API reports');
    for (const c of running) {
      assert.equal(c.labels[CONTAINER_NAME_LABEL], 'web');
      assert.equal(Number(c.annotations[RESTART_COUNT_ANNOTATION]), restarts);
      assert.ok(ready.some((b) => b.id === c.podSandboxId), 'running in the ready sandbox');
    }
  } finally {
    cri.close();
  }
  // Only the pods' current IPs are leased: stopping the previous boot's sandboxes released theirs.
  const leases = readdirSync(join(host.dir, 'agent', 'cni', 'ipam', CNI_NETWORK_NAME)).filter((f) => /^[\d.]+$/.test(f));
  assert.deepEqual(leases.sort(), pods.map((p) => p.status.podIP).sort(), 'IP leases');
  return pods;
}

before(async () => {
  const missing = netnsAgentRequirements();
  if (missing.length) throw new Error(`the agent reboot test needs: ${missing.join(', ')}`);
  createHostNetwork(host);
  prepareAgentDir(host, 'skiff-rb-');
  server = await startServer({ args: ['--bind-address', '0.0.0.0', '--tls-san', host.hostIp] });
  token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
});

after(async () => {
  await killAgent();
  if (host.dir) await teardownRuntime({ dataDir: host.dir, removeDataDir: true }).catch(() => undefined);
  removeHostNetwork(host);
});

test('a rebooted host brings its pods back: new sandboxes, restart counts +1, nothing duplicated', { timeout: 300_000 }, async () => {
  startAgent();
  await eventually(async () => readyOf(JSON.parse(await k(['get', 'node', NODE, '-o', 'json']))) === 'True', `${NODE} Ready`);
  await server.kubectl(['apply', '-f', '-'], { input: `
apiVersion: v1
kind: ConfigMap
metadata: { name: boot-page }
data: { page.txt: "from-configmap\\n" }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: boot }
spec:
  replicas: 2
  selector: { matchLabels: { app: boot } }
  template:
    metadata: { labels: { app: boot } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: ${TEST_IMAGE}
        command: [sh, -c, 'cp /page/page.txt /scratch/ && exec httpd -f -p 8080 -h /scratch']
        volumeMounts:
        - { name: page, mountPath: /page }
        - { name: scratch, mountPath: /scratch }
      volumes:
      - name: page
        configMap: { name: boot-page }
      - name: scratch
        emptyDir: { medium: Memory }
` }).then(ok);
  ok(await server.kubectl(['rollout', 'status', 'deployment/boot', '--timeout=120s'], { timeoutMs: 130_000 }));
  const first = await appPods();
  assert.equal(first.length, 2);
  for (const p of first) await eventually(async () => fetchPod(p.status.podIP) === 'from-configmap\n', `${p.metadata.name} serving`, 20_000);
  const uids = first.map((p) => p.metadata.uid);

  // A reboot that leaves containerd's runtime state behind (tasks and netns records of dead processes).
  let t0 = Date.now();
  await reboot(false, uids);
  const second = await expectPodsBack(first, 1);
  console.log(`# pods back ${Date.now() - t0} ms after a reboot with stale runtime state`);

  // A real reboot: /run is empty.
  t0 = Date.now();
  await reboot(true, uids);
  await expectPodsBack(second, 2);
  console.log(`# pods back ${Date.now() - t0} ms after a reboot with /run cleared`);
});
