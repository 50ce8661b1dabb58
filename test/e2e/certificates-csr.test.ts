// Acceptance (issue 10): CertificateSigningRequests with real kubectl and openssl. A request made
// with openssl (CN=alice, O=devs) is approved with `kubectl certificate approve`, signed by skiff's
// client CA, and the certificate authenticates as alice; the deny path; bad requests get 422s in
// Kubernetes' words; the built-in signers' rules; a node's request for its own client certificate is
// approved automatically; expirationSeconds is honoured.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { ok, fails, runKubectl, tableRows } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
let dir: string;

before(async () => {
  if (!existsSync('/usr/bin/openssl')) throw new Error('this test needs openssl (/usr/bin/openssl) to make keys and requests');
  dir = mkdtempSync(join(tmpdir(), `skiff-csr-${process.pid}-`));
  server = await startServer();
});
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

/** A key and a PEM request made by openssl; `ext` adds e.g. subjectAltName. */
function opensslCsr(name: string, subject: string, ext?: string): { key: string; csr: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key,
    '-subj', subject, ...(ext ? ['-addext', ext] : []), '-out', csr], { stdio: 'pipe' });
  return { key, csr: readFileSync(csr, 'utf8') };
}

function csrManifest(name: string, pem: string, signer: string, usages: string[], extra = ''): string {
  return `apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: ${name}}
spec:
  request: ${Buffer.from(pem).toString('base64')}
  signerName: ${signer}
  usages: [${usages.map((u) => JSON.stringify(u)).join(', ')}]
${extra}`;
}

async function issuedCert(name: string): Promise<string> {
  const b64 = await eventually(async () => {
    const r = await server.kubectl(['get', 'csr', name, '-o', 'jsonpath={.status.certificate}']);
    return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
  }, `certificate of CSR ${name}`, 30_000, () => server.logTail());
  return Buffer.from(b64, 'base64').toString('utf8');
}

function certText(pem: string): string {
  const f = join(dir, `cert-${Date.now()}.pem`);
  writeFileSync(f, pem);
  return execFileSync('openssl', ['x509', '-in', f, '-noout', '-subject', '-issuer', '-startdate', '-enddate', '-ext', 'extendedKeyUsage'], { encoding: 'utf8' });
}

test('kubectl certificate approve issues a client certificate that authenticates as its CN', async () => {
  const { key, csr } = opensslCsr('alice', '/CN=alice/O=devs');
  ok(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('alice', csr, 'kubernetes.io/kube-apiserver-client', ['client auth'], '  expirationSeconds: 86400\n') }));
  const pending = tableRows(ok(await server.kubectl(['get', 'csr', 'alice'])));
  assert.deepEqual(pending[0], ['NAME', 'AGE', 'SIGNERNAME', 'REQUESTOR', 'REQUESTEDDURATION', 'CONDITION']);
  assert.deepEqual([pending[1][2], pending[1][3], pending[1][4], pending[1][5]], ['kubernetes.io/kube-apiserver-client', 'system:admin', '24h', 'Pending']);

  assert.match(ok(await server.kubectl(['certificate', 'approve', 'alice'])), /certificatesigningrequest.certificates.k8s.io\/alice approved/);
  const pem = await issuedCert('alice');
  const text = certText(pem);
  assert.match(text, /subject=CN ?= ?alice, O ?= ?devs/);
  assert.match(text, /TLS Web Client Authentication/);
  const csrObj = JSON.parse(ok(await server.kubectl(['get', 'csr', 'alice', '-o', 'json'])));
  assert.deepEqual(csrObj.status.conditions.map((c: any) => [c.type, c.status, c.reason]), [['Approved', 'True', 'KubectlApprove']]);
  assert.ok(csrObj.status.conditions[0].lastTransitionTime, 'the server stamps lastTransitionTime');
  const row = tableRows(ok(await server.kubectl(['get', 'csr', 'alice'])))[1];
  assert.equal(row[5], 'Approved,Issued');
  // About a day (kube backdates the start a little; skiff by up to an hour).
  const notAfter = Date.parse(/notAfter=(.*)/.exec(text)![1]);
  assert.ok(Math.abs(notAfter - (Date.now() + 86_400_000)) < 10 * 60_000, `notAfter ${new Date(notAfter).toISOString()}`);

  // A kubeconfig with alice's certificate and key: the server knows her as alice, in group devs.
  const kc = join(dir, 'alice.kubeconfig');
  copyFileSync(server.kubeconfigPath, kc);
  writeFileSync(join(dir, 'alice.crt'), pem);
  const base = ['--kubeconfig', kc];
  ok(await runKubectl(base, ['config', 'set-credentials', 'alice', `--client-certificate=${join(dir, 'alice.crt')}`, `--client-key=${key}`, '--embed-certs']));
  ok(await runKubectl(base, ['config', 'set-context', '--current', '--user=alice']));
  const who = ok(await runKubectl(base, ['auth', 'whoami', '-o', 'json']));
  assert.deepEqual(JSON.parse(who).status.userInfo.username, 'alice');
  assert.ok(JSON.parse(who).status.userInfo.groups.includes('devs'));
  fails(await runKubectl(base, ['get', 'pods']), /User "alice" cannot list resource "pods"/);
});

