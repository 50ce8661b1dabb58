// Admission webhooks: matching (rules with subresources and scope, selectors, matchPolicy), the
// AdmissionReview a webhook receives, and calls against a real HTTPS webhook process through the
// in-process API (patches, denials, failurePolicy, timeouts, dry run, reinvocation, matchConditions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { TunnelMux } from '../../src/tunnel/mux.js';
import { serveStream } from '../../src/agent/tunnel/streams.js';
import { BUILTIN_KINDS, type KindInfo } from '../../src/api/kinds.js';
import { ApiError } from '../../src/api/status.js';
import { Resources, type ResourceRef } from '../../src/client/types.js';
import { ruleMatches, rulesMatch, namespaceSelectorMatches, objectSelectorMatches, type AdmissionAttributes } from '../../src/apiserver/webhooks/matching.js';
import { buildAdmissionRequest, parseAdmissionResponse } from '../../src/apiserver/webhooks/review.js';
import { CallPool } from '../../src/apiserver/webhooks/client.js';
import { runValidatingWebhooks } from '../../src/apiserver/webhooks/dispatcher.js';
import { TEST_ACTOR, startLocalApi } from '../helpers/local-api.js';
import { startWebhookServer } from '../helpers/webhook-server.js';

const kind = (group: string, plural: string): KindInfo => BUILTIN_KINDS.find((k) => k.group === group && k.plural === plural)!;
const pods = kind('', 'pods');
const nodes = kind('', 'nodes');
const deployments = kind('apps', 'deployments');
const MWC: ResourceRef = { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'mutatingwebhookconfigurations' };
const VWC: ResourceRef = { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingwebhookconfigurations' };

function attrs(info: KindInfo, over: Partial<AdmissionAttributes> = {}): AdmissionAttributes {
  return { info, operation: 'CREATE', name: 'x', namespace: info.namespaced ? 'default' : '', subresource: '', userInfo: { username: 'u', groups: ['g'] }, dryRun: false, ...over };
}

test('rules match operations, groups, versions, resources with subresources, and scope', () => {
  const rule = { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] };
  assert.ok(ruleMatches(rule, attrs(pods)));
  assert.ok(!ruleMatches(rule, attrs(pods, { operation: 'UPDATE' })));
  assert.ok(!ruleMatches(rule, attrs(pods, { subresource: 'status' })), 'pods does not cover pods/status');
  assert.ok(ruleMatches({ ...rule, resources: ['pods/status'] }, attrs(pods, { subresource: 'status' })));
  assert.ok(ruleMatches({ ...rule, resources: ['*/status'] }, attrs(pods, { subresource: 'status' })));
  assert.ok(ruleMatches({ ...rule, resources: ['pods/*'] }, attrs(pods, { subresource: 'binding' })));
  assert.ok(!ruleMatches({ ...rule, resources: ['*'] }, attrs(pods, { subresource: 'status' })));
  assert.ok(ruleMatches({ ...rule, resources: ['*/*'] }, attrs(pods, { subresource: 'status' })));
  assert.ok(!ruleMatches({ ...rule, apiGroups: ['apps'] }, attrs(pods)));
  assert.ok(ruleMatches({ operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*'] }, attrs(deployments, { operation: 'DELETE' })));
  assert.ok(!ruleMatches({ ...rule, resources: ['*'], apiGroups: ['*'], scope: 'Cluster' }, attrs(pods)));
  assert.ok(ruleMatches({ ...rule, resources: ['*'], apiGroups: ['*'], scope: 'Cluster' }, attrs(nodes)));
  assert.ok(!ruleMatches({ ...rule, resources: ['*'], apiGroups: ['*'], scope: 'Namespaced' }, attrs(nodes)));
  // matchPolicy: Equivalent lets a rule for another version of the same resource apply; Exact does not.
  const v1beta1 = { ...rule, apiVersions: ['v1beta1'] };
  assert.ok(rulesMatch([v1beta1], undefined, attrs(pods)));
  assert.ok(!rulesMatch([v1beta1], 'Exact', attrs(pods)));
});

test('namespace and object selectors', () => {
  const sel = { matchLabels: { hooks: 'on' } };
  const labels = (ns: string): Record<string, string> => (ns === 'on' ? { hooks: 'on' } : {});
  assert.ok(namespaceSelectorMatches(sel, attrs(pods, { namespace: 'on' }), labels));
  assert.ok(!namespaceSelectorMatches(sel, attrs(pods, { namespace: 'off' }), labels));
  assert.ok(namespaceSelectorMatches({}, attrs(pods, { namespace: 'off' }), labels), 'an empty selector matches everything');
  assert.ok(namespaceSelectorMatches(sel, attrs(nodes), labels), 'cluster-scoped objects are never skipped by namespaceSelector');
  const nsInfo = kind('', 'namespaces');
  assert.ok(namespaceSelectorMatches(sel, attrs(nsInfo, { object: { metadata: { labels: { hooks: 'on' } } } }), labels), 'a Namespace matches on its own labels');
  assert.ok(!namespaceSelectorMatches({ matchExpressions: [{ key: 'hooks', operator: 'In', values: ['on'] }] }, attrs(nsInfo, { object: { metadata: {} } }), labels));
  const osel = { matchLabels: { app: 'a' } };
  assert.ok(objectSelectorMatches(osel, attrs(pods, { object: { metadata: { labels: { app: 'a' } } } })));
  assert.ok(objectSelectorMatches(osel, attrs(pods, { operation: 'UPDATE', object: { metadata: {} }, oldObject: { metadata: { labels: { app: 'a' } } } })), 'old labels count');
  assert.ok(!objectSelectorMatches(osel, attrs(pods, { object: { metadata: { labels: { app: 'b' } } } })));
});

test('AdmissionReview request and response checks', () => {
  const obj = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' } };
  const req = buildAdmissionRequest(attrs(pods, { operation: 'UPDATE', name: 'p', subresource: 'status', object: obj, oldObject: obj, dryRun: true }), 'u1');
  assert.deepEqual(req.kind, { group: '', version: 'v1', kind: 'Pod' });
  assert.deepEqual(req.resource, { group: '', version: 'v1', resource: 'pods' });
  assert.equal(req.subResource, 'status');
  assert.equal(req.requestSubResource, 'status');
  assert.equal(req.namespace, 'default');
  assert.equal(req.operation, 'UPDATE');
  assert.equal(req.dryRun, true);
  assert.deepEqual(req.options, { apiVersion: 'meta.k8s.io/v1', kind: 'UpdateOptions' });
  const del = buildAdmissionRequest(attrs(pods, { operation: 'DELETE', oldObject: obj }), 'u2');
  assert.equal(del.object, null);
  assert.deepEqual(del.oldObject, obj);
  const nodeReq = buildAdmissionRequest(attrs(nodes, { name: 'n' }), 'u3');
  assert.equal(nodeReq.namespace, undefined);
  const ok = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u1', allowed: true } };
  assert.equal(parseAdmissionResponse(ok, 'u1', false).allowed, true);
  assert.throws(() => parseAdmissionResponse(ok, 'other', false), /expected response.uid="other", got "u1"/);
  assert.throws(() => parseAdmissionResponse({ ...ok, response: { uid: 'u1', allowed: true, patch: 'W10=' } }, 'u1', true), /invalid response.patchType/);
  assert.throws(() => parseAdmissionResponse({ ...ok, response: { uid: 'u1', allowed: true, patch: 'W10=', patchType: 'JSONPatch' } }, 'u1', false), /validating webhook may not/);
});

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const rulesFor = (resources: string[], operations = ['CREATE', 'UPDATE']) => [{ operations, apiGroups: [''], apiVersions: ['v1'], resources }];

function hook(name: string, url: string, caBundle: string, extra: Record<string, unknown> = {}) {
  return { name, clientConfig: { url, caBundle }, rules: rulesFor(['configmaps']), sideEffects: 'None', admissionReviewVersions: ['v1'], ...extra };
}

function cm(name: string, labels: Record<string, string> = {}) {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data: { a: 'b' } };
}

const cmInfo = kind('', 'configmaps');
const writeOpts = { actor: TEST_ACTOR };

test('webhooks against a real HTTPS server: patch, warnings, denial, namespace selector', async (t) => {
  const wh = await startWebhookServer(t);
  const { client, objects } = await startLocalApi(t, { namespaces: ['default', 'hooked'] });
  await client.update(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'hooked', labels: { hooks: 'on' } } });
  await client.create(MWC, undefined, { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'label' },
    webhooks: [hook('label.test.skiff.io', wh.url('/mutate'), wh.caBundle, { namespaceSelector: { matchLabels: { hooks: 'on' } } })] } as any);
  await client.create(VWC, undefined, { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'deny' },
    webhooks: [hook('deny.test.skiff.io', wh.url('/deny'), wh.caBundle)] } as any);

  const r = await objects.create(cmInfo, 'hooked', cm('a'), writeOpts);
  assert.equal(r.obj.metadata.labels['webhook-added'], 'yes');
  assert.deepEqual(r.warnings, ['labelled by the test webhook']);
  const stored = await client.get(Resources.configMaps, 'hooked', 'a');
  assert.equal(stored?.metadata.labels?.['webhook-added'], 'yes', 'the patched object is what is stored');
  const plain = await objects.create(cmInfo, 'default', cm('b'), writeOpts);
  assert.equal(plain.obj.metadata.labels?.['webhook-added'], undefined, 'namespace not selected');

  await assert.rejects(objects.create(cmInfo, 'default', cm('c', { forbidden: 'true' }), writeOpts), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 403);
    assert.equal(e.message, 'admission webhook "deny.test.skiff.io" denied the request: objects labelled forbidden=true are not allowed here');
    return true;
  });
  // Updates are admitted too, and the review carries the old object.
  await assert.rejects(client.update(Resources.configMaps, 'default', cm('b', { forbidden: 'true' })), /denied the request/);
  const last = await wh.last();
  assert.equal(last['/deny'].request.operation, 'UPDATE');
  assert.equal(last['/deny'].request.oldObject.metadata.name, 'b');
  assert.equal(last['/deny'].request.userInfo.username, TEST_ACTOR.user);
});

