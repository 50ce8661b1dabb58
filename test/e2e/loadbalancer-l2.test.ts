// Bare-metal load balancing end to end (issue 12, items 1 and 2): the server in this machine's
// namespace on a test LAN bridge, two agents in network namespaces on that bridge, and a LAN host
// (a namespace running no agent) on the same /24. The cases run in order on one cluster:
//  - ServiceLB: a LoadBalancer Service without a pool gets the node IPs and answers on them from the
//    LAN host; the enablelb and lbpool labels restrict it; a second Service on the same port gets an
//    event why;
//  - seed 000: the legacy `metallb-system/config` pool (.50-.99 of this run's /24), a Service pinned
//    to .51 answering TCP from the LAN host, a UDP Service sharing .51 (allow-shared-ip); the Service
//    ServiceLB served moves to a pool address (never both); bad input gets clear events;
//  - the same with IPAddressPool + L2Advertisement objects, pool status counts, an overlapping pool;
//  - failover: kill -9 of the announcing agent (and its link down, as a dead host): the LAN host's
//    requests succeed again through the other node; the time is printed, not asserted.
// Needs root, iproute2, nftables, curl, socat, gcc (a static UDP echo for the pods: busybox-static's
// nc has no UDP) and containerd; everything it creates is removed, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, REPO_ROOT, type TestServer } from '../helpers/cluster.js';
import { eventually as waitFor, netnsAgentRequirements, prepareAgentDir, startNetnsAgent, type NetnsHost } from '../helpers/netns-host.js';
import { createL2Lan, lanHost, removeL2Lan, type L2Lan } from '../helpers/l2-lan.js';
import { ok } from '../helpers/kubectl.js';
import { busyboxLayer } from '../helpers/images.js';
import { buildOciArchive, nodePlatform, writeTar } from '../../src/agent/runtime/oci-image-builder.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const pid = process.pid;
const prefix = `10.${100 + (pid % 40)}.${pid % 250}`;   // a /24 of its own per run
const A = lanHost('l2-a', `skl2${pid}a`, `skl2v${pid}a`, prefix, 11);
const B = lanHost('l2-b', `skl2${pid}b`, `skl2v${pid}b`, prefix, 12);
const LAN = lanHost('lan', `skl2${pid}l`, `skl2v${pid}l`, prefix, 20);
const nodes = [A, B];
const lan: L2Lan = { bridge: `skl2br${pid}`.slice(0, 15), prefix, hosts: [A, B, LAN] };
const POOL_IP = `${prefix}.51`;
const IMAGE = 'skiff.local/busybox-udp:test';
let server: TestServer;
let buildDir = '';

const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 90_000) => waitFor(fn, what, ms, nodes);
const k = async (args: string[], input?: string) => ok(await server.kubectl(args, input === undefined ? {} : { input }));
const inNs = (h: NetnsHost, cmd: string[], input?: string) => spawnSync('nsenter', [`--net=/var/run/netns/${h.netns}`, ...cmd],
  { encoding: 'utf8', timeout: 30_000, ...(input !== undefined ? { input } : {}) });
