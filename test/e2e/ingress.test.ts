// The built-in ingress controller end to end (issue 12, item 3): the server on a test LAN bridge, two
// agents in network namespaces on it (each serving ingress on its own :80/:443) and a LAN host that
// is not a node, from which every request is made with curl / openssl / a WebSocket client. The
// cases run in order on one cluster:
//  - two hosts and two paths route to two Deployments (one pod per node, so node A's proxy reaches
//    node B's pod over the pod network); status.loadBalancer.ingress lists both node IPs;
//  - TLS by SNI with a Secret's certificate (curl --resolve with the CA), a renewed certificate is
//    served without restart (openssl s_client), unknown names get the default certificate;
//  - a WebSocket through the ingress to an echo server on the LAN host (a Service without selector
//    plus a manual EndpointSlice); it keeps working while the Ingress changes;
//  - bad input: a missing Service (503 + event), a missing Secret (default certificate + event),
//    invalid Ingresses refused by the API.
// Needs root, iproute2, nftables, curl, openssl and containerd; everything it creates is removed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startServer, REPO_ROOT, type TestServer } from '../helpers/cluster.js';
import { eventually as waitFor, netnsAgentRequirements, prepareAgentDir, startNetnsAgent, type NetnsHost } from '../helpers/netns-host.js';
import { createL2Lan, lanHost, removeL2Lan, type L2Lan } from '../helpers/l2-lan.js';
import { ok } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const pid = process.pid;
const prefix = `10.${140 + (pid % 40)}.${pid % 250}`;   // a /24 of its own per run
const A = lanHost('ing-a', `sking${pid}a`, `skingv${pid}a`, prefix, 11);
const B = lanHost('ing-b', `sking${pid}b`, `skingv${pid}b`, prefix, 12);
const LAN = lanHost('lan', `sking${pid}l`, `skingv${pid}l`, prefix, 20);
const nodes = [A, B];
const lan: L2Lan = { bridge: `skingbr${pid}`.slice(0, 15), prefix, hosts: [A, B, LAN] };
const WS_PORT = 9000;
let server: TestServer;
let work = '';
const children: ChildProcess[] = [];

const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 90_000) => waitFor(fn, what, ms, nodes);
const k = async (args: string[], input?: string) => ok(await server.kubectl(args, input === undefined ? {} : { input }));
const inLan = (cmd: string[], input?: string) => spawnSync('nsenter', [`--net=/var/run/netns/${LAN.netns}`, ...cmd],
  { encoding: 'utf8', timeout: 30_000, ...(input !== undefined ? { input } : {}) });
/** A request from the LAN host: status code and body. */
const curl = (url: string, extra: string[] = []) => {
  const r = inLan(['curl', '-s', '-m', '5', '-w', '\n%{http_code}', ...extra, url]);
  const lines = r.stdout.split('\n');
  return { code: Number(lines.pop()), body: lines.join('\n').trim() };
};
const viaHost = (node: NetnsHost, host: string, path = '/') => curl(`http://${node.ip}${path}`, ['-H', `Host: ${host}`]);
/** The subject of the certificate a node presents for an SNI name. */
const certSubject = (node: NetnsHost, servername: string) => {
  const r = inLan(['openssl', 's_client', '-connect', `${node.ip}:443`, '-servername', servername], '');
  return /subject=([^\n]*)/.exec(r.stdout)?.[1]?.trim() ?? '';
};
const eventsOf = async (name: string) => (JSON.parse(await k(['get', 'events', '--field-selector', `involvedObject.name=${name}`, '-o', 'json'])).items as any[])
  .map((e) => `${e.type} ${e.reason}: ${e.message}`);

function deployment(name: string, node: string): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name} }
spec:
  replicas: 1
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      nodeSelector: { kubernetes.io/hostname: ${node} }
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: ${TEST_IMAGE}
        command: [sh, -c, 'mkdir -p /www/api; echo ${name} > /www/index.html; echo ${name}-api > /www/api/index.html; exec httpd -f -p 8080 -h /www']
        readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 }
---
apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec:
  selector: { app: ${name} }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;
}

