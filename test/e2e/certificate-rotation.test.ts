// Certificate and token rotation with the real binary, hollow nodes and kubectl (issue 11, item 3):
// leaves that expire in 30 days are renewed at start; `skiff token rotate` refuses the old token for
// new joins while joined nodes stay Ready; across `skiff certificate rotate-ca` the joined nodes keep
// working (old client certificates and old CA trust, through the cross-signed overlap) and a node
// picks up the new CA bundle and renews its client certificate through the CSR API.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { REPO_ROOT, startServer, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';
import { ensureServerPki } from '../../src/pki/certs.js';
import { DAY_MS } from '../../src/pki/renewal.js';
import { HttpClient } from '../../src/client/http.js';
import { fetchTrustedCaBundle, type NodeCredentials } from '../../src/agent/join.js';
import { startClientCertRotation } from '../../src/agent/client-cert-rotation.js';
import { parseToken, pemBlocks } from '../../src/pki/token.js';

const SKIFF = join(REPO_ROOT, 'bin', 'skiff');
const root = mkdtempSync(join(tmpdir(), `skiff-sec-rotate-${process.pid}-`));
const dataDir = join(root, 'data');
const hollowDir = join(root, 'hollow');
const procs = new Set<ChildProcess>();
let server: TestServer | undefined;

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await server?.dispose();
  rmSync(root, { recursive: true, force: true });
});

function skiff(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKIFF_')));
  return spawnSync(SKIFF, args, { encoding: 'utf8', env });
}

