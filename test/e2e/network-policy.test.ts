// NetworkPolicy end to end (issue 12, item 4): the server in this machine's namespace, two agents each
// in its own network namespace as a host (each enforcing policies in its own `skiff-netpol` table),
// and a LAN host that is not a node. One cluster is shared by the cases, which run in order:
//  - default deny in a namespace blocks a pod-to-pod request across nodes; allow rules by pod label,
//    by namespace label and by ipBlock (with except) each let exactly their peers through; the node
//    itself always reaches its pods;
//  - egress deny blocks the LAN host; DNS works only once a policy allows it (as under Kubernetes);
//  - a pod created under a deny policy never receives one unwanted packet: a prober sprays the
//    addresses the pod may get during its whole start, and the pod's httpd logs no request until a
//    policy allows the prober (which proves it was aiming right);
//  - an invalid CIDR (or an except outside its CIDR) is an API error and disturbs nothing;
//  - kill -9 of an agent: its rules stay; the restart rewrites nothing; --disable-network-policy
//    removes the table.
// Needs root, iproute2, nftables, curl and containerd; everything it creates is removed, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/cluster.js';
import {
  createHostNetwork, eventually as waitFor, netnsAgentRequirements, prepareAgentDir, removeHostNetwork, startNetnsAgent, type NetnsHost,
} from '../helpers/netns-host.js';
import { fails, ok } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const run = process.pid % 1000;
const sub = (i: number) => `10.193.${(run % 80) * 3 + i}`;   // three /24s of its own per run
const hosts: NetnsHost[] = ['a', 'b'].map((n, i) => ({
  name: `np-${n}`, netns: `sknp${run}${n}`, hostIf: `sknv${run}${n}`, hostIp: `${sub(i)}.1`, ip: `${sub(i)}.2`, dir: '',
}));
const [A, B] = hosts as [NetnsHost, NetnsHost];
const lan: NetnsHost = { name: 'lan', netns: `sknp${run}l`, hostIf: `sknv${run}l`, hostIp: `${sub(2)}.1`, ip: `${sub(2)}.2`, dir: '' };
let server: TestServer;
let token = '';
let lanHttpd: ChildProcess | undefined;

const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 90_000) => waitFor(fn, what, ms, hosts);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const k = async (args: string[], input?: string) => ok(await server.kubectl(args, input === undefined ? {} : { input }));
const inNs = (h: NetnsHost, cmd: string[]) => spawnSync('nsenter', [`--net=/var/run/netns/${h.netns}`, ...cmd], { encoding: 'utf8', timeout: 30_000 });
const podIp = async (ns: string, name: string) => JSON.parse(await k(['get', 'pod', '-n', ns, name, '-o', 'json'])).status.podIP as string;
const nftTable = (h: NetnsHost) => inNs(h, ['nft', 'list', 'table', 'ip', 'skiff-netpol']);

/** What `pod` gets for `GET /path` from ip:port (empty when the connection is dropped: nc gives up after 3 s). */
async function fetch(ns: string, pod: string, ip: string, port = 8080, path = '/'): Promise<string> {
  const r = await server.kubectl(['exec', '-n', ns, pod, '--', 'sh', '-c', `printf 'GET ${path} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} ${port}`], { timeoutMs: 30_000 });
  return r.stdout;
}
const reaches = async (ns: string, pod: string, ip: string, body: string, port = 8080) => (await fetch(ns, pod, ip, port)).includes(body);

/** busybox httpd serving `text` at /, logging every request (-vv) to the container log. */
const httpd = (text: string) => `[sh, -c, 'mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -vv -p 8080 -h /www']`;
const pod = (name: string, ns: string, node: NetnsHost, labels: string, command: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: { ${labels} } }
spec:
  nodeName: ${node.name}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: ${TEST_IMAGE}
    command: ${command}
    ports: [{ name: http, containerPort: 8080 }]
`;
const SLEEP = `[sleep, '100000']`;
const policy = (name: string, ns: string, spec: string) => `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: ${name}, namespace: ${ns} }
spec:
${spec.replace(/^/gm, '  ')}
`;

before(async () => {
  const missing = netnsAgentRequirements();
  for (const bin of ['/usr/sbin/nft']) if (spawnSync('test', ['-x', bin]).status !== 0) missing.push(bin);
  if (missing.length) throw new Error(`the network policy test needs: ${missing.join(', ')}`);
  for (const h of [...hosts, lan]) removeHostNetwork(h);
  for (const h of hosts) { createHostNetwork(h); prepareAgentDir(h, 'skiff-np-'); }
  createHostNetwork(lan);
  lanHttpd = spawn('nsenter', [`--net=/var/run/netns/${lan.netns}`, 'sh', '-c', `mkdir -p /tmp/sknp${run}www && echo lan-host > /tmp/sknp${run}www/index.html && exec busybox httpd -f -p 8080 -h /tmp/sknp${run}www`], { stdio: 'ignore' });
  server = await startServer({ args: ['--bind-address', '0.0.0.0', ...hosts.flatMap((h) => ['--tls-san', h.hostIp])] });
  token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  for (const h of hosts) startNetnsAgent(h, server, token);
  for (const h of hosts) {
    await eventually(async () => {
      const n = JSON.parse(await k(['get', 'node', h.name, '-o', 'json']));
      return n.status.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
    }, `${h.name} Ready`, 120_000);
  }
  await k(['apply', '-f', '-'], `
