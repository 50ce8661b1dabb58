// The ingress routing table as Kubernetes defines Ingress matching: hosts (exact, one-label
// wildcards), Exact / Prefix (element-wise) / ImplementationSpecific paths with the longest match
// winning, default backends, Service ports by number or name resolved to ready endpoints, TLS names;
// plus which Ingresses skiff's class serves and which Secrets a node may read for them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTable, normalizeHost, pickEndpoint, route, tlsSecretFor, type TableInput } from '../../src/agent/network/ingress/routes.js';
import { isServedIngress, servedClasses, skiffIngressClass, tlsSecretNames } from '../../src/api/ingress.js';
import { authorizeNode } from '../../src/apiserver/node-authorizer.js';
import { parseRequestInfo } from '../../src/apiserver/request-info.js';
import { ingressProblems } from '../../src/controllers/ingress/controller.js';
import type { Attributes } from '../../src/apiserver/rbac.js';
import type { Store } from '../../src/storage/types.js';

const svc = (name: string, ports: any[], extra: any = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports, ...extra } });
const slice = (svcName: string, ports: any[], endpoints: any[]) => ({
  metadata: { name: `${svcName}-abc`, namespace: 'default', labels: { 'kubernetes.io/service-name': svcName } },
  addressType: 'IPv4', ports, endpoints,
});
const ep = (ip: string, ready = true, extra: any = {}) => ({ addresses: [ip], conditions: { ready, ...extra } });
const backend = (name: string, port: number | string) => ({ service: { name, port: typeof port === 'number' ? { number: port } : { name: port } } });
const ing = (name: string, spec: any, created = '2026-01-01T00:00:00Z') => ({ metadata: { name, namespace: 'default', creationTimestamp: created }, spec });

const services = [
  svc('a', [{ port: 80, targetPort: 8080, protocol: 'TCP' }]),
  svc('b', [{ name: 'web', port: 8000, targetPort: 8080 }]),
  svc('empty', [{ port: 80 }]),
  svc('ext', [{ port: 80 }], { type: 'ExternalName', externalName: 'example.com' }),
];
const slices = [
  slice('a', [{ port: 8080, protocol: 'TCP' }], [ep('10.42.0.2'), ep('10.42.1.2'), ep('10.42.1.9', false)]),
  slice('b', [{ name: 'web', port: 8080 }], [ep('10.42.0.3')]),
  slice('empty', [{ port: 8080 }], [ep('10.42.0.4', false), ep('10.42.0.5', false, { serving: true, terminating: true })]),
];
const input = (ingresses: any[]): TableInput => ({
  ingresses,
  service: (ns, n) => services.find((s) => s.metadata.name === n && s.metadata.namespace === ns) as any,
  slices: (ns, n) => slices.filter((s) => s.metadata.labels['kubernetes.io/service-name'] === n && s.metadata.namespace === ns) as any,
});
const at = (t: ReturnType<typeof buildTable>, host: string, path: string) => route(t, normalizeHost(host), path)?.key;

test('paths: Exact, element-wise Prefix, ImplementationSpecific as Prefix, longest wins, Exact beats Prefix', () => {
  const t = buildTable(input([ing('one', { rules: [{ host: 'foo.example.com', http: { paths: [
    { path: '/', pathType: 'Prefix', backend: backend('a', 80) },
    { path: '/api/', pathType: 'Prefix', backend: backend('b', 'web') },
    { path: '/api', pathType: 'Exact', backend: backend('a', 80) },
    { path: '/api/v2', pathType: 'ImplementationSpecific', backend: backend('empty', 80) },
    { path: '/exact', pathType: 'Exact', backend: backend('b', 'web') },
  ] } }] })]));
  assert.equal(at(t, 'foo.example.com', '/'), 'default/a:80');
  assert.equal(at(t, 'foo.example.com', '/api'), 'default/a:80', 'Exact /api beats Prefix /api/ of the same length');
  assert.equal(at(t, 'foo.example.com', '/api/'), 'default/b:web');
  assert.equal(at(t, 'foo.example.com', '/api/x?q=1'), 'default/b:web');
  assert.equal(at(t, 'foo.example.com', '/apix'), 'default/a:80', 'Prefix is element-wise: /api does not match /apix');
  assert.equal(at(t, 'foo.example.com', '/api/v2/z'), 'default/empty:80');
  assert.equal(at(t, 'foo.example.com', '/api/v22'), 'default/b:web');
  assert.equal(at(t, 'foo.example.com', '/exact'), 'default/b:web');
  assert.equal(at(t, 'foo.example.com', '/exact/'), 'default/a:80', 'Exact does not match a trailing slash');
  assert.equal(at(t, 'FOO.example.com:8080', '/exact'), 'default/b:web', 'host is case-insensitive, port ignored');
  assert.equal(at(t, 'other.example.com', '/'), undefined, 'unknown host → 404');
});

