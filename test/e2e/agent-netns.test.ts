// Two agents, each in its own network namespace as its own host (veth to the server's namespace),
// run a Deployment's pods as real containers; one host is then cut off from the server: its pods keep
// running and serving, its node goes NotReady, and after the link comes back the node is Ready again
// with the same containers and no duplicate pods. Needs root, iproute2 and containerd; everything it
// creates (namespaces, links, containerd instances, mounts, temp dirs) is removed, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, REPO_ROOT, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { writeBusyboxImage, TEST_IMAGE } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';
import { CriClient } from '../../src/agent/runtime/cri-client.js';

interface Host { name: string; netns: string; hostIf: string; hostIp: string; ip: string; dir: string; proc?: ChildProcess }
const run = process.pid % 1000;
const hosts: Host[] = ['a', 'b'].map((n, i) => ({
  name: `netns-${n}`, netns: `skne2e${run}${n}`, hostIf: `skv${run}${n}`,
  hostIp: `10.199.${i + 1}.1`, ip: `10.199.${i + 1}.2`, dir: '',
}));
let server: TestServer;

function sh(cmd: string[], check = true): string {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
  if (check && r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

function requirements(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const bin of ['/usr/bin/containerd', '/usr/sbin/runc', '/usr/lib/cni/bridge', '/bin/busybox', '/usr/bin/nsenter', '/usr/bin/curl']) if (!existsSync(bin)) missing.push(bin);
  if (spawnSync('ip', ['-V']).status !== 0) missing.push('iproute2 (ip)');
  return missing;
}

function makeHost(h: Host): void {
  sh(['ip', 'netns', 'add', h.netns]);
  sh(['ip', 'link', 'add', h.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns]);
  sh(['ip', 'addr', 'add', `${h.hostIp}/24`, 'dev', h.hostIf]);
  sh(['ip', 'link', 'set', h.hostIf, 'up']);
  const inNs = (args: string[]) => sh(['ip', '-n', h.netns, ...args]);
  inNs(['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
  inNs(['link', 'set', 'eth0', 'up']);
  inNs(['link', 'set', 'lo', 'up']);
  inNs(['route', 'add', 'default', 'via', h.hostIp]);
  // Short: containerd's socket path must fit a unix socket address.
  h.dir = mkdtempSync('/tmp/skiff-nh-');
  mkdirSync(join(h.dir, 'agent', 'images'), { recursive: true });
  writeBusyboxImage(join(h.dir, 'agent', 'images'), 'busybox.tar');
}

function startAgent(h: Host, token: string): void {
  const log = openSync(join(h.dir, 'agent.log'), 'a');
  try {
    // nsenter --net only: `ip netns exec` would remount /sys and hide the cgroup mounts containerd needs.
    h.proc = spawn('nsenter', [`--net=/var/run/netns/${h.netns}`, join(REPO_ROOT, 'bin', 'skiff'), 'agent',
      '--server', `https://${h.hostIp}:${server.port}`, '--token', token, '--data-dir', h.dir,
      '--node-name', h.name, '--node-ip', h.ip], { stdio: ['ignore', log, log] });
  } finally { closeSync(log); }
}

async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, ms = 90_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) {
      const tails = hosts.map((h) => { try { return `--- ${h.name}\n${readFileSync(join(h.dir, 'agent.log'), 'utf8').split('\n').slice(-15).join('\n')}`; } catch { return ''; } });
      throw new Error(`timed out waiting for ${what}\n${tails.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const k = async (args: string[]) => ok(await server.kubectl(args));
const nodeReady = async (name: string) => {
  const n = JSON.parse(await k(['get', 'node', name, '-o', 'json']));
  return n.status.conditions.find((c: any) => c.type === 'Ready')?.status;
};

before(async () => {
  const missing = requirements();
  if (missing.length) throw new Error(`the network-namespace agent test needs: ${missing.join(', ')}`);
  for (const h of hosts) makeHost(h);
  server = await startServer({ args: ['--bind-address', '0.0.0.0', '--node-monitor-grace-period', '15', ...hosts.flatMap((h) => ['--tls-san', h.hostIp])] });
});

after(async () => {
  for (const h of hosts) h.proc?.kill('SIGKILL');
  for (const h of hosts) {
    if (h.dir) await teardownRuntime({ dataDir: h.dir, removeDataDir: true }).catch(() => undefined);
    spawnSync('ip', ['netns', 'del', h.netns], { stdio: 'ignore' });
    spawnSync('ip', ['link', 'del', h.hostIf], { stdio: 'ignore' });
  }
});

test('two agents in their own network namespaces run pods; one cut off keeps serving and recovers', { timeout: 420_000 }, async () => {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  for (const h of hosts) startAgent(h, token);
  for (const h of hosts) await eventually(async () => (await nodeReady(h.name)) === 'True', `${h.name} Ready`);
  const node = JSON.parse(await k(['get', 'node', 'netns-a', '-o', 'json']));
  assert.deepEqual(node.status.addresses.find((a: any) => a.type === 'InternalIP'), { type: 'InternalIP', address: hosts[0].ip });

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
` }).then(ok);
  ok(await server.kubectl(['rollout', 'status', 'deployment/web', '--timeout=120s'], { timeoutMs: 130_000 }));
  const pods = JSON.parse(await k(['get', 'pods', '-l', 'app=web', '-o', 'json'])).items;
  assert.deepEqual(pods.map((p: any) => p.spec.nodeName).sort(), ['netns-a', 'netns-b'], 'one pod per host');
  const onA = pods.find((p: any) => p.spec.nodeName === 'netns-a');
  // From inside host a (busybox-static's wget crashes in name resolution here; curl is in the package list).
  const fetchOnA = () => spawnSync('nsenter', [`--net=/var/run/netns/${hosts[0].netns}`, 'curl', '-s', '-m', '3', `http://${onA.status.podIP}:8080/index.html`], { encoding: 'utf8' });
  await eventually(async () => /served-by-/.test(fetchOnA().stdout), 'the pod on host a serving HTTP', 20_000);

  // Cut host a off from the server for longer than the node grace period.
  sh(['ip', 'link', 'set', hosts[0].hostIf, 'down']);
  try {
    await eventually(async () => (await nodeReady('netns-a')) === 'Unknown', 'netns-a NotReady (Unknown) while cut off', 60_000);
    assert.match(fetchOnA().stdout, /served-by-/, 'still serving while cut off');
    const cri = new CriClient(join(hosts[0].dir, 'agent', 'containerd', 'containerd.sock'));
    try {
      const id = onA.status.containerStatuses[0].containerID.replace('containerd://', '');
      const st = await cri.containerStatus(id);
      assert.equal(st.status?.state, 'CONTAINER_RUNNING');
    } finally { cri.close(); }
  } finally {
    sh(['ip', 'link', 'set', hosts[0].hostIf, 'up']);
  }
  await eventually(async () => (await nodeReady('netns-a')) === 'True', 'netns-a Ready again after reconnecting');
  const after = JSON.parse(await k(['get', 'pods', '-l', 'app=web', '-o', 'json'])).items;
  assert.equal(after.length, 2, 'no duplicate pods');
  const afterA = after.find((p: any) => p.metadata.uid === onA.metadata.uid);
  assert.ok(afterA, 'the same pod is still there');
  assert.equal(afterA.status.containerStatuses[0].containerID, onA.status.containerStatuses[0].containerID, 'same container');
  assert.equal(afterA.status.phase, 'Running');
});