test('failurePolicy, timeouts, dry run and side effects, matchConditions, reinvocation', async (t) => {
  const wh = await startWebhookServer(t);
  const down = `https://127.0.0.1:${await closedPort()}/`;
  const { client, objects, store } = await startLocalApi(t);
  const mwc = (name: string, webhooks: unknown[]) => client.create(MWC, undefined, { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name }, webhooks } as any);
  const vwc = (name: string, webhooks: unknown[]) => client.create(VWC, undefined, { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name }, webhooks } as any);
  const selected = (v: string) => ({ objectSelector: { matchLabels: { case: v } } });

  await vwc('ignore', [hook('down-ignore.test.skiff.io', down, wh.caBundle, { failurePolicy: 'Ignore', ...selected('ignore') })]);
  await objects.create(cmInfo, 'default', cm('i', { case: 'ignore' }), writeOpts);
  await vwc('fail', [hook('down-fail.test.skiff.io', down, wh.caBundle, { failurePolicy: 'Fail', ...selected('fail') })]);
  await assert.rejects(objects.create(cmInfo, 'default', cm('f', { case: 'fail' }), writeOpts), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 500);
    assert.match(e.message, /^Internal error occurred: failed calling webhook "down-fail.test.skiff.io": failed to call webhook: Post "https:\/\/127.0.0.1:\d+\/\?timeout=10s": dial tcp 127.0.0.1:\d+: connect: connection refused$/);
    return true;
  });

  await vwc('slow', [hook('slow.test.skiff.io', wh.url('/slow/4000'), wh.caBundle, { timeoutSeconds: 1, ...selected('slow') })]);
  await assert.rejects(objects.create(cmInfo, 'default', cm('s', { case: 'slow' }), writeOpts),
    /failed calling webhook "slow.test.skiff.io": failed to call webhook: Post "https:\/\/127.0.0.1:\d+\/slow\/4000\?timeout=1s": context deadline exceeded/);

  // A wrong CA: the certificate is not trusted.
  const other = await startWebhookServer(t);
  await vwc('wrongca', [hook('wrongca.test.skiff.io', wh.url('/allow'), other.caBundle, selected('wrongca'))]);
  await assert.rejects(objects.create(cmInfo, 'default', cm('w', { case: 'wrongca' }), writeOpts), /failed calling webhook "wrongca.test.skiff.io": .*certificate/);

  // Dry run: refused by a webhook with side effects (only stored v1beta1 objects can say so: v1
  // validation admits None and NoneOnDryRun), sent with dryRun: true to one without.
  const sidefx = hook('sidefx.test.skiff.io', wh.url('/allow'), wh.caBundle, { sideEffects: 'Unknown' });
  const env = { store, pool: new CallPool(), defaultCa: () => '' };
  await assert.rejects(runValidatingWebhooks(env, [{ webhooks: [sidefx] }], {
    info: cmInfo, operation: 'CREATE', name: 'd', namespace: 'default', subresource: '', object: cm('d'), userInfo: { username: 'u', groups: [] }, dryRun: true,
  }, []), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 400);
    assert.equal(e.message, 'admission webhook "sidefx.test.skiff.io" does not support dry run');
    return true;
  });
  await vwc('dry', [hook('dry.test.skiff.io', wh.url('/deny'), wh.caBundle, selected('dry'))]);
  await objects.create(cmInfo, 'default', cm('d2', { case: 'dry' }), { ...writeOpts, dryRun: true });
  assert.equal((await wh.last())['/deny'].request.dryRun, true);

  // matchConditions in CEL: the webhook is called only when they hold.
  await mwc('cond', [hook('cond.test.skiff.io', wh.url('/mutate'), wh.caBundle, {
    ...selected('cond'), matchConditions: [{ name: 'only-x', expression: "object.metadata.name.startsWith('x')" }],
  })]);
  const skipped = await objects.create(cmInfo, 'default', cm('y1', { case: 'cond' }), writeOpts);
  assert.equal(skipped.obj.metadata.labels['webhook-added'], undefined);
  const called = await objects.create(cmInfo, 'default', cm('x1', { case: 'cond' }), writeOpts);
  assert.equal(called.obj.metadata.labels['webhook-added'], 'yes');

  // Reinvocation: an IfNeeded webhook that ran before a later mutation is called once more.
  await mwc('re-a', [hook('first.test.skiff.io', wh.url('/allow'), wh.caBundle, { ...selected('re'), reinvocationPolicy: 'IfNeeded' })]);
  await mwc('re-b', [hook('second.test.skiff.io', wh.url('/mutate'), wh.caBundle, selected('re'))]);
  const before = (await wh.counts())['/allow'] ?? 0;
  await objects.create(cmInfo, 'default', cm('r', { case: 're' }), writeOpts);
  assert.equal((await wh.counts())['/allow'], before + 2, 'first.test called, then reinvoked once');
});

