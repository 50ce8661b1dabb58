// The service proxy end to end (issue 9, item 1): the server in this machine's namespace, two agents
// each in its own network namespace as a host (their `skiff-proxy` nftables tables are their own),
// and a third namespace as a LAN host that is not a node, routed through this namespace like the
// agents. One cluster is shared by the cases, which run in order:
//  - a pod on node A reaches a Deployment on node B through its ClusterIP (and so does node A itself);
//  - seed 002: a busybox httpd Deployment with an httpGet readiness probe behind NodePort 30123
//    answers on every node's IP from the LAN host; requests spread over the endpoints, or stick to one
//    with sessionAffinity ClientIP; a pod whose readiness fails stops receiving traffic;
//  - externalTrafficPolicy Local: the pod sees the LAN host's own address, a node without a local
//    endpoint does not answer, the healthCheckNodePort says 200 / 503 with kube-proxy's JSON;
//  - kill -9 of an agent: a TCP stream through a ClusterIP keeps flowing; an endpoint added while it
//    is down is programmed after its restart, by a small diff, with no duplicate rules;
//  - bad input (invalid or clashing ports, a Service with 1,000 endpoints) never crashes an agent;
//  - scaled to zero, the NodePort and the ClusterIP refuse at once (connection refused, no timeout);
//  - --disable-kube-proxy removes the table.
// Needs root, iproute2, nftables, curl and containerd; everything it creates is removed, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/cluster.js';
import {
  createHostNetwork, eventually as waitFor, netnsAgentRequirements, prepareAgentDir, removeHostNetwork, startNetnsAgent, type NetnsHost,
} from '../helpers/netns-host.js';
import { ok } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const run = process.pid % 1000;
const net = 150 + (process.pid % 50);   // a /16 of its own per run, so parallel runs never share addresses
const hosts: NetnsHost[] = ['a', 'b'].map((n, i) => ({
  name: `proxy-${n}`, netns: `skpx${run}${n}`, hostIf: `skpv${run}${n}`,
  hostIp: `10.${net}.${i + 1}.1`, ip: `10.${net}.${i + 1}.2`, dir: '',
}));
const [A, B] = hosts as [NetnsHost, NetnsHost];
/** The LAN host: a namespace with an address, routed like the nodes, running no agent. */
const lan: NetnsHost = { name: 'lan', netns: `skpx${run}l`, hostIf: `skpv${run}l`, hostIp: `10.${net}.3.1`, ip: `10.${net}.3.2`, dir: '' };
const NS = 'default';
let server: TestServer;
let token = '';

const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 90_000) => waitFor(fn, what, ms, hosts);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const k = async (args: string[], input?: string) => ok(await server.kubectl(args, input === undefined ? {} : { input }));
const inNs = (h: NetnsHost, cmd: string[]) => spawnSync('nsenter', [`--net=/var/run/netns/${h.netns}`, ...cmd], { encoding: 'utf8', timeout: 30_000 });
/** curl from a host's namespace: exit code (0 ok, 7 refused, 28 timeout), body and status. */
function curl(from: NetnsHost, url: string, timeoutS = 3) {
  const r = inNs(from, ['curl', '-s', '-m', String(timeoutS), '-o', '-', '-w', '\n%{http_code}', url]);
  const lines = (r.stdout ?? '').trimEnd().split('\n');
  const status = Number(lines.pop());
  return { code: r.status ?? -1, status, body: lines.join('\n') };
}
const nftTable = (h: NetnsHost) => inNs(h, ['nft', 'list', 'table', 'ip', 'skiff-proxy']);
const svcIp = async (name: string) => JSON.parse(await k(['get', 'svc', name, '-o', 'json'])).spec.clusterIP as string;
const podsOf = async (app: string) => (JSON.parse(await k(['get', 'pods', '-l', `app=${app}`, '-o', 'json'])).items as any[])
  .filter((p) => !p.metadata.deletionTimestamp);
