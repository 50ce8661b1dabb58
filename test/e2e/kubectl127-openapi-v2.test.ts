// kubectl 1.27 against skiff: it downloads `/openapi/v2` (protobuf) for every `create -f`, `apply -f`
// and `explain`, and uses its patch metadata for apply's strategic merge patches. Validation itself
// goes to the server: 1.27 first asks OpenAPI v3 whether PATCH takes `fieldValidation`, it does, so
// kubectl sends `fieldValidation=Strict` and the server rejects unknown fields.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { startServer, fixture, type TestServer, API_ONLY } from '../helpers/cluster.js';
import { ok, fails, tableHeader, tableRows } from '../helpers/kubectl.js';
import { openApiV2DocumentType } from '../../src/apiserver/openapi-v2-proto.js';

const NS = 'v2';
let server: TestServer;

const k = async (args: string[], input?: string) =>
  ok(await server.kubectl(args, { input, version: '1.27' }), `kubectl 1.27 ${args.join(' ')}`);

before(async () => {
  server = await startServer({ args: API_ONLY });
  await k(['create', 'namespace', NS]);
});

test('/openapi/v2 answers protobuf to kubectl\'s Accept, JSON otherwise, and 304 to a known ETag', async () => {
  const pb = await server.request('GET', '/openapi/v2', { headers: { accept: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf' } });
  assert.equal(pb.status, 200);
  // The '@' form is not a valid Content-Type (Go's mime parser rejects it): the reply uses the dotted one.
  assert.equal(pb.headers['content-type'], 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf');
  const raw = await rawGet('/openapi/v2', 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf');
  const decoded = openApiV2DocumentType().decode(raw) as any;
  assert.equal(decoded.swagger, '2.0');
  assert.ok(decoded.definitions.additional_properties.some((d: any) => d.name === 'io.k8s.api.apps.v1.Deployment'));

  const json = await server.request('GET', '/openapi/v2', { headers: { accept: 'application/json' } });
  assert.equal(json.status, 200);
  assert.equal(json.headers['content-type'], 'application/json');
  assert.ok(json.json().definitions['io.k8s.api.core.v1.Pod']);
  assert.notEqual(json.headers.etag, pb.headers.etag, 'each encoding has its own ETag');

  const again = await server.request('GET', '/openapi/v2', { headers: { accept: 'application/json', 'if-none-match': String(json.headers.etag) } });
  assert.equal(again.status, 304);
  assert.equal(again.body, '');
  const html = await server.request('GET', '/openapi/v2', { headers: { accept: 'text/html' } });
  assert.equal(html.status, 406);
  assert.equal(html.json().reason, 'NotAcceptable');
});

test('create -f of a Deployment passes validation', async () => {
  const out = await k(['create', '-n', NS, '-f', '-'], fixture('web-deployment.yaml', { 'name: web\n': 'name: created\n' }));
  assert.equal(out.trim(), 'deployment.apps/created created');
});

test('an unknown field is rejected (by the server, with fieldValidation=Strict) and nothing is created', async () => {
  const bad = fixture('web-deployment.yaml', { 'name: web\n': 'name: bad\n', '          image: nginx:1.25\n': '          image: nginx:1.25\n          imagee: typo\n' });
  const r = await server.kubectl(['create', '-n', NS, '-f', '-', '-v=6'], { input: bad, version: '1.27' });
  fails(r, /strict decoding error: unknown field "spec\.template\.spec\.containers\[0\]\.imagee"/);
  assert.match(r.stderr, /GET https:\/\/127\.0\.0\.1:\d+\/openapi\/v2\?timeout=\d+s 200 OK/);
  assert.match(r.stderr, /POST [^ ]*\/deployments\?fieldManager=kubectl-create&fieldValidation=Strict 400/);
  fails(await server.kubectl(['get', 'deploy', 'bad', '-n', NS], { version: '1.27' }), /deployments.apps "bad" not found/);
});

test('apply -f twice with a changed image: a strategic merge patch built from the v2 patch metadata', async () => {
  const v1 = fixture('web-deployment.yaml');
  assert.equal((await k(['apply', '-n', NS, '-f', '-'], v1)).trim(), 'deployment.apps/web created');
  await k(['annotate', 'deployment', 'web', '-n', NS, 'kept=yes']);
  const r = await server.kubectl(['apply', '-n', NS, '-f', '-', '-v=8'], { input: v1.replace('nginx:1.25', 'nginx:1.26'), version: '1.27' });
  assert.equal(ok(r).trim(), 'deployment.apps/web configured');
  // kubectl falls back to its compiled-in types, with this warning, when the v2 schema is unusable.
  assert.doesNotMatch(r.stderr, /error calculating patch from openapi spec/);
  assert.match(r.stderr, /Content-Type: application\/strategic-merge-patch\+json/);
  assert.match(r.stderr, /"\$setElementOrder\/containers":\[\{"name":"web"\},\{"name":"sidecar"\}\]/);
  const d = JSON.parse(await k(['get', 'deploy', 'web', '-n', NS, '-o', 'json']));
  assert.deepEqual(d.spec.template.spec.containers.map((c: any) => c.image), ['nginx:1.26', 'busybox:1.36']);
  assert.equal(d.metadata.annotations.kept, 'yes');
});

test('explain deployment.spec, also in the OpenAPI v2 output format', async () => {
  const out = await k(['explain', 'deployment.spec']);
  assert.match(out, /KIND:\s+Deployment/);
  assert.match(out, /^\s+replicas\s+<integer>/m);
  const v2 = await k(['explain', 'deployment.spec.template.spec.containers', '--output=plaintext-openapiv2']);
  assert.match(v2, /^KIND:\s+Deployment\nVERSION:\s+apps\/v1\n\nRESOURCE:\s+containers <\[\]Object>/);
  assert.match(v2, /^\s+image\s+<string>/m);
});

test('get pods prints the server\'s table', async () => {
  await k(['create', '-n', NS, '-f', '-'], fixture('pod.yaml'));
  const out = await k(['get', 'pods', '-n', NS]);
  assert.deepEqual(tableHeader(out), ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
  assert.deepEqual(tableRows(out)[1].slice(0, 4), ['p1', '0/1', 'Pending', '0']);
});

test('a CRD and a custom resource; the CRD\'s schema reaches /openapi/v2', async () => {
  const before = (await server.request('GET', '/openapi/v2', { headers: { accept: 'application/json' } })).headers.etag;
  assert.equal((await k(['create', '-f', '-'], fixture('crontab-crd.yaml'))).trim(),
    'customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created');
  await k(['wait', '--for', 'condition=Established', '--timeout=30s', 'crd/crontabs.stable.example.com']);
  assert.equal((await k(['create', '-n', NS, '-f', '-'], fixture('crontab.yaml'))).trim(), 'crontab.stable.example.com/my-cron created');
  assert.equal(await k(['get', 'ct', 'my-cron', '-n', NS, '-o', 'jsonpath={.spec.cronSpec}']), '* * * * */5');

  const after = await server.request('GET', '/openapi/v2', { headers: { accept: 'application/json' } });
  assert.notEqual(after.headers.etag, before);
  assert.deepEqual(after.json().definitions['com.example.stable.v1.CronTab']['x-kubernetes-group-version-kind'],
    [{ group: 'stable.example.com', version: 'v1', kind: 'CronTab' }]);
  const explained = await k(['explain', 'crontab.spec', '--output=plaintext-openapiv2']);
  assert.match(explained, /^\s+cronSpec\s+<string>/m);
});

/** The body as bytes (the helper's request() decodes text, which would mangle protobuf). */
function rawGet(path: string, accept: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: server.port, path, headers: { accept },
      ca: server.caPem, cert: server.adminCert, key: server.adminKey, agent: false, timeout: 15_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within 15 s`)));
    req.on('error', reject);
    req.end();
  });
}
