// Negative input over the raw HTTP API: every bad request must get the code and reason Kubernetes
// gives (clients branch on them), as a JSON Status, must not hurt the server, and must not leave a
// half-written object behind. Codes are those of kube-apiserver 1.32's handlers (create/update/
// patch/delete/list in k8s.io/apiserver/pkg/endpoints/handlers); where Kubernetes answers 500 for a
// client mistake (a known upstream bug) a 400 is accepted as well and the case says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer, type TestServer, API_ONLY } from '../helpers/cluster.js';
import { ApiClient, assertStatus, json, type Reply } from '../helpers/api-client.js';

// A small watch ring, so a handful of writes pushes the first revisions out of it (the too-old case).
const WATCH_CACHE = 100;

let server: TestServer;
let api: ApiClient;

interface Resource {
  plural: string;
  coll: string;                      // collection path in namespace `default`
  apiVersion: string;
  kind: string;
  make(name: string): any;           // a valid object
}

const NS = '/api/v1/namespaces/default';
const RESOURCES: Resource[] = [
  {
    plural: 'configmaps', coll: `${NS}/configmaps`, apiVersion: 'v1', kind: 'ConfigMap',
    make: (name) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: 'v' } }),
  },
  {
    plural: 'secrets', coll: `${NS}/secrets`, apiVersion: 'v1', kind: 'Secret',
    make: (name) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name }, type: 'Opaque', data: { k: Buffer.from('v').toString('base64') } }),
  },
  {
    plural: 'deployments', coll: '/apis/apps/v1/namespaces/default/deployments', apiVersion: 'apps/v1', kind: 'Deployment',
    make: (name) => ({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
      },
    }),
  },
];

const existing = (r: Resource) => `neg-old-${r.plural}`;
const fresh = (r: Resource, tag: string) => `neg-new-${r.plural}-${tag}`;

/** resourceVersion of every pre-created object, to prove a failed write changed nothing. */
const baseline = new Map<string, string>();

before(async () => {
  server = await startServer({ args: [...API_ONLY, '--watch-cache-size', String(WATCH_CACHE)] });
  api = ApiClient.fromKubeconfig(server.kubeconfigPath);
  for (const r of RESOURCES) {
    const reply = await api.post(r.coll, r.make(existing(r)));
    assert.equal(reply.status, 201, `setup: create ${r.plural}: ${reply.body}`);
    baseline.set(r.plural, json(reply).metadata.resourceVersion);
  }
});

after(async () => {
  api?.close();
  await server?.dispose();
});

/** The server is still healthy and the pre-created objects are untouched. */
async function assertUnharmed(what: string): Promise<void> {
  const ready = await api.get('/readyz');
  assert.equal(ready.status, 200, `${what}: /readyz after the case: ${ready.status} ${ready.body}`);
  for (const r of RESOURCES) {
    const got = await api.get(`${r.coll}/${existing(r)}`);
    assert.equal(got.status, 200, `${what}: ${r.plural}/${existing(r)} vanished: ${got.body}`);
    assert.equal(json(got).metadata.resourceVersion, baseline.get(r.plural), `${what}: ${r.plural}/${existing(r)} was modified`);
  }
}

async function assertAbsent(r: Resource, name: string, what: string): Promise<void> {
  const got = await api.get(`${r.coll}/${name}`);
  assert.equal(got.status, 404, `${what}: a rejected create left ${r.plural}/${name} behind: ${got.body}`);
}

interface Case {
  name: string;
  method: string;
  path: string;
  body?: string | Buffer;
  contentType?: string;
  code: number | number[];
  reason?: string | string[];
  /** Extra checks on the Status. */
  check?: (status: any, reply: Reply) => void;
  /** A create that must not have stored anything. */
  absent?: [Resource, string];
}

function truncatedJson(obj: unknown): string {
  const s = JSON.stringify(obj);
  return s.slice(0, s.length - 5);
}

