// API aggregation through a real server in this process and a real extension API server in its own
// `node` process on this host's address (test/fixtures/extension-apiserver.mjs, which trusts only
// the request-header CA the server publishes): the APIService turns Available, requests are proxied
// with the caller's identity (never its credentials), watches stream, upgrades splice, discovery
// merges the backend's document; an unauthenticated or unauthorized request never reaches the
// backend; a stopped backend turns Available=False with the rest of the API unaffected; a user's
// metrics.k8s.io APIService takes over from skiff's own and gives it back when deleted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeServingCert } from '../helpers/webhook-server.js';
import { eventually } from '../helpers/wait.js';
import { createServer } from 'node:net';

process.env.SKIFF_LOG_LEVEL ??= 'warn';
const { startServer } = await import('../../src/server/run.js');

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'extension-apiserver.mjs');
const GV = 'wardle.example.com/v1alpha1';
const dataDir = mkdtempSync(join(tmpdir(), 'skiff-aggr-'));
const hostIp = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
type Running = Awaited<ReturnType<typeof startServer>>;
let server: Running | undefined;
let port = 0;
let admin: { cert: string; key: string; ca: string };
const backends: ChildProcess[] = [];
let tls: { ca: string; cert: string; key: string };

after(async () => {
  for (const b of backends) b.kill('SIGKILL');
  await server?.close().catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

interface Res { status: number; headers: Record<string, unknown>; body: string; json(): any }
function call(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string>; anonymous?: boolean } = {}): Promise<Res> {
  const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port, method, path, ca: admin.ca, agent: false,
      ...(opts.anonymous ? {} : { cert: admin.cert, key: admin.key }),
      headers: { ...opts.headers, ...(body ? { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json', 'content-length': String(body.length) } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function startBackend(group: string, version: string): Promise<{ proc: ChildProcess; port: number }> {
  const cm = (await call('GET', '/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication')).json();
  const proc = spawn(process.execPath, [FIXTURE], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env, GROUP: group, VERSION: version, HOST: hostIp, PORT: '0',
      TLS_CERT: readFileSync(tls.cert, 'utf8'), TLS_KEY: readFileSync(tls.key, 'utf8'),
      REQUESTHEADER_CA: cm.data['requestheader-client-ca-file'], REQUESTHEADER_ALLOWED_NAMES: cm.data['requestheader-allowed-names'],
    },
  });
  backends.push(proc);
  const p = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', (code) => reject(new Error(`extension API server exited (${code})`)));
  });
  return { proc, port: p };
}

async function apply(path: string, obj: any): Promise<void> {
  const r = await call('POST', path, { body: obj });
  assert.ok(r.status === 201 || r.status === 200, `${path}: ${r.status} ${r.body}`);
}