test('hosts: exact before one-label wildcard before host-less rules, then defaultBackend', () => {
  const t = buildTable(input([
    ing('wild', { rules: [{ host: '*.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('b', 'web') }] } }] }),
    ing('any', { defaultBackend: backend('empty', 80), rules: [{ http: { paths: [{ path: '/any', pathType: 'Prefix', backend: backend('a', 80) }] } }] }),
    ing('exact', { rules: [{ host: 'foo.example.com', http: { paths: [{ path: '/only', pathType: 'Prefix', backend: backend('a', 80) }] } }] }),
  ]));
  assert.equal(at(t, 'foo.example.com', '/only'), 'default/a:80');
  assert.equal(at(t, 'foo.example.com', '/else'), 'default/b:web', 'no path of the exact host: the wildcard rule');
  assert.equal(at(t, 'bar.example.com', '/'), 'default/b:web');
  assert.equal(at(t, 'baz.bar.example.com', '/any'), 'default/a:80', 'a wildcard covers one label only');
  assert.equal(at(t, 'example.com', '/x'), 'default/empty:80', 'nothing else: the default backend');
});

test('conflicts: the older Ingress keeps a host+path; the oldest default backend wins', () => {
  const t = buildTable(input([
    ing('new', { defaultBackend: backend('a', 80), rules: [{ host: 'h', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('a', 80) }] } }] }, '2026-02-01T00:00:00Z'),
    ing('old', { defaultBackend: backend('b', 'web'), rules: [{ host: 'h', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('b', 'web') }] } }] }, '2026-01-01T00:00:00Z'),
  ]));
  assert.equal(at(t, 'h', '/'), 'default/b:web');
  assert.equal(at(t, 'nothing', '/'), 'default/b:web');
});

test('backends: ports by number or name, ready endpoints round-robin, terminating fallback, problems', () => {
  const t = buildTable(input([ing('x', { rules: [{ host: 'h', http: { paths: [
    { path: '/a', pathType: 'Prefix', backend: backend('a', 80) },
    { path: '/b', pathType: 'Prefix', backend: backend('b', 'web') },
    { path: '/e', pathType: 'Prefix', backend: backend('empty', 80) },
    { path: '/m', pathType: 'Prefix', backend: backend('missing', 80) },
    { path: '/p', pathType: 'Prefix', backend: backend('a', 81) },
    { path: '/x', pathType: 'Prefix', backend: backend('ext', 80) },
  ] } }] })]));
  const a = route(t, 'h', '/a')!;
  assert.deepEqual(a.endpoints, ['10.42.0.2:8080', '10.42.1.2:8080'], 'only ready endpoints, pod IP and target port');
  assert.deepEqual([pickEndpoint(a), pickEndpoint(a), pickEndpoint(a)], ['10.42.0.2:8080', '10.42.1.2:8080', '10.42.0.2:8080']);
  assert.deepEqual(route(t, 'h', '/b')!.endpoints, ['10.42.0.3:8080']);
  assert.deepEqual(route(t, 'h', '/e')!.endpoints, ['10.42.0.5:8080'], 'no ready endpoint: serving+terminating ones');
  assert.match(route(t, 'h', '/m')!.problem!, /not found/);
  assert.equal(pickEndpoint(route(t, 'h', '/m')!), undefined);
  assert.match(route(t, 'h', '/p')!.problem!, /no TCP port 81/);
  assert.match(route(t, 'h', '/x')!.problem!, /ExternalName/);
});