const BROKEN_YAML = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n   - : : :\n';
const PROTOBUF = 'application/vnd.kubernetes.protobuf';
const PROTO_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);   // "k8s\0"
const TOO_BIG = 3 * 1024 * 1024 + 512 * 1024;                // Kubernetes' limit is 3 MiB (3145728 bytes)

function bigObject(r: Resource, name: string): string {
  const o = r.make(name);
  o.metadata.annotations = { filler: 'x'.repeat(TOO_BIG) };
  return JSON.stringify(o);
}

function malformedBodyCases(r: Resource): Case[] {
  const coll = r.coll;
  const item = `${r.coll}/${existing(r)}`;
  const cases: Case[] = [];
  const bodies: [string, string | Buffer, string][] = [
    ['malformed JSON', truncatedJson(r.make(fresh(r, 'json'))), 'application/json'],
    ['malformed YAML', BROKEN_YAML, 'application/yaml'],
    ['random bytes as protobuf', randomBytes(64), PROTOBUF],
    ['k8s\\0 prefix and junk as protobuf', Buffer.concat([PROTO_MAGIC, randomBytes(64)]), PROTOBUF],
    ['an empty body', '', 'application/json'],
  ];
  for (const [what, body, type] of bodies) {
    cases.push({ name: `POST ${r.plural}: ${what} → 400`, method: 'POST', path: coll, body, contentType: type, code: 400, reason: 'BadRequest', absent: [r, fresh(r, 'json')] });
    cases.push({ name: `PUT ${r.plural}: ${what} → 400`, method: 'PUT', path: item, body, contentType: type, code: 400, reason: 'BadRequest' });
  }
  const brokenPatch = '{"metadata":{"labels":{"a":';
  for (const type of ['application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/json-patch+json']) {
    cases.push({ name: `PATCH ${r.plural}: malformed ${type} → 400`, method: 'PATCH', path: item, body: brokenPatch, contentType: type, code: 400, reason: 'BadRequest' });
  }
  cases.push({ name: `PATCH ${r.plural}: malformed apply YAML → 400`, method: 'PATCH', path: `${item}?fieldManager=test`, body: BROKEN_YAML, contentType: 'application/apply-patch+yaml', code: 400, reason: 'BadRequest' });
  cases.push({ name: `PATCH ${r.plural}: JSON patch that is not a list → 400`, method: 'PATCH', path: item, body: '{"op":"add"}', contentType: 'application/json-patch+json', code: 400, reason: 'BadRequest' });
  // Kubernetes' delete handler passes the raw decoder error through, which becomes a 500 with an
  // empty reason; a 400 BadRequest is the better answer and is accepted too.
  cases.push({ name: `DELETE ${r.plural}: malformed DeleteOptions → 400 (k8s: 500)`, method: 'DELETE', path: item, body: '{"kind":"DeleteOptions",', contentType: 'application/json', code: [400, 500] });
  // Content types no handler reads.
  cases.push({ name: `POST ${r.plural}: text/plain → 415`, method: 'POST', path: coll, body: JSON.stringify(r.make(fresh(r, 'txt'))), contentType: 'text/plain', code: 415, reason: 'UnsupportedMediaType', absent: [r, fresh(r, 'txt')] });
  cases.push({ name: `PUT ${r.plural}: text/plain → 415`, method: 'PUT', path: item, body: JSON.stringify(r.make(existing(r))), contentType: 'text/plain', code: 415, reason: 'UnsupportedMediaType' });
  cases.push({ name: `PATCH ${r.plural}: application/json is not a patch type → 415`, method: 'PATCH', path: item, body: '{}', contentType: 'application/json', code: 415, reason: 'UnsupportedMediaType' });
  cases.push({ name: `PATCH ${r.plural}: protobuf is not a patch type → 415`, method: 'PATCH', path: item, body: PROTO_MAGIC, contentType: PROTOBUF, code: 415, reason: 'UnsupportedMediaType' });
  // Bodies over the 3 MiB limit.
  cases.push({ name: `POST ${r.plural}: body over 3 MiB → 413`, method: 'POST', path: coll, body: bigObject(r, fresh(r, 'big')), code: 413, reason: 'RequestEntityTooLarge', absent: [r, fresh(r, 'big')] });
  cases.push({ name: `PUT ${r.plural}: body over 3 MiB → 413`, method: 'PUT', path: item, body: bigObject(r, existing(r)), code: 413, reason: 'RequestEntityTooLarge' });
  cases.push({ name: `PATCH ${r.plural}: body over 3 MiB → 413`, method: 'PATCH', path: item, body: JSON.stringify({ metadata: { annotations: { filler: 'x'.repeat(TOO_BIG) } } }), contentType: 'application/merge-patch+json', code: 413, reason: 'RequestEntityTooLarge' });
  return cases;
}

