// Authentication and authorization end to end: who gets 401, who gets 403, and how a RoleBinding
// to the built-in `view` role opens exactly one namespace (as kubectl auth can-i also reports).
// Client certificates are issued here with openssl from the server's own client CA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { ApiClient, assertStatus, json } from '../helpers/api-client.js';
import { runKubectl } from '../helpers/kubectl.js';

const SECRET = 'auth-test-secret';
let server: TestServer;
let admin: ApiClient;
let work: string;   // certificates and kubeconfigs made by this test

before(async () => {
  server = await startServer({ args: ['--token', SECRET] });
  admin = ApiClient.fromKubeconfig(server.kubeconfigPath);
  work = mkdtempSync(join(tmpdir(), 'skiff-auth-'));
});

after(async () => {
  admin?.close();
  await server?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A client certificate for `subject` signed by the given CA; returns PEMs. */
function issueClientCert(name: string, subject: string, caCrt: string, caKey: string): { cert: string; key: string } {
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  writeFileSync(join(work, `${name}.ext`), 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', caCrt, '-CAkey', caKey, '-CAcreateserial',
    '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
  return { cert: readFileSync(join(work, `${name}.crt`), 'utf8'), key: readFileSync(join(work, `${name}.key`), 'utf8') };
}

const tlsDir = () => join(server.dataDir, 'server', 'tls');

function kubeconfigFor(user: string, cert: string, key: string): string {
  const path = join(work, `${user}.kubeconfig`);
  writeFileSync(path, toYaml({
    apiVersion: 'v1', kind: 'Config', 'current-context': user,
    clusters: [{ name: 'skiff', cluster: { server: server.url, 'certificate-authority-data': Buffer.from(admin.creds.ca).toString('base64') } }],
    users: [{ name: user, user: { 'client-certificate-data': Buffer.from(cert).toString('base64'), 'client-key-data': Buffer.from(key).toString('base64') } }],
    contexts: [{ name: user, context: { cluster: 'skiff', user } }],
  }));
  return path;
}

const UNAUTHORIZED = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };

test('no credentials → 401 Unauthorized Status', async () => {
  const anon = admin.withCredentials({ cert: undefined, key: undefined });
  try {
    for (const path of ['/api/v1/namespaces', '/api/v1/namespaces/default/pods', '/apis/apps/v1/deployments', '/api']) {
      const r = await anon.get(path);
      assertStatus(r, 401, 'Unauthorized', `anonymous GET ${path}`);
      assert.deepEqual(json(r), UNAUTHORIZED);
    }
    const post = await anon.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'anon' } });
    assertStatus(post, 401, 'Unauthorized', 'anonymous POST');
    assert.equal((await admin.get('/api/v1/namespaces/anon')).status, 404);
  } finally {
    anon.close();
  }
});

test('health endpoints and /cacerts answer without credentials', async () => {
  const anon = admin.withCredentials({ cert: undefined, key: undefined });
  try {
    for (const path of ['/ping', '/healthz', '/livez', '/readyz']) {
      const r = await anon.get(path);
      assert.equal(r.status, 200, `${path}: ${r.status} ${r.body}`);
    }
    assert.equal((await anon.get('/readyz')).body.trim(), 'ok');
    const ca = await anon.get('/cacerts');
    assert.equal(ca.status, 200, ca.body);
    assert.match(ca.body, /^-----BEGIN CERTIFICATE-----/);
    // The join token pins this exact body: K10<sha256 hex of the CA bundle>::server:<secret>.
    const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
    const m = token.match(/^K10([0-9a-f]{64})::server:(.+)$/);
    assert.ok(m, `node-token format: ${token}`);
    assert.equal(m[1], createHash('sha256').update(ca.body).digest('hex'), '/cacerts does not hash to the token\'s CA pin');
    assert.equal(m[2], SECRET);
    // The served CA is the one the kubeconfig trusts.
    assert.ok(ca.body.includes(admin.creds.ca.trim().split('\n')[1]!), '/cacerts does not hold the kubeconfig\'s CA');
  } finally {
    anon.close();
  }
});

test('a client certificate from another CA → 401', async () => {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', 'rogue-ca.key', '-out', 'rogue-ca.crt', '-subj', '/CN=rogue-ca', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign']);
  // Same subject as the real admin: only the signature may decide.
  const { cert, key } = issueClientCert('rogue', '/CN=system:admin/O=system:masters', join(work, 'rogue-ca.crt'), join(work, 'rogue-ca.key'));
  const rogue = admin.withCredentials({ cert, key });
  try {
    const r = await rogue.get('/api/v1/namespaces');
    assertStatus(r, 401, 'Unauthorized', 'foreign-CA certificate');
  } finally {
    rogue.close();
  }
});