const INGRESS = (extraRules = '') => `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: web }
spec:
  tls: [{ hosts: [foo.example], secretName: foo-tls }]
  rules:
  - host: foo.example
    http:
      paths:
      - { path: /, pathType: Prefix, backend: { service: { name: web-a, port: { number: 80 } } } }
      - { path: /api, pathType: Prefix, backend: { service: { name: web-b, port: { name: http } } } }
  - host: bar.example
    http:
      paths:
      - { path: /, pathType: ImplementationSpecific, backend: { service: { name: web-b, port: { number: 80 } } } }
  - host: ws.example
    http:
      paths:
      - { path: /ws, pathType: Exact, backend: { service: { name: ws-echo, port: { number: 80 } } } }${extraRules}
`;

/** A certificate for foo.example (self-signed, so it is its own CA for curl), organization `org`. */
function makeCert(name: string, org: string): { crt: string; key: string } {
  const crt = join(work, `${name}.crt`), key = join(work, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', key, '-out', crt,
    '-subj', `/CN=foo.example/O=${org}`, '-addext', 'subjectAltName=DNS:foo.example'], { stdio: 'ignore' });
  return { crt, key };
}

/** Scripts for the LAN host: a WebSocket echo server and a line-driven WebSocket client (the `ws` package). */
function writeWsScripts(): void {
  const wsModule = JSON.stringify(join(REPO_ROOT, 'node_modules', 'ws', 'index.js'));
  writeFileSync(join(work, 'ws-echo.cjs'), `
const { WebSocketServer } = require(${wsModule});
const wss = new WebSocketServer({ host: '0.0.0.0', port: ${WS_PORT} });
wss.on('connection', (ws, req) => {
  ws.send('hello from ' + req.headers['x-forwarded-for'] + ' via ' + req.headers.host);
  ws.on('message', (m) => ws.send('echo:' + m));
});
wss.on('listening', () => console.log('listening'));
`);
  writeFileSync(join(work, 'ws-client.cjs'), `
const WebSocket = require(${wsModule});
const ws = new WebSocket(process.argv[2], { headers: { host: process.argv[3] } });
ws.on('message', (m) => console.log(String(m)));
ws.on('close', () => { console.log('closed'); process.exit(0); });
ws.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
require('readline').createInterface({ input: process.stdin }).on('line', (l) => ws.send(l));
`);
}

/** Starts a process in the LAN host's namespace; its stdout lines come through `next()`. */
function lanProcess(args: string[]): { proc: ChildProcess; next: (ms?: number) => Promise<string> } {
  const proc = spawn('nsenter', [`--net=/var/run/netns/${LAN.netns}`, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(proc);
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => { const w = waiters.shift(); if (w) w(l); else lines.push(l); });
  const next = (ms = 20_000) => new Promise<string>((resolve, reject) => {
    const l = lines.shift();
    if (l !== undefined) return resolve(l);
    const t = setTimeout(() => reject(new Error(`no output from ${args.join(' ')} within ${ms} ms`)), ms);
    waiters.push((x) => { clearTimeout(t); resolve(x); });
  });
  return { proc, next };
}

before(async () => {
  const missing = netnsAgentRequirements();
  for (const bin of ['/usr/sbin/nft', '/usr/bin/openssl']) if (!existsSync(bin)) missing.push(bin);
  if (!existsSync(join(REPO_ROOT, 'node_modules', 'ws'))) missing.push('the ws package (node_modules/ws)');
  if (missing.length) throw new Error(`the ingress test needs: ${missing.join(', ')}`);
  work = mkdtempSync('/tmp/sking-work-');
  writeWsScripts();
  createL2Lan(lan);
  for (const h of nodes) prepareAgentDir(h, 'skiff-ing-');
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
    const pods = JSON.parse(await k(['get', 'pods', '-o', 'json'])).items as any[];
    return pods.length === 2 && pods.every((p) => p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
  }, 'both web pods Ready', 180_000);
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const h of nodes) h.proc?.kill('SIGKILL');
  for (const h of nodes) if (h.dir) await teardownRuntime({ dataDir: h.dir, removeDataDir: true }).catch(() => undefined);
  removeL2Lan(lan);
  if (work) rmSync(work, { recursive: true, force: true });
});

