// Two agents, each in its own network namespace as its own host (veth to the server's namespace),
// run a Deployment's pods as real containers; one host is then cut off from the server for a full
// minute (issue 4's acceptance). During the cut its pod keeps serving HTTP, a container killed there
// is restarted by the agent alone, the node goes Unknown and gets the unreachable taint, and the pod
// (tolerating it for the default 300 s) is not evicted. After the link comes back: the node is Ready
// and untainted, the pod's status in the API is current (restart count, Ready), and containerd holds
// exactly the expected sandbox and containers, nothing duplicated or orphaned.
// A second test drives kubectl's streaming commands (logs -f, exec with exit codes, port-forward) to a
// pod on the other host: they reach it only through the agent's outbound tunnel, as behind NAT.
// Needs root, iproute2 and containerd; everything it creates (namespaces, links, containerd
// instances, mounts, temp dirs) is removed, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/cluster.js';
import {
  createHostNetwork, eventually as waitFor, netnsAgentRequirements, prepareAgentDir, removeHostNetwork, sh, startNetnsAgent, type NetnsHost,
} from '../helpers/netns-host.js';
import { KubectlStream, ok } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';
import { containerdPaths } from '../../src/agent/runtime/containerd-config.js';
import { CriClient } from '../../src/agent/runtime/cri-client.js';
import { CONTAINER_NAME_LABEL, NODE_LABEL, POD_UID_LABEL, RESTART_COUNT_ANNOTATION } from '../../src/agent/pods/labels.js';

const run = process.pid % 1000;
const hosts: NetnsHost[] = ['a', 'b'].map((n, i) => ({
  name: `netns-${n}`, netns: `skne2e${run}${n}`, hostIf: `skv${run}${n}`,
  hostIp: `10.199.${i + 1}.1`, ip: `10.199.${i + 1}.2`, dir: '',
}));
/** Issue 4: "cut off from the server for a minute". Well inside the default 300 s unreachable toleration. */
const CUT_MS = 60_000;
/** How often the cut-off pod is asked for its page during the cut. */
const PROBE_EVERY_MS = 3_000;
let server: TestServer;

const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 90_000) => waitFor(fn, what, ms, hosts);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const k = async (args: string[]) => ok(await server.kubectl(args));
const getNode = async (name: string) => JSON.parse(await k(['get', 'node', name, '-o', 'json']));
const readyOf = (obj: any) => obj.status.conditions?.find((c: any) => c.type === 'Ready')?.status;
const nodeReady = async (name: string) => readyOf(await getNode(name));
const webPods = async () => JSON.parse(await k(['get', 'pods', '-l', 'app=web', '-o', 'json'])).items as any[];
const statusOf = (pod: any, name: string) => pod.status.containerStatuses?.find((s: any) => s.name === name);

/** What host `h`'s containerd runs for its node, read through CRI (the agent is not asked). */
async function runtimeView(cri: CriClient, node: string) {
  const sel = { labelSelector: { [NODE_LABEL]: node } };
  const [boxes, containers] = await Promise.all([cri.listPodSandbox(sel), cri.listContainers(sel)]);
  return {
    boxes: boxes.map((b) => ({ id: b.id, uid: b.labels[POD_UID_LABEL], state: b.state })),
    containers: containers.map((c) => ({
      id: c.id, sandbox: c.podSandboxId, name: c.labels[CONTAINER_NAME_LABEL], state: c.state,
      restartCount: Number(c.annotations[RESTART_COUNT_ANNOTATION]),
    })),
  };
}

before(async () => {
  const missing = netnsAgentRequirements();
  if (missing.length) throw new Error(`the network-namespace agent test needs: ${missing.join(', ')}`);
  for (const h of hosts) {
    createHostNetwork(h);
    prepareAgentDir(h, 'skiff-nh-');
  }
  server = await startServer({ args: ['--bind-address', '0.0.0.0', '--node-monitor-grace-period', '15', ...hosts.flatMap((h) => ['--tls-san', h.hostIp])] });
});

after(async () => {
  for (const h of hosts) h.proc?.kill('SIGKILL');
  for (const h of hosts) {
    if (h.dir) await teardownRuntime({ dataDir: h.dir, removeDataDir: true }).catch(() => undefined);
    removeHostNetwork(h);
  }
});

