// Authentication over real TLS: a Node HTTPS server configured as the API server is (client CA,
// requestCert, no rejection at the TLS layer) and real clients: Node's https and kubectl 1.32.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, createServer, request, type Server } from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ensureServerPki, type ServerPki } from '../../src/pki/certs.js';
import { writeKubeconfig } from '../../src/pki/kubeconfig.js';
import { Authenticator } from '../../src/apiserver/authn.js';
import { ServiceAccountTokens } from '../../src/apiserver/serviceaccount-tokens.js';
import { runKubectl } from '../helpers/kubectl.js';

const dirs: string[] = [];
let pki: ServerPki;
let foreign: ServerPki;
let saTokens: ServiceAccountTokens;
let authn: Authenticator;
let server: Server;
let port: number;

before(async () => {
  for (let i = 0; i < 2; i++) dirs.push(mkdtempSync(join(tmpdir(), 'skiff-authn-')));
  pki = await ensureServerPki({ dataDir: dirs[0], sans: { dns: [], ips: [] } });
  foreign = await ensureServerPki({ dataDir: dirs[1], sans: { dns: [], ips: [] } });
  saTokens = ServiceAccountTokens.open(dirs[0]);
  authn = new Authenticator({ saTokens, validateServiceAccount: (c) => c['kubernetes.io'].serviceaccount.uid !== 'deleted-uid' });
  authn.addToken('static-token', { name: 'alice', uid: 'u-alice', groups: ['devs'] });
  server = createServer({ cert: pki.servingCertPem, key: pki.servingKeyPem, ca: pki.clientCaPem, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      authn.authenticate(req).then((user) => {
        res.writeHead(user ? 200 : 401, { 'content-type': 'application/json' });
        res.end(JSON.stringify(user ?? { kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 }));
      }, (e) => { res.writeHead(500); res.end(String(e)); });
    });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server ? server.close(resolve) : resolve(undefined));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Creds { cert?: string; key?: string; token?: string }

/** GETs /whoami, verifying the server's certificate against the server CA under an in-cluster name. */
function whoami(creds: Creds): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path: '/whoami', servername: 'kubernetes.default.svc', ca: pki.serverCaPem,
      cert: creds.cert, key: creds.key, headers: creds.token ? { authorization: `Bearer ${creds.token}` } : {}, agent: false,
    }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the admin client certificate is system:admin in system:masters', async () => {
  const r = await whoami({ cert: pki.adminCertPem, key: pki.adminKeyPem });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { name: 'system:admin', groups: ['system:masters', 'system:authenticated'] });
});

test('a node certificate issued later authenticates as system:node:<name>', async () => {
  const node = await pki.issueClientCert('system:node:edge-1', ['system:nodes']);
  const r = await whoami({ cert: node.certPem, key: node.keyPem });
  assert.deepEqual(r.body, { name: 'system:node:edge-1', groups: ['system:nodes', 'system:authenticated'] });
});

test('a client certificate that expires while its keep-alive connection is open stops authenticating', async () => {
  const short = await pki.issueClientCert('short-lived', ['devs'], 3 / 86_400);   // valid for 3 s
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const get = () => new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1', port, path: '/whoami', servername: 'kubernetes.default.svc', ca: pki.serverCaPem,
        cert: short.certPem, key: short.keyPem, agent,
      }, (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket })); });
      req.on('error', reject);
      req.end();
    });
    const first = await get();
    assert.equal(first.status, 200);
    const notAfter = Date.parse(new X509Certificate(short.certPem).validTo);
    while (Date.now() <= notAfter + 1000) {
      const r = await get();   // keeps the connection from idling out meanwhile
      if (Date.now() <= notAfter) assert.equal(r.status, 200);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const late = await get();
    assert.equal(late.reused, true, 'the same connection');
    assert.equal(late.status, 401);
  } finally {
    agent.destroy();
  }
});