const [CM, SECRET, DEPLOY] = RESOURCES as [Resource, Resource, Resource];

function causeOn(field: string, reason: string) {
  return (s: any) => {
    assert.ok(Array.isArray(s.details?.causes), `details.causes missing: ${JSON.stringify(s)}`);
    assert.ok(s.details.causes.some((c: any) => c.field === field && c.reason === reason),
      `no cause {field: ${field}, reason: ${reason}} in ${JSON.stringify(s.details.causes)}`);
  };
}

function withDeploy(name: string, change: (o: any) => void): string {
  const o = DEPLOY.make(name);
  change(o);
  return JSON.stringify(o);
}

function withCm(name: string, change: (o: any) => void): string {
  const o = CM.make(name);
  change(o);
  return JSON.stringify(o);
}

const SPECIFIC: Case[] = [
  // Wrong field types fail decoding (400) on create/update; on patch the patched object fails to
  // decode, which Kubernetes reports as 422 Invalid on the field `patch`.
  { name: 'POST deployments: replicas "three" → 400', method: 'POST', path: DEPLOY.coll, body: withDeploy('neg-type', (o) => { o.spec.replicas = 'three'; }), code: 400, reason: 'BadRequest', absent: [DEPLOY, 'neg-type'] },
  { name: 'PUT deployments: replicas "three" → 400', method: 'PUT', path: `${DEPLOY.coll}/${existing(DEPLOY)}`, body: withDeploy(existing(DEPLOY), (o) => { o.spec.replicas = 'three'; }), code: 400, reason: 'BadRequest' },
  { name: 'PATCH deployments: merge patch replicas "three" → 422', method: 'PATCH', path: `${DEPLOY.coll}/${existing(DEPLOY)}`, body: '{"spec":{"replicas":"three"}}', contentType: 'application/merge-patch+json', code: 422, reason: 'Invalid' },
  { name: 'POST configmaps: data is a list → 400', method: 'POST', path: CM.coll, body: withCm('neg-type', (o) => { o.data = ['a']; }), code: 400, reason: 'BadRequest', absent: [CM, 'neg-type'] },
  // Unknown fields under Strict validation.
  {
    name: 'POST configmaps: unknown field, fieldValidation=Strict → 400', method: 'POST', path: `${CM.coll}?fieldValidation=Strict`,
    body: withCm('neg-strict', (o) => { o.bogus = 1; }), code: 400, reason: 'BadRequest', absent: [CM, 'neg-strict'],
    check: (s) => assert.match(s.message, /unknown field "bogus"/),
  },
  {
    name: 'POST deployments: unknown nested field, fieldValidation=Strict → 400', method: 'POST', path: `${DEPLOY.coll}?fieldValidation=Strict`,
    body: withDeploy('neg-strict', (o) => { o.spec.replicaz = 2; }), code: 400, reason: 'BadRequest', absent: [DEPLOY, 'neg-strict'],
    check: (s) => assert.match(s.message, /unknown field "spec\.replicaz"/),
  },
  {
    // CreateOptions validation: an unsupported directive is 422 Invalid (kind CreateOptions).
    name: 'POST configmaps: fieldValidation=Bogus → 422', method: 'POST', path: `${CM.coll}?fieldValidation=Bogus`,
    body: withCm('neg-fv', () => {}), code: 422, reason: 'Invalid', absent: [CM, 'neg-fv'],
  },
  // The body disagrees with the URL.
  {
    name: 'POST configmaps: a Secret body → 400', method: 'POST', path: CM.coll,
    body: JSON.stringify(SECRET.make('neg-kind')), code: 400, reason: 'BadRequest', absent: [CM, 'neg-kind'],
  },
  {
    name: 'POST configmaps: apiVersion apps/v1 → 400', method: 'POST', path: CM.coll,
    body: withCm('neg-gv', (o) => { o.apiVersion = 'apps/v1'; }), code: 400, reason: 'BadRequest', absent: [CM, 'neg-gv'],
  },
  {
    name: 'POST deployments: apiVersion v1 → 400', method: 'POST', path: DEPLOY.coll,
    body: withDeploy('neg-gv', (o) => { o.apiVersion = 'v1'; }), code: 400, reason: 'BadRequest', absent: [DEPLOY, 'neg-gv'],
  },
  {
    name: 'PUT configmaps: body name differs from the URL → 400', method: 'PUT', path: `${CM.coll}/${existing(CM)}`,
    body: withCm('someone-else', () => {}), code: 400, reason: 'BadRequest',
  },
  {
    name: 'POST configmaps: body namespace differs from the URL → 400', method: 'POST', path: CM.coll,
    body: withCm('neg-ns', (o) => { o.metadata.namespace = 'kube-system'; }), code: 400, reason: 'BadRequest', absent: [CM, 'neg-ns'],
  },
  // Validation: 422 Invalid with causes.
  {
    name: 'POST configmaps: invalid name → 422', method: 'POST', path: CM.coll, body: withCm('Bad_Name', () => {}),
    code: 422, reason: 'Invalid', check: causeOn('metadata.name', 'FieldValueInvalid'),
  },
  {
    name: 'POST deployments: invalid name → 422', method: 'POST', path: DEPLOY.coll, body: withDeploy('-bad-', () => {}),
    code: 422, reason: 'Invalid', check: causeOn('metadata.name', 'FieldValueInvalid'),
  },
  {
    name: 'POST configmaps: invalid label key → 422', method: 'POST', path: CM.coll,
    body: withCm('neg-label', (o) => { o.metadata.labels = { 'bad key!': 'v' }; }), code: 422, reason: 'Invalid', absent: [CM, 'neg-label'],
    check: causeOn('metadata.labels', 'FieldValueInvalid'),
  },
  {
    name: 'POST configmaps: invalid label value → 422', method: 'POST', path: CM.coll,
    body: withCm('neg-label2', (o) => { o.metadata.labels = { ok: '-not ok-' }; }), code: 422, reason: 'Invalid', absent: [CM, 'neg-label2'],
    check: causeOn('metadata.labels', 'FieldValueInvalid'),
  },
  {
    name: 'POST configmaps: no name → 422', method: 'POST', path: CM.coll,
    body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {}, data: {} }), code: 422, reason: 'Invalid',
    check: causeOn('metadata.name', 'FieldValueRequired'),
  },
  {
    name: 'POST deployments: no selector → 422', method: 'POST', path: DEPLOY.coll,
    body: withDeploy('neg-nosel', (o) => { delete o.spec.selector; }), code: 422, reason: 'Invalid', absent: [DEPLOY, 'neg-nosel'],
    check: causeOn('spec.selector', 'FieldValueRequired'),
  },
  {
    name: 'POST deployments: replicas -1 → 422', method: 'POST', path: DEPLOY.coll,
    body: withDeploy('neg-neg', (o) => { o.spec.replicas = -1; }), code: 422, reason: 'Invalid', absent: [DEPLOY, 'neg-neg'],
    check: (s) => {
      causeOn('spec.replicas', 'FieldValueInvalid')(s);
      assert.equal(s.message, 'Deployment.apps "neg-neg" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0');
    },
  },
  // Unknown resources and paths.
  { name: 'GET an unknown core resource → 404', method: 'GET', path: `${NS}/frobs`, code: 404, reason: 'NotFound' },
  { name: 'POST an unknown core resource → 404', method: 'POST', path: `${NS}/frobs`, body: '{}', code: 404, reason: 'NotFound' },
  { name: 'GET an unknown group → 404', method: 'GET', path: '/apis/nope.example.com/v1/things', code: 404, reason: 'NotFound' },
  { name: 'DELETE a missing configmap → 404', method: 'DELETE', path: `${CM.coll}/neg-missing`, code: 404, reason: 'NotFound',
    check: (s) => { assert.equal(s.message, 'configmaps "neg-missing" not found'); assert.equal(s.details?.name, 'neg-missing'); } },
  { name: 'GET a missing deployment → 404', method: 'GET', path: `${DEPLOY.coll}/neg-missing`, code: 404, reason: 'NotFound',
    check: (s) => assert.equal(s.message, 'deployments.apps "neg-missing" not found') },
  { name: 'PUT on a collection → 405', method: 'PUT', path: CM.coll, body: withCm('x', () => {}), code: 405, reason: 'MethodNotAllowed' },
  // Query parameters. Kubernetes ignores limit ≤ 0 (no paging), so limit=-1 is not an error: see below.
  { name: 'list limit=abc → 400', method: 'GET', path: `${CM.coll}?limit=abc`, code: 400, reason: 'BadRequest' },
  { name: 'list timeoutSeconds=x → 400', method: 'GET', path: `${CM.coll}?timeoutSeconds=x`, code: 400, reason: 'BadRequest' },
  { name: 'watch timeoutSeconds=x → 400', method: 'GET', path: `${CM.coll}?watch=true&timeoutSeconds=x`, code: 400, reason: 'BadRequest' },
  { name: 'list labelSelector=!!! → 400', method: 'GET', path: `${CM.coll}?labelSelector=${encodeURIComponent('!!!')}`, code: 400, reason: 'BadRequest' },
  { name: 'list fieldSelector=foo → 400', method: 'GET', path: `${CM.coll}?fieldSelector=foo`, code: 400, reason: 'BadRequest' },
  { name: 'list fieldSelector on an unsupported field → 400', method: 'GET', path: `${CM.coll}?fieldSelector=${encodeURIComponent('spec.foo=bar')}`, code: 400, reason: 'BadRequest' },
  // kube-apiserver 1.32 answers 500 here (kubernetes/kubernetes#139485, still open); 400 is the fix.
  { name: 'list resourceVersion=abc → 400 (k8s: 500)', method: 'GET', path: `${CM.coll}?resourceVersion=abc`, code: [400, 500],
    check: (s) => assert.match(s.message, /resource ?version/i) },
  { name: 'list with a garbage continue token → 400', method: 'GET', path: `${CM.coll}?limit=1&continue=not-a-token`, code: 400, reason: 'BadRequest' },
  { name: 'list resourceVersionMatch=Bogus → 422', method: 'GET', path: `${CM.coll}?resourceVersion=1&resourceVersionMatch=Bogus`, code: 422, reason: 'Invalid' },
  // Write conflicts.
  {
    name: 'POST configmaps: name already exists → 409 AlreadyExists', method: 'POST', path: CM.coll, body: withCm(existing(CM), () => {}),
    code: 409, reason: 'AlreadyExists',
    check: (s) => { assert.equal(s.message, `configmaps "${existing(CM)}" already exists`); assert.equal(s.details?.name, existing(CM)); },
  },
  {
    name: 'POST deployments: name already exists → 409 AlreadyExists', method: 'POST', path: DEPLOY.coll, body: withDeploy(existing(DEPLOY), () => {}),
    code: 409, reason: 'AlreadyExists', check: (s) => assert.equal(s.message, `deployments.apps "${existing(DEPLOY)}" already exists`),
  },
  {
    name: 'PATCH configmaps: JSON patch whose test op fails → 422', method: 'PATCH', path: `${CM.coll}/${existing(CM)}`,
    body: JSON.stringify([{ op: 'test', path: '/data/k', value: 'not-v' }, { op: 'replace', path: '/data/k', value: 'changed' }]),
    contentType: 'application/json-patch+json', code: 422, reason: 'Invalid',
  },
  {
    name: 'PATCH configmaps: JSON patch removing a missing path → 422', method: 'PATCH', path: `${CM.coll}/${existing(CM)}`,
    body: JSON.stringify([{ op: 'remove', path: '/data/nothing-here' }]), contentType: 'application/json-patch+json', code: 422, reason: 'Invalid',
  },
  {
    name: 'PATCH a missing configmap → 404', method: 'PATCH', path: `${CM.coll}/neg-missing`, body: '{"data":{"a":"b"}}',
    contentType: 'application/merge-patch+json', code: 404, reason: 'NotFound', absent: [CM, 'neg-missing'],
  },
];

