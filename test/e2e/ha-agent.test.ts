// An agent outlives its server (issue 13, item 4). Three servers share an embedded etcd (A with
// --cluster-init, B and C joined), one real agent (containerd, in its own network namespace as its
// own host) joins through A and runs a pod. The agent learns every server from the `kubernetes`
// Endpoints and keeps the list under its data dir. Then A is killed with SIGKILL: the agent's load
// balancer moves its API connections and its tunnel to B or C, its Lease keeps being renewed, the
// node stays Ready, the pod keeps running, `kubectl logs` and `kubectl exec` (exit codes included)
// work through both survivors (the one without the tunnel relays to the one holding it), and a new
// pod scheduled to the node starts and is reached by `kubectl port-forward` through the relay. The agent, restarted with the dead server's URL, comes back through the servers
// it stored. Needs root, containerd, iproute2 and Debian's etcd; everything is removed after.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startServer, type TestServer } from '../helpers/cluster.js';
import {
  createHostNetwork, eventually as waitFor, netnsAgentRequirements, prepareAgentDir, removeHostNetwork, startNetnsAgent, type NetnsHost,
} from '../helpers/netns-host.js';
import { ok } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';
import { serverListPath } from '../../src/agent/loadbalancer/server-list.js';
import { TUNNEL_LEASE_NAMESPACE, tunnelLeaseName } from '../../src/apiserver/tunnel/relay.js';

const run = process.pid % 250;
const host: NetnsHost = {
  name: `ha-agent-${process.pid}`, netns: `skha${process.pid % 100000}`, hostIf: `skhav${process.pid % 100000}`,
  hostIp: `10.192.${run}.1`, ip: `10.192.${run}.2`, dir: '',
};
const servers: TestServer[] = [];
/** B and C joining A (one etcd learner at a time), while the agent comes up on A. */
let joined: Promise<void>;
const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 90_000) => waitFor(fn, what, ms, [host]);
const k = async (s: TestServer, args: string[]) => ok(await s.kubectl(args));
const json = async (s: TestServer, args: string[]) => JSON.parse(await k(s, [...args, '-o', 'json']));
const url = (s: TestServer) => `https://${host.hostIp}:${s.port}`;
/** The server holding the node's tunnel, as recorded for the others (its Lease in kube-system). */
const tunnelHolder = async (s: TestServer) => (await s.kubectl(['get', 'lease', '-n', TUNNEL_LEASE_NAMESPACE, tunnelLeaseName(host.name), '-o', 'json'])
  .then((r) => (r.code === 0 ? JSON.parse(r.stdout).spec?.holderIdentity : undefined)));
const t0 = Date.now();
const phase = (what: string) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);

before(async () => {
  const missing = netnsAgentRequirements();
  if (!existsSync('/usr/bin/etcd')) missing.push('/usr/bin/etcd (Debian etcd-server)');
  if (missing.length) throw new Error(`the agent failover test needs: ${missing.join(', ')}`);
  createHostNetwork(host);
  prepareAgentDir(host, 'skiff-ha-');
  // Each server on every address (the agent's host reaches them through its link), advertising the
  // link address, which the `kubernetes` Endpoints then list; etcd on loopback with its own ports.
  const serverArgs = async () => ['--bind-address', '0.0.0.0', '--advertise-address', host.hostIp, '--tls-san', host.hostIp,
    '--node-ip', '127.0.0.1', '--etcd-client-port', String(await freePort()), '--etcd-peer-port', String(await freePort())];
  const a = await startServer({ args: ['--cluster-init', ...await serverArgs()] });
  servers.push(a);
  phase('server A up');
  const token = readFileSync(join(a.dataDir, 'server', 'token'), 'utf8').trim();
  joined = (async () => {
    for (let i = 0; i < 2; i++) servers.push(await startServer({ args: ['--server', a.url, '--token', token, ...await serverArgs()] }));
    phase('servers B and C up');
  })();
  joined.catch(() => undefined);
});

after(async () => {
  host.proc?.kill('SIGKILL');
  if (host.dir) await teardownRuntime({ dataDir: host.dir, removeDataDir: true }).catch(() => undefined);
  removeHostNetwork(host);
  // The servers (and their etcd children) are stopped and their data dirs removed by cluster.ts.
});

