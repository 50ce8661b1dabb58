// The certificates API's rules without a server: PKCS#10 decoding and signature check (api/csr.ts),
// the built-in signers' rules, CSR validation messages, the /approval and /status strategies, and
// the node-client auto-approval decision. Requests are made with openssl, as users make them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateDurationSeconds, parseCsr, signerRefusal, kubeletClientRefusal, SIGNER_KUBE_APISERVER_CLIENT,
  SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING } from '../../src/api/csr.js';
import { validateCertificateSigningRequest } from '../../src/api/validation/cluster-kinds.js';
import { prepareCsrUpdate } from '../../src/apiserver/csr-strategy.js';
import { isSelfNodeClientRequest } from '../../src/controllers/csr-approving.js';
import { csrCondition } from '../../src/apiserver/tables/extensions.js';
import { admitCsrUpdate } from '../../src/apiserver/admission-certificates.js';
import type { KObject } from '../../src/api/object.js';

let dir = '';
before(() => { dir = mkdtempSync(join(tmpdir(), `skiff-csr-unit-${process.pid}-`)); });
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function req(subject: string, opts: { ext?: string; rsa?: boolean } = {}): string {
  const out = join(dir, `${n++}.csr`);
  const key = opts.rsa ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  execFileSync('openssl', ['req', '-new', ...key, '-nodes', '-keyout', join(dir, `${n}.key`), '-subj', subject,
    ...(opts.ext ? ['-addext', opts.ext] : []), '-out', out], { stdio: 'pipe' });
  return readFileSync(out, 'utf8');
}

const csrObj = (pem: string, signerName: string, usages: string[], extra: Record<string, unknown> = {}): KObject => ({
  apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name: 'x' },
  spec: { request: Buffer.from(pem).toString('base64'), signerName, usages, ...extra },
} as KObject);