const ALL: Case[] = [...RESOURCES.flatMap(malformedBodyCases), ...SPECIFIC];

for (const c of ALL) {
  test(c.name, async () => {
    const reply = await api.request(c.method, c.path, { body: c.body, contentType: c.contentType, timeoutMs: 30_000 });
    const status = assertStatus(reply, c.code, c.reason, `${c.method} ${c.path}`);
    c.check?.(status, reply);
    if (c.absent) await assertAbsent(c.absent[0], c.absent[1], c.name);
    await assertUnharmed(c.name);
  });
}

test('PUT with a stale resourceVersion → 409 Conflict, object unchanged', async () => {
  const path = `${CM.coll}/neg-stale`;
  const created = json(await api.post(CM.coll, CM.make('neg-stale')));
  const updated = await api.put(path, { ...created, data: { k: 'second' } });
  assert.equal(updated.status, 200, updated.body);
  const stale = await api.put(path, { ...created, data: { k: 'stale' } });
  const s = assertStatus(stale, 409, 'Conflict', 'stale PUT');
  assert.equal(s.message, 'Operation cannot be fulfilled on configmaps "neg-stale": the object has been modified; please apply your changes to the latest version and try again');
  const now = json(await api.get(path));
  assert.equal(now.data.k, 'second');
  assert.equal(now.metadata.resourceVersion, json(updated).metadata.resourceVersion);
  await api.delete(path);
});

