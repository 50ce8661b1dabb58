// API aggregation's pure parts: the identity headers sent to a backend (and the client headers that
// must never reach it), an APIResourceList in the aggregated discovery form, the discovery merge
// (a backend taking over one of skiff's group versions, a new group, a stale backend), and the
// kube-aggregator reasons for a Service that cannot be used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, get as httpGet, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authProxyHeaders, forwardHeaders, parseGoDuration, proxyRequest } from '../../src/apiserver/aggregation/proxy.js';
import { makeServingCert } from '../helpers/webhook-server.js';
import { RemoteDiscovery, toAggregatedResources } from '../../src/apiserver/aggregation/remote-discovery.js';
import { BackendTransport, BackendUnavailable, resolveEndpoint, backendTls, serviceRefOf } from '../../src/apiserver/aggregation/backend.js';
import { Discovery } from '../../src/apiserver/discovery.js';
import { ResourceRegistry } from '../../src/apiserver/registry.js';
import type { Store } from '../../src/storage/types.js';

const WARDLE_LIST = {
  kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'wardle.example.com/v1alpha1',
  resources: [
    { name: 'flunders', singularName: 'flunder', namespaced: true, kind: 'Flunder', verbs: ['get', 'list'], shortNames: ['fl'] },
    { name: 'flunders/status', singularName: '', namespaced: true, kind: 'Flunder', verbs: ['get', 'update'] },
    { name: 'fischers', singularName: 'fischer', namespaced: false, kind: 'Fischer', verbs: ['list'] },
    { name: 'orphans/status', namespaced: true, kind: 'X', verbs: [] },
    { bogus: true }, 'junk',
  ],
};

test('the user goes to the backend as X-Remote-* headers; credentials and client-sent X-Remote-* do not', () => {
  const req = {
    headers: {
      authorization: 'Bearer secret', 'impersonate-user': 'mallory', 'x-remote-user': 'mallory', 'x-remote-group': 'system:masters',
      'x-remote-extra-scopes': 'all', accept: 'application/json', 'user-agent': 'kubectl', connection: 'keep-alive', host: 'skiff:6443',
    },
    socket: { remoteAddress: '::ffff:10.0.0.9' },
  } as unknown as IncomingMessage;
  const h = forwardHeaders(req, { name: 'alice', groups: ['dev', 'system:authenticated'], extra: { 'scopes.example.com/a b': ['x', 'y'] } }, { host: '10.42.0.5', port: 8443 }, false);
  const lower = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
  assert.equal(lower.authorization, undefined);
  assert.equal(lower['impersonate-user'], undefined);
  assert.equal(lower.connection, undefined);
  assert.equal(lower['x-remote-extra-scopes'], undefined);
  assert.equal(lower['x-remote-user'], 'alice');
  assert.deepEqual(lower['x-remote-group'], ['dev', 'system:authenticated']);
  assert.deepEqual(lower['x-remote-extra-scopes.example.com%2fa%20b'], ['x', 'y']);
  assert.equal(lower.accept, 'application/json');
  assert.equal(lower.host, '10.42.0.5:8443');
  assert.equal(lower['x-forwarded-for'], '10.0.0.9');
  const up = forwardHeaders({ ...req, headers: { upgrade: 'websocket', connection: 'Upgrade' } } as unknown as IncomingMessage, { name: 'a', groups: [] }, { host: 'fd00::1', port: 443 }, true);
  assert.equal(up.Upgrade, 'websocket');
  assert.equal(up.Connection, 'Upgrade');
  assert.equal(up.Host, '[fd00::1]:443');
  assert.deepEqual(authProxyHeaders({ name: 'system:kube-aggregator', groups: [] }), { 'X-Remote-User': 'system:kube-aggregator' });
});

test('an APIResourceList becomes aggregated discovery resources, subresources under their parent, junk skipped', () => {
  const r = toAggregatedResources('wardle.example.com', 'v1alpha1', WARDLE_LIST) as any[];
  assert.deepEqual(r.map((x) => x.resource), ['flunders', 'fischers']);
  assert.deepEqual(r[0], {
    resource: 'flunders', responseKind: { group: 'wardle.example.com', version: 'v1alpha1', kind: 'Flunder' }, scope: 'Namespaced',
    singularResource: 'flunder', verbs: ['get', 'list'], shortNames: ['fl'],
    subresources: [{ subresource: 'status', responseKind: { group: 'wardle.example.com', version: 'v1alpha1', kind: 'Flunder' }, verbs: ['get', 'update'] }],
  });
  assert.equal(r[1].scope, 'Cluster');
  assert.deepEqual(toAggregatedResources('g', 'v', { resources: 'nope' }), []);
  assert.deepEqual(toAggregatedResources('g', 'v', null), []);
});