const curl = (url: string, timeoutS = 3) => {
  const r = inNs(LAN, ['curl', '-s', '-m', String(timeoutS), url]);
  return r.status === 0 ? r.stdout.trim() : undefined;
};
/** One UDP datagram from the LAN host, the echo's answer (or undefined). */
const udp = (ip: string, port: number, msg: string) => {
  const r = inNs(LAN, ['socat', '-T', '2', '-', `UDP:${ip}:${port}`], msg);
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
};
const svc = async (name: string) => JSON.parse(await k(['get', 'svc', name, '-o', 'json']));
const ingress = async (name: string) => ((await svc(name)).status?.loadBalancer?.ingress ?? []).map((i: any) => i.ip).sort() as string[];
const eventsOf = async (name: string, ns = 'default') => (JSON.parse(await k(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${name}`, '-o', 'json'])).items as any[])
  .map((e) => `${e.reason}: ${e.message}`);
const l2StatusNode = async (svcName: string) =>
  (await server.kubectl(['get', 'servicel2status', `l2-${svcName}`, '-o', 'jsonpath={.status.node}'])).stdout.trim();
const leaseHolder = async (ip: string) => {
  const r = await server.kubectl(['get', 'lease', '-n', 'kube-system', `skiff-l2-${ip.replace(/\./g, '-')}`, '-o', 'jsonpath={.spec.holderIdentity}']);
  return r.code === 0 ? r.stdout.trim() : '';
};

/**
 * Milliseconds from `t0` to the first request from the LAN host answered by a web pod, trying
 * without pause (short timeouts: the dead node's pod may still be picked by the survivor's proxy
 * until node lifecycle notices, so some attempts time out; any web answer means the service is back).
 */
async function firstSuccess(t0: number, limitMs = 120_000): Promise<number> {
  for (;;) {
    if (/^web-/.test(curl(`http://${POOL_IP}/`, 0.5) ?? '')) return Math.round(performance.now() - t0);
    if (performance.now() - t0 > limitMs) throw new Error(`the LAN host did not reach ${POOL_IP} within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function deployment(name: string, node: string): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name} }
spec:
  replicas: 1
  selector: { matchLabels: { app: web, instance: ${name} } }
  template:
    metadata: { labels: { app: web, instance: ${name} } }
    spec:
      nodeSelector: { kubernetes.io/hostname: ${node} }
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: ${IMAGE}
        command: [sh, -c, 'mkdir -p /www; hostname > /www/index.html; /bin/udp-echo 5353 & exec httpd -f -p 8080 -h /www']
`;
}

function service(name: string, o: { ip?: string; ann?: Record<string, string>; labels?: Record<string, string>; port: number; target: number; protocol?: string }): string {
  const ann = Object.entries(o.ann ?? {}).map(([kk, v]) => `${kk}: "${v}"`).join(', ');
  return `
apiVersion: v1
kind: Service
metadata: { name: ${name}, annotations: { ${ann} }, labels: { ${Object.entries(o.labels ?? {}).map(([kk, v]) => `${kk}: "${v}"`).join(', ')} } }
spec:
  type: LoadBalancer
  ${o.ip ? `loadBalancerIP: ${o.ip}` : ''}
  selector: { app: web }
  ports: [{ port: ${o.port}, targetPort: ${o.target}, protocol: ${o.protocol ?? 'TCP'} }]
`;
}

/** The busybox test image plus a static UDP echo server (built here with gcc). */
function writeImage(dirs: string[]): void {
  buildDir = mkdtempSync('/tmp/skl2-build-');
  const bin = join(buildDir, 'udp-echo');
  execFileSync('gcc', ['-static', '-O2', '-o', bin, join(REPO_ROOT, 'test', 'fixtures', 'udp-echo.c')]);
  const extra = writeTar([{ name: 'bin/udp-echo', mode: 0o755, data: readFileSync(bin) }]);
  const archive = buildOciArchive({ name: IMAGE, layers: [busyboxLayer(), extra], config: { cmd: ['sh'] }, platforms: [nodePlatform()] });
  for (const d of dirs) writeFileSync(join(d, 'agent', 'images', 'busybox-udp.tar'), archive);
}

before(async () => {
  const missing = netnsAgentRequirements();
  for (const bin of ['/usr/sbin/nft', '/usr/bin/socat', '/usr/bin/gcc', '/usr/bin/arping']) if (!existsSync(bin)) missing.push(bin);
  if (missing.length) throw new Error(`the load-balancer test needs: ${missing.join(', ')}`);
  createL2Lan(lan);
  for (const h of nodes) prepareAgentDir(h, 'skiff-l2-');
  writeImage(nodes.map((h) => h.dir));
  server = await startServer({ args: ['--bind-address', '0.0.0.0', '--tls-san', `${prefix}.1`] });
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  for (const h of nodes) startNetnsAgent(h, server, token);
  for (const h of nodes) {
    await eventually(async () => {
      const n = JSON.parse(await k(['get', 'node', h.name, '-o', 'json']));
      return n.status.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
    }, `${h.name} Ready`, 120_000);
  }
  await k(['apply', '-f', '-'], deployment('web-a', A.name) + '---' + deployment('web-b', B.name));
  await eventually(async () => {
    const pods = JSON.parse(await k(['get', 'pods', '-l', 'app=web', '-o', 'json'])).items as any[];
    return pods.length === 2 && pods.every((p) => p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
  }, 'both web pods Ready', 180_000);
});

after(async () => {
  for (const h of nodes) h.proc?.kill('SIGKILL');
  for (const h of nodes) if (h.dir) await teardownRuntime({ dataDir: h.dir, removeDataDir: true }).catch(() => undefined);
  removeL2Lan(lan);
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
});

test('ServiceLB: node IPs answer from the LAN host; enablelb and lbpool restrict; a port clash is explained', { timeout: 240_000 }, async () => {
  await k(['apply', '-f', '-'], service('slb', { port: 8081, target: 8080 }));
  await eventually(async () => JSON.stringify(await ingress('slb')) === JSON.stringify([A.ip, B.ip].sort()), 'slb ingress = both node IPs');
  // The service proxy answers the Service port on each node address (LB ingress equal to a node IP).
  for (const h of nodes) await eventually(async () => /^web-/.test(curl(`http://${h.ip}:8081/`) ?? ''), `slb on ${h.ip}:8081 from the LAN host`);
  await k(['label', 'node', A.name, 'svccontroller.k3s.cattle.io/enablelb=true']);
  await eventually(async () => JSON.stringify(await ingress('slb')) === JSON.stringify([A.ip]), 'slb ingress = node A only (enablelb allow-list)');
  await k(['apply', '-f', '-'], service('slb2', { port: 8081, target: 8080 }));
  const ev = await eventually(async () => (await eventsOf('slb2')).find((e) => e.startsWith('PortInUse')), 'a PortInUse event on slb2');
  assert.match(ev, /TCP\/8081 on node l2-a is already used by LoadBalancer Service default\/slb/);
  assert.deepEqual(await ingress('slb2'), []);
  await k(['delete', 'svc', 'slb2']);
  await k(['label', 'node', A.name, 'svccontroller.k3s.cattle.io/enablelb-']);
  await eventually(async () => (await ingress('slb')).length === 2, 'slb back on both nodes');
  // lbpool: a Service labelled with a pool is served only by the nodes of that pool.
  await k(['label', 'node', B.name, 'svccontroller.k3s.cattle.io/lbpool=blue']);
  await k(['apply', '-f', '-'], service('slb3', { labels: { 'svccontroller.k3s.cattle.io/lbpool': 'blue' }, port: 8082, target: 8080 }));
  await eventually(async () => JSON.stringify(await ingress('slb3')) === JSON.stringify([B.ip]), 'slb3 ingress = node B only (lbpool)');
  await eventually(async () => /^web-/.test(curl(`http://${B.ip}:8082/`) ?? ''), 'slb3 on node B from the LAN host');
  await k(['delete', 'svc', 'slb3']);
  await k(['label', 'node', B.name, 'svccontroller.k3s.cattle.io/lbpool-']);
});

test('seed 000: legacy ConfigMap pool, loadBalancerIP .51 over TCP, a UDP Service sharing it, from the LAN host', { timeout: 240_000 }, async () => {
  await k(['apply', '-f', '-'], `
apiVersion: v1
kind: Namespace
metadata: { name: metallb-system }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: config, namespace: metallb-system }
data:
  config: |
    address-pools:
    - name: default
      protocol: layer2
      addresses:
      - ${prefix}.50-${prefix}.99
`);
  // The pool now serves every LoadBalancer Service: slb leaves the node IPs for a pool address.
  await eventually(async () => {
    const ips = await ingress('slb');
    return ips.length === 1 && Number(ips[0]!.split('.')[3]) >= 50 && Number(ips[0]!.split('.')[3]) <= 99;
  }, 'slb moved from node IPs to a pool address');
  await k(['delete', 'svc', 'slb']);
  const shared = { 'metallb.io/allow-shared-ip': 'seed' };
  await k(['apply', '-f', '-'], service('web', { ip: POOL_IP, ann: shared, port: 80, target: 8080 })
    + '---' + service('web-udp', { ip: POOL_IP, ann: shared, port: 5353, target: 5353, protocol: 'UDP' }));
  await eventually(async () => (await ingress('web'))[0] === POOL_IP && (await ingress('web-udp'))[0] === POOL_IP, 'web and web-udp share .51');
  await eventually(async () => /^web-/.test(curl(`http://${POOL_IP}/`) ?? ''), `TCP to ${POOL_IP}:80 from the LAN host`);
  const echo = await eventually(async () => udp(POOL_IP, 5353, 'ping'), `UDP to ${POOL_IP}:5353 from the LAN host`);
  assert.match(echo, /^web-\S+ ping$/);
  const holder = await eventually(async () => leaseHolder(POOL_IP), 'the announcement lease of .51');
  assert.ok(holder === A.name || holder === B.name, holder);
  const assigned = await eventually(async () => (await eventsOf('web')).find((e) => e.startsWith('nodeAssigned')), 'a nodeAssigned event');
  assert.match(assigned, new RegExp(`announcing from node "${holder}" with protocol "layer2"`));
  await eventually(async () => (await l2StatusNode('web')) === holder, 'ServiceL2Status l2-web naming the holder');
  // Bad input: an address outside every pool, a shared address with a clashing port.
  await k(['apply', '-f', '-'], service('outside', { ip: `${prefix}.200`, port: 80, target: 8080 })
    + '---' + service('clash', { ip: POOL_IP, ann: shared, port: 80, target: 8080 }));
  const outside = await eventually(async () => (await eventsOf('outside')).find((e) => e.startsWith('AllocationFailed')), 'AllocationFailed on outside');
  assert.match(outside, new RegExp(`${prefix.replace(/\./g, '\\.')}\\.200 is outside every address pool`));
  const clash = await eventually(async () => (await eventsOf('clash')).find((e) => e.startsWith('AllocationFailed')), 'AllocationFailed on clash');
  assert.match(clash, /port TCP\/80 is used there by default\/web/);
  assert.deepEqual(await ingress('clash'), []);
  await k(['delete', 'svc', 'outside', 'clash']);
  assert.ok(/^web-/.test(curl(`http://${POOL_IP}/`) ?? ''), 'web still answers after the bad input');
});

test('IPAddressPool + L2Advertisement: address-pool annotation, status counts, an overlapping pool', { timeout: 240_000 }, async () => {
  await k(['apply', '-f', '-'], `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: { name: lan2, namespace: metallb-system }
spec:
  addresses: [${prefix}.100-${prefix}.110]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: { name: lan2, namespace: metallb-system }
spec:
  ipAddressPools: [lan2]
`);
  await k(['apply', '-f', '-'], service('web2', { ann: { 'metallb.io/address-pool': 'lan2' }, port: 80, target: 8080 }));
  const ip = `${prefix}.100`;
  await eventually(async () => (await ingress('web2'))[0] === ip, 'web2 gets the first address of lan2');
  await eventually(async () => /^web-/.test(curl(`http://${ip}/`) ?? ''), `TCP to ${ip} from the LAN host`);
  await eventually(async () => {
    const st = JSON.parse(await k(['get', 'ipaddresspool', 'lan2', '-n', 'metallb-system', '-o', 'json'])).status ?? {};
    return st.assignedIPv4 === 1 && st.availableIPv4 === 10;
  }, 'lan2 status counts');
  await k(['apply', '-f', '-'], `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: { name: overlap, namespace: metallb-system }
spec:
  addresses: [${prefix}.105/32]
`);
  const ev = await eventually(async () => (await eventsOf('overlap', 'metallb-system')).find((e) => e.startsWith('OverlappingPools')), 'an OverlappingPools event');
  assert.match(ev, /overlaps pool "lan2"/);
  await k(['delete', 'ipaddresspool', 'overlap', '-n', 'metallb-system']);
  await k(['delete', 'svc', 'web2']);
});

test('failover: kill -9 of the announcing agent, the LAN host reaches .51 through the other node', { timeout: 240_000 }, async () => {
  const holderName = await eventually(async () => leaseHolder(POOL_IP), 'the holder of .51');
  const dead = nodes.find((h) => h.name === holderName)!;
  const survivor = nodes.find((h) => h !== dead)!;
  assert.ok(/^web-/.test(curl(`http://${POOL_IP}/`) ?? ''), 'web answers before the failover');
  const t0 = performance.now();
  dead.proc?.kill('SIGKILL');
  // A dead host: its link goes too (the kernel there would otherwise keep answering for .51).
  inNs(dead, ['ip', 'link', 'set', 'eth0', 'down']);
  const ms = await firstSuccess(t0);
  const lease = JSON.parse(await k(['get', 'lease', '-n', 'kube-system', `skiff-l2-${POOL_IP.replace(/\./g, '-')}`, '-o', 'json']));
  const takeoverMs = Math.round(Date.parse(lease.spec.acquireTime) - (Date.now() - (performance.now() - t0)));
  console.log(`# L2 failover: ${ms} ms from kill -9 of ${dead.name} to the first successful request from the LAN host (lease taken over by ${lease.spec.holderIdentity} after ${takeoverMs} ms)`);
  assert.equal(lease.spec.holderIdentity, survivor.name);
  const neigh = inNs(LAN, ['ip', 'neigh', 'show', POOL_IP]).stdout;
  const survivorMac = (JSON.parse(spawnSync('ip', ['-n', survivor.netns, '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' }).stdout)[0]?.address ?? '') as string;
  assert.ok(neigh.includes(survivorMac), `the LAN host's ARP entry for .51 names ${survivor.name} (${survivorMac}): ${neigh}`);
  await eventually(async () => udp(POOL_IP, 5353, 'again'), 'UDP through the survivor');
  await eventually(async () => (await l2StatusNode('web')) === survivor.name, 'ServiceL2Status l2-web naming the survivor');
});
