// Issue 9, item 3: the pod network backends, end to end on a test LAN (test/helpers/lan.ts): a
// server and two agents, each agent a host in its own network namespace on one bridge. The server's
// `--flannel-backend` is switched on restart, vxlan → host-gw → none, and each time:
// - vxlan: a pod on node A reaches a pod on node B by pod IP, the route to B's pod CIDR goes over
//   flannel.1, and pods get the LAN link's MTU less 50 (the LAN runs at 1400, so 1350, not a constant);
// - host-gw: the same reachability with a plain route via B's node IP on the LAN device, flannel.1
//   gone (the switch cleans up), pods at the full 1400, and a peer not on the LAN is refused with a
//   clear error in the agent's log;
// - none: no CNI config and no routes from skiff; the node stays NotReady with the kubelet's
//   "cni plugin not initialized" message (what k3s does with --flannel-backend=none), until a CNI
//   config appears in the agent's CNI folder (the user's own CNI), after which it is Ready.
// Needs root, iproute2 and containerd; everything it creates is removed, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, startServer, type TestServer } from '../helpers/cluster.js';
import { createLan, lanRequirements, type TestLan } from '../helpers/lan.js';
import { eventually as waitFor, type NetnsHost } from '../helpers/netns-host.js';
import { ok } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { bridgeCniConfig, CNI_CONFLIST_FILE } from '../../src/agent/runtime/cni-config.js';
import { parseToken } from '../../src/pki/token.js';

const LAN_MTU = 1400;
let lan: TestLan;
let server: TestServer;
let a: NetnsHost;
let b: NetnsHost;
/** The server's flags; the backend element is changed in place before each restart (restart() reuses the array). */
const serverArgs: string[] = [];

const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 120_000) => waitFor(fn, what, ms, [a, b]);
const k = async (args: string[], input?: string) => ok(await server.kubectl(args, { input, timeoutMs: 150_000 }), `kubectl ${args.join(' ')}`);
const getNode = async (name: string) => JSON.parse(await k(['get', 'node', name, '-o', 'json']));
const readyCondition = (node: any) => node.status.conditions?.find((c: any) => c.type === 'Ready');
const token = () => readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
const conflist = (h: NetnsHost) => join(h.dir, 'agent', 'cni', 'conf', CNI_CONFLIST_FILE);
const inNode = (h: NetnsHost, cmd: string[]) => lan.exec(h, cmd).stdout;
const routeTo = (h: NetnsHost, cidr: string) => (JSON.parse(inNode(h, ['ip', '-j', 'route', 'show', cidr]) || '[]') as any[])[0];

/** Restarts the server on `backend` and the agents after it (as an operator changing the flag would). */
async function switchBackend(backend: string): Promise<void> {
  await Promise.all([lan.stopAgent(a), lan.stopAgent(b)]);
  serverArgs.splice(serverArgs.indexOf('--flannel-backend') + 1, 1, backend);
  await server.restart();
  startAgents();
}

/** A names its LAN device with --flannel-iface; B leaves it to the default (the node IP's interface). */
function startAgents(): void {
  lan.startAgent(a, server, token(), { args: ['--flannel-iface', 'eth0'] });
  lan.startAgent(b, server, token());
}

async function agentsUp(backend: string): Promise<void> {
  for (const h of [a, b]) {
    await eventually(async () => {
      const n = await getNode(h.name);
      const published = n.metadata.annotations?.['flannel.alpha.coreos.com/backend-type'];
      return readyCondition(n)?.status === 'True' && published === backend && n.metadata.annotations['flannel.alpha.coreos.com/public-ip'] === h.ip;
    }, `${h.name} Ready publishing a ${backend} endpoint`);
  }
}