test('discovery merges backends: a new group, a taken-over group version, stale versions', () => {
  const registry = new ResourceRegistry();
  const remote = new RemoteDiscovery();
  const d = new Discovery(registry, remote);
  const before = JSON.parse(d.apiGroupList());
  assert.ok(!before.groups.some((g: any) => g.name === 'wardle.example.com'));
  assert.ok(d.resourceList('metrics.k8s.io', 'v1beta1'), 'skiff serves metrics.k8s.io itself');

  remote.set('v1alpha1.wardle.example.com', { group: 'wardle.example.com', version: 'v1alpha1', groupPriorityMinimum: 1000, versionPriority: 15 }, WARDLE_LIST);
  remote.markStale('v1beta1.metrics.k8s.io', { group: 'metrics.k8s.io', version: 'v1beta1', groupPriorityMinimum: 100, versionPriority: 100 });
  const list = JSON.parse(d.apiGroupList());
  const wardle = list.groups.find((g: any) => g.name === 'wardle.example.com');
  assert.deepEqual(wardle.preferredVersion, { groupVersion: 'wardle.example.com/v1alpha1', version: 'v1alpha1' });
  assert.equal(list.groups.filter((g: any) => g.name === 'metrics.k8s.io').length, 1, 'a taken-over group is listed once');
  assert.equal(d.resourceList('metrics.k8s.io', 'v1beta1'), undefined, 'a backend serves it now');
  assert.ok(JSON.parse(d.apiGroup('wardle.example.com')!).versions.length === 1);

  const agg = JSON.parse(d.aggregated('apis', 'v2'));
  const aw = agg.items.find((g: any) => g.metadata.name === 'wardle.example.com');
  assert.equal(aw.versions[0].freshness, 'Current');
  assert.deepEqual(aw.versions[0].resources.map((r: any) => r.resource), ['flunders', 'fischers']);
  const am = agg.items.find((g: any) => g.metadata.name === 'metrics.k8s.io');
  assert.deepEqual(am.versions, [{ version: 'v1beta1', resources: [], freshness: 'Stale' }], 'never answered: listed, stale, empty');
  assert.ok(agg.items.find((g: any) => g.metadata.name === 'apps').versions[0].resources.length > 0, 'the rest is untouched');

  // Fresh again, then stale: the last document is kept, marked stale.
  remote.markStale('v1alpha1.wardle.example.com', { group: 'wardle.example.com', version: 'v1alpha1', groupPriorityMinimum: 1000, versionPriority: 15 });
  const stale = JSON.parse(d.aggregated('apis', 'v2')).items.find((g: any) => g.metadata.name === 'wardle.example.com').versions[0];
  assert.equal(stale.freshness, 'Stale');
  assert.equal(stale.resources.length, 2);

  remote.remove('v1alpha1.wardle.example.com');
  remote.remove('v1beta1.metrics.k8s.io');
  assert.ok(!JSON.parse(d.apiGroupList()).groups.some((g: any) => g.name === 'wardle.example.com'));
  assert.ok(d.resourceList('metrics.k8s.io', 'v1beta1'), 'skiff serves metrics.k8s.io again');
});

test('a Service that cannot be used is reported with kube-aggregator\'s reasons and messages', () => {
  const objects: Record<string, any> = {};
  const store = {
    get: (k: string) => (objects[k] ? { obj: objects[k] } : undefined),
    list: (prefix: string) => ({ items: Object.entries(objects).filter(([k]) => k.startsWith(prefix)).map(([, obj]) => ({ obj })) }),
  } as unknown as Store;
  const a = { metadata: { name: 'v1alpha1.wardle.example.com' }, spec: { group: 'wardle.example.com', version: 'v1alpha1', service: { namespace: 'wardle', name: 'api' } } };
  const ref = serviceRefOf(a)!;
  assert.deepEqual(ref, { namespace: 'wardle', name: 'api', port: 443 });
  assert.equal(serviceRefOf({ metadata: { name: 'v1.apps' }, spec: { group: 'apps', version: 'v1' } }), undefined);
  const reason = () => { try { resolveEndpoint(store, ref); return 'ok'; } catch (e) { return e instanceof BackendUnavailable ? `${e.reason}: ${e.message}` : String(e); } };
  assert.equal(reason(), 'ServiceNotFound: service/api in "wardle" is not present');
  objects['/core/services/wardle/api'] = { spec: { ports: [{ name: 'https', port: 8443, targetPort: 8443 }] } };
  assert.equal(reason(), 'ServicePortError: service/api in "wardle" is not listening on port 443');
  objects['/core/services/wardle/api'].spec.ports[0].port = 443;
  assert.equal(reason(), 'EndpointsNotFound: cannot find endpointslices for service/api in "wardle"');
  objects['/discovery.k8s.io/endpointslices/wardle/api-1'] = {
    metadata: { labels: { 'kubernetes.io/service-name': 'api' } },
    ports: [{ name: 'https', port: 8443 }], endpoints: [{ addresses: ['10.42.0.7'], conditions: { ready: false }, nodeName: 'n1' }],
  };
  assert.equal(reason(), 'MissingEndpoints: endpointslices for service/api in "wardle" have no addresses with port name "https"');
  objects['/discovery.k8s.io/endpointslices/wardle/api-1'].endpoints[0].conditions.ready = true;
  assert.deepEqual(resolveEndpoint(store, ref), { host: '10.42.0.7', port: 8443, node: 'n1' });
  assert.deepEqual(backendTls({ ...a, spec: { ...a.spec, caBundle: Buffer.from('PEM').toString('base64') } }, ref), { servername: 'api.wardle.svc', caPem: 'PEM', insecure: false, caKey: '384fb9a44fabe158' });
});