test('PATCH with a stale metadata.resourceVersion precondition → 409 Conflict', async () => {
  const path = `${CM.coll}/neg-stale-patch`;
  const created = json(await api.post(CM.coll, CM.make('neg-stale-patch')));
  assert.equal((await api.put(path, { ...created, data: { k: 'second' } })).status, 200);
  const stale = await api.request('PATCH', path, {
    body: JSON.stringify({ metadata: { resourceVersion: created.metadata.resourceVersion }, data: { k: 'stale' } }),
    contentType: 'application/merge-patch+json',
  });
  assertStatus(stale, 409, 'Conflict', 'stale PATCH');
  assert.equal(json(await api.get(path)).data.k, 'second');
  await api.delete(path);
});

test('unknown field with fieldValidation=Warn → 201 and a Warning header; Ignore → 201, no warning', async () => {
  const warn = await api.post(`${CM.coll}?fieldValidation=Warn`, { ...CM.make('neg-warn'), bogus: 1 });
  assert.equal(warn.status, 201, warn.body);
  const header = [warn.headers.warning ?? []].flat().join('\n');
  assert.match(header, /^299 - ".*unknown field \\"bogus\\".*"/m, `Warning header: ${header}`);
  assert.equal(json(warn).bogus, undefined, 'the unknown field must be dropped, not stored');

  const ignore = await api.post(`${CM.coll}?fieldValidation=Ignore`, { ...CM.make('neg-ignore'), bogus: 1 });
  assert.equal(ignore.status, 201, ignore.body);
  assert.doesNotMatch([ignore.headers.warning ?? []].flat().join('\n'), /bogus/);
  assert.equal(json(await api.get(`${CM.coll}/neg-ignore`)).bogus, undefined);

  // Strict applies to updates too.
  const strictPut = await api.put(`${CM.coll}/neg-warn?fieldValidation=Strict`, { ...json(warn), bogus: 2 });
  assertStatus(strictPut, 400, 'BadRequest', 'strict PUT');
  for (const n of ['neg-warn', 'neg-ignore']) assert.equal((await api.delete(`${CM.coll}/${n}`)).status, 200);
  await assertUnharmed('fieldValidation');
});