test('kubectl certificate deny: Denied, no certificate, and approval after that is refused', async () => {
  const { csr } = opensslCsr('bob', '/CN=bob');
  ok(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('bob', csr, 'kubernetes.io/kube-apiserver-client', ['client auth', 'digital signature']) }));
  assert.match(ok(await server.kubectl(['certificate', 'deny', 'bob'])), /bob denied/);
  const row = tableRows(ok(await server.kubectl(['get', 'csr', 'bob'])))[1];
  assert.equal(row[5], 'Denied');
  await new Promise((r) => setTimeout(r, 1000));
  const obj = JSON.parse(ok(await server.kubectl(['get', 'csr', 'bob', '-o', 'json'])));
  assert.equal(obj.status.certificate, undefined);
  assert.equal(obj.status.conditions[0].reason, 'KubectlDeny');
  // kubectl itself refuses ("already Denied"); the server refuses the same write from any client.
  fails(await server.kubectl(['certificate', 'approve', 'bob', '--force']), /certificate signing request "bob" is already Denied/);
  obj.status.conditions.push({ type: 'Approved', status: 'True', reason: 'Sneaky' });
  const r = await server.request('PUT', '/apis/certificates.k8s.io/v1/certificatesigningrequests/bob/approval', { body: obj });
  assert.equal(r.status, 422, r.body);
  assert.match(r.json().message, /status\.conditions\[1\]\.type: Invalid value: "Approved": Approved and Denied conditions are mutually exclusive/);
  // Nor can /approval drop the Denied condition.
  const dropped = { ...obj, status: { conditions: [] } };
  const r2 = await server.request('PUT', '/apis/certificates.k8s.io/v1/certificatesigningrequests/bob/approval', { body: dropped });
  assert.equal(r2.status, 422, r2.body);
  assert.match(r2.json().message, /status\.conditions: Forbidden: updates may not remove a condition of type "Denied"/);
});

test('malformed requests are 422s in Kubernetes words', async () => {
  fails(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('garbage', 'not a certificate request\n', 'kubernetes.io/kube-apiserver-client', ['client auth']) }),
    /The CertificateSigningRequest "garbage" is invalid: spec\.request: Invalid value: \[\]byte\{\.\.\.\}: PEM block type must be CERTIFICATE REQUEST/);
  // A request whose signature does not match its content.
  const { csr } = opensslCsr('tampered', '/CN=mallory');
  const der = Buffer.from(csr.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[der.length - 5] ^= 0xff;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  fails(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('tampered', tampered, 'kubernetes.io/kube-apiserver-client', ['client auth']) }),
    /spec\.request: Invalid value: .*signature/);
  const good = opensslCsr('short', '/CN=short').csr;
  fails(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('short', good, 'kubernetes.io/kube-apiserver-client', ['client auth'], '  expirationSeconds: 599\n') }),
    /spec\.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds \(10 minutes\)/);
  fails(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('nousage', good, 'kubernetes.io/kube-apiserver-client', []) }),
    /spec\.usages: Required value: usages must be provided/);
  fails(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('badsigner', good, 'nodomain', ['client auth']) }),
    /spec\.signerName: Invalid value: "nodomain"/);
});

test('expirationSeconds of 600 gives a ten-minute certificate', async () => {
  const { csr } = opensslCsr('brief', '/CN=brief');
  ok(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('brief', csr, 'kubernetes.io/kube-apiserver-client', ['client auth'], '  expirationSeconds: 600\n') }));
  ok(await server.kubectl(['certificate', 'approve', 'brief']));
  const text = certText(await issuedCert('brief'));
  const notAfter = Date.parse(/notAfter=(.*)/.exec(text)![1]);
  assert.ok(notAfter > Date.now() + 8 * 60_000 && notAfter < Date.now() + 11 * 60_000, `notAfter ${new Date(notAfter).toISOString()}`);
});