/** A web pod on B and a client pod on A; returns the web pod's IP once both run. */
async function podsAcross(tag: string): Promise<string> {
  await k(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: web-${tag}, labels: { app: web-${tag} } }
spec:
  nodeName: ${b.name}
  terminationGracePeriodSeconds: 0   # httpd as PID 1 ignores SIGTERM: deleting would wait out the 30 s
  containers:
  - name: web
    image: ${TEST_IMAGE}
    command: [sh, -c, 'echo hello-from-$(hostname) > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']
---
apiVersion: v1
kind: Pod
metadata: { name: client-${tag} }
spec:
  nodeName: ${a.name}
  terminationGracePeriodSeconds: 0
  containers:
  - name: client
    image: ${TEST_IMAGE}
    command: [sleep, '100000']
`);
  await k(['wait', '--for=condition=Ready', `pod/web-${tag}`, `pod/client-${tag}`, '--timeout=120s']);
  return JSON.parse(await k(['get', 'pod', `web-${tag}`, '-o', 'json'])).status.podIP;
}

/**
 * The client on A reaches web on B through a Service by name: the node-local DNS answers the
 * Service's ClusterIP (through --cluster-dns), the service proxy carries it across the backend.
 */
async function byServiceName(tag: string): Promise<void> {
  await k(['expose', 'pod', `web-${tag}`, '--port=80', '--target-port=8080']);
  const clusterIp = JSON.parse(await k(['get', 'svc', `web-${tag}`, '-o', 'json'])).spec.clusterIP as string;
  for (const name of [`web-${tag}`, `web-${tag}.default.svc.cluster.local`]) {
    const script = `addr=$(nslookup ${name} | awk '/^Address/ {a=$NF} END {print a}'); echo "ip=$addr"; printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 "$addr" 80`;
    await eventually(async () => {
      const r = await server.kubectl(['exec', `client-${tag}`, '--', 'sh', '-c', script], { timeoutMs: 30_000 });
      return r.stdout.includes(`ip=${clusterIp}\n`) && r.stdout.includes(`hello-from-web-${tag}`);
    }, `${name} → ${clusterIp} → web-${tag} on B`);
  }
  await k(['delete', 'svc', `web-${tag}`]);
}

async function fetchFromClient(tag: string, ip: string): Promise<string> {
  const r = await server.kubectl(['exec', `client-${tag}`, '--', 'sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 8080`], { timeoutMs: 30_000 });
  return r.stdout;
}

async function podMtu(tag: string): Promise<number> {
  return Number((await k(['exec', `client-${tag}`, '--', 'cat', '/sys/class/net/eth0/mtu'])).trim());
}

before(async () => {
  const missing = lanRequirements();
  if (missing.length) throw new Error(`the network backends test needs: ${missing.join(', ')}`);
  lan = createLan({ mtu: LAN_MTU });
  a = lan.addNode('lan-a');
  b = lan.addNode('lan-b');
  serverArgs.push(...lan.serverArgs(), '--flannel-backend', 'vxlan');
  server = await startServer({ args: serverArgs });
  startAgents();
});

after(async () => { await lan?.destroy(); });

test('vxlan: pod to pod across nodes through flannel.1, pods at the LAN MTU less 50', { timeout: 300_000 }, async () => {
  await agentsUp('vxlan');
  // What the agents read at start: only for holders of the join token (or a node certificate).
  assert.equal((await server.request('GET', '/v1-skiff/config', { noAuth: true })).status, 401);
  const cfg = await server.request('GET', '/v1-skiff/config', { noAuth: true, headers: { authorization: `Bearer ${parseToken(token()).password}` } });
  assert.equal(cfg.status, 200, cfg.body);
  assert.deepEqual(cfg.json(), { flannelBackend: 'vxlan', clusterCidr: '10.42.0.0/16' });
  const podCidrB = (await getNode(b.name)).spec.podCIDR;
  const ip = await podsAcross('vx');
  await eventually(async () => /hello-from-web-vx/.test(await fetchFromClient('vx', ip)), 'the pod on A fetching the page of the pod on B');
  await byServiceName('vx');
  const route = routeTo(a, podCidrB);
  assert.equal(route?.dev, 'flannel.1', `route to ${podCidrB} on A: ${JSON.stringify(route)}`);
  assert.equal(await podMtu('vx'), LAN_MTU - 50);
  assert.equal(JSON.parse(readFileSync(conflist(a), 'utf8')).plugins[0].mtu, LAN_MTU - 50);
  assert.match(inNode(a, ['ip', '-d', 'link', 'show', 'flannel.1']), new RegExp(`mtu ${LAN_MTU - 50} .*vxlan id 1 local ${a.ip.replace(/\./g, '\\.')} dev eth0`, 's'));
});