const readyPods = async (app: string) => (await podsOf(app)).filter((p) => p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
const sliceEndpoints = async (svc: string) => (JSON.parse(await k(['get', 'endpointslices', '-l', `kubernetes.io/service-name=${svc}`, '-o', 'json'])).items as any[])
  .flatMap((s) => s.endpoints ?? []);
const readyEndpointIps = async (svc: string) => (await sliceEndpoints(svc)).filter((e) => e.conditions?.ready !== false).map((e) => e.addresses[0]).sort();
const agentAlive = (h: NetnsHost) => h.proc !== undefined && h.proc.exitCode === null && h.proc.signalCode === null;

/** A busybox httpd serving its hostname at /, `ready.html` for the probe, and two CGIs: the caller's address, and an endless stream. */
const SETUP = Buffer.from(`mkdir -p /www/cgi-bin
hostname > /www/index.html
echo ok > /www/ready.html
cat > /www/cgi-bin/ip <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "remote=$REMOTE_ADDR"
EOF
cat > /www/cgi-bin/stream <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
i=0
while true; do echo "tick-$i"; i=$((i+1)); sleep 1; done
EOF
chmod +x /www/cgi-bin/ip /www/cgi-bin/stream
exec httpd -f -p 8080 -h /www
`).toString('base64');

function deployment(name: string, replicas: number, extra: { node?: string; probe?: boolean } = {}): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name} }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      ${extra.node ? `nodeSelector: { kubernetes.io/hostname: ${extra.node} }` : ''}
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: ${TEST_IMAGE}
        command: [sh, -c, 'echo ${SETUP} | base64 -d > /tmp/setup.sh; exec sh /tmp/setup.sh']
        ports: [{ name: http, containerPort: 8080 }]
        ${extra.probe ? 'readinessProbe: { httpGet: { path: /ready.html, port: 8080 }, periodSeconds: 1, failureThreshold: 1 }' : ''}
`;
}

before(async () => {
  const missing = netnsAgentRequirements();
  for (const bin of ['/usr/sbin/nft']) if (spawnSync('test', ['-x', bin]).status !== 0) missing.push(bin);
  if (missing.length) throw new Error(`the service proxy test needs: ${missing.join(', ')}`);
  for (const h of [...hosts, lan]) removeHostNetwork(h);
  for (const h of hosts) { createHostNetwork(h); prepareAgentDir(h, 'skiff-px-'); }
  createHostNetwork(lan);
  server = await startServer({ args: ['--bind-address', '0.0.0.0', ...hosts.flatMap((h) => ['--tls-san', h.hostIp])] });
  token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  for (const h of hosts) startNetnsAgent(h, server, token);
  for (const h of hosts) {
    await eventually(async () => {
      const n = JSON.parse(await k(['get', 'node', h.name, '-o', 'json']));
      return n.status.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
    }, `${h.name} Ready`, 120_000);
  }
  await k(['apply', '-f', '-'], `${deployment('web', 1, { node: B.name })}
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec: { selector: { app: web }, ports: [{ name: http, port: 80, targetPort: http }] }
---
apiVersion: v1
kind: Pod
metadata: { name: client }
spec:
  nodeName: ${A.name}
  terminationGracePeriodSeconds: 1
  containers: [{ name: c, image: ${TEST_IMAGE}, command: [sleep, '100000'] }]
---
${deployment('shop', 3, { probe: true })}
---
apiVersion: v1
kind: Service
metadata: { name: shop }
spec: { type: NodePort, selector: { app: shop }, ports: [{ name: http, port: 80, targetPort: 8080, nodePort: 30123 }] }
---
apiVersion: v1
kind: Service
metadata: { name: shop-sticky }
spec:
  type: NodePort
  selector: { app: shop }
  sessionAffinity: ClientIP
  sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } }
  ports: [{ name: http, port: 80, targetPort: 8080, nodePort: 30124 }]