test('kill -9 of the agent\'s server: its node stays Ready through another server, pods run, logs/exec work through every survivor', { timeout: 300_000 }, async () => {
  const a = servers[0]!;
  const nodeToken = readFileSync(join(a.dataDir, 'server', 'node-token'), 'utf8').trim();
  startNetnsAgent(host, a, nodeToken, ['--disable-network-policy', '--ingress-http-port', '0', '--ingress-https-port', '0']);
  await joined;
  const [, b, c] = servers as [TestServer, TestServer, TestServer];
  // The kube-apiserver lease reconciler lists every live server in the `kubernetes` Endpoints; until
  // every server of this test is there, write them as it would.
  const ep = await json(a, ['get', 'endpoints', 'kubernetes', '-n', 'default']);
  const listed = JSON.stringify(ep.subsets ?? []);
  if (!servers.every((s) => listed.includes(String(s.port)))) {
    await a.kubectl(['apply', '-f', '-'], { input: JSON.stringify({
      apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'kubernetes', namespace: 'default', labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
      subsets: servers.map((s) => ({ addresses: [{ ip: host.hostIp }], ports: [{ name: 'https', port: s.port, protocol: 'TCP' }] })),
    }) }).then(ok);
  }
  const ready = async (s: TestServer) => (await json(s, ['get', 'node', host.name])).status.conditions.find((x: any) => x.type === 'Ready')?.status === 'True';
  await eventually(() => ready(a), 'the node Ready');
  phase('node Ready');
  await k(a, ['run', 'one', '--image', TEST_IMAGE, '--restart', 'Never', '--', 'sh', '-c', 'echo started one; exec sleep 3600']);

  // The agent learns them and keeps them under its data dir.
  await eventually(async () => {
    const stored = JSON.parse(readFileSync(serverListPath(host.dir), 'utf8'));
    return servers.every((s) => stored.serverAddresses.includes(`${host.hostIp}:${s.port}`));
  }, 'the agent\'s stored server list naming all three servers');
  phase('the agent knows every server');

  await eventually(async () => (await json(a, ['get', 'pod', 'one'])).status.phase === 'Running', 'pod one Running');
  const containerId = (await json(a, ['get', 'pod', 'one'])).status.containerStatuses[0].containerID;
  // The tunnel is on A, recorded in its Lease; B relays to it.
  await eventually(async () => (await tunnelHolder(b)) === url(a), 'the tunnel recorded as A\'s');
  assert.match(await k(b, ['logs', 'one']), /started one/);
  assert.equal((await k(b, ['exec', 'one', '--', 'echo', 'relayed before'])).trim(), 'relayed before');

  const lease = async (s: TestServer) => Date.parse((await json(s, ['get', 'lease', '-n', 'kube-node-lease', host.name])).spec.renewTime);
  phase('pod one running, logs and exec relayed through B');
  const killedAt = Date.now();
  await a.kill9();
  // Only a renewal stamped after A is gone proves another server took it.
  const goneAt = Date.now();

  // Within the node lease duration its Lease is renewed again, through B or C.
  const renewed = await eventually(async () => ((await lease(b)) > goneAt ? Date.now() : false), 'the node\'s Lease renewed after the kill');
  const holder = await eventually(async () => {
    const h = await tunnelHolder(b);
    return h && h !== url(a) ? h : undefined;
  }, 'the tunnel on a surviving server');
  const tunnelAt = Date.now();
  console.log(`# failover: SIGKILL of the agent's server → Lease renewed via another server ${((renewed - killedAt) / 1000).toFixed(1)} s; tunnel on ${holder} within ${((tunnelAt - killedAt) / 1000).toFixed(1)} s`);
  assert.ok([url(b), url(c)].includes(holder));
  phase('failed over');

  for (const s of [b, c]) {
    assert.ok(await ready(s), `node Ready as ${s.url} sees it`);
    const pod = await json(s, ['get', 'pod', 'one']);
    assert.equal(pod.status.phase, 'Running');
    assert.equal(pod.status.containerStatuses[0].containerID, containerId, 'the same container keeps running');
    // One of B and C holds the tunnel, the other relays: both answer.
    await eventually(async () => /started one/.test(await k(s, ['logs', 'one'])), `logs through ${s.url}`);
    await eventually(async () => (await k(s, ['exec', 'one', '--', 'echo', `via ${s.port}`])).trim() === `via ${s.port}`, `exec through ${s.url}`);
    // The end of a stream (the exit status, after the output) crosses the relay too.
    const r = await s.kubectl(['exec', 'one', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.equal(r.code, 7, `exit code through ${s.url}: ${r.stderr}`);
    assert.equal(r.stdout, 'out\n');
    assert.match(r.stderr, /err/);
  }

  // A new pod scheduled to the node starts, and its logs come back through both survivors.
  await k(b, ['run', 'two', '--image', TEST_IMAGE, '--restart', 'Never', '--', 'sh', '-c',
    'echo started two; echo page-of-two > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']);
  await eventually(async () => {
    const p = await json(c, ['get', 'pod', 'two']);
    return p.spec.nodeName === host.name && p.status.phase === 'Running';
  }, 'pod two Running on the node');
  for (const s of [b, c]) await eventually(async () => /started two/.test(await k(s, ['logs', 'two'])), `logs of pod two through ${s.url}`);
  // port-forward through the server that does not hold the tunnel (it relays).
  const relaying = [b, c].find((s) => url(s) !== holder)!;
  const pf = relaying.kubectlStream(['port-forward', 'pod/two', ':8080']);
  try {
    const port = (await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/, 30_000))[1];
    await eventually(async () => spawnSync('curl', ['-s', '-m', '5', `http://127.0.0.1:${port}/index.html`], { encoding: 'utf8' }).stdout === 'page-of-two\n',
      `port-forward through ${relaying.url}`);
  } finally { await pf.stop(); }
  phase('pod two running, its logs through B and C, port-forward relayed');

  // The agent restarted while the server it was started with is still dead: the list it stored
  // takes it to the others; its Lease is renewed again and it adopts its running pods.
  const twoId = (await json(c, ['get', 'pod', 'two'])).status.containerStatuses[0].containerID;
  host.proc!.kill('SIGKILL');
  await new Promise((r) => host.proc!.once('exit', r));
  const restartedAt = Date.now();
  startNetnsAgent(host, a, nodeToken, ['--disable-network-policy', '--ingress-http-port', '0', '--ingress-https-port', '0']);
  await eventually(async () => (await lease(c)) > restartedAt, 'the Lease renewed by the restarted agent');
  assert.ok(await ready(c));
  for (const name of ['one', 'two']) {
    const p = await json(b, ['get', 'pod', name]);
    assert.equal(p.status.phase, 'Running');
    assert.equal(p.status.containerStatuses[0].containerID, name === 'one' ? containerId : twoId, `pod ${name} adopted, not restarted`);
  }
  await eventually(async () => (await k(c, ['exec', 'two', '--', 'echo', 'after restart'])).trim() === 'after restart', 'exec after the agent restart');
  phase('agent restarted with its server dead: back through the others');
  phase('done');
});