test('host-gw: switching on restart removes flannel.1; plain routes via the peer node IP; full MTU; off-LAN peer refused', { timeout: 300_000 }, async () => {
  await k(['delete', 'pod', 'web-vx', 'client-vx', '--wait=true']);
  await switchBackend('host-gw');
  await agentsUp('host-gw');
  const nodeB = await getNode(b.name);
  assert.equal(nodeB.metadata.annotations['flannel.alpha.coreos.com/backend-data'], 'null');
  for (const h of [a, b]) {
    await eventually(async () => !/flannel\.1/.test(inNode(h, ['ip', 'link', 'show'])), `flannel.1 gone on ${h.name}`, 30_000);
  }
  const podCidrB = nodeB.spec.podCIDR;
  await eventually(async () => routeTo(a, podCidrB)?.gateway === b.ip, `a route to ${podCidrB} via ${b.ip} on A`, 30_000);
  const route = routeTo(a, podCidrB);
  assert.equal(route.dev, 'eth0', JSON.stringify(route));
  assert.equal(route.protocol, '83', JSON.stringify(route));
  const ip = await podsAcross('gw');
  await eventually(async () => /hello-from-web-gw/.test(await fetchFromClient('gw', ip)), 'the pod on A fetching the page of the pod on B over host-gw');
  await byServiceName('gw');
  assert.equal(await podMtu('gw'), LAN_MTU);
  assert.equal(JSON.parse(readFileSync(conflist(a), 'utf8')).plugins[0].mtu, LAN_MTU);

  // A node whose address is behind a router (not on the LAN): no route, and the agent says why.
  await k(['apply', '-f', '-'], `
apiVersion: v1
kind: Node
metadata:
  name: far-away
  annotations:
    flannel.alpha.coreos.com/backend-type: host-gw
    flannel.alpha.coreos.com/backend-data: 'null'
    flannel.alpha.coreos.com/public-ip: 192.0.2.10
    flannel.alpha.coreos.com/kube-subnet-manager: 'true'
spec: { podCIDR: 10.42.250.0/24 }
`);
  await eventually(async () => /far-away.*not on this node's L2 segment/.test(readFileSync(join(a.dir, 'agent.log'), 'utf8')), 'the off-LAN peer error in A\'s log', 30_000);
  assert.equal(routeTo(a, '10.42.250.0/24'), undefined, 'no route to the off-LAN peer\'s pods');
  await k(['delete', 'node', 'far-away']);
});

test('none: no CNI config and no routes from skiff; NotReady as k3s until the user\'s CNI config appears', { timeout: 300_000 }, async (t) => {
  await k(['delete', 'pod', 'web-gw', 'client-gw', '--wait=true']);
  const podCidrA = (await getNode(a.name)).spec.podCIDR;
  const podCidrB = (await getNode(b.name)).spec.podCIDR;
  await switchBackend('none');
  await eventually(async () => {
    const n = await getNode(a.name);
    const ready = readyCondition(n);
    return ready?.status === 'False' && /NetworkReady=false/.test(ready.message) && /cni plugin not initialized|no network config/i.test(ready.message)
      && !n.metadata.annotations?.['flannel.alpha.coreos.com/backend-type'];
  }, `${a.name} NotReady for want of a CNI, its flannel annotations withdrawn`);
  t.diagnostic(`Ready condition: ${readyCondition(await getNode(a.name)).message}`);
  assert.equal(existsSync(conflist(a)), false, 'skiff wrote no CNI config');
  assert.equal(inNode(a, ['ip', 'route', 'show', 'proto', '83']).trim(), '', 'host-gw routes removed');
  assert.equal(routeTo(a, podCidrB), undefined);

  // Bring your own CNI: any config in the agent's CNI folder makes the runtime's network ready.
  writeFileSync(join(a.dir, 'agent', 'cni', 'conf', '10-user.conflist'),
    JSON.stringify(bridgeCniConfig(podCidrA, 'usercni0', join(a.dir, 'agent', 'cni', 'user-ipam'))));
  await eventually(async () => readyCondition(await getNode(a.name))?.status === 'True', `${a.name} Ready once a CNI config is installed`, 60_000);
});

test('an unknown --flannel-backend is refused at start, naming the backends', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-fb-'));
  try {
    const r = spawnSync(join(REPO_ROOT, 'bin', 'skiff'), ['server', '--data-dir', dir, '--flannel-backend', 'wireguard-native', '--disable-agent'], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--flannel-backend: unknown backend "wireguard-native": one of vxlan, host-gw, none/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