function skiffOk(args: string[]): string {
  const r = skiff(args);
  assert.equal(r.status, 0, `skiff ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** `skiff hollow` (built binary) with its stdout collected; resolves once `text` is printed. */
function hollow(token: string, args: string[]): { proc: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const logFd = openSync(join(root, `hollow-${procs.size}.log`), 'a');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKIFF_')));
  const proc = spawn(SKIFF, ['hollow', '--server', server!.url, '--token', token, '--data-dir', hollowDir, '--heartbeat-interval', '1', ...args],
    { env, stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  procs.add(proc);
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => { procs.delete(proc); resolve(code); }));
  return { proc, out: () => out, exited };
}

const nodeToken = () => readFileSync(join(dataDir, 'server', 'node-token'), 'utf8').trim();
const creds = (node: string): NodeCredentials => JSON.parse(readFileSync(join(hollowDir, 'hollow', 'nodes', `${node}.json`), 'utf8'));

/** The node's Ready condition and its Lease's renewTime, through kubectl. */
async function nodeState(node: string): Promise<{ ready: string; renew: string }> {
  const n = JSON.parse(ok(await server!.kubectl(['get', 'node', node, '-o', 'json'])));
  const l = JSON.parse(ok(await server!.kubectl(['get', 'lease', '-n', 'kube-node-lease', node, '-o', 'json'])));
  return { ready: n.status.conditions.find((c: any) => c.type === 'Ready')?.status, renew: l.spec.renewTime };
}

/** Ready, and its Lease renewed after `since` (the node keeps talking to the server). */
async function staysReady(node: string): Promise<void> {
  const since = (await nodeState(node)).renew;
  await eventually(async () => {
    const s = await nodeState(node);
    return s.ready === 'True' && s.renew > since;
  }, `${node} Ready with a renewed Lease`, 60_000);
}

/** A request with a node's own credentials, as a node would make it. */
function asNode(c: Pick<NodeCredentials, 'caPem' | 'certPem' | 'keyPem'>, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    https.get(`${server!.url}${path}`, { ca: c.caPem, cert: c.certPem, key: c.keyPem, agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0); })
      .on('error', reject);
  });
}

/** The join endpoint, as a joining node calls it. */
function joinWith(token: string, nodeName: string) {
  return server!.request('POST', '/v1-skiff/node-credentials', { noAuth: true,
    headers: { authorization: `Bearer ${parseToken(token).password}` }, body: { nodeName, nodePassword: `${nodeName}-password-0123456789` } });
}
let oldJoinToken = '';

test('leaf certificates that expire in 30 days are renewed at start, with the same CA', async () => {
  // The PKI is made with a clock 335 days back, so every leaf has 30 days left when the server starts.
  await ensureServerPki({ dataDir, sans: { dns: [], ips: ['127.0.0.1'] }, now: () => new Date(Date.now() - 335 * DAY_MS) });
  const caBefore = readFileSync(join(dataDir, 'server', 'tls', 'server-ca.crt'), 'utf8');
  const before = skiffOk(['certificate', 'check', '--output', 'table', '--data-dir', dataDir]);
  assert.match(before, /server\/tls\/client-admin\.crt\s+CN=system:admin,O=system:masters\s+ClientAuth\s+\S+\s+(29|30)d\s+WARNING/);

  server = await startServer({ dataDir });
  const after = skiffOk(['certificate', 'check', '--data-dir', dataDir]);
  for (const f of ['client-admin', 'serving-kube-apiserver', 'client-auth-proxy']) {
    assert.match(after, new RegExp(`server/tls/${f}\\.crt: .* \\(36\\dd\\), OK`), `${f} renewed:\n${after}`);
  }
  assert.match(after, /server\/tls\/serving-kube-apiserver\.crt: CN=kube-apiserver expires \S+ \(36\dd\), OK/);
  assert.doesNotMatch(after, /WARNING|EXPIRED/);
  assert.equal(readFileSync(join(dataDir, 'server', 'tls', 'server-ca.crt'), 'utf8'), caBefore, 'same CA');
  // kubectl with the rewritten kubeconfig uses the renewed admin certificate.
  const left = (Date.parse(new X509Certificate(server.adminCert).validTo) - Date.now()) / DAY_MS;
  assert.ok(left > 364, `admin certificate has ${left} days left`);
  ok(await server.kubectl(['get', 'namespaces']));
  const rotate = skiff(['certificate', 'rotate', '--data-dir', dataDir]);
  assert.notEqual(rotate.status, 0, 'certificate rotate refuses a running server');
  assert.match(rotate.stderr, /is running on .*: stop it before rotating certificates/);
});

test('token rotate: the old token is refused for new joins (also after a restart, below); joined nodes stay Ready', async () => {
  const oldToken = nodeToken();
  const first = hollow(oldToken, ['--count', '2']);
  await eventually(async () => first.out().includes('hollow: 2 nodes ready'), 'two hollow nodes', 120_000);

  const wrong = await server!.request('POST', '/v1-skiff/token', { noAuth: true, token: 'not-the-token', body: { newToken: 'whatever-secret' } });
  assert.equal(wrong.status, 401, 'token rotate needs the current token or an admin');
  // As k3s: authenticated by the current token.
  const printed = skiffOk(['token', 'rotate', '--token', oldToken, '--new-token', `rotated-${process.pid}-secret`, '--data-dir', dataDir, '--server', server!.url]);
  const newToken = nodeToken();
  assert.ok(printed.includes(newToken), printed);
  assert.equal(parseToken(newToken).password, `rotated-${process.pid}-secret`);
  assert.equal(parseToken(newToken).caHash, parseToken(oldToken).caHash, 'same CA pin');

  const refused = hollow(oldToken, ['--count', '1', '--first-index', '5']);
  assert.notEqual(await refused.exited, 0, 'a join with the old token fails');
  assert.equal((await joinWith(newToken, 'new-node')).status, 200, 'a join with the new token succeeds');
  for (const n of ['hollow-0', 'hollow-1']) await staysReady(n);
  oldJoinToken = oldToken;
});

test('rotate-ca: joined nodes keep working through the overlap and pick up the new CA and a renewed certificate', async () => {
  const oldCa = readFileSync(join(dataDir, 'server', 'tls', 'server-ca.crt'), 'utf8');
  const tokenBefore = nodeToken();
  await server!.stop();
  const out = skiffOk(['certificate', 'rotate-ca', '--path', join(root, 'new-ca'), '--data-dir', dataDir]);
  assert.match(out, /generated new CA certificates and keys/);
  await server!.launch();
  assert.equal((await joinWith(oldJoinToken, 'late-node')).status, 401, 'the rotated-away token is refused after a restart');
  const newCa = readFileSync(join(dataDir, 'server', 'tls', 'server-ca.crt'), 'utf8');
  assert.notEqual(newCa, oldCa);
  assert.equal(server!.caPem, newCa, 'the kubeconfig carries the new CA');
  ok(await server!.kubectl(['get', 'nodes']));

  // The running hollow nodes trust only the old CA and hold certificates from the old client CA.
  for (const n of ['hollow-0', 'hollow-1']) await staysReady(n);
  const oldCreds = creds('hollow-0');
  assert.equal(oldCreds.caPem, oldCa);
  assert.equal(await asNode(oldCreds, '/api/v1/nodes/hollow-0'), 200);

  // A node restarting with the token it was given before the rotation still gets the bundle.
  const bundle = await fetchTrustedCaBundle(server!.url, parseToken(tokenBefore));
  assert.deepEqual(pemBlocks(bundle), [newCa, oldCa]);
  assert.notEqual(parseToken(nodeToken()).caHash, parseToken(tokenBefore).caHash, 'skiff token show gives the new pin');

  // The agent's renewal: the new bundle is adopted and a certificate issued through the CSR API.
  const path = join(root, 'hollow-0-renewed.json');
  const client = new HttpClient({ server: server!.url, caPem: oldCreds.caPem, certPem: oldCreds.certPem, keyPem: oldCreds.keyPem });
  const rotation = startClientCertRotation({ client, server: server!.url, nodeName: 'hollow-0', credentialsPath: path, creds: oldCreds, checkEveryMs: 3_600_000 });
  try {
    assert.equal(await rotation.check(), 'renewed');
    assert.equal((await client.get({ group: '', version: 'v1', resource: 'nodes' }, undefined, 'hollow-0'))?.metadata.name, 'hollow-0',
      'the client carries on with the renewed certificate');
    assert.equal(await rotation.check(), 'unchanged');
  } finally {
    rotation.stop();
  }
  const renewed: NodeCredentials = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(renewed.caPem, bundle);
  assert.equal(renewed.nodePassword, oldCreds.nodePassword);
  const cert = new X509Certificate(renewed.certPem);
  const clientCa = readFileSync(join(dataDir, 'server', 'tls', 'client-ca.crt'), 'utf8');
  assert.ok(cert.verify(new X509Certificate(clientCa).publicKey), 'issued by the new client CA');
  assert.equal(cert.subject, 'CN=system:node:hollow-0\nO=system:nodes');
  assert.equal(await asNode(renewed, '/api/v1/nodes/hollow-0'), 200);
  const csrs = JSON.parse(ok(await server!.kubectl(['get', 'csr', '-o', 'json']))).items;
  const csr = csrs.find((c: any) => c.spec.username === 'system:node:hollow-0');
  assert.equal(csr?.spec.signerName, 'kubernetes.io/kube-apiserver-client-kubelet');
  assert.equal(csr?.status.conditions?.[0]?.reason, 'AutoApproved');

  // --finish: the old CAs are no longer trusted; the renewed node keeps working, an old certificate does not.
  for (const p of procs) p.kill('SIGTERM');
  await server!.stop();
  assert.match(skiffOk(['certificate', 'rotate-ca', '--finish', '--data-dir', dataDir]), /no longer trusted: .*server-ca\.previous\.crt/);
  await server!.launch();
  assert.equal(await asNode(renewed, '/api/v1/nodes/hollow-0'), 200, 'the renewed certificate works after --finish');
  assert.equal(await asNode({ ...oldCreds, caPem: renewed.caPem }, '/api/v1/nodes/hollow-0'), 401, 'an old-CA client certificate is refused');
  try {
    assert.equal((await client.get({ group: '', version: 'v1', resource: 'nodes' }, undefined, 'hollow-0'))?.metadata.name, 'hollow-0',
      'the agent\'s client switched to the renewed certificate');
  } finally {
    client.close();
  }
  await assert.rejects(fetchTrustedCaBundle(server!.url, parseToken(tokenBefore)), /does not match the hash in the token/);
  assert.equal(await fetchTrustedCaBundle(server!.url, parseToken(tokenBefore), renewed.caPem), newCa,
    'a node that adopted the new bundle restarts with its old token');
});