test('a garbage bearer token → 401, also next to no certificate', async () => {
  for (const token of ['garbage', `K10${'0'.repeat(64)}::server:wrong`, SECRET + 'x']) {
    const bad = admin.withCredentials({ cert: undefined, key: undefined, token });
    try {
      assertStatus(await bad.get('/api/v1/namespaces'), 401, 'Unauthorized', `bearer ${token}`);
    } finally {
      bad.close();
    }
  }
});

test('a user without RBAC rights → 403; a RoleBinding to view opens one namespace, not secrets', async () => {
  const { cert, key } = issueClientCert('alice', '/CN=alice/O=devs', join(tlsDir(), 'client-ca.crt'), join(tlsDir(), 'client-ca.key'));
  const user = admin.withCredentials({ cert, key });
  try {
    const denied = await user.get('/api/v1/namespaces/default/pods');
    const s = assertStatus(denied, 403, 'Forbidden', 'alice lists pods');
    assert.equal(s.message, 'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"');
    assert.equal(s.details?.kind, 'pods');
    const cluster = assertStatus(await user.get('/api/v1/namespaces'), 403, 'Forbidden', 'alice lists namespaces');
    assert.equal(cluster.message, 'namespaces is forbidden: User "alice" cannot list resource "namespaces" in API group "" at the cluster scope');

    assert.equal((await admin.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } })).status, 201);
    const rb = await admin.post('/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'alice-view' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'alice' }],
    });
    assert.equal(rb.status, 201, rb.body);

    // The authorizer may learn of the binding through a watch: allow it a moment.
    let allowed = await user.get('/api/v1/namespaces/team/pods');
    for (const deadline = Date.now() + 5000; allowed.status !== 200 && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 100));
      allowed = await user.get('/api/v1/namespaces/team/pods');
    }
    assert.equal(allowed.status, 200, `alice lists pods in team after the binding: ${allowed.body}`);
    assert.equal(json(allowed).kind, 'PodList');
    assert.equal((await user.get('/api/v1/namespaces/team/configmaps')).status, 200);
    assert.equal((await user.get('/apis/apps/v1/namespaces/team/deployments')).status, 200);

    assertStatus(await user.get('/api/v1/namespaces/default/pods'), 403, 'Forbidden', 'other namespace');
    const secrets = assertStatus(await user.get('/api/v1/namespaces/team/secrets'), 403, 'Forbidden', 'secrets in team');
    assert.match(secrets.message, /User "alice" cannot list resource "secrets" in API group "" in the namespace "team"/);
    // view reads, never writes.
    const write = await user.post('/api/v1/namespaces/team/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } });
    assertStatus(write, 403, 'Forbidden', 'alice creates a configmap');
    assert.equal((await admin.get('/api/v1/namespaces/team/configmaps/x')).status, 404);

    // kubectl agrees (SelfSubjectAccessReview): exit 0 and "yes", or exit 1 and "no".
    const kc = kubeconfigFor('alice', cert, key);
    const canI = (args: string[]) => runKubectl(['--kubeconfig', kc, '--cache-dir', join(work, 'kubectl-cache')], ['auth', 'can-i', ...args]);
    for (const [args, yes] of [
      [['list', 'pods', '-n', 'team'], true],
      [['get', 'configmaps', '-n', 'team'], true],
      [['list', 'pods', '-n', 'default'], false],
      [['get', 'secrets', '-n', 'team'], false],
      [['create', 'configmaps', '-n', 'team'], false],
    ] as [string[], boolean][]) {
      const r = await canI(args);
      assert.equal(r.stdout.trim(), yes ? 'yes' : 'no', `kubectl auth can-i ${args.join(' ')}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      assert.equal(r.code, yes ? 0 : 1, `kubectl auth can-i ${args.join(' ')} exit code\n${r.stderr}`);
    }
  } finally {
    user.close();
  }
});

test('the admin kubeconfig can do anything', async () => {
  const r = await server.kubectl(['auth', 'can-i', '*', '*', '--all-namespaces']);
  assert.equal(r.stdout.trim(), 'yes', `${r.stdout}\n${r.stderr}`);
});