test('a certificate from another cluster\'s CA and no credentials at all are refused', async () => {
  assert.equal((await whoami({ cert: foreign.adminCertPem, key: foreign.adminKeyPem })).status, 401);
  assert.equal((await whoami({})).status, 401);
});

test('the server\'s own serving certificate is no client identity (server CA is not trusted for clients)', async () => {
  assert.equal((await whoami({ cert: pki.servingCertPem, key: pki.servingKeyPem })).status, 401);
});

test('bearer tokens: static table, service-account JWTs, validation hook, removal', async () => {
  assert.deepEqual((await whoami({ token: 'static-token' })).body, { name: 'alice', uid: 'u-alice', groups: ['devs', 'system:authenticated'] });
  assert.equal((await whoami({ token: 'wrong-token' })).status, 401);

  const { token } = saTokens.issue({ namespace: 'ns1', serviceAccountName: 'default', serviceAccountUid: 'sa-1', expirationSeconds: 600 });
  const r = await whoami({ token });
  assert.equal(r.body.name, 'system:serviceaccount:ns1:default');
  assert.deepEqual(r.body.groups, ['system:serviceaccounts', 'system:serviceaccounts:ns1', 'system:authenticated']);

  const gone = saTokens.issue({ namespace: 'ns1', serviceAccountName: 'old', serviceAccountUid: 'deleted-uid', expirationSeconds: 600 });
  assert.equal((await whoami({ token: gone.token })).status, 401, 'a token for a deleted service account');

  authn.addToken('temp', { name: 'bob', groups: [] });
  assert.equal((await whoami({ token: 'temp' })).status, 200);
  assert.equal(authn.removeToken('temp'), true);
  assert.equal((await whoami({ token: 'temp' })).status, 401);
});

test('Authorization header parsing and the WebSocket subprotocol token', async () => {
  const fake = (headers: Record<string, string>) => ({ headers, socket: {} }) as unknown as IncomingMessage;
  assert.equal((await authn.authenticate(fake({ authorization: 'bearer static-token' })))?.name, 'alice', 'scheme is case-insensitive');
  assert.equal((await authn.authenticate(fake({ authorization: '  Bearer static-token  ' })))?.name, 'alice');
  assert.equal(await authn.authenticate(fake({ authorization: 'Basic c3RhdGljLXRva2Vu' })), null);
  assert.equal(await authn.authenticate(fake({ authorization: 'Bearer' })), null);
  assert.equal(await authn.authenticate(fake({ authorization: 'Bearer  static-token' })), null, 'empty token before a second space');
  const ws = { upgrade: 'websocket', 'sec-websocket-protocol': `v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.${Buffer.from('static-token').toString('base64url')}` };
  assert.equal((await authn.authenticate(fake(ws)))?.name, 'alice');
  assert.equal(await authn.authenticate(fake({ 'sec-websocket-protocol': ws['sec-websocket-protocol'] })), null, 'only on upgrades');
  assert.equal((await authn.authenticateToken('static-token'))?.name, 'alice');
});

test('kubectl 1.32 authenticates with the written kubeconfig (Go TLS checks the serving cert and SANs)', async () => {
  const kubeconfig = join(dirs[0], 'kubeconfig.yaml');
  writeKubeconfig(kubeconfig, { server: `https://127.0.0.1:${port}`, caPem: pki.serverCaPem, certPem: pki.adminCertPem, keyPem: pki.adminKeyPem });
  const r = await runKubectl(['--kubeconfig', kubeconfig], ['get', '--raw', '/whoami'], { timeoutMs: 15_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).name, 'system:admin');

  writeKubeconfig(kubeconfig, { server: `https://localhost:${port}`, caPem: foreign.serverCaPem, certPem: pki.adminCertPem, keyPem: pki.adminKeyPem });
  const bad = await runKubectl(['--kubeconfig', kubeconfig], ['get', '--raw', '/whoami'], { timeoutMs: 15_000 });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /certificate signed by unknown authority/);
});