test('IngressClass skiff is the default; two hosts and two paths reach two Deployments from the LAN; status lists both nodes', { timeout: 240_000 }, async () => {
  const cls = JSON.parse(await k(['get', 'ingressclass', 'skiff', '-o', 'json']));
  assert.equal(cls.spec.controller, 'skiff.io/ingress');
  assert.equal(cls.metadata.annotations['ingressclass.kubernetes.io/is-default-class'], 'true');
  await k(['apply', '-f', '-'], INGRESS());
  for (const node of nodes) {
    await eventually(async () => viaHost(node, 'foo.example').body === 'web-a', `foo.example / → web-a via ${node.name}`);
    assert.equal(viaHost(node, 'foo.example', '/api/').body, 'web-b-api', `foo.example /api/ → web-b via ${node.name}`);
    assert.equal(viaHost(node, 'bar.example').body, 'web-b', `bar.example → web-b via ${node.name}`);
    assert.equal(viaHost(node, 'foo.example', '/apix').code, 404, 'Prefix /api is element-wise: /apix goes to / (web-a has no such file)');
    const none = viaHost(node, 'nothing.example');
    assert.deepEqual([none.code, none.body], [404, '404 page not found']);
  }
  await eventually(async () => {
    const ing = JSON.parse(await k(['get', 'ingress', 'web', '-o', 'json']));
    const ips = (ing.status?.loadBalancer?.ingress ?? []).map((i: any) => i.ip).sort();
    return JSON.stringify(ips) === JSON.stringify([A.ip, B.ip].sort());
  }, 'Ingress status lists both node IPs');
  const nodeObj = JSON.parse(await k(['get', 'node', A.name, '-o', 'json']));
  assert.equal(nodeObj.metadata.annotations['ingress.skiff.io/proxy'], 'http=80,https=443');
});

test('TLS by SNI with the Secret\'s certificate, renewed without restart; unknown names get the default certificate', { timeout: 240_000 }, async () => {
  const first = makeCert('first', 'first');
  await k(['create', 'secret', 'tls', 'foo-tls', '--cert', first.crt, '--key', first.key]);
  // curl checks the chain against the Secret's certificate (its own CA) and the name foo.example.
  const tlsGet = (node: NetnsHost, ca: string) => curl(`https://foo.example/api/`, ['--resolve', `foo.example:443:${node.ip}`, '--cacert', ca]);
  for (const node of nodes) await eventually(async () => tlsGet(node, first.crt).body === 'web-b-api', `https://foo.example on ${node.name} with the Secret's certificate`);
  assert.match(certSubject(A, 'foo.example'), /O ?= ?first/);
  assert.match(certSubject(A, 'other.example'), /CN ?= ?skiff-ingress-default/);
  const plain = curl('https://bar.example/', ['-k', '--resolve', `bar.example:443:${A.ip}`]);
  assert.equal(plain.body, 'web-b', 'a host without a certificate is still served over HTTPS (default certificate)');
  const renewed = makeCert('renewed', 'renewed');
  await k(['create', 'secret', 'tls', 'foo-tls', '--cert', renewed.crt, '--key', renewed.key, '--dry-run=client', '-o', 'yaml'])
    .then((yaml) => k(['apply', '-f', '-'], yaml));
  for (const node of nodes) await eventually(async () => /O ?= ?renewed/.test(certSubject(node, 'foo.example')), `renewed certificate served by ${node.name}`);
  assert.equal(tlsGet(A, renewed.crt).body, 'web-b-api');
});

test('a WebSocket passes through the ingress and stays open while the Ingress changes', { timeout: 240_000 }, async () => {
  const echo = lanProcess(['node', join(work, 'ws-echo.cjs')]);
  assert.equal(await echo.next(), 'listening');
  // The echo server lives on the LAN host: a Service without selector and a hand-written EndpointSlice.
  await k(['apply', '-f', '-'], `
apiVersion: v1
kind: Service
metadata: { name: ws-echo }
spec:
  ports: [{ name: ws, port: 80, targetPort: ${WS_PORT} }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ws-echo-1, labels: { kubernetes.io/service-name: ws-echo } }
addressType: IPv4
ports: [{ name: ws, port: ${WS_PORT}, protocol: TCP }]
endpoints: [{ addresses: ["${LAN.ip}"], conditions: { ready: true } }]
`);
  let client!: ReturnType<typeof lanProcess>;
  await eventually(async () => {
    client = lanProcess(['node', join(work, 'ws-client.cjs'), `ws://${A.ip}/ws`, 'ws.example']);
    const hello = await client.next().catch(() => '');
    if (hello.startsWith('hello')) return hello;
    client.proc.kill('SIGKILL');
    return undefined;
  }, 'a WebSocket through node A\'s ingress');
  client.proc.stdin!.write('one\n');
  assert.equal(await client.next(), 'echo:one');
  // Change the Ingress (a new host) and wait until it routes; the open WebSocket is untouched.
  assert.equal(viaHost(A, 'baz.example').code, 404);
  await k(['apply', '-f', '-'], INGRESS(`
  - host: baz.example
    http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web-b, port: { number: 80 } } } }] }`));
  await eventually(async () => viaHost(A, 'baz.example').body === 'web-b', 'the changed Ingress routes baz.example');
  client.proc.stdin!.write('two\n');
  assert.equal(await client.next(), 'echo:two', 'the WebSocket opened before the change still echoes');
  client.proc.stdin!.end();
});

