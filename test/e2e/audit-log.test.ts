// Audit logging with the real binary and kubectl: events for a create and delete at Metadata and
// RequestResponse in Kubernetes' audit.k8s.io/v1 Event format, the Audit-Id header, omitStages, the
// authorization decision, and no Secret data at Metadata.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, API_ONLY, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
let dir: string;
let logPath: string;
const SECRET_VALUE = `audit-secret-${process.pid}`;

const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
  - level: Metadata
    resources: [{ group: "", resources: ["secrets"] }]
  - level: RequestResponse
    resources: [{ group: "", resources: ["configmaps"] }]
  - level: Request
    verbs: ["watch"]
    omitStages: []
  - level: Metadata
`;

type Ev = Record<string, any>;
const events = (): Ev[] => (existsSync(logPath) ? readFileSync(logPath, 'utf8').trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
const find = (pred: (e: Ev) => boolean, what: string) => eventually(async () => events().find(pred), what, 20_000);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-audit-e2e-'));
  logPath = join(dir, 'audit.log');
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  server = await startServer({ args: [...API_ONLY, '--audit-log-path', logPath, '--audit-policy-file', join(dir, 'policy.yaml'), '--audit-log-maxsize', '50'] });
});
after(async () => { await server?.dispose(); rmSync(dir, { recursive: true, force: true }); });

const MICRO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

test('create and delete of a ConfigMap at RequestResponse', async () => {
  ok(await server.kubectl(['create', 'configmap', 'audited', '--from-literal=k=v']));
  ok(await server.kubectl(['delete', 'configmap', 'audited']));
  const create = await find((e) => e.verb === 'create' && e.objectRef?.resource === 'configmaps' && e.stage === 'ResponseComplete', 'create event');
  assert.equal(create.kind, 'Event');
  assert.equal(create.apiVersion, 'audit.k8s.io/v1');
  assert.equal(create.level, 'RequestResponse');
  assert.match(create.auditID, /^[0-9a-f-]{36}$/);
  assert.equal(create.requestURI, '/api/v1/namespaces/default/configmaps?fieldManager=kubectl-create&fieldValidation=Strict');
  assert.deepEqual(create.user.groups.includes('system:masters'), true);
  assert.equal(create.user.username, 'system:admin');
  assert.ok(create.sourceIPs.includes('127.0.0.1'));
  assert.match(create.userAgent, /^kubectl/);
  assert.deepEqual(create.objectRef, { resource: 'configmaps', namespace: 'default', name: 'audited', apiVersion: 'v1' });
  assert.deepEqual(create.responseStatus, { metadata: {}, code: 201 });
  assert.equal(create.requestObject.data.k, 'v');
  assert.equal(create.responseObject.kind, 'ConfigMap');
  assert.match(create.requestReceivedTimestamp, MICRO);
  assert.match(create.stageTimestamp, MICRO);
  assert.equal(create.annotations['authorization.k8s.io/decision'], 'allow');
  const del = await find((e) => e.verb === 'delete' && e.objectRef?.name === 'audited', 'delete event');
  assert.equal(del.responseStatus.code, 200);
  assert.equal(del.level, 'RequestResponse');
  assert.equal(events().filter((e) => e.auditID === create.auditID).map((e) => e.stage).join(), 'ResponseComplete', 'RequestReceived omitted by the policy');
});

test('a Secret at Metadata: no data, no bodies', async () => {
  ok(await server.kubectl(['create', 'secret', 'generic', 'audited', `--from-literal=password=${SECRET_VALUE}`]));
  ok(await server.kubectl(['get', 'secret', 'audited', '-o', 'yaml']));
  ok(await server.kubectl(['delete', 'secret', 'audited']));
  const create = await find((e) => e.verb === 'create' && e.objectRef?.resource === 'secrets', 'secret create');
  await find((e) => e.verb === 'delete' && e.objectRef?.resource === 'secrets', 'secret delete');
  assert.equal(create.level, 'Metadata');
  assert.equal(create.requestObject, undefined);
  assert.equal(create.responseObject, undefined);
  const text = readFileSync(logPath, 'utf8');
  assert.ok(!text.includes(SECRET_VALUE) && !text.includes(Buffer.from(SECRET_VALUE).toString('base64')), 'secret data never logged');
});

test('Audit-Id header names the event; 404 and 403 carry their Status; health checks not logged', async () => {
  const r = await server.request('GET', '/api/v1/namespaces/default/pods/nope');
  assert.equal(r.status, 404);
  const id = String(r.headers['audit-id']);
  const ev = await find((e) => e.auditID === id, 'event of the 404');
  assert.equal(ev.level, 'Metadata');
  assert.equal(ev.responseStatus.code, 404);
  assert.equal(ev.responseStatus.reason, 'NotFound');
  ok(await server.kubectl(['create', 'serviceaccount', 'nobody']));
  const token = ok(await server.kubectl(['create', 'token', 'nobody'])).trim();
  const denied = await server.request('GET', '/api/v1/namespaces/kube-system/secrets', { token });
  assert.equal(denied.status, 403);
  const forbid = await find((e) => e.auditID === String(denied.headers['audit-id']), 'event of the 403');
  assert.equal(forbid.annotations['authorization.k8s.io/decision'], 'forbid');
  assert.equal(forbid.user.username, 'system:serviceaccount:default:nobody');
  assert.equal((await server.request('GET', '/healthz', { noAuth: true })).status, 200);
  await new Promise((r2) => setTimeout(r2, 300));
  assert.ok(!events().some((e) => e.requestURI === '/healthz'));
});

test('a watch logs ResponseStarted then ResponseComplete', async () => {
  const w = await server.request('GET', '/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1');
  assert.equal(w.status, 200);
  const id = String(w.headers['audit-id']);
  await find((e) => e.auditID === id && e.stage === 'ResponseComplete', 'watch complete');
  const stages = events().filter((e) => e.auditID === id).map((e) => e.stage);
  // RequestReceived stays omitted: the policy's and the rule's omitStages add up.
  assert.deepEqual(stages, ['ResponseStarted', 'ResponseComplete']);
  assert.equal(events().find((e) => e.auditID === id)!.level, 'Request');
});