---
${deployment('solo', 1, { node: B.name })}
---
apiVersion: v1
kind: Service
metadata: { name: solo }
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 30126
  selector: { app: solo }
  ports: [{ name: http, port: 80, targetPort: 8080, nodePort: 30125 }]
`);
  for (const d of ['web', 'shop', 'solo']) ok(await server.kubectl(['rollout', 'status', `deployment/${d}`, '--timeout=180s'], { timeoutMs: 190_000 }));
  ok(await server.kubectl(['wait', '--for=condition=Ready', 'pod/client', '--timeout=120s'], { timeoutMs: 130_000 }));
});

after(async () => {
  for (const h of hosts) h.proc?.kill('SIGKILL');
  for (const h of hosts) {
    if (h.dir) await teardownRuntime({ dataDir: h.dir, removeDataDir: true }).catch(() => undefined);
  }
  for (const h of [...hosts, lan]) removeHostNetwork(h);
});

test('a pod on node A reaches a Deployment on node B through its ClusterIP; so does node A itself', { timeout: 120_000 }, async () => {
  const ip = await svcIp('web');
  const [webPod] = await podsOf('web');
  assert.equal(webPod.spec.nodeName, B.name);
  const page = await eventually(async () => {
    const r = await server.kubectl(['exec', 'client', '--', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 80`]);
    return r.code === 0 && r.stdout.includes(webPod.metadata.name) && r.stdout;
  }, 'the client pod on A reaching web on B by ClusterIP', 60_000);
  assert.match(page, /200 OK/);
  // Hairpin: the web pod reaching its own Service lands on itself (masqueraded, so the reply finds its way).
  const self = await server.kubectl(['exec', webPod.metadata.name, '--', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 80`]);
  assert.match(self.stdout, new RegExp(webPod.metadata.name), `hairpin: ${self.stdout} ${self.stderr}`);
  const fromNode = curl(A, `http://${ip}/`);
  assert.equal(fromNode.body.trim(), webPod.metadata.name, `node A itself: curl exit ${fromNode.code}`);
  // The `kubernetes` Service reaches the server (its advertised address), from a node and from a pod.
  assert.equal(inNs(A, ['curl', '-sk', '-m', '5', 'https://10.43.0.1/readyz']).stdout, 'ok');
  const api = await server.kubectl(['exec', 'client', '--', 'sh', '-c', 'echo | nc -w 3 10.43.0.1 443 >/dev/null; echo rc=$?']);
  assert.match(api.stdout, /rc=0/, `a pod connects to 10.43.0.1:443: ${api.stdout} ${api.stderr}`);
  // Both nodes programmed the same Service; kube-proxy's layout.
  for (const h of hosts) {
    const t = nftTable(h).stdout;
    assert.match(t, new RegExp(`${ip.replace(/\./g, '\\.')} \\. tcp \\. 80 : goto service-[0-9A-F]{8}-default/web/tcp/http`));
    assert.match(t, /chain nat-prerouting \{\s+type nat hook prerouting/);
    assert.match(t, /numgen random mod 1 vmap/);
  }
});

test('by name through the cluster DNS: web, web.default and web.default.svc.cluster.local from node A reach web on node B', { timeout: 120_000 }, async () => {
  // The pod's resolv.conf names --cluster-dns (10.43.0.10); the proxy sends it to node A's own DNS
  // server, which answers from its caches. The answer must be web's ClusterIP: only skiff knows it.
  const ip = await svcIp('web');
  const [webPod] = await podsOf('web');
  // busybox's nslookup applies the search list only to names without a dot, so `web.default` is
  // checked the way a glibc resolver (ndots:5) walks it: first `web.default.default.svc.cluster.local`
  // (no such name), then `web.default.svc.cluster.local`.
  const nxdomain = await k(['exec', 'client', '--', 'sh', '-c', 'nslookup web.default.default.svc.cluster.local; true']);
  assert.match(nxdomain, /NXDOMAIN|can't find/);
  for (const name of ['web', 'web.default.svc.cluster.local']) {
    const script = `addr=$(nslookup ${name} | awk '/^Address/ {a=$NF} END {print a}'); echo "ip=$addr"; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 "$addr" 80`;
    let last = '';
    const out = await eventually(async () => {
      const r = await server.kubectl(['exec', 'client', '--', 'sh', '-c', script]);
      last = `${r.stdout}${r.stderr}`;
      return r.code === 0 && r.stdout.includes(`ip=${ip}\n`) && r.stdout.includes(webPod.metadata.name) && r.stdout;
    }, `${name} resolved to ${ip} and served by ${webPod.metadata.name}`, 60_000).catch((e) => { throw new Error(`${e.message}\nlast: ${last}`); });
    assert.match(out, /200 OK/);
  }
  const conf = await k(['exec', 'client', '--', 'cat', '/etc/resolv.conf']);
  assert.match(conf, /nameserver 10\.43\.0\.10/);
  assert.match(conf, /search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);
});

test('seed 002: NodePort 30123 answers on every node from the LAN host, spread over the endpoints; ClientIP affinity sticks', { timeout: 120_000 }, async () => {
  const names = (await readyPods('shop')).map((p) => p.metadata.name).sort();
  assert.equal(names.length, 3);
  for (const h of hosts) {
    await eventually(async () => names.includes(curl(lan, `http://${h.ip}:30123/`).body.trim()), `NodePort 30123 on ${h.name} from the LAN host`, 30_000);
  }
  // 127.0.0.1 is not a NodePort address (kube-proxy's nftables mode).
  assert.notEqual(curl(A, 'http://127.0.0.1:30123/', 2).code, 0);
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) seen.add(curl(lan, `http://${hosts[i % 2]!.ip}:30123/`).body.trim());
  assert.ok(seen.size >= 2, `20 requests reached ${[...seen].join(', ')}`);
  for (const s of seen) assert.ok(names.includes(s), `answered by a shop pod: ${s}`);
  const sticky = new Set<string>();
  for (let i = 0; i < 20; i++) sticky.add(curl(lan, `http://${A.ip}:30124/`).body.trim());
  assert.equal(sticky.size, 1, `sessionAffinity ClientIP: one endpoint, got ${[...sticky].join(', ')}`);
  assert.ok(names.includes([...sticky][0]!));
});

test('a pod whose readiness fails stops receiving traffic, and gets it again once ready', { timeout: 120_000 }, async () => {
  const [victim] = (await readyPods('shop')).map((p) => p.metadata.name).sort();
  ok(await server.kubectl(['exec', victim!, '--', 'rm', '/www/ready.html']));
  await eventually(async () => !(await readyPods('shop')).some((p) => p.metadata.name === victim), `${victim} not ready`, 30_000);
  // Within a few seconds the nodes stop sending to it.
  await eventually(async () => {
    for (let i = 0; i < 10; i++) if (curl(lan, `http://${hosts[i % 2]!.ip}:30123/`).body.trim() === victim) return false;
    return true;
  }, `no traffic to the unready ${victim}`, 20_000);
  for (let i = 0; i < 20; i++) {
    const r = curl(lan, `http://${hosts[i % 2]!.ip}:30123/`);
    assert.equal(r.code, 0);
    assert.notEqual(r.body.trim(), victim);
  }
  ok(await server.kubectl(['exec', victim!, '--', 'sh', '-c', 'echo ok > /www/ready.html']));
  await eventually(async () => (await readyPods('shop')).length === 3, 'all three shop pods ready again', 30_000);
});

test('externalTrafficPolicy Local: client address preserved, no answer without a local endpoint, health check 200/503', { timeout: 120_000 }, async () => {
  const [solo] = await podsOf('solo');
  assert.equal(solo.spec.nodeName, B.name);
  const r = await eventually(async () => { const x = curl(lan, `http://${B.ip}:30125/cgi-bin/ip`); return x.code === 0 && x; }, 'solo on node B', 30_000);
  // busybox httpd listens on IPv6 and prints IPv4 clients as mapped addresses.
  assert.equal(r.body.trim().replace('[::ffff:', '').replace(']', ''), `remote=${lan.ip}`, 'the pod sees the LAN host\'s own address (no SNAT)');
  const onA = curl(lan, `http://${A.ip}:30125/cgi-bin/ip`, 2);
  assert.equal(onA.code, 28, `node A has no local endpoint: no answer (curl exit ${onA.code}, ${onA.body})`);
  const hb = curl(lan, `http://${B.ip}:30126/`);
  assert.equal(hb.status, 200);
  assert.deepEqual(JSON.parse(hb.body), { service: { namespace: NS, name: 'solo' }, localEndpoints: 1, serviceProxyHealthy: true });
  const ha = curl(lan, `http://${A.ip}:30126/`);
  assert.equal(ha.status, 503);
  assert.equal(JSON.parse(ha.body).localEndpoints, 0);
  // A pod (on A) still reaches it through the ClusterIP: internal traffic is not bound by the external policy.
  const ip = await svcIp('solo');
  const viaPod = await server.kubectl(['exec', 'client', '--', 'sh', '-c', `printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 80`]);
  const clientIp = JSON.parse(await k(['get', 'pod', 'client', '-o', 'json'])).status.podIP as string;
  assert.match(viaPod.stdout, new RegExp(`remote=(\\[::ffff:)?${clientIp.replace(/\./g, '\\.')}\\]?\\n`), 'the client pod\'s own address (no SNAT inside the cluster)');
});

test('kill -9 of an agent: a TCP stream through a ClusterIP keeps flowing; after restart the new endpoint is programmed without rewriting the table', { timeout: 240_000 }, async () => {
  const ip = await svcIp('web');
  // The stream's reader is a pod on A writing what it receives to its log, which the test reads from
  // A's disk: neither needs A's agent while it is down.
  await k(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: streamer }
spec:
  nodeName: ${A.name}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: ${TEST_IMAGE}
    command: [sh, -c, 'printf "GET /cgi-bin/stream HTTP/1.0\\r\\n\\r\\n" | nc ${ip} 80']
`);
  ok(await server.kubectl(['wait', '--for=condition=Ready', 'pod/streamer', '--timeout=90s'], { timeoutMs: 100_000 }));
  const uid = JSON.parse(await k(['get', 'pod', 'streamer', '-o', 'json'])).metadata.uid as string;
  const logDir = join(A.dir, 'agent', 'logs', 'pods', `${NS}_streamer_${uid}`, 'c');
  const ticks = () => {
    try {
      return readdirSync(logDir).reduce((n, f) => n + (readFileSync(join(logDir, f), 'utf8').match(/tick-/g) ?? []).length, 0);
    } catch { return 0; }
  };
  await eventually(async () => ticks() >= 2, 'the stream through the ClusterIP flowing', 30_000);
  const chainsBefore = nftTable(A).stdout.match(/^\s*chain /gm)!.length;
  A.proc!.kill('SIGKILL');
  await new Promise((r) => A.proc!.once('exit', r));
  // While the agent is down: a new endpoint (scheduled on B, whose agent runs).
  const before = await readyEndpointIps('web');
  ok(await server.kubectl(['scale', 'deployment/web', '--replicas=2']));
  const added = await eventually(async () => { const now = await readyEndpointIps('web'); return now.length === 2 && now.find((x) => !before.includes(x)); }, 'a second web endpoint', 120_000);
  const ticksAtDown = ticks();
  await sleep(4000);
  assert.ok(ticks() > ticksAtDown, `the stream kept flowing with the agent down (${ticks()} ticks)`);
  assert.doesNotMatch(nftTable(A).stdout, new RegExp(`dnat to ${added.replace(/\./g, '\\.')}:`), 'not programmed while the agent is down');

  const reconciles = () => readFileSync(join(A.dir, 'agent.log'), 'utf8').split('\n').filter((l) => l.includes('service proxy table reconciled'));
  const reconcilesBefore = reconciles().length;
  startNetnsAgent(A, server, token);
  await eventually(async () => nftTable(A).stdout.includes(`dnat to ${added}:8080`), 'the endpoint added meanwhile programmed on A', 90_000);
  // One more chain (the new endpoint), nothing duplicated, once the restarted agent's readiness
  // probes have put its own pods' endpoints back (until then they are briefly out of the table).
  const table = await eventually(async () => {
    const t = nftTable(A).stdout;
    return t.match(/^\s*chain /gm)!.length === chainsBefore + 1 && t;
  }, `one more chain than the ${chainsBefore} before the kill`, 60_000);
  assertNoDuplicates(table);
  // The restart reconciled a diff: the reconcile log line names how many chains it wrote.
  // (the agent logs asynchronously: its line may land just after the kernel shows the rule)
  const log = await eventually(async () => reconciles().length > reconcilesBefore && reconciles().at(-1), 'the restarted agent\'s reconcile log line', 30_000);
  // Only Services that changed while the agent was down are rewritten: web's (its new endpoint), and
  // shop's when a restarted agent's readiness probes flipped its pods on A meanwhile; nothing static.
  const { chainsWritten, rewrote } = JSON.parse(log) as { chainsWritten: number; rewrote: string[] };
  assert.ok(chainsWritten > 0 && chainsWritten < chainsBefore / 2, `restart wrote ${chainsWritten} chains of ${chainsBefore + 1}: ${rewrote.join(' ')}`);
  assert.ok(rewrote.some((c) => c.includes('/web/')), rewrote.join(' '));
  assert.ok(rewrote.every((c) => /\/(web|shop|shop-sticky)\//.test(c)), `only changed Services rewritten: ${rewrote.join(' ')}`);
  const t0 = ticks();
  await eventually(async () => ticks() > t0 + 2, 'the stream still flowing after the restart', 20_000);
  assert.ok(agentAlive(A));
  await k(['delete', 'pod', 'streamer', '--wait=false']);
});

test('bad input: API errors for invalid and clashing ports; a Service with 1,000 endpoints; no agent crash, no lost rules', { timeout: 180_000 }, async () => {
  const bad = async (yaml: string, pattern: RegExp) => {
    const r = await server.kubectl(['apply', '-f', '-'], { input: yaml });
    assert.notEqual(r.code, 0, yaml);
    assert.match(r.stderr, pattern);
  };
  const svc = (name: string, spec: string) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${name} }\nspec: ${spec}\n`;
  await bad(svc('bad-port', '{ ports: [{ port: 0 }] }'), /Invalid value|must be between/i);
  await bad(svc('bad-port2', '{ ports: [{ port: 70000 }] }'), /Invalid value|must be between/i);
  await bad(svc('bad-dup', '{ ports: [{ name: a, port: 80 }, { name: a, port: 81 }] }'), /Duplicate value/i);
  await bad(svc('bad-nodeport', '{ type: NodePort, ports: [{ port: 80, nodePort: 30123 }] }'), /already allocated/i);
  // The API accepts these; the proxy must cope: two Services claiming one external IP and port.
  await k(['apply', '-f', '-'], `${svc('clash-1', '{ selector: { app: web }, externalIPs: [192.0.2.77], ports: [{ port: 80, targetPort: 8080 }] }')}---\n${svc('clash-2', '{ selector: { app: shop }, externalIPs: [192.0.2.77], ports: [{ port: 80, targetPort: 8080 }] }')}`);
  // "A selector matching 1,000 pods", as the proxy sees it: one Service whose slices list 1,000 endpoints.
  const endpoints = Array.from({ length: 1000 }, (_, i) => `  - addresses: ["10.99.${i >> 8}.${(i & 255) + 0}"]\n    conditions: { ready: true }`).join('\n');
  await k(['apply', '-f', '-'], `${svc('many', '{ ports: [{ name: http, port: 80 }] }')}---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: many-1, labels: { kubernetes.io/service-name: many } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
${endpoints}
`);
  const manyIp = await svcIp('many');
  for (const h of hosts) {
    await eventually(async () => /numgen random mod 1000 vmap/.test(nftTable(h).stdout), `the 1,000-endpoint Service on ${h.name}`, 60_000);
  }
  assert.ok(manyIp);
  for (const h of hosts) {
    assert.ok(agentAlive(h), `${h.name}'s agent is running`);
    assertNoDuplicates(nftTable(h).stdout);
  }
  // Earlier rules still work.
  const names = (await readyPods('shop')).map((p) => p.metadata.name);
  assert.ok(names.includes(curl(lan, `http://${A.ip}:30123/`).body.trim()));
  await k(['delete', 'svc', 'many', 'clash-1', 'clash-2']);
  await k(['delete', 'endpointslice', 'many-1']);
  for (const h of hosts) await eventually(async () => !/mod 1000/.test(nftTable(h).stdout), `the 1,000-endpoint Service gone on ${h.name}`, 60_000);
});

test('scaled to zero, the NodePort and the ClusterIP refuse at once', { timeout: 120_000 }, async () => {
  ok(await server.kubectl(['scale', 'deployment/shop', '--replicas=0']));
  // Gone, not just unready: terminating pods that still serve would be used (kube-proxy's fallback).
  await eventually(async () => (await sliceEndpoints('shop')).length === 0, 'shop without endpoints', 60_000);
  await eventually(async () => curl(lan, `http://${A.ip}:30123/`).code === 7, 'NodePort refused', 30_000);
  for (const h of hosts) {
    const t0 = Date.now();
    const r = curl(lan, `http://${h.ip}:30123/`, 10);
    assert.equal(r.code, 7, `connection refused on ${h.name} (curl exit ${r.code})`);
    assert.ok(Date.now() - t0 < 5000, 'refused, not timed out');
  }
  const ip = await svcIp('shop');
  const fromPod = await server.kubectl(['exec', 'client', '--', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} 80; echo exit=$?`]);
  assert.match(fromPod.stdout + fromPod.stderr, /refused/i, `a pod is refused too: ${fromPod.stdout} ${fromPod.stderr}`);
  assert.equal(curl(A, `http://${ip}/`, 10).code, 7, 'and node A itself');
});

test('--disable-kube-proxy removes the table', { timeout: 120_000 }, async () => {
  B.proc!.kill('SIGKILL');
  await new Promise((r) => B.proc!.once('exit', r));
  assert.equal(nftTable(B).status, 0, 'the rules outlive the agent');
  startNetnsAgent(B, server, token, ['--disable-kube-proxy']);
  await eventually(async () => nftTable(B).status !== 0, 'skiff-proxy table removed on B', 90_000);
});

/** Every chain appears once and holds no rule twice; every map key once. */
function assertNoDuplicates(table: string): void {
  const chains = [...table.matchAll(/^\s*chain (\S+) \{\n([\s\S]*?)^\s*\}/gm)];
  const names = chains.map((c) => c[1]);
  assert.equal(new Set(names).size, names.length, 'duplicate chain');
  for (const [, name, body] of chains) {
    const rules = body!.split('\n').map((l) => l.trim().replace(/ comment ".*"$/, '')).filter((l) => l && !l.startsWith('type '));
    assert.equal(new Set(rules).size, rules.length, `duplicate rule in ${name}:\n${rules.join('\n')}`);
  }
}