test('a host cut off from the server for a minute keeps serving and restarting, then reconciles without duplicates', { timeout: 480_000 }, async () => {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  for (const h of hosts) startNetnsAgent(h, server, token);
  for (const h of hosts) await eventually(async () => (await nodeReady(h.name)) === 'True', `${h.name} Ready`);
  const node = await getNode('netns-a');
  assert.deepEqual(node.status.addresses.find((a: any) => a.type === 'InternalIP'), { type: 'InternalIP', address: hosts[0].ip });

  // `beat` is the container killed during the cut; `web` must serve throughout.
  await server.kubectl(['apply', '-f', '-'], { input: `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - topologyKey: kubernetes.io/hostname
            labelSelector: { matchLabels: { app: web } }
      containers:
      - name: web
        image: ${TEST_IMAGE}
        command: [sh, -c, 'echo served-by-$(hostname) > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']
      - name: beat
        image: ${TEST_IMAGE}
        command: [sleep, '100000']
` }).then(ok);
  ok(await server.kubectl(['rollout', 'status', 'deployment/web', '--timeout=120s'], { timeoutMs: 130_000 }));
  const pods = await webPods();
  assert.deepEqual(pods.map((p) => p.spec.nodeName).sort(), ['netns-a', 'netns-b'], 'one pod per host');
  const onA = pods.find((p) => p.spec.nodeName === 'netns-a');
  const onB = pods.find((p) => p.spec.nodeName === 'netns-b');
  // Admission gave the pod Kubernetes' default toleration of the unreachable taint: 300 s, longer than the cut.
  assert.ok(onA.spec.tolerations.some((t: any) => t.key === 'node.kubernetes.io/unreachable' && t.effect === 'NoExecute' && t.tolerationSeconds === 300),
    `default unreachable toleration: ${JSON.stringify(onA.spec.tolerations)}`);
  const webIdA = statusOf(onA, 'web').containerID.replace('containerd://', '');
  const beatIdA = statusOf(onA, 'beat').containerID.replace('containerd://', '');
  // From inside host a (busybox-static's wget crashes in name resolution here; curl is in the package list).
  const fetchOnA = () => spawnSync('nsenter', [`--net=/var/run/netns/${hosts[0].netns}`, 'curl', '-s', '-m', '3', `http://${onA.status.podIP}:8080/index.html`], { encoding: 'utf8' });
  await eventually(async () => /served-by-/.test(fetchOnA().stdout), 'the pod on host a serving HTTP', 20_000);

  const cri = new CriClient(containerdPaths(hosts[0].dir).socket);
  try {
    const cutAt = Date.now();
    sh(['ip', 'link', 'set', hosts[0].hostIf, 'down']);
    let served = 0;
    let killedAt = 0;
    let restartedAfterMs = -1;
    let sawUnknown = false;
    try {
      // The cut lasts CUT_MS and at least 15 probes: on a busy machine probes take longer, and a count
      // of probes per minute would be a rate, not behaviour.
      while (Date.now() - cutAt < CUT_MS || served < 15) {
        const page = fetchOnA();
        assert.match(page.stdout, /served-by-/, `still serving ${Math.round((Date.now() - cutAt) / 1000)} s into the cut (curl exit ${page.status})`);
        served++;
        // A crash while the server is away: only the agent can restart it.
        if (!killedAt && Date.now() - cutAt > 5_000) {
          const pid = JSON.parse((await cri.containerStatus(beatIdA, true)).info.info).pid;
          assert.ok(pid > 0, 'the beat container has a pid');
          process.kill(pid, 'SIGKILL');
          killedAt = Date.now();
        }
        if (killedAt && restartedAfterMs < 0) {
          const view = await runtimeView(cri, 'netns-a');
          if (view.containers.some((c) => c.name === 'beat' && c.state === 'CONTAINER_RUNNING' && c.restartCount === 1)) restartedAfterMs = Date.now() - killedAt;
        }
        if (!sawUnknown && await nodeReady('netns-a') === 'Unknown') {
          sawUnknown = true;
          // What Kubernetes does to an unreachable node: taint it NoExecute, mark its pods not ready, evict
          // nothing that tolerates the taint (for 300 s by default).
          const n = await getNode('netns-a');
          assert.ok(n.spec.taints?.some((t: any) => t.key === 'node.kubernetes.io/unreachable' && t.effect === 'NoExecute'), `unreachable taint: ${JSON.stringify(n.spec.taints)}`);
          await eventually(async () => {
            const p = (await webPods()).find((x) => x.metadata.uid === onA.metadata.uid);
            return p && !p.metadata.deletionTimestamp && readyOf(p) === 'False';
          }, 'the cut-off pod marked not ready (and not evicted)', 20_000);
        }
        await sleep(Math.max(0, PROBE_EVERY_MS - ((Date.now() - cutAt) % PROBE_EVERY_MS)));
      }
      assert.ok(sawUnknown, 'the node went Unknown during the cut');
      assert.ok(restartedAfterMs >= 0, 'the killed container was restarted during the cut');
      assert.ok(served >= 15, `served ${served} times during the cut`);
    } finally {
      sh(['ip', 'link', 'set', hosts[0].hostIf, 'up']);
    }
    // Keep this in the test's output: how long the cut lasted and how fast the agent alone restarted.
    console.log(`# cut ${Math.round((Date.now() - cutAt) / 1000)} s; served ${served} times; killed container restarted after ${restartedAfterMs} ms`);

    await eventually(async () => {
      const n = await getNode('netns-a');
      return readyOf(n) === 'True' && !(n.spec.taints ?? []).some((t: any) => t.key === 'node.kubernetes.io/unreachable');
    }, 'netns-a Ready and untainted after reconnecting');
    // The API's status is current again: the restart made during the cut is counted, and the pod is Ready.
    const podA = await eventually(async () => {
      const p = (await webPods()).find((x) => x.metadata.uid === onA.metadata.uid);
      return p && readyOf(p) === 'True' && statusOf(p, 'beat')?.restartCount === 1 && statusOf(p, 'beat')?.ready && p;
    }, 'the cut-off pod Ready again with beat restartCount 1', 60_000);
    assert.equal(statusOf(podA, 'web').restartCount, 0);
    assert.equal(statusOf(podA, 'web').containerID, `containerd://${webIdA}`, 'web is the same container');
    assert.equal(statusOf(podA, 'beat').lastState.terminated?.exitCode, 137, 'beat was SIGKILLed');
    assert.equal(podA.status.phase, 'Running');

    // Nothing duplicated in the API: the same two pods, one ReplicaSet.
    const after = await webPods();
    assert.deepEqual(after.map((p) => p.metadata.uid).sort(), [onA.metadata.uid, onB.metadata.uid].sort(), 'the same two pods');
    assert.equal(JSON.parse(await k(['get', 'replicasets', '-l', 'app=web', '-o', 'json'])).items.length, 1);
    const podB = after.find((p) => p.metadata.uid === onB.metadata.uid);
    assert.equal(statusOf(podB, 'beat').containerID, statusOf(onB, 'beat').containerID, 'host b untouched');

    // Nothing duplicated or orphaned in host a's containerd: one ready sandbox, the two running
    // containers the API reports, and the killed instance kept for lastState / logs --previous.
    const view = await runtimeView(cri, 'netns-a');
    assert.deepEqual(view.boxes.map((b) => [b.uid, b.state]), [[onA.metadata.uid, 'SANDBOX_READY']], 'exactly one sandbox, the pod\'s');
    const running = view.containers.filter((c) => c.state === 'CONTAINER_RUNNING');
    assert.deepEqual(running.map((c) => `containerd://${c.id}`).sort(),
      [statusOf(podA, 'web').containerID, statusOf(podA, 'beat').containerID].sort(), 'running containers are the ones the API reports');
    assert.ok(running.every((c) => c.sandbox === view.boxes[0]!.id));
    assert.deepEqual(view.containers.filter((c) => c.state !== 'CONTAINER_RUNNING').map((c) => [c.id, c.name, c.restartCount]),
      [[beatIdA, 'beat', 0]], 'only the killed instance is left besides the running ones');
  } finally {
    cri.close();
  }
});