apiVersion: v1
kind: Namespace
metadata: { name: np-shop }
---
apiVersion: v1
kind: Namespace
metadata: { name: np-ops, labels: { team: ops } }
---
apiVersion: v1
kind: Namespace
metadata: { name: np-probe, labels: { role: prober } }
---
${pod('web', 'np-shop', B, 'app: web', httpd('web-page'))}
---
${pod('client', 'np-shop', A, 'app: client', SLEEP)}
---
${pod('other', 'np-shop', A, 'app: other', SLEEP)}
---
${pod('opsc', 'np-ops', A, 'app: opsc', SLEEP)}
`);
  for (const [ns, p] of [['np-shop', 'web'], ['np-shop', 'client'], ['np-shop', 'other'], ['np-ops', 'opsc']]) {
    ok(await server.kubectl(['wait', '-n', ns!, '--for=condition=Ready', `pod/${p}`, '--timeout=150s'], { timeoutMs: 160_000 }));
  }
});

after(async () => {
  lanHttpd?.kill('SIGKILL');
  for (const h of hosts) h.proc?.kill('SIGKILL');
  for (const h of hosts) {
    if (h.dir) await teardownRuntime({ dataDir: h.dir, removeDataDir: true }).catch(() => undefined);
  }
  for (const h of [...hosts, lan]) removeHostNetwork(h);
  spawnSync('rm', ['-rf', `/tmp/sknp${run}www`]);
});

test('default deny blocks pod to pod; allow by pod label, by namespace label, by ipBlock let exactly their peers through', { timeout: 400_000 }, async () => {
  const web = await podIp('np-shop', 'web');
  const otherIp = await podIp('np-shop', 'other');
  assert.ok(await reaches('np-shop', 'client', web, 'web-page'), 'no policy: client on A reaches web on B');

  await k(['apply', '-f', '-'], policy('deny', 'np-shop', 'podSelector: {}\npolicyTypes: [Ingress]'));
  await eventually(async () => !(await reaches('np-shop', 'client', web, 'web-page')), 'client → web blocked by default deny');
  assert.ok(!(await reaches('np-ops', 'opsc', web, 'web-page')), 'another namespace is blocked too');
  assert.equal(inNs(B, ['curl', '-s', '-m', '3', `http://${web}:8080/`]).stdout.trim(), 'web-page', 'node B itself reaches its pod (probes)');
  assert.match(nftTable(B).stdout, /chain ingress \{[\s\S]*fib saddr type local accept[\s\S]*counter packets \d+ bytes \d+ drop/);

  // By pod label, on the named port.
  await k(['apply', '-f', '-'], policy('allow-client', 'np-shop', `podSelector: { matchLabels: { app: web } }
ingress: [{ from: [{ podSelector: { matchLabels: { app: client } } }], ports: [{ port: http }] }]`));
  await eventually(async () => reaches('np-shop', 'client', web, 'web-page'), 'client → web allowed by pod label');
  assert.ok(!(await reaches('np-shop', 'other', web, 'web-page')), 'other (no matching label) still blocked');
  await k(['delete', '-n', 'np-shop', 'networkpolicy', 'allow-client']);
  await eventually(async () => !(await reaches('np-shop', 'client', web, 'web-page')), 'client blocked again once the allow rule goes');

  // By namespace label.
  await k(['apply', '-f', '-'], policy('allow-ops', 'np-shop', `podSelector: { matchLabels: { app: web } }
ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: ops } } }] }]`));
  await eventually(async () => reaches('np-ops', 'opsc', web, 'web-page'), 'opsc (namespace team=ops) → web allowed');
  assert.ok(!(await reaches('np-shop', 'client', web, 'web-page')), 'client (namespace np-shop) still blocked');
  await k(['delete', '-n', 'np-shop', 'networkpolicy', 'allow-ops']);

  // By ipBlock: node A's pod range, except the other pod's address.
  const podCidrA = JSON.parse(await k(['get', 'node', A.name, '-o', 'json'])).spec.podCIDR as string;
  await k(['apply', '-f', '-'], policy('allow-block', 'np-shop', `podSelector: { matchLabels: { app: web } }
ingress: [{ from: [{ ipBlock: { cidr: ${podCidrA}, except: [${otherIp}/32] } }], ports: [{ protocol: TCP, port: 8000, endPort: 8100 }] }]`));
  await eventually(async () => reaches('np-shop', 'client', web, 'web-page'), 'client → web allowed by ipBlock');
  assert.ok(!(await reaches('np-shop', 'other', web, 'web-page')), 'other (in except) still blocked');
  await k(['delete', '-n', 'np-shop', 'networkpolicy', 'allow-block']);
});