test('signer rules: a kubelet-serving request without the node identity fails SignerValidationFailure', async () => {
  const { csr } = opensslCsr('serving-bad', '/CN=web/O=devs', 'subjectAltName=DNS:web.local');
  ok(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('serving-bad', csr, 'kubernetes.io/kubelet-serving', ['server auth', 'digital signature']) }));
  ok(await server.kubectl(['certificate', 'approve', 'serving-bad']));
  const failed = await eventually(async () => {
    const o = JSON.parse(ok(await server.kubectl(['get', 'csr', 'serving-bad', '-o', 'json'])));
    return (o.status?.conditions ?? []).find((c: any) => c.type === 'Failed');
  }, 'Failed condition', 30_000, () => server.logTail());
  assert.deepEqual([failed.reason, failed.message], ['SignerValidationFailure', 'subject organization is not system:nodes']);
  assert.equal(tableRows(ok(await server.kubectl(['get', 'csr', 'serving-bad'])))[1][5], 'Approved,Failed');

  // A proper kubelet serving request is signed by the server CA with server auth.
  const good = opensslCsr('serving-ok', '/CN=system:node:edge-1/O=system:nodes', 'subjectAltName=DNS:edge-1,IP:10.0.0.7');
  ok(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('serving-ok', good.csr, 'kubernetes.io/kubelet-serving', ['server auth', 'digital signature', 'key encipherment']) }));
  ok(await server.kubectl(['certificate', 'approve', 'serving-ok']));
  const text = certText(await issuedCert('serving-ok'));
  assert.match(text, /issuer=CN ?= ?skiff-server-ca/);
  assert.match(text, /TLS Web Server Authentication/);
});

test('a node asking for its own client certificate is approved and issued without an admin', async () => {
  const { csr } = opensslCsr('node-client', '/CN=system:node:edge-7/O=system:nodes');
  const asNode = ['--as=system:node:edge-7', '--as-group=system:nodes', '--as-group=system:authenticated'];
  ok(await server.kubectl([...asNode, 'apply', '-f', '-'], { input: csrManifest('node-client', csr, 'kubernetes.io/kube-apiserver-client-kubelet', ['client auth', 'digital signature']) }));
  const pem = await issuedCert('node-client');
  assert.match(certText(pem), /subject=CN ?= ?system:node:edge-7, O ?= ?system:nodes/);
  const o = JSON.parse(ok(await server.kubectl(['get', 'csr', 'node-client', '-o', 'json'])));
  assert.equal(o.spec.username, 'system:node:edge-7');
  assert.deepEqual(o.status.conditions.map((c: any) => [c.type, c.reason]), [['Approved', 'AutoApproved']]);

  // Someone else's name in the request: left for an admin.
  const other = opensslCsr('node-other', '/CN=system:node:edge-8/O=system:nodes');
  ok(await server.kubectl([...asNode, 'apply', '-f', '-'], { input: csrManifest('node-other', other.csr, 'kubernetes.io/kube-apiserver-client-kubelet', ['client auth']) }));
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(tableRows(ok(await server.kubectl(['get', 'csr', 'node-other'])))[1][5], 'Pending');
});

test('admission: no system:masters certificates; approving needs `approve` on the signer', async () => {
  const masters = opensslCsr('masters', '/CN=eve/O=system:masters');
  fails(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('masters', masters.csr, 'kubernetes.io/kube-apiserver-client', ['client auth']) }),
    /certificatesigningrequests\.certificates\.k8s\.io "masters" is forbidden: use of kubernetes.io\/kube-apiserver-client signer with system:masters group is not allowed/);

  // carol may update the approval subresource, but is not an approver for the signer yet.
  ok(await server.kubectl(['apply', '-f', '-'], { input: `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: csr-updater}
rules:
- {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests], verbs: [get, list]}
- {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests/approval], verbs: [update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: carol-csr-updater}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: csr-updater}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}]
` }));
  const { csr } = opensslCsr('dave', '/CN=dave');
  ok(await server.kubectl(['apply', '-f', '-'], { input: csrManifest('dave', csr, 'kubernetes.io/kube-apiserver-client', ['client auth']) }));
  fails(await server.kubectl(['--as=carol', 'certificate', 'approve', 'dave']),
    /certificatesigningrequests\.certificates\.k8s\.io "dave" is forbidden: user not permitted to approve requests with signerName "kubernetes.io\/kube-apiserver-client"/);
  // Kubernetes' default approver role for the signer.
  ok(await server.kubectl(['create', 'clusterrolebinding', 'carol-approver', '--clusterrole=system:certificates.k8s.io:kube-apiserver-client-approver', '--user=carol']));
  await eventually(async () => (await server.kubectl(['--as=carol', 'certificate', 'approve', 'dave'])).code === 0, 'carol approves dave');
  await issuedCert('dave');
});

for (const version of ['1.27', '1.33'] as const) {
  test(`kubectl ${version} certificate approve (protobuf body of its own version)`, async () => {
    const name = `skew-${version.replace('.', '')}`;
    const { csr } = opensslCsr(name, `/CN=${name}`);
    ok(await server.kubectl(['apply', '-f', '-'], { input: csrManifest(name, csr, 'kubernetes.io/kube-apiserver-client', ['client auth']), version }));
    assert.match(ok(await server.kubectl(['certificate', 'approve', name], { version })), new RegExp(`${name} approved`));
    assert.match(certText(await issuedCert(name)), new RegExp(`subject=CN ?= ?${name}`));
  });
}