test('pods on different hosts reach each other by pod IP over the VXLAN overlay, without NAT', { timeout: 180_000 }, async () => {
  const nodes = await Promise.all(hosts.map((h) => getNode(h.name)));
  for (const n of nodes) {
    assert.equal(n.metadata.annotations['flannel.alpha.coreos.com/backend-type'], 'vxlan');
    assert.match(JSON.parse(n.metadata.annotations['flannel.alpha.coreos.com/backend-data']).VtepMAC, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  }
  const [a, b] = nodes;
  assert.equal(b.metadata.annotations['flannel.alpha.coreos.com/public-ip'], hosts[1].ip);
  // Host a routes b's pod CIDR over the overlay, and does not masquerade traffic to it.
  await eventually(async () => sh(['ip', '-n', hosts[0].netns, 'route', 'show', b.spec.podCIDR]).includes('dev flannel.1'), 'the route to b\'s pods on a', 20_000);
  const nat = sh(['nsenter', `--net=/var/run/netns/${hosts[0].netns}`, 'iptables', '-t', 'nat', '-S', 'SKIFF-POSTROUTING']);
  assert.match(nat, new RegExp(`-d ${b.spec.podCIDR.replace(/[./]/g, (c: string) => `\\${c}`)} -j RETURN`));
  const pods = await webPods();
  const onA = pods.find((p) => p.spec.nodeName === a.metadata.name);
  const onB = pods.find((p) => p.spec.nodeName === b.metadata.name);
  const get = (from: any, to: any) => server.kubectl(['exec', from.metadata.name, '-c', 'web', '--', 'sh', '-c',
    `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${to.status.podIP} 8080`]);
  // Host a was cut off from the server in the test before: its tunnel and watches reconnect first,
  // which on a loaded 2-core machine took most of the 30 s this wait once had (CI, session 25), so
  // it waits as long as the helper's default.
  const ab = await eventually(async () => { const r = await get(onA, onB); return r.code === 0 && r.stdout.includes('served-by-') && r; }, 'a pod on a reaching the pod on b');
  assert.match(ab.stdout, new RegExp(`served-by-${onB.metadata.name}`));
  const ba = await get(onB, onA);
  assert.match(ba.stdout, new RegExp(`served-by-${onA.metadata.name}`), ba.stderr);
});

test('kubectl logs -f, exec and port-forward reach a pod on a host behind its own network namespace', { timeout: 180_000 }, async () => {
  await server.kubectl(['apply', '-f', '-'], { input: `
apiVersion: v1
kind: Pod
metadata: { name: ticker }
spec:
  nodeName: netns-b
  containers:
  - name: tick
    image: ${TEST_IMAGE}
    command: [sh, -c, 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done']
  - name: web
    image: ${TEST_IMAGE}
    command: [sh, -c, 'echo behind-the-tunnel > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']
` }).then(ok);
  ok(await server.kubectl(['wait', '--for=condition=Ready', 'pod/ticker', '--timeout=90s'], { timeoutMs: 100_000 }));
  // The server's namespace has no route to host b's pod CIDR: every byte below goes through b's tunnel.
  const base = ['--kubeconfig', server.kubeconfigPath];
  const follow = new KubectlStream(base, ['logs', '-f', 'ticker', '-c', 'tick']);
  try {
    const first = Number((await follow.waitFor(/tick-(\d+)/, 20_000))[1]);
    await follow.waitFor(new RegExp(`tick-${first + 2}`), 20_000);
  } finally { await follow.stop(); }
  const exec = await server.kubectl(['exec', 'ticker', '-c', 'web', '--', 'sh', '-c', 'echo out-$(hostname); echo err >&2; exit 7']);
  assert.equal(exec.code, 7, `exit code through the tunnel: ${exec.stderr}`);
  assert.equal(exec.stdout, 'out-ticker\n');
  assert.match(exec.stderr, /err/);
  const pf = new KubectlStream(base, ['port-forward', 'pod/ticker', ':8080']);
  try {
    const port = (await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/, 20_000))[1];
    const page = spawnSync('curl', ['-s', '-m', '5', `http://127.0.0.1:${port}/index.html`], { encoding: 'utf8' });
    assert.equal(page.stdout, 'behind-the-tunnel\n');
  } finally { await pf.stop(); }
});