test('egress deny blocks the LAN host; DNS only where a policy allows it', { timeout: 300_000 }, async () => {
  const lookup = async (p: string) => (await server.kubectl(['exec', '-n', 'np-shop', p, '--', 'nslookup', 'kubernetes.default.svc.cluster.local'], { timeoutMs: 30_000 })).stdout;
  // The answer's line (the server's own line reads `Address: 10.43.0.10:53`).
  const ANSWER = /^Address:\s*10\.43\.0\.1\s*$/m;
  await eventually(async () => reaches('np-shop', 'client', lan.ip, 'lan-host'), 'client reaches the LAN host before any egress policy', 60_000);
  assert.match(await lookup('client'), ANSWER);

  await k(['apply', '-f', '-'], policy('client-egress', 'np-shop', 'podSelector: { matchLabels: { app: client } }\npolicyTypes: [Egress]'));
  await eventually(async () => !(await reaches('np-shop', 'client', lan.ip, 'lan-host')), 'client → LAN host blocked by egress deny');
  assert.ok(await reaches('np-shop', 'other', lan.ip, 'lan-host'), 'other (not selected) still reaches the LAN host');
  assert.doesNotMatch(await lookup('client'), ANSWER, 'no DNS under egress deny');

  // DNS as Kubernetes users allow it: to the kube-dns pods (here the node's own server stands in for them).
  await k(['apply', '-f', '-'], policy('client-dns', 'np-shop', `podSelector: { matchLabels: { app: client } }
policyTypes: [Egress]
egress:
- to: [{ namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: kube-system } }, podSelector: { matchLabels: { k8s-app: kube-dns } } }]
  ports: [{ protocol: UDP, port: 53 }, { protocol: TCP, port: 53 }]`));
  await eventually(async () => ANSWER.test(await lookup('client')), 'DNS allowed by the kube-dns rule', 60_000);
  assert.ok(!(await reaches('np-shop', 'client', lan.ip, 'lan-host')), 'the LAN host still blocked');

  // An ipBlock for the LAN host opens it.
  await k(['apply', '-f', '-'], policy('client-lan', 'np-shop', `podSelector: { matchLabels: { app: client } }
policyTypes: [Egress]
egress: [{ to: [{ ipBlock: { cidr: ${lan.ip}/32 } }], ports: [{ port: 8080 }] }]`));
  await eventually(async () => reaches('np-shop', 'client', lan.ip, 'lan-host'), 'client → LAN host allowed by ipBlock');
  await k(['delete', '-n', 'np-shop', 'networkpolicy', 'client-egress', 'client-dns', 'client-lan']);
});

test('a pod created under a deny policy never receives one unwanted packet', { timeout: 300_000 }, async () => {
  // The addresses node B hands out next (host-local IPAM allocates in order after the last one).
  const last = findFile(B.dir, 'last_reserved_ip.0');
  assert.ok(last, 'host-local IPAM state on node B');
  const base = readFileSync(last, 'utf8').trim();
  const [o1, o2, o3, o4] = base.split('.').map(Number) as [number, number, number, number];
  const candidates = [1, 2, 3].map((d) => `${o1}.${o2}.${o3}.${o4 + d}`);
  // The prober (another namespace, node A) sprays them with requests all the time the pod starts.
  await k(['apply', '-f', '-'], pod('prober', 'np-probe', A, 'app: prober',
    `[sh, -c, 'while true; do for ip in ${candidates.join(' ')}; do (printf "GET /unwanted HTTP/1.0\\\\r\\\\n\\\\r\\\\n" | nc -w 1 $ip 8080 >/dev/null 2>&1 &); done; sleep 0.1; done']`));
  ok(await server.kubectl(['wait', '-n', 'np-probe', '--for=condition=Ready', 'pod/prober', '--timeout=120s'], { timeoutMs: 130_000 }));
  await sleep(2000);
  // np-shop's default deny is still in place: the new pod is isolated from its first packet.
  await k(['apply', '-f', '-'], pod('target', 'np-shop', B, 'app: target', httpd('target-page')));
  ok(await server.kubectl(['wait', '-n', 'np-shop', '--for=condition=Ready', 'pod/target', '--timeout=120s'], { timeoutMs: 130_000 }));
  const ip = await podIp('np-shop', 'target');
  assert.ok(candidates.includes(ip), `target got ${ip}, the prober aimed at ${candidates.join(', ')}`);
  await sleep(5000);
  const logs = await k(['logs', '-n', 'np-shop', 'target']);
  assert.equal((logs.match(/url:\/unwanted/g) ?? []).length, 0, `the pod received unwanted requests:\n${logs}`);
  // Control: once a policy allows the prober, its requests arrive (it was aiming at the pod all along).
  await k(['apply', '-f', '-'], policy('allow-prober', 'np-shop', `podSelector: { matchLabels: { app: target } }
ingress: [{ from: [{ namespaceSelector: { matchLabels: { role: prober } } }] }]`));
  await eventually(async () => /url:\/unwanted/.test(await k(['logs', '-n', 'np-shop', 'target'])), 'the prober\'s requests arriving once allowed', 60_000);
  await k(['delete', '-n', 'np-probe', 'pod', 'prober', '--wait=false']);
});