test('a service endpoint on a node is reached through that node\'s tunnel (dial op)', async (t) => {
  const wh = await startWebhookServer(t, { dns: ['hook.hooked.svc'] });
  // A server-side and an agent-side mux on a loopback WebSocket; the agent serves streams as skiff's agent does.
  const http = createHttpServer();
  const wss = new WebSocketServer({ server: http });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const serverSide = new Promise<TunnelMux>((resolve) => wss.once('connection', (ws) => resolve(new TunnelMux(ws))));
  const ws = new WebSocket(`ws://127.0.0.1:${(http.address() as { port: number }).port}`);
  const dialled: string[] = [];
  const agent = new TunnelMux(ws, { onOpen: (req, s) => { if (req.op === 'dial') dialled.push(`${req.host}:${req.port}`); void serveStream({ cri: undefined as any }, req, s); } });
  await new Promise((r) => ws.once('open', r));
  const server = await serverSide;
  t.after(async () => { agent.close(true); server.close(true); wss.close(); await new Promise((r) => http.close(r)); });

  const { store, client } = await startLocalApi(t, { namespaces: ['default', 'hooked'] });
  await client.create(Resources.services, 'hooked', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'hook' }, spec: { ports: [{ name: 'https', port: 443, targetPort: wh.port }] } } as any);
  // The endpoint address is only reachable "on the node": this test's node relays to 127.0.0.1.
  await client.create({ group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices' }, 'hooked', {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'hook-1', labels: { 'kubernetes.io/service-name': 'hook' } },
    addressType: 'IPv4', endpoints: [{ addresses: ['10.42.7.9'], nodeName: 'edge-1', conditions: { ready: true } }], ports: [{ name: 'https', port: wh.port, protocol: 'TCP' }],
  } as any);
  const env = {
    store, pool: new CallPool(), defaultCa: () => '',
    dialer: (node: string, _host: string, port: number) => (node === 'edge-1' ? server.open({ op: 'dial', host: '127.0.0.1', port }) : undefined),
  };
  const denyHook = { name: 'svc.test.skiff.io', clientConfig: { service: { namespace: 'hooked', name: 'hook', path: '/deny' }, caBundle: wh.caBundle }, rules: rulesFor(['configmaps']), sideEffects: 'None' };
  const a = (labels: Record<string, string>): AdmissionAttributes => ({ ...attrs(cmInfo), object: cm('x', labels) });
  await runValidatingWebhooks(env, [{ webhooks: [denyHook] }], a({}), []);
  await assert.rejects(runValidatingWebhooks(env, [{ webhooks: [denyHook] }], a({ forbidden: 'true' }), []), /admission webhook "svc.test.skiff.io" denied the request/);
  assert.deepEqual(dialled, [`127.0.0.1:${wh.port}`, `127.0.0.1:${wh.port}`]);
  // The certificate is checked for <service>.<namespace>.svc: a service of another name fails verification.
  await client.create(Resources.services, 'hooked', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'other' }, spec: { ports: [{ name: 'https', port: 443, targetPort: wh.port }] } } as any);
  await client.create({ group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices' }, 'hooked', {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'other-1', labels: { 'kubernetes.io/service-name': 'other' } },
    addressType: 'IPv4', endpoints: [{ addresses: ['10.42.7.9'], nodeName: 'edge-1', conditions: { ready: true } }], ports: [{ name: 'https', port: wh.port, protocol: 'TCP' }],
  } as any);
  const otherHook = { ...denyHook, name: 'other.test.skiff.io', clientConfig: { ...denyHook.clientConfig, service: { namespace: 'hooked', name: 'other', path: '/allow' } } };
  await assert.rejects(runValidatingWebhooks(env, [{ webhooks: [otherHook] }], a({}), []), /failed calling webhook "other.test.skiff.io": failed to call webhook: Post "https:\/\/other.hooked.svc:443\/allow\?timeout=10s": .*(certificate|altnames|Hostname)/i);
});