test('parseCsr reads subject and SANs of RSA and ECDSA requests and checks their signature', () => {
  const a = parseCsr(req('/CN=alice/O=devs/O=ops', { rsa: true }));
  assert.deepEqual([a.commonName, a.organizations], ['alice', ['devs', 'ops']]);
  const b = parseCsr(req('/CN=system:node:n1/O=system:nodes', { ext: 'subjectAltName=DNS:n1,IP:10.0.0.1,IP:fd00::1,email:a@b.c,URI:spiffe://x/y' }));
  assert.deepEqual(b, {
    commonName: 'system:node:n1', organizations: ['system:nodes'], dnsNames: ['n1'], ipAddresses: ['10.0.0.1', 'fd00:0:0:0:0:0:0:1'],
    emailAddresses: ['a@b.c'], uris: ['spiffe://x/y'],
  });
  assert.throws(() => parseCsr('hello'), /PEM block type must be CERTIFICATE REQUEST/);
  assert.throws(() => parseCsr(readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8')), /PEM block type must be CERTIFICATE REQUEST/);
  const pem = req('/CN=mallory');
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[40] ^= 0x01;    // inside the subject: the signature no longer matches
  assert.throws(() => parseCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`), /signature|malformed/);
  assert.throws(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'), /malformed/);
});

test('built-in signer rules', () => {
  const user = parseCsr(req('/CN=alice'));
  assert.equal(signerRefusal(SIGNER_KUBE_APISERVER_CLIENT, user, ['client auth', 'digital signature']), undefined);
  assert.equal(signerRefusal(SIGNER_KUBE_APISERVER_CLIENT, user, ['digital signature']), 'invalid usage for client certificate: missing usage client auth');
  assert.equal(signerRefusal(SIGNER_KUBE_APISERVER_CLIENT, user, ['client auth', 'server auth']), 'invalid usage for client certificate: server auth');

  const node = parseCsr(req('/CN=system:node:n1/O=system:nodes'));
  assert.equal(signerRefusal(SIGNER_KUBELET_CLIENT, node, ['client auth']), undefined);
  assert.equal(kubeletClientRefusal(user, ['client auth']), 'subject organization is not system:nodes');
  assert.equal(kubeletClientRefusal(parseCsr(req('/CN=alice/O=system:nodes')), ['client auth']), 'subject common name does not begin with system:node:');
  assert.equal(kubeletClientRefusal(parseCsr(req('/CN=system:node:n1/O=system:nodes', { ext: 'subjectAltName=DNS:n1' })), ['client auth']), 'DNS subjectAltNames are not allowed');

  assert.equal(signerRefusal(SIGNER_KUBELET_SERVING, node, ['server auth']), 'DNS or IP subjectAltName is required');
  const serving = parseCsr(req('/CN=system:node:n1/O=system:nodes', { ext: 'subjectAltName=IP:10.0.0.1' }));
  assert.equal(signerRefusal(SIGNER_KUBELET_SERVING, serving, ['server auth', 'digital signature', 'key encipherment']), undefined);
  assert.equal(signerRefusal(SIGNER_KUBELET_SERVING, serving, ['client auth']), 'usages did not match [digital signature key encipherment server auth]');
  assert.match(signerRefusal('example.com/other', user, ['client auth'])!, /unsupported signer/);

  assert.equal(certificateDurationSeconds(undefined, 31_536_000), 31_536_000);
  assert.equal(certificateDurationSeconds(600, 31_536_000), 600);
  assert.equal(certificateDurationSeconds(10 * 31_536_000, 31_536_000), 31_536_000);
});

test('CSR validation: Kubernetes field paths and messages', () => {
  const pem = req('/CN=alice');
  assert.deepEqual(validateCertificateSigningRequest(csrObj(pem, SIGNER_KUBE_APISERVER_CLIENT, ['client auth'])), []);
  const msgs = (o: KObject, old?: KObject) => validateCertificateSigningRequest(o, old).map((c) => `${c.field}: ${c.message}`);
  assert.deepEqual(msgs(csrObj('junk', SIGNER_KUBE_APISERVER_CLIENT, ['client auth'])), ['spec.request: Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST']);
  assert.deepEqual(msgs(csrObj(pem, SIGNER_KUBE_APISERVER_CLIENT, ['client auth'], { expirationSeconds: 599 })),
    ['spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)']);
  const usages = msgs(csrObj(pem, SIGNER_KUBE_APISERVER_CLIENT, ['client auth', 'client auth', 'flying']));
  assert.equal(usages.length, 2);
  assert.equal(usages[0], 'spec.usages[1]: Duplicate value: "client auth"');
  assert.match(usages[1], /^spec\.usages\[2\]: Unsupported value: "flying": supported values: "signing", "digital signature", /);
  assert.deepEqual(msgs(csrObj(pem, '', ['client auth'])), ['spec.signerName: Required value']);
  const both = csrObj(pem, SIGNER_KUBE_APISERVER_CLIENT, ['client auth']);
  (both as any).status = { conditions: [{ type: 'Approved', status: 'True' }, { type: 'Denied', status: 'True' }] };
  assert.deepEqual(msgs(both), ['status.conditions[1].type: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive']);
  const issued = csrObj(pem, SIGNER_KUBE_APISERVER_CLIENT, ['client auth']);
  (issued as any).status = { certificate: Buffer.from('-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n').toString('base64') };
  const changed = structuredClone(issued) as any;
  changed.status.certificate = Buffer.from('-----BEGIN CERTIFICATE-----\nAB==\n-----END CERTIFICATE-----\n').toString('base64');
  assert.deepEqual(msgs(changed, issued), ['status.certificate: Forbidden: updates may not modify existing certificate content']);
});

test('CSR strategies: /approval changes conditions only, /status cannot touch Approved/Denied, the main resource neither', () => {
  const old = { ...csrObj(req('/CN=a'), SIGNER_KUBE_APISERVER_CLIENT, ['client auth']), status: {} } as any;
  const sent = structuredClone(old);
  sent.spec.usages = ['server auth'];
  sent.status = { conditions: [{ type: 'Approved', status: 'True', reason: 'R' }], certificate: 'Zm9v' };
  const approval = structuredClone(sent);
  prepareCsrUpdate('approval', approval, sent, old);
  assert.deepEqual(approval.spec.usages, ['client auth']);
  assert.equal(approval.status.certificate, undefined);
  assert.equal(approval.status.conditions[0].type, 'Approved');
  assert.ok(approval.status.conditions[0].lastTransitionTime && approval.status.conditions[0].lastUpdateTime);

  const status = structuredClone(sent);
  prepareCsrUpdate('status', status, sent, old);
  assert.equal(status.status.certificate, 'Zm9v');
  assert.equal(status.status.conditions, undefined, 'Approved is not added through /status');

  const main = structuredClone(sent);
  prepareCsrUpdate(undefined, main, sent, old);
  assert.deepEqual([main.spec.usages, main.status], [['client auth'], {}]);
  assert.equal(csrCondition({ status: { conditions: [{ type: 'Approved', status: 'True' }], certificate: 'x' } }), 'Approved,Issued');
  assert.equal(csrCondition({}), 'Pending');
});

test('node client auto-approval: only a node asking for its own identity', () => {
  const own = csrObj(req('/CN=system:node:n1/O=system:nodes'), SIGNER_KUBELET_CLIENT, ['client auth', 'digital signature']) as any;
  own.spec.username = 'system:node:n1';
  own.spec.groups = ['system:nodes', 'system:authenticated'];
  assert.equal(isSelfNodeClientRequest(own), true);
  assert.equal(isSelfNodeClientRequest({ ...own, spec: { ...own.spec, username: 'system:node:n2' } }), false, 'another node\'s name');
  assert.equal(isSelfNodeClientRequest({ ...own, spec: { ...own.spec, groups: ['system:authenticated'] } }), false, 'not in system:nodes');
  assert.equal(isSelfNodeClientRequest({ ...own, spec: { ...own.spec, signerName: SIGNER_KUBE_APISERVER_CLIENT } }), false, 'other signer');
  assert.equal(isSelfNodeClientRequest({ ...own, spec: { ...own.spec, usages: ['client auth', 'server auth'] } }), false, 'extra usage');
});

test('approval and signing admission ask the authorizer about the signer, by name or <domain>/*', () => {
  const asked: string[] = [];
  const authz = (allowed: string[]) => ({
    authorize: (a: any) => { asked.push(`${a.verb} ${a.resource} ${a.name}`); return { allowed: allowed.includes(`${a.verb} ${a.name}`), reason: '' }; },
    rulesFor: () => ({ resourceRules: [], nonResourceRules: [], incomplete: false }),
  }) as any;
  const actor = { user: 'carol', groups: ['system:authenticated'], manager: 'kubectl' };
  const csr = { metadata: { name: 'c' }, spec: { signerName: 'kubernetes.io/kube-apiserver-client' }, status: {} };
  assert.throws(() => admitCsrUpdate(authz([]), csr, csr, 'approval', actor),
    /certificatesigningrequests\.certificates\.k8s\.io "c" is forbidden: user not permitted to approve requests with signerName "kubernetes\.io\/kube-apiserver-client"/);
  assert.deepEqual(asked, ['approve signers kubernetes.io/kube-apiserver-client', 'approve signers kubernetes.io/*']);
  admitCsrUpdate(authz(['approve kubernetes.io/*']), csr, csr, 'approval', actor);
  const issued = { ...csr, status: { certificate: 'Y2VydA==' } };
  assert.throws(() => admitCsrUpdate(authz(['approve kubernetes.io/*']), issued, csr, 'status', actor), /user not permitted to sign requests/);
  admitCsrUpdate(authz(['sign kubernetes.io/kube-apiserver-client']), issued, csr, 'status', actor);
  admitCsrUpdate(authz([]), issued, issued, 'status', actor);   // the certificate is not being set: nothing to check
});