test('an invalid CIDR is an API error and disturbs nothing', { timeout: 120_000 }, async () => {
  fails(await server.kubectl(['apply', '-f', '-'], { input: policy('bad-cidr', 'np-shop', `podSelector: {}
ingress: [{ from: [{ ipBlock: { cidr: 10.0.0.300/8 } }] }]`) }), /spec\.ingress\[0\]\.from\[0\]\.ipBlock\.cidr: Invalid value: "10\.0\.0\.300\/8": must be a valid CIDR value/);
  fails(await server.kubectl(['apply', '-f', '-'], { input: policy('bad-except', 'np-shop', `podSelector: {}
egress: [{ to: [{ ipBlock: { cidr: 10.0.0.0/24, except: [192.168.0.0/24] } }] }]`) }), /must be a strict subset of `cidr`/);
  fails(await server.kubectl(['apply', '-f', '-'], { input: policy('bad-port', 'np-shop', `podSelector: {}
ingress: [{ ports: [{ port: 9000, endPort: 80 }] }]`) }), /endPort: Invalid value: 9000: must be greater than or equal to `port`/);
  const names = await k(['get', 'networkpolicy', '-n', 'np-shop', '-o', 'name']);
  assert.ok(!/bad-/.test(names), names);
  const web = await podIp('np-shop', 'web');
  assert.ok(!(await reaches('np-shop', 'client', web, 'web-page')), 'the deny policy still holds');
});

test('kill -9 of an agent: its rules stay and its restart rewrites nothing; --disable-network-policy removes the table', { timeout: 300_000 }, async () => {
  const web = await podIp('np-shop', 'web');
  const chains = nftTable(B).stdout.match(/^\s*chain /gm)!.length;
  B.proc!.kill('SIGKILL');
  await new Promise((r) => B.proc!.once('exit', r));
  assert.ok(!(await reaches('np-shop', 'client', web, 'web-page')), 'isolation holds while the agent is down');
  startNetnsAgent(B, server, token);
  await eventually(async () => readFileSync(join(B.dir, 'agent.log'), 'utf8').split('\n').filter((l) => l.includes('network policy table reconciled')).length >= 2, 'B reconciled its table after the restart');
  const line = readFileSync(join(B.dir, 'agent.log'), 'utf8').split('\n').filter((l) => l.includes('network policy table reconciled')).at(-1)!;
  const stats = JSON.parse(line) as { chainsWritten: number; chainsDeleted: number; elementsAdded: number; elementsDeleted: number };
  assert.equal(stats.chainsWritten + stats.chainsDeleted, 0, `restart rewrote chains: ${line}`);
  assert.equal(nftTable(B).stdout.match(/^\s*chain /gm)!.length, chains);
  assert.ok(!(await reaches('np-shop', 'client', web, 'web-page')));

  B.proc!.kill('SIGKILL');
  await new Promise((r) => B.proc!.once('exit', r));
  startNetnsAgent(B, server, token, ['--disable-network-policy']);
  await eventually(async () => nftTable(B).status !== 0, 'skiff-netpol table removed on B');
  await eventually(async () => reaches('np-shop', 'client', web, 'web-page'), 'no enforcement: client reaches web again');
});

function findFile(dir: string, name: string): string | undefined {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    let st;
    try { st = statSync(p); } catch { continue; }
    if (st.isDirectory()) { const f = findFile(p, name); if (f) return f; } else if (e === name) return p;
  }
  return undefined;
}