test('list limit=-1 is no limit, as in Kubernetes', async () => {
  const reply = await api.get(`${CM.coll}?limit=-1`);
  assert.equal(reply.status, 200, reply.body);
  const list = json(reply);
  assert.equal(list.kind, 'ConfigMapList');
  assert.ok(!list.metadata.continue, `no continue token expected: ${JSON.stringify(list.metadata)}`);
  assert.ok(list.items.some((i: any) => i.metadata.name === existing(CM)));
});

test('watch from a resourceVersion older than the watch window → ERROR event with 410 Expired', async () => {
  const first = json(await api.post(CM.coll, CM.make('neg-old-rv')));
  const oldRv = first.metadata.resourceVersion;
  // Push that revision out of the per-resource window.
  for (let i = 0; i < WATCH_CACHE + 20; i++) {
    const r = await api.request('PATCH', `${CM.coll}/neg-old-rv`, { body: JSON.stringify({ data: { i: String(i) } }), contentType: 'application/merge-patch+json' });
    assert.equal(r.status, 200, r.body);
  }
  for (const rv of [oldRv, '1']) {
    const events: any[] = [];
    const w = await api.watch(`${CM.coll}?watch=true&resourceVersion=${rv}`, (e) => events.push(e));
    try {
      // kube-apiserver's watch cache answers 200 and sends the error as the first event.
      assert.equal(w.status, 200, `watch rv=${rv}: HTTP ${w.status} ${w.body()}`);
      const deadline = Date.now() + 5000;
      while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(events.length > 0, `watch rv=${rv}: no event within 5 s`);
      const ev = events[0];
      assert.equal(ev.type, 'ERROR', `watch rv=${rv}: first event ${JSON.stringify(ev).slice(0, 300)}`);
      assert.equal(ev.object.kind, 'Status');
      assert.equal(ev.object.status, 'Failure');
      assert.equal(ev.object.code, 410);
      assert.equal(ev.object.reason, 'Expired');
      assert.match(ev.object.message, new RegExp(`^too old resource version: ${rv} \\(\\d+\\)$`));
    } finally {
      w.close();
    }
  }
  await api.delete(`${CM.coll}/neg-old-rv`);
  await assertUnharmed('old watch');
});

test('a request whose body never finishes does not hold the server up', async () => {
  // Half a body and a hang-up: the server must drop it and keep serving.
  const { request } = await import('node:https');
  await new Promise<void>((resolve) => {
    const req = request({
      host: '127.0.0.1', port: server.port, method: 'POST', path: CM.coll, agent: api.agent,
      headers: { 'content-type': 'application/json', 'content-length': '1000' },
    });
    req.on('error', () => resolve());
    req.write('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"neg-half"');
    setTimeout(() => { req.destroy(); resolve(); }, 200);
  });
  await assertAbsent(CM, 'neg-half', 'half body');
  await assertUnharmed('half body');
});