test('bad input: a missing Service answers 503 with an event, a missing Secret gets the default certificate and an event, invalid Ingresses are refused', { timeout: 240_000 }, async () => {
  await k(['apply', '-f', '-'], `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: broken }
spec:
  tls: [{ hosts: [sec.example], secretName: no-such-tls }]
  rules:
  - host: missing.example
    http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: no-such-svc, port: { number: 80 } } } }] }
  - host: sec.example
    http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web-a, port: { number: 80 } } } }] }
`);
  await eventually(async () => viaHost(A, 'missing.example').code === 503, 'missing Service → 503');
  assert.equal(viaHost(A, 'missing.example').body, 'no available server');
  const evs = await eventually(async () => {
    const e = await eventsOf('broken');
    return e.some((x) => x.startsWith('Warning ServiceNotFound')) && e.some((x) => x.startsWith('Warning SecretNotFound')) ? e : undefined;
  }, 'ServiceNotFound and SecretNotFound events on the Ingress');
  assert.ok(evs.some((e) => /service "no-such-svc" not found/.test(e)), evs.join('\n'));
  assert.ok(evs.some((e) => /TLS secret "no-such-tls" not found/.test(e)), evs.join('\n'));
  assert.match(certSubject(A, 'sec.example'), /CN ?= ?skiff-ingress-default/);
  assert.equal(curl('https://sec.example/', ['-k', '--resolve', `sec.example:443:${A.ip}`]).body, 'web-a');
  // The rest of the routes are undisturbed.
  assert.equal(viaHost(B, 'foo.example').body, 'web-a');
  // Invalid Ingresses: the API's validation errors.
  const bad = async (spec: string) => {
    const r = await server.kubectl(['apply', '-f', '-'], { input: `apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: invalid }\nspec: ${spec}\n` });
    assert.notEqual(r.code, 0, `accepted: ${spec}`);
    return r.stderr;
  };
  assert.match(await bad('{ rules: [{ host: a.example, http: { paths: [{ path: relative, pathType: Prefix, backend: { service: { name: web-a, port: { number: 80 } } } }] } }] }'),
    /spec\.rules\[0\]\.http\.paths\[0\]\.path: Invalid value: "relative": must be an absolute path/);
  assert.match(await bad('{ rules: [{ host: a.example, http: { paths: [{ path: /, backend: { service: { name: web-a, port: { number: 80 } } } }] } }] }'),
    /pathType: Required value: pathType must be specified/);
  assert.match(await bad('{ rules: [{ host: "10.1.2.3", http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web-a, port: { number: 80 } } } }] } }] }'),
    /must be a DNS name, not an IP address/);
  assert.match(await bad('{ tls: [{ hosts: ["a.*.example"] }], defaultBackend: { service: { name: web-a, port: { number: 80 } } } }'), /spec\.tls\[0\]\.hosts\[0\]/);
});

test('--disable traefik (k3s spelling): no IngressClass, and agents are told to run no ingress proxy', { timeout: 120_000 }, async () => {
  const off = await startServer({ args: ['--disable', 'traefik'] });
  try {
    const classes = JSON.parse(ok(await off.kubectl(['get', 'ingressclasses', '-o', 'json']))).items as any[];
    assert.deepEqual(classes.map((c) => c.metadata.name), []);
    const password = readFileSync(join(off.dataDir, 'server', 'node-token'), 'utf8').trim().split('::server:')[1]!;
    const cfg = spawnSync('curl', ['-sk', '-H', `Authorization: Bearer ${password}`, `${off.url}/v1-skiff/config`], { encoding: 'utf8' });
    assert.equal(JSON.parse(cfg.stdout).disableIngress, true);
    const bad = spawnSync(join(REPO_ROOT, 'bin', 'skiff'), ['server', '--disable', 'nonsense', '--data-dir', join(work, 'bad')], { encoding: 'utf8', timeout: 30_000 });
    assert.match(bad.stderr, /--disable: unknown component "nonsense": one of traefik, ingress, servicelb/);
  } finally {
    await off.dispose();
  }
});
