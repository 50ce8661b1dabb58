// Issue 9's DNS acceptance, end to end: a real server, one agent as its own host (network namespace),
// and a "LAN host" namespace linked to it that runs Debian's dnsmasq as the agent's upstream resolver
// (given to the agent with --resolv-conf). Checked with busybox `nslookup` inside a pod and `dig` in
// the node's namespace, both asking the agent's node-local server on the pod bridge's gateway
// (10.42.x.1; the service proxy's DNAT of the cluster DNS IP is tested with the proxy):
// A, SRV, PTR, headless, StatefulSet pod hostname, ExternalName, pod /etc/resolv.conf and /etc/hosts;
// stub domains and extra hosts from the skiff-dns ConfigMap; answers from the last-known state while the
// node is cut off from the server; an external name resolved through dnsmasq, then served from the
// cache with dnsmasq stopped; and, after a restart with no upstream at all, cluster names still answer
// while others SERVFAIL.
// Needs root, iproute2, containerd, dnsmasq and dig; everything created is removed, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, startServer, type TestServer } from '../helpers/cluster.js';
import {
  createHostNetwork, eventually as waitFor, netnsAgentRequirements, prepareAgentDir, removeHostNetwork, sh, type NetnsHost,
} from '../helpers/netns-host.js';
import { ok } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const run = process.pid % 250;
const host: NetnsHost = { name: `dns-node-${run}`, netns: `skdns${run}a`, hostIf: `skdv${run}a`, hostIp: `10.197.${run}.1`, ip: `10.197.${run}.2`, dir: '' };
/** The LAN host: its own namespace, linked to the node's by a veth pair (node side lan0). */
const lan = { netns: `skdns${run}l`, nodeIf: 'lan0', nodeIp: `10.196.${run}.1`, ip: `10.196.${run}.2` };
const NS = 'dnse2e';
/** How long the node is cut off from the server (the informers' watches fail and retry meanwhile):
 * the issue's "a node cut off from the server for a minute". */
const CUT_MS = 60_000;
let server: TestServer;
let agent: ChildProcess | undefined;
let dnsmasq: ChildProcess | undefined;
let stubDnsmasq: ChildProcess | undefined;
let token = '';

const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 120_000) => waitFor(fn, what, ms, [host]);
const k = async (args: string[]) => ok(await server.kubectl(args));
const inNode = (cmd: string[]) => spawnSync('nsenter', [`--net=/var/run/netns/${host.netns}`, ...cmd], { encoding: 'utf8', timeout: 20_000 });
/** `dig` in the node's namespace against its DNS server: the answer lines (`+short`) or the status. */
const dig = (gw: string, args: string[]) => inNode(['dig', '+time=3', '+tries=1', `@${gw}`, ...args]).stdout;
const digShort = (gw: string, args: string[]) => dig(gw, ['+short', ...args]).trim().split('\n').filter((l) => l && !l.startsWith(';')).sort();
const digStatus = (gw: string, args: string[]) => dig(gw, args).match(/status: ([A-Z]+)/)?.[1];

/** The agent in its own namespace runs its service proxy (the cluster helper opts root-namespace agents out). */
function agentEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.SKIFF_DISABLE_KUBE_PROXY;
  return env;
}

function startAgent(resolvConf: string): void {
  const log = openSync(join(host.dir, 'agent.log'), 'a');
  try {
    agent = spawn('nsenter', [`--net=/var/run/netns/${host.netns}`, join(REPO_ROOT, 'bin', 'skiff'), 'agent',
      '--server', `https://${host.hostIp}:${server.port}`, '--token', token, '--data-dir', host.dir,
      '--node-name', host.name, '--node-ip', host.ip, '--resolv-conf', resolvConf], { stdio: ['ignore', log, log], env: agentEnv() });
  } finally { closeSync(log); }
}

async function stopAgent(): Promise<void> {
  if (!agent || agent.exitCode !== null) return;
  const exited = new Promise((r) => agent!.once('exit', r));
  agent.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (agent.exitCode === null) agent.kill('SIGKILL');
}