test('TLS: SNI names to secrets, hosts default to the rule hosts, wildcards; unknown names get none', () => {
  const t = buildTable(input([ing('t', {
    tls: [{ hosts: ['a.example.com'], secretName: 'a-tls' }, { secretName: 'rules-tls' }, { hosts: ['*.wild.example.com'], secretName: 'wild-tls' }],
    rules: [{ host: 'b.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('a', 80) }] } }],
  })]));
  assert.equal(tlsSecretFor(t, 'a.example.com'), 'default/a-tls');
  assert.equal(tlsSecretFor(t, 'B.example.com'), 'default/rules-tls');
  assert.equal(tlsSecretFor(t, 'x.wild.example.com'), 'default/wild-tls');
  assert.equal(tlsSecretFor(t, 'y.x.wild.example.com'), undefined);
  assert.equal(tlsSecretFor(t, 'c.example.com'), undefined);
  assert.deepEqual([...t.secrets].sort(), ['default/a-tls', 'default/rules-tls', 'default/wild-tls']);
});

test('class: skiff serves its classes and, being default, class-less Ingresses; the legacy annotation counts', () => {
  const served = servedClasses([skiffIngressClass() as any, { metadata: { name: 'nginx' }, spec: { controller: 'k8s.io/ingress-nginx' } }]);
  assert.equal(isServedIngress({ spec: {} }, served), true);
  assert.equal(isServedIngress({ spec: { ingressClassName: 'skiff' } }, served), true);
  assert.equal(isServedIngress({ spec: { ingressClassName: 'nginx' } }, served), false);
  assert.equal(isServedIngress({ metadata: { annotations: { 'kubernetes.io/ingress.class': 'nginx' } }, spec: { ingressClassName: 'skiff' } }, served), false);
  const notDefault = servedClasses([{ metadata: { name: 'skiff' }, spec: { controller: 'skiff.io/ingress' } }]);
  assert.equal(isServedIngress({ spec: {} }, notDefault), false);
  assert.deepEqual(tlsSecretNames({ spec: { tls: [{ secretName: 'x' }, { secretName: 'x' }, { hosts: ['h'] }] } }), ['x']);
});

test('node authorizer: a node reads (and watches by name) only TLS secrets named by served Ingresses', () => {
  const objects: Record<string, any> = {
    '/networking.k8s.io/ingressclasses/skiff': skiffIngressClass(),
    '/networking.k8s.io/ingresses/default/web': { metadata: { name: 'web', namespace: 'default' }, spec: { tls: [{ secretName: 'web-tls' }, { secretName: 'token' }, { secretName: 'later' }] } },
    '/networking.k8s.io/ingresses/default/other': { metadata: { name: 'other', namespace: 'default' }, spec: { ingressClassName: 'nginx', tls: [{ secretName: 'nginx-tls' }] } },
    '/core/secrets/default/web-tls': { type: 'kubernetes.io/tls' },
    '/core/secrets/default/nginx-tls': { type: 'kubernetes.io/tls' },
    '/core/secrets/default/token': { type: 'kubernetes.io/service-account-token' },
  };
  const store = {
    get: (k: string) => (objects[k] ? { obj: objects[k] } : undefined),
    list: (prefix: string) => ({ items: Object.entries(objects).filter(([k]) => k.startsWith(prefix)).map(([, obj]) => ({ obj })) }),
  } as unknown as Store;
  const a = (verb: string, name?: string, ns = 'default'): Attributes => ({
    user: { name: 'system:node:n1', groups: ['system:nodes'] } as any, verb, apiGroup: '', resource: 'secrets', namespace: ns, name, path: '/', resourceRequest: true,
  });
  const ok = (x: Attributes) => authorizeNode(store, x)?.allowed;
  assert.equal(ok(a('get', 'web-tls')), true);
  assert.equal(ok(a('watch', 'web-tls')), true);
  assert.equal(ok(a('list', 'later')), true, 'not created yet: the watch may wait for it');
  assert.equal(ok(a('get', 'token')), false, 'named by an Ingress but not a TLS secret');
  assert.equal(ok(a('get', 'nginx-tls')), false, 'another controller\'s Ingress');
  assert.equal(ok(a('list')), false, 'no listing of all secrets');
  assert.equal(ok(a('get', 'web-tls', 'other-ns')), false);
  assert.equal(ok(a('update', 'web-tls')), false);
  const ing = (verb: string, resource: string) => ok({ ...a(verb), apiGroup: 'networking.k8s.io', resource, namespace: undefined });
  assert.equal(ing('watch', 'ingresses'), true);
  assert.equal(ing('list', 'ingressclasses'), true);
  assert.equal(ing('create', 'ingresses'), false);
});

test('request info: a list or watch narrowed by metadata.name is authorized as that name', () => {
  const ri = (q: string) => parseRequestInfo('GET', '/api/v1/namespaces/default/secrets', new URLSearchParams(q));
  assert.equal(ri('fieldSelector=metadata.name%3Dweb-tls&watch=1').selectedName, 'web-tls');
  assert.equal(ri('fieldSelector=type%3Dx,metadata.name%3D%3Dweb-tls').selectedName, 'web-tls');
  assert.equal(ri('fieldSelector=metadata.name!%3Dweb-tls').selectedName, undefined);
  assert.equal(ri('').selectedName, undefined);
  assert.equal(ri('fieldSelector=metadata.name%3D..').selectedName, undefined);
  assert.equal(ri('fieldSelector=metadata.name%3Dweb-tls').name, '', 'routing still sees a list');
});

test('status loop: missing Service, port and Secret, wrong Secret type are reported', () => {
  const problems = ingressProblems({ metadata: { name: 'x' }, spec: {
    defaultBackend: backend('missing', 80),
    rules: [{ host: 'h', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('a', 81) }, { path: '/ok', pathType: 'Prefix', backend: backend('a', 80) }] } }],
    tls: [{ hosts: ['h'], secretName: 'nope' }, { secretName: 'opaque' }],
  } } as any, (n) => services.find((s) => s.metadata.name === n) as any, (n) => (n === 'opaque' ? { type: 'Opaque', data: {} } as any : undefined));
  assert.deepEqual(problems.map((p) => p.reason), ['ServiceNotFound', 'ServicePortNotFound', 'SecretNotFound', 'InvalidSecret']);
  assert.match(problems[0]!.message, /defaultBackend: service "missing" not found/);
  assert.match(problems[3]!.message, /type "Opaque"/);
});

test('validation: TLS hosts and secretName are checked as Kubernetes does', async () => {
  const { validateIngress } = await import('../../src/api/validation/other-kinds.js');
  const base = { rules: [{ host: 'a.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('a', 80) }] } }] };
  const v = (tls: any[]) => validateIngress({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'x' }, spec: { ...base, tls } } as any).map((c) => `${c.field}: ${c.message}`);
  assert.deepEqual(v([{ hosts: ['a.example.com', '*.example.com'], secretName: 'a-tls' }]), []);
  assert.match(v([{ hosts: ['A_B'] }])[0]!, /^spec\.tls\[0\]\.hosts\[0\]: /);
  assert.match(v([{ hosts: ['a.*.com'] }])[0]!, /wildcard/);
  assert.match(v([{ secretName: 'Bad_Name' }])[0]!, /^spec\.tls\[0\]\.secretName: /);
  const noType = validateIngress({ metadata: { name: 'x' }, spec: { rules: [{ http: { paths: [{ path: '/', backend: backend('a', 80) }] } }] } } as any);
  assert.match(String(noType[0]?.message), /pathType must be specified/);
});
