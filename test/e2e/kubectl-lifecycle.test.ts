// Acceptance (issue 2): the server process as kubectl users meet it: unauthenticated health and CA
// endpoints, 401 for everything else, the join token, env twins of flags, and data that survives
// SIGTERM and kill -9.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { startServer, withServer, type TestServer } from '../helpers/cluster.js';
import { ok, fails } from '../helpers/kubectl.js';

const TOKEN = 's3cret-join-token';
let server: TestServer;
before(async () => { server = await startServer({ args: ['--token', TOKEN] }); });

test('health endpoints answer without credentials', async () => {
  for (const path of ['/readyz', '/livez', '/healthz']) {
    const r = await server.request('GET', path, { noAuth: true });
    assert.equal(r.status, 200, `${path}: ${r.body}`);
    assert.equal(r.body, 'ok', path);
  }
  assert.equal((await server.request('GET', '/ping', { noAuth: true })).status, 200);
});

test('/cacerts serves the CA that signed the serving and admin certificates', async () => {
  const r = await server.request('GET', '/cacerts', { noAuth: true });
  assert.equal(r.status, 200);
  assert.equal(r.body.trim(), server.caPem.trim());
  assert.match(r.body, /^-----BEGIN CERTIFICATE-----/);
});

test('the node token pins the CA and carries the --token secret', async () => {
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  const ca = (await server.request('GET', '/cacerts', { noAuth: true })).body;
  const hash = createHash('sha256').update(ca).digest('hex');
  assert.equal(token, `K10${hash}::server:${TOKEN}`);
});

test('the admin kubeconfig is private and points at the server', async () => {
  assert.equal(statSync(server.kubeconfigPath).mode & 0o777, 0o600);
  const kc = readFileSync(server.kubeconfigPath, 'utf8');
  assert.match(kc, new RegExp(`server: ${server.url.replace(/\./g, '\\.')}\\b`));
});

test('requests without credentials get 401 Unauthorized', async () => {
  const r = await server.request('GET', '/api/v1/namespaces', { noAuth: true });
  assert.equal(r.status, 401);
  const status = r.json();
  assert.equal(status.kind, 'Status');
  assert.equal(status.status, 'Failure');
  assert.equal(status.reason, 'Unauthorized');
  assert.equal(status.code, 401);

  const bad = await server.request('GET', '/api/v1/namespaces', { token: 'not-a-token' });
  assert.equal(bad.status, 401);

  // kubectl with a kubeconfig whose token the server does not know. (With no credentials at all
  // kubectl would prompt for a username on stdin instead of asking the server.)
  const anon = join(server.dataDir, 'bad-token.kubeconfig');
  writeFileSync(anon, toYaml({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'anon',
    clusters: [{ name: 'c', cluster: { server: server.url, 'certificate-authority-data': Buffer.from(server.caPem).toString('base64') } }],
    users: [{ name: 'nobody', user: { token: 'not-a-token' } }],
    contexts: [{ name: 'anon', context: { cluster: 'c', user: 'nobody' } }],
  }));
  const r2 = await server.kubectl(['get', 'pods', '--kubeconfig', anon]);
  fails(r2, /You must be logged in to the server/);
});

test('the admin certificate is system:admin in system:masters', async () => {
  const r = await server.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  assert.equal(r.status, 201, r.body);
  const user = r.json().status.userInfo;
  assert.equal(user.username, 'system:admin');
  assert.ok(user.groups.includes('system:masters'), JSON.stringify(user));
});

test('data survives kill -9 and a graceful restart; the CA is kept', async () => {
  ok(await server.kubectl(['create', 'configmap', 'durable', '--from-literal=k=v']));
  const original = JSON.parse(ok(await server.kubectl(['get', 'configmap', 'durable', '-o', 'json'])));
  const ca = server.caPem;

  await server.kill9();
  await server.restart();
  assert.equal(server.caPem, ca, 'the CA is reused, not regenerated');
  const after = JSON.parse(ok(await server.kubectl(['get', 'configmap', 'durable', '-o', 'json'])));
  assert.equal(after.metadata.uid, original.metadata.uid);
  assert.equal(after.metadata.resourceVersion, original.metadata.resourceVersion);
  assert.deepEqual(after.data, { k: 'v' });

  // Revisions keep growing after a restart: a write gets a newer resourceVersion.
  ok(await server.kubectl(['label', 'configmap', 'durable', 'after=restart']));
  const rv = Number(JSON.parse(ok(await server.kubectl(['get', 'configmap', 'durable', '-o', 'json']))).metadata.resourceVersion);
  assert.ok(rv > Number(original.metadata.resourceVersion), `resourceVersion ${rv} after restart`);

  await server.stop();
  assert.equal(server.proc.exitCode, 0, `SIGTERM exits cleanly\n${server.logTail()}`);
  await server.restart();
  assert.equal(ok(await server.kubectl(['get', 'configmap', 'durable', '-o', 'jsonpath={.metadata.labels.after}'])), 'restart');
});

test('flags can be given as SKIFF_* environment variables', async () => {
  await withServer(async (s) => {
    const token = readFileSync(join(s.dataDir, 'server', 'node-token'), 'utf8').trim();
    assert.match(token, /^K10[0-9a-f]{64}::server:from-env$/);
  }, { env: { SKIFF_TOKEN: 'from-env' } });
});