async function serviceFor(ns: string, name: string, backendPort: number): Promise<void> {
  await apply(`/api/v1/namespaces/${ns}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ports: [{ name: 'https', port: 443, targetPort: backendPort }] } });
  await apply(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: ns, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4', endpoints: [{ addresses: [hostIp], conditions: { ready: true } }], ports: [{ name: 'https', port: backendPort, protocol: 'TCP' }],
  });
}

function apiService(group: string, version: string, ns: string, svc: string, caBundle?: string): any {
  return {
    apiVersion: 'apiregistration.k8s.io/v1', kind: 'APIService', metadata: { name: `${version}.${group}` },
    spec: { group, version, service: { namespace: ns, name: svc }, groupPriorityMinimum: 1000, versionPriority: 15, ...(caBundle ? { caBundle } : { insecureSkipTLSVerify: true }) },
  };
}

const available = async (name: string) => (await call('GET', `/apis/apiregistration.k8s.io/v1/apiservices/${name}`)).json().status?.conditions?.find((c: any) => c.type === 'Available');

before(async () => {
  assert.ok(hostIp, 'this test needs a non-loopback IPv4 address on the host (an EndpointSlice may not point at 127.0.0.1)');
  port = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => { const p = (srv.address() as { port: number }).port; srv.close(() => resolve(p)); });
  });
  server = await startServer({
    dataDir, bindAddress: '127.0.0.1', httpsListenPort: port, tlsSan: [], writeKubeconfig: join(dataDir, 'kubeconfig.yaml'), writeKubeconfigMode: 0o600,
    clusterCidr: '10.42.0.0/16', serviceCidr: '10.43.0.0/16', serviceNodePortRange: '30000-32767', clusterDns: '10.43.0.10',
    clusterDomain: 'cluster.local', disableAgent: true, disableControllerManager: true, watchCacheSize: 1000, disableScheduler: true,
    nodeMonitorGracePeriodSeconds: 40, defaultNotReadyTolerationSeconds: 300, defaultUnreachableTolerationSeconds: 300,
  });
  const tlsDir = join(dataDir, 'server', 'tls');
  admin = { cert: readFileSync(join(tlsDir, 'client-admin.crt'), 'utf8'), key: readFileSync(join(tlsDir, 'client-admin.key'), 'utf8'), ca: server.ctx.caBundlePem };
  tls = makeServingCert(mkdtempSync(join(dataDir, 'backend-')), { ips: [hostIp!], dns: ['api.wardle.svc', 'metrics.wardle.svc'] });
  await apply('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wardle' } });
});

test('the server publishes extension-apiserver-authentication with its front-proxy trust', async () => {
  const cm = await eventually(async () => {
    const r = await call('GET', '/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication');
    return r.status === 200 && r.json();
  }, 'the authentication ConfigMap');
  const tlsDir = join(dataDir, 'server', 'tls');
  assert.equal(cm.data['requestheader-client-ca-file'], readFileSync(join(tlsDir, 'request-header-ca.crt'), 'utf8'));
  assert.equal(cm.data['client-ca-file'], readFileSync(join(tlsDir, 'client-ca.crt'), 'utf8'));
  assert.deepEqual(JSON.parse(cm.data['requestheader-allowed-names']), ['system:auth-proxy']);
  assert.deepEqual(JSON.parse(cm.data['requestheader-username-headers']), ['X-Remote-User']);
  assert.deepEqual(JSON.parse(cm.data['requestheader-group-headers']), ['X-Remote-Group']);
  assert.deepEqual(JSON.parse(cm.data['requestheader-extra-headers-prefix']), ['X-Remote-Extra-']);
  // Edited away: restored.
  await call('PATCH', '/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication', { body: { data: { 'requestheader-allowed-names': '[]' } } });
  await eventually(async () => (await call('GET', '/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication')).json().data['requestheader-allowed-names'] === '["system:auth-proxy"]', 'the ConfigMap restored');
  const role = (await call('GET', '/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/roles/extension-apiserver-authentication-reader')).json();
  assert.deepEqual(role.rules, [{ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['extension-apiserver-authentication'] }]);
});

test('an APIService backed by a Service: available, proxied with the caller\'s identity, streamed, upgraded, discovered', async () => {
  const b = await startBackend('wardle.example.com', 'v1alpha1');
  // Not available before its Service exists, with kube-aggregator's reason.
  await apply('/apis/apiregistration.k8s.io/v1/apiservices', apiService('wardle.example.com', 'v1alpha1', 'wardle', 'api', Buffer.from(readFileSync(tls.ca)).toString('base64')));
  const missing = await eventually(async () => { const c = await available('v1alpha1.wardle.example.com'); return c?.status === 'False' && c; }, 'Available=False');
  assert.equal(missing.reason, 'ServiceNotFound');
  assert.equal(missing.message, 'service/api in "wardle" is not present');
  const early = await call('GET', `/apis/${GV}`);
  assert.equal(early.status, 503);
  assert.equal(early.body, 'service unavailable\n');

  await serviceFor('wardle', 'api', b.port);
  const ok = await eventually(async () => { const c = await available('v1alpha1.wardle.example.com'); return c?.status === 'True' && c; }, 'Available=True', 30_000);
  assert.deepEqual([ok.reason, ok.message], ['Passed', 'all checks passed']);

  const rl = await call('GET', `/apis/${GV}`);
  assert.equal(rl.status, 200, rl.body);
  assert.equal(rl.json().groupVersion, GV);

  const list = await call('GET', `/apis/${GV}/namespaces/default/flunders`, { headers: { Authorization: 'Bearer nope-ignored-with-a-cert' } });
  assert.equal(list.status, 200, list.body);
  const seen = list.json().items[0].spec;
  assert.equal(seen.seenUser, 'system:admin');
  assert.deepEqual(seen.seenGroups, ['system:masters', 'system:authenticated']);
  assert.equal(seen.seenAuthorization, '', 'the caller\'s credentials stay with skiff');

  // Impersonation is resolved by skiff; the backend sees the impersonated user.
  const asAlice = await call('GET', `/apis/${GV}/namespaces/default/flunders/f9`, { headers: { 'Impersonate-User': 'alice', 'Impersonate-Group': 'system:masters' } });
  assert.equal(asAlice.status, 200, asAlice.body);
  assert.equal(asAlice.json().spec.seenUser, 'alice');
  // Errors come back as the backend wrote them.
  const nf = await call('GET', `/apis/${GV}/namespaces/default/flunders/missing`);
  assert.equal(nf.status, 404);
  assert.equal(nf.json().reason, 'NotFound');

  // Discovery: /apis, /apis/<group> and the aggregated document list the backend's group version.
  await eventually(async () => (await call('GET', '/apis')).json().groups.some((g: any) => g.name === 'wardle.example.com'), 'the group in /apis');
  assert.equal((await call('GET', '/apis/wardle.example.com')).json().preferredVersion.groupVersion, GV);
  const agg = await eventually(async () => {
    const r = await call('GET', '/apis', { headers: { Accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' } });
    return r.json().items.find((g: any) => g.metadata.name === 'wardle.example.com')?.versions[0];
  }, 'the group in aggregated discovery');
  assert.equal(agg.freshness, 'Current');
  assert.deepEqual(agg.resources.map((r: any) => r.resource), ['flunders', 'requestcounts']);
  assert.deepEqual(agg.resources[0].subresources.map((s: any) => s.subresource), ['exec']);

  // OpenAPI v3: the index lists the backend's document, which comes from the backend.
  const index = await eventually(async () => (await call('GET', '/openapi/v3')).json().paths[`apis/${GV}`], 'the group version in the OpenAPI index');
  assert.equal(index.serverRelativeURL, `/openapi/v3/apis/${GV}?hash=F1A2`);
  assert.ok((await call('GET', '/openapi/v3')).json().paths['apis/apps/v1'], 'local documents still listed');
  const doc = await call('GET', index.serverRelativeURL);
  assert.equal(doc.status, 200, doc.body);
  assert.ok(doc.json().components.schemas['com.example.wardle.v1alpha1.Flunder']);

  // A watch streams: two events a second apart arrive on one open response.
  const events = await new Promise<string[]>((resolve, reject) => {
    const lines: string[] = [];
    const req = httpsRequest({ host: '127.0.0.1', port, path: `/apis/${GV}/namespaces/default/flunders?watch=1`, ca: admin.ca, cert: admin.cert, key: admin.key, agent: false }, (res) => {
      assert.equal(res.statusCode, 200);
      let buf = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
        if (lines.length >= 2) { req.destroy(); resolve(lines); }
      });
    });
    req.on('error', (e) => { if (lines.length < 2) reject(e); });
    req.end();
  });
  assert.deepEqual(events.map((l) => JSON.parse(l).object.metadata.name), ['w0', 'w1']);

  // An upgrade (exec-like) is spliced both ways.
  const echoed = await new Promise<string>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: admin.ca, cert: admin.cert, key: admin.key, servername: 'localhost' }, () => {
      s.write(`POST /apis/${GV}/namespaces/default/flunders/f1/exec HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n`);
    });
    let text = '';
    s.setEncoding('utf8').on('data', (d: string) => {
      text += d;
      if (text.includes('hello system:admin\n') && !text.includes('ping')) s.write('ping\n');
      if (text.includes('ping\n')) { s.destroy(); resolve(text); }
    });
    s.on('error', reject);
  });
  assert.match(echoed, /^HTTP\/1\.1 101 /);
  assert.match(echoed, /hello system:admin\nping\n$/);
});

test('a caBundle that does not verify the backend: Available (as kube-aggregator\'s check), requests refused with the TLS error', async () => {
  const b = await startBackend('wardle.example.com', 'v1beta1');
  await serviceFor('wardle', 'api-beta', b.port);
  const other = makeServingCert(mkdtempSync(join(dataDir, 'other-ca-')), { ips: [hostIp!], dns: ['api-beta.wardle.svc'] });
  await apply('/apis/apiregistration.k8s.io/v1/apiservices', apiService('wardle.example.com', 'v1beta1', 'wardle', 'api-beta', Buffer.from(readFileSync(other.ca)).toString('base64')));
  const c = await eventually(async () => { const x = await available('v1beta1.wardle.example.com'); return x?.reason === 'Passed' && x; }, 'Available', 30_000);
  assert.equal(c.status, 'True');
  const r = await call('GET', '/apis/wardle.example.com/v1beta1/namespaces/default/flunders');
  assert.equal(r.status, 503);
  assert.match(r.body, /^error trying to reach service: .*(certificate|self.signed)/i);
  const agg = (await call('GET', '/apis', { headers: { Accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' } })).json();
  const versions = agg.items.find((g: any) => g.metadata.name === 'wardle.example.com').versions;
  assert.deepEqual(versions.map((v: any) => [v.version, v.freshness]), [['v1beta1', 'Stale'], ['v1alpha1', 'Current']],
    'the unverified version is stale, the other current (equal versionPriority: Kubernetes\' version order)');
  assert.equal((await call('DELETE', '/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.wardle.example.com')).status, 200);
  await eventually(async () => !(await call('GET', '/apis/wardle.example.com')).json().versions.some((v: any) => v.version === 'v1beta1'), 'v1beta1 gone from discovery');
});

test('unauthenticated and unauthorized requests never reach the backend', async () => {
  const count = async () => (await call('GET', `/apis/${GV}/requestcounts`)).json().total as number;
  const first = await count();
  const anon = await call('GET', `/apis/${GV}/namespaces/default/flunders`, { anonymous: true });
  assert.equal(anon.status, 401);
  const bob = await call('GET', `/apis/${GV}/namespaces/default/flunders`, { headers: { 'Impersonate-User': 'bob' } });
  assert.equal(bob.status, 403);
  assert.equal(bob.json().message, 'flunders.wardle.example.com is forbidden: User "bob" cannot list resource "flunders" in API group "wardle.example.com" in the namespace "default"');
  // The second count request is the only one that arrived since the first.
  assert.equal(await count(), first + 1);
});

test('a stopped backend: Available=False, its discovery stale, everything else serves', async () => {
  const b = backends[0]!;
  b.kill('SIGTERM');
  await new Promise((r) => b.once('exit', r));
  // Any change to the Service re-checks at once (otherwise the 30 s resync would).
  await call('PATCH', '/api/v1/namespaces/wardle/services/api', { body: { metadata: { labels: { poke: '1' } } } });
  const down = await eventually(async () => { const c = await available('v1alpha1.wardle.example.com'); return c?.status === 'False' && c; }, 'Available=False', 30_000);
  assert.equal(down.reason, 'FailedDiscoveryCheck');
  assert.match(down.message, new RegExp(`^failing or missing response from https://${hostIp!.replace(/\./g, '\\.')}:\\d+/apis/wardle\\.example\\.com/v1alpha1: Get ".*": .*ECONNREFUSED`));
  const r = await call('GET', `/apis/${GV}/namespaces/default/flunders`);
  assert.equal(r.status, 503);
  const metrics = (await call('GET', '/metrics')).body;
  assert.match(metrics, /^aggregator_unavailable_apiservice\{name="v1alpha1\.wardle\.example\.com"\} 1$/m);
  assert.match(metrics, /^aggregator_unavailable_apiservice\{name="v1\.apps"\} 0$/m);
  assert.match(metrics, /^aggregator_unavailable_apiservice_total\{name="v1alpha1\.wardle\.example\.com",reason="FailedDiscoveryCheck"\} 1$/m);
  const agg = (await call('GET', '/apis', { headers: { Accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' } })).json();
  const v = agg.items.find((g: any) => g.metadata.name === 'wardle.example.com').versions[0];
  assert.equal(v.freshness, 'Stale');
  assert.ok(agg.items.find((g: any) => g.metadata.name === 'apps').versions[0].resources.length > 0);
  assert.equal((await call('GET', '/api/v1/namespaces/default/configmaps')).status, 200);
  assert.equal((await call('GET', '/apis/apps/v1')).status, 200);
});

test('a user\'s metrics.k8s.io APIService takes over from skiff\'s own, and gives it back when deleted', async () => {
  const local = await available('v1beta1.metrics.k8s.io');
  assert.deepEqual([local.status, local.reason], ['True', 'Local']);
  const b = await startBackend('metrics.k8s.io', 'v1beta1');
  await serviceFor('wardle', 'metrics', b.port);
  const put = (await call('GET', '/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io')).json();
  put.spec = { ...put.spec, service: { namespace: 'wardle', name: 'metrics' }, insecureSkipTLSVerify: true };
  const u = await call('PUT', '/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io', { body: put });
  assert.equal(u.status, 200, u.body);
  await eventually(async () => (await available('v1beta1.metrics.k8s.io'))?.reason === 'Passed', 'the user\'s metrics APIService available', 30_000);
  const r = await call('GET', '/apis/metrics.k8s.io/v1beta1/namespaces/default/flunders');
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json().items[0].spec.seenUser, 'system:admin', 'served by the user\'s backend');

  assert.equal((await call('DELETE', '/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io')).status, 200);
  await eventually(async () => (await available('v1beta1.metrics.k8s.io'))?.reason === 'Local', 'skiff\'s own metrics APIService back', 30_000);
  await eventually(async () => (await call('GET', '/apis/metrics.k8s.io/v1beta1/nodes')).json().kind === 'NodeMetricsList', 'skiff serving metrics again');
});