test('a GET whose kept-alive backend connection was closed is sent again once on a new one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-aggr-retry-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certs = makeServingCert(dir, { ips: ['127.0.0.1'], dns: ['api.wardle.svc'] });
  let connections = 0;
  // The backend answers the first request on each connection and drops the connection at the second,
  // as a server whose idle timeout closed it just as the proxy reused it.
  const backend = createHttpsServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key) }, (req, res) => {
    const s = req.socket as typeof req.socket & { served?: number };
    s.served = (s.served ?? 0) + 1;
    if (s.served > 1) { s.destroy(); return; }
    res.end(JSON.stringify({ user: req.headers['x-remote-user'] }));
  });
  backend.on('secureConnection', () => { connections++; });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.after(() => { backend.closeAllConnections(); backend.close(); });
  const transport = new BackendTransport({ certPem: readFileSync(certs.cert, 'utf8'), keyPem: readFileSync(certs.key, 'utf8') });
  t.after(() => transport.closeAll());
  const target = {
    ep: { host: '127.0.0.1', port: (backend.address() as AddressInfo).port },
    tls: { servername: 'api.wardle.svc', caPem: readFileSync(certs.ca, 'utf8'), insecure: false, caKey: 'test' },
  };
  const front = createHttpServer((req, res) => { void proxyRequest(transport, { ...target, pathAndQuery: req.url ?? '/' }, req, res, { name: 'alice', groups: [] }); });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  t.after(() => { front.closeAllConnections(); front.close(); });
  const get = () => new Promise<{ status: number; body: string }>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port: (front.address() as AddressInfo).port, path: '/apis/g/v/x', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
  assert.deepEqual(await get(), { status: 200, body: '{"user":"alice"}' });
  assert.deepEqual(await get(), { status: 200, body: '{"user":"alice"}' }, 'retried on a fresh connection');
  assert.equal(connections, 2);
});

test('a backend that does not answer in time: 504 Timeout as kube-apiserver words it; ?timeout= is a Go duration', async (t) => {
  assert.equal(parseGoDuration('32s'), 32_000);
  assert.equal(parseGoDuration('1m0s'), 60_000);
  assert.equal(parseGoDuration('1.5s'), 1500);
  assert.equal(parseGoDuration('250ms'), 250);
  assert.equal(parseGoDuration('5'), undefined);
  assert.equal(parseGoDuration('3x'), undefined);
  assert.equal(parseGoDuration(null), undefined);
  const dir = mkdtempSync(join(tmpdir(), 'skiff-aggr-timeout-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certs = makeServingCert(dir, { ips: ['127.0.0.1'], dns: ['api.wardle.svc'] });
  const backend = createHttpsServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key) }, () => { /* never answers */ });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.after(() => { backend.closeAllConnections(); backend.close(); });
  const transport = new BackendTransport({ certPem: readFileSync(certs.cert, 'utf8'), keyPem: readFileSync(certs.key, 'utf8') });
  t.after(() => transport.closeAll());
  const front = createHttpServer((req, res) => {
    void proxyRequest(transport, {
      ep: { host: '127.0.0.1', port: (backend.address() as AddressInfo).port },
      tls: { servername: 'api.wardle.svc', caPem: readFileSync(certs.ca, 'utf8'), insecure: false, caKey: 'test' },
      pathAndQuery: req.url ?? '/', timeoutMs: 300,
    }, req, res, { name: 'alice', groups: [] });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  t.after(() => { front.closeAllConnections(); front.close(); });
  const r = await new Promise<{ status: number; body: any }>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port: (front.address() as AddressInfo).port, path: '/apis/g/v/x', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    }).on('error', reject);
  });
  assert.equal(r.status, 504);
  assert.equal(r.body.reason, 'Timeout');
  assert.equal(r.body.message, 'Timeout: request did not complete within requested timeout - context deadline exceeded');
});