/** The LAN's resolver (ext.test) on port 53, or with `extra` a second one (the stub domain's server). */
function startDnsmasq(extra?: string[]): void {
  // --local-ttl: dnsmasq gives its own --address answers TTL 0 by default; a real TTL lets the cache work.
  const p = spawn('nsenter', [`--net=/var/run/netns/${lan.netns}`, '/usr/sbin/dnsmasq', '--no-daemon', '--conf-file=/dev/null',
    '--no-resolv', '--no-hosts', `--listen-address=${lan.ip}`, '--bind-interfaces', '--local-ttl=600',
    ...(extra ?? ['--address=/ext.test/192.0.2.7', '--port=53']), `--pid-file=${join(host.dir, extra ? 'dnsmasq-stub.pid' : 'dnsmasq.pid')}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  if (extra) stubDnsmasq = p; else dnsmasq = p;
}

async function stopDnsmasq(): Promise<void> {
  if (!dnsmasq || dnsmasq.exitCode !== null) return;
  const exited = new Promise((r) => dnsmasq!.once('exit', r));
  dnsmasq.kill('SIGTERM');
  await exited;
}

before(async () => {
  const missing = netnsAgentRequirements();
  for (const bin of ['/usr/sbin/dnsmasq', '/usr/bin/dig']) if (!existsSync(bin)) missing.push(bin);
  if (missing.length) throw new Error(`the cluster DNS test needs: ${missing.join(', ')}`);
  createHostNetwork(host);
  prepareAgentDir(host, 'skiff-dns-');
  sh(['ip', 'netns', 'add', lan.netns]);
  sh(['ip', 'link', 'add', lan.nodeIf, 'netns', host.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lan.netns]);
  sh(['ip', '-n', host.netns, 'addr', 'add', `${lan.nodeIp}/24`, 'dev', lan.nodeIf]);
  sh(['ip', '-n', host.netns, 'link', 'set', lan.nodeIf, 'up']);
  sh(['ip', '-n', lan.netns, 'addr', 'add', `${lan.ip}/24`, 'dev', 'eth0']);
  sh(['ip', '-n', lan.netns, 'link', 'set', 'eth0', 'up']);
  sh(['ip', '-n', lan.netns, 'link', 'set', 'lo', 'up']);
  writeFileSync(join(host.dir, 'resolv.conf'), `# the LAN's resolver\nnameserver ${lan.ip}\nsearch lan.test\n`);
  writeFileSync(join(host.dir, 'resolv-none.conf'), '# air-gapped: no nameserver\n');
  startDnsmasq();
  server = await startServer({ args: ['--bind-address', '0.0.0.0', '--tls-san', host.hostIp] });
  token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
});

after(async () => {
  agent?.kill('SIGKILL');
  dnsmasq?.kill('SIGKILL');
  stubDnsmasq?.kill('SIGKILL');
  if (host.dir) await teardownRuntime({ dataDir: host.dir, removeDataDir: true }).catch(() => undefined);
  spawnSync('ip', ['netns', 'del', lan.netns], { stdio: 'ignore' });
  removeHostNetwork(host);
});

test('cluster DNS from the node-local server: records in pods and on the node, upstream, cache, air gap', { timeout: 600_000 }, async () => {
  // kube-dns as on k3s: the cluster DNS IP, dns/dns-tcp/metrics, no selector.
  const kubeDns = JSON.parse(await k(['get', 'svc', '-n', 'kube-system', 'kube-dns', '-o', 'json']));
  assert.equal(kubeDns.spec.clusterIP, '10.43.0.10');
  assert.deepEqual(kubeDns.spec.ports.map((p: any) => `${p.name}:${p.port}/${p.protocol}`), ['dns:53/UDP', 'dns-tcp:53/TCP', 'metrics:9153/TCP']);
  assert.equal(kubeDns.metadata.labels['k8s-app'], 'kube-dns');
  assert.equal(kubeDns.spec.selector, undefined);

  startAgent(join(host.dir, 'resolv.conf'));
  await eventually(async () => JSON.parse(await k(['get', 'node', host.name, '-o', 'json'])).status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'), 'the node Ready');
  const podCidr: string = JSON.parse(await k(['get', 'node', host.name, '-o', 'json'])).spec.podCIDR;
  const gw = podCidr.replace(/\.0\/\d+$/, '.1');

  await server.kubectl(['apply', '-f', '-'], { input: `
apiVersion: v1
kind: Namespace
metadata: { name: ${NS} }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: ${NS} }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
      - { name: web, image: ${TEST_IMAGE}, command: [sh, -c, 'echo hi > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'], ports: [{ name: http, containerPort: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ${NS} }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http, protocol: TCP }]
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: ${NS} }
spec:
  clusterIP: None
  selector: { app: db }
  ports: [{ name: pg, port: 5432, protocol: TCP }]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: db, namespace: ${NS} }
spec:
  serviceName: db
  replicas: 2
  podManagementPolicy: Parallel
  selector: { matchLabels: { app: db } }
  template:
    metadata: { labels: { app: db } }
    spec:
      containers:
      - { name: db, image: ${TEST_IMAGE}, command: [sleep, '100000'], ports: [{ name: pg, containerPort: 5432 }] }
---
apiVersion: v1
kind: Service
metadata: { name: ext, namespace: ${NS} }
spec: { type: ExternalName, externalName: www.ext.test }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: ${NS} }
spec:
  hostAliases: [{ ip: 192.0.2.99, hostnames: [printer.local] }]
  containers:
  - { name: c, image: ${TEST_IMAGE}, command: [sleep, '100000'] }
` }).then(ok);
  const podsReady = async () => {
    const pods = JSON.parse(await k(['get', 'pods', '-n', NS, '-o', 'json'])).items as any[];
    return pods.length === 4 && pods.every((p) => p.status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')) && pods;
  };
  const pods = await eventually(podsReady, 'web, db-0, db-1 and client Ready', 240_000);
  const ip = (name: string) => pods.find((p: any) => p.metadata.name === name || p.metadata.name.startsWith(`${name}-`)).status.podIP as string;
  const webIp = JSON.parse(await k(['get', 'svc', '-n', NS, 'web', '-o', 'json'])).spec.clusterIP as string;
  const fqdn = (n: string) => `${n}.${NS}.svc.cluster.local`;

  // --- dig from the node's namespace ---
  await eventually(async () => digShort(gw, [fqdn('web')]).join() === webIp, 'web\'s ClusterIP from dig', 60_000);
  assert.deepEqual(digShort(gw, ['+tcp', fqdn('web')]), [webIp], 'over TCP too');
  await eventually(async () => digShort(gw, [fqdn('db')]).join() === [ip('db-0'), ip('db-1')].sort().join(), 'the headless Service\'s endpoints', 60_000);
  assert.deepEqual(digShort(gw, [fqdn('db-0.db')]), [ip('db-0')]);
  assert.deepEqual(digShort(gw, ['SRV', `_http._tcp.${fqdn('web')}`]), [`0 100 80 ${fqdn('web')}.`]);
  assert.deepEqual(digShort(gw, ['SRV', `_pg._tcp.${fqdn('db')}`]), [`0 50 5432 ${fqdn('db-0.db')}.`, `0 50 5432 ${fqdn('db-1.db')}.`]);
  assert.deepEqual(digShort(gw, ['-x', webIp]), [`${fqdn('web')}.`]);
  assert.deepEqual(digShort(gw, ['-x', ip('db-1')]), [`${fqdn('db-1.db')}.`]);
  assert.deepEqual(digShort(gw, [fqdn('ext')]), ['192.0.2.7', 'www.ext.test.'], 'ExternalName: CNAME, then the target via dnsmasq');
  assert.deepEqual(digShort(gw, [`${ip('client').replaceAll('.', '-')}.${NS}.pod.cluster.local`]), [ip('client')]);
  assert.deepEqual(digShort(gw, [host.name]), [host.ip], 'the node name (k3s NodeHosts)');
  assert.equal(digStatus(gw, [fqdn('nope')]), 'NXDOMAIN');
  assert.equal(digStatus(gw, ['AAAA', fqdn('web')]), 'NOERROR', 'IPv4-only: NODATA');
  assert.deepEqual(digShort(gw, ['AAAA', fqdn('web')]), []);
  assert.deepEqual(digShort(gw, ['ns.dns.cluster.local']), ['10.43.0.10']);

  // --- nslookup inside a pod (busybox's own resolver), against the node-local server ---
  const nslookup = async (args: string[]) => {
    const r = await server.kubectl(['exec', '-n', NS, 'client', '--', 'nslookup', ...args, gw]);
    return r.stdout + r.stderr;
  };
  assert.match(await nslookup([fqdn('web')]), new RegExp(`Address: ${webIp.replace(/\./g, '\\.')}`));
  const headless = await nslookup([fqdn('db')]);
  for (const n of ['db-0', 'db-1']) assert.match(headless, new RegExp(`Address: ${ip(n).replace(/\./g, '\\.')}`), headless);
  assert.match(await nslookup([fqdn('db-1.db')]), new RegExp(`Address: ${ip('db-1').replace(/\./g, '\\.')}`));
  assert.match(await nslookup(['-type=srv', `_pg._tcp.${fqdn('db')}`]), new RegExp(`5432 ${fqdn('db-0.db').replace(/\./g, '\\.')}`));
  assert.match(await nslookup([webIp]), new RegExp(`name = ${fqdn('web').replace(/\./g, '\\.')}`));
  const ext = await nslookup([fqdn('ext')]);
  assert.match(ext, /canonical name = www\.ext\.test/, ext);
  assert.match(ext, /Address: 192\.0\.2\.7/, ext);
  assert.match(await nslookup(['www.ext.test']), /Address: 192\.0\.2\.7/, 'an external name through the upstream');

  // --- what the pods were given: resolv.conf as the kubelet writes it, /etc/hosts with FQDN and aliases ---
  const resolv = await k(['exec', '-n', NS, 'client', '--', 'cat', '/etc/resolv.conf']);
  assert.match(resolv, /nameserver 10\.43\.0\.10/);
  assert.match(resolv, new RegExp(`search ${NS}\\.svc\\.cluster\\.local svc\\.cluster\\.local cluster\\.local lan\\.test`), resolv);
  assert.match(resolv, /options ndots:5/);
  assert.match(await k(['exec', '-n', NS, 'client', '--', 'cat', '/etc/hosts']), /192\.0\.2\.99\tprinter\.local/);
  const dbHosts = await k(['exec', '-n', NS, 'db-0', '--', 'cat', '/etc/hosts']);
  assert.match(dbHosts, new RegExp(`${ip('db-0').replace(/\./g, '\\.')}\\t${fqdn('db-0.db').replace(/\./g, '\\.')}\\tdb-0`), dbHosts);

  // --- the skiff-dns ConfigMap: a stub domain (a second dnsmasq on port 5353 of the LAN host) and extra hosts ---
  assert.notEqual(digStatus(gw, ['www.corp.test']), 'NOERROR', 'the main upstream does not know corp.test');
  startDnsmasq(['--address=/corp.test/192.0.2.8', '--port=5353']);
  await server.kubectl(['apply', '-f', '-'], { input: `
apiVersion: v1
kind: ConfigMap
metadata: { name: skiff-dns, namespace: kube-system }
data:
  stubDomains: '{"corp.test": ["${lan.ip}:5353"]}'
  hosts: |
    192.0.2.44 printer.lan
` }).then(ok);
  await eventually(async () => digShort(gw, ['www.corp.test']).join() === '192.0.2.8', 'the stub domain answered through its own server', 60_000);
  await eventually(async () => digShort(gw, ['printer.lan']).join() === '192.0.2.44', 'the ConfigMap host answered', 60_000);
  assert.deepEqual(digShort(gw, ['-x', '192.0.2.44']), ['printer.lan.']);

  // --- cut off from the server: the node keeps answering from what it knew (no DNS pod to lose) ---
  // Every packet to and from the server is dropped silently (the link stays up, so the node keeps its
  // routes, as when the cut is somewhere upstream): the agent's connections hang rather than fail.
  const cutTable = `skiff-test-cut-${run}`;
  // (curl, not the host's busybox wget, which crashes on this machine)
  const viaClusterIp = () => inNode(['curl', '-sS', '-m', '5', `http://${webIp}/`]);
  await eventually(async () => viaClusterIp().stdout.trim() === 'hi', 'web\'s ClusterIP from the node before the cut', 60_000);
  assert.equal(spawnSync('nsenter', [`--net=/var/run/netns/${host.netns}`, 'nft', '-f', '-'], { input:
    `table ip ${cutTable} {\n chain in { type filter hook input priority -300; ip saddr ${host.hostIp} drop; }\n` +
    ` chain out { type filter hook output priority -300; ip daddr ${host.hostIp} drop; }\n}\n`, encoding: 'utf8' }).status, 0, 'the cut is in place');
  try {
    // Checked throughout the cut, not only at its end: names resolve and the ClusterIP still routes to
    // the endpoint the node knew (the proxy's rules stay in the kernel; the DNS answers from its caches).
    const cutEnds = Date.now() + CUT_MS;
    let rounds = 0;
    do {
      await new Promise((r) => setTimeout(r, Math.min(10_000, Math.max(0, cutEnds - Date.now()))));
      rounds++;
      assert.notEqual(inNode(['curl', '-sk', '-m', '2', `https://${host.hostIp}:${server.port}/healthz`]).status, 0, 'the node really is cut off');
      assert.deepEqual(digShort(gw, [fqdn('web')]), [webIp], `a Service name during the cut (round ${rounds})`);
      assert.deepEqual(digShort(gw, [fqdn('db-1.db')]), [ip('db-1')], `a StatefulSet pod name during the cut (round ${rounds})`);
      assert.deepEqual(digShort(gw, ['SRV', `_pg._tcp.${fqdn('db')}`]).length, 2, `SRV records during the cut (round ${rounds})`);
      const got = viaClusterIp();
      assert.equal(got.stdout.trim(), 'hi', `web's ClusterIP routes to its endpoint during the cut (round ${rounds}): ${got.stderr}`);
    } while (Date.now() < cutEnds || rounds < 3);   // a full minute, and checked at least three times
  } finally {
    inNode(['nft', 'delete', 'table', 'ip', cutTable]);
  }

  // --- the upstream goes away: names seen are served from the cache, new ones fail ---
  assert.deepEqual(digShort(gw, ['cached.ext.test']), ['192.0.2.7']);
  await stopDnsmasq();
  assert.equal(digShort(lan.ip, ['cached.ext.test']).length, 0, 'dnsmasq is really gone');
  assert.deepEqual(digShort(gw, ['cached.ext.test']), ['192.0.2.7'], 'served from the cache');
  // (kubectl exec waits for the agent's tunnel, which reconnects after the cut)
  await eventually(async () => /Address: 192\.0\.2\.7/.test(await nslookup(['www.ext.test'])), 'the cached name served to a pod', 60_000);
  assert.equal(digStatus(gw, ['never-seen.ext.test']), 'SERVFAIL');

  // --- air-gapped: restarted with no upstream at all; cluster names answer, others SERVFAIL ---
  await stopAgent();
  startAgent(join(host.dir, 'resolv-none.conf'));
  await eventually(async () => digShort(gw, [fqdn('web')]).join() === webIp, 'the restarted agent answering cluster names', 120_000);
  await eventually(async () => digShort(gw, [fqdn('db-0.db')]).join() === ip('db-0'), 'the restarted agent answering a StatefulSet pod name', 60_000);
  assert.equal(digStatus(gw, ['www.example.org']), 'SERVFAIL');
  assert.match(readFileSync(join(host.dir, 'agent.log'), 'utf8'), /no upstream resolver/);
});
