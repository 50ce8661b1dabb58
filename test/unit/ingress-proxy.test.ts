// The ingress proxy's listeners on loopback with real sockets: host routing to two backends,
// X-Forwarded-* headers, Traefik's 404/503 bodies, certificates by SNI (default one for unknown
// names), a WebSocket that keeps echoing across a table swap, and a keep-alive connection reused
// across a table swap.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import net from 'node:net';
import { X509Certificate } from 'node:crypto';
import { IngressProxy } from '../../src/agent/network/ingress/proxy.js';
import { buildTable } from '../../src/agent/network/ingress/routes.js';
import { selfSignedServingCert } from '../../src/pki/certs.js';

const freePort = () => new Promise<number>((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
});

/** A backend answering its name and the headers it got; WebSocket-style upgrades become a raw echo. */
async function backend(name: string): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((req, res) => res.end(JSON.stringify({ name, url: req.url, headers: req.headers })));
  server.on('upgrade', (req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d) => socket.write(`${name}:${d}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, server };
}

const svc = (name: string) => ({ metadata: { name, namespace: 'default' }, spec: { ports: [{ port: 80 }] } });
const slice = (name: string, port: number) => ({ metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ port }], endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }] });
const rule = (host: string, service: string) => ({ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: service, port: { number: 80 } } } }] } });

function get(port: number, host: string, path = '/', agent?: http.Agent): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host, 'x-forwarded-for': '6.6.6.6' }, agent }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body, reused: req.reusedSocket }));
    });
    req.on('error', reject);
  });
}

test('ingress proxy: routes, headers, 404/503, SNI, WebSocket and keep-alive across a table swap', { timeout: 60_000 }, async () => {
  const a = await backend('a');
  const b = await backend('b');
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  let listening = 0;
  const proxy = new IngressProxy({
    http: { port: httpPort, address: '127.0.0.1' }, https: { port: httpsPort, address: '127.0.0.1' },
    defaultCert: await selfSignedServingCert('skiff-ingress-default', { rsa: true }), onListening: () => { listening++; },
  });
  after(async () => { await proxy.close(); for (const x of [a, b]) { x.server.close(); x.server.closeAllConnections(); } });
  const services = [svc('a'), svc('b'), svc('down')];
  const slices = [slice('a', a.port), slice('b', b.port)];
  const table = (ingresses: any[]) => buildTable({
    ingresses, service: (_ns, n) => services.find((s) => s.metadata.name === n) as any,
    slices: (_ns, n) => slices.filter((s) => s.metadata.labels['kubernetes.io/service-name'] === n) as any,
  });
  const two = { metadata: { name: 'two', namespace: 'default' }, spec: {
    rules: [rule('a.test', 'a'), rule('b.test', 'b'), rule('down.test', 'down')], tls: [{ hosts: ['a.test'], secretName: 'a-tls' }, { hosts: ['b.test'], secretName: 'b-tls' }],
  } };
  proxy.setTable(table([two]));
  for (let i = 0; i < 100 && listening < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(proxy.listening(), `http=${httpPort},https=${httpsPort}`);

  const ra = await get(httpPort, 'a.test', '/x?y=1');
  assert.equal(ra.status, 200);
  const ja = JSON.parse(ra.body);
  assert.equal(ja.name, 'a');
  assert.equal(ja.url, '/x?y=1');
  assert.equal(ja.headers.host, 'a.test', 'the Host header goes through unchanged');
  assert.equal(ja.headers['x-forwarded-for'], '127.0.0.1', 'a client-sent X-Forwarded-For is replaced');
  assert.equal(ja.headers['x-forwarded-proto'], 'http');
  assert.equal(ja.headers['x-forwarded-host'], 'a.test');
  assert.equal(JSON.parse((await get(httpPort, 'b.test')).body).name, 'b');
  const none = await get(httpPort, 'nothing.test');
  assert.deepEqual([none.status, none.body], [404, '404 page not found\n']);
  assert.equal((await get(httpPort, 'down.test')).status, 503);

  // SNI: the Secret's certificate for a.test once loaded, the default one for everything else.
  const aCert = await selfSignedServingCert('a.test');
  proxy.setCertificate('default/a-tls', tls.createSecureContext({ cert: aCert.certPem, key: aCert.keyPem }));
  // Secrets of both key types win over the (RSA) default certificate.
  const bCert = await selfSignedServingCert('b.test', { rsa: true });
  proxy.setCertificate('default/b-tls', tls.createSecureContext({ cert: bCert.certPem, key: bCert.keyPem }));
  const peerCn = (servername: string) => new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: httpsPort, servername, rejectUnauthorized: false }, () => {
      resolve(new X509Certificate(s.getPeerCertificate(true).raw).subject);
      s.end();
    });
    s.on('error', reject);
  });
  assert.match(await peerCn('a.test'), /CN=a\.test/);
  assert.match(await peerCn('b.test'), /CN=b\.test/);
  assert.match(await peerCn('nothing.test'), /CN=skiff-ingress-default/);
  const overTls = await new Promise<any>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: httpsPort, servername: 'a.test', headers: { host: 'a.test' }, ca: aCert.certPem, checkServerIdentity: () => undefined }, (res) => {
      let body = ''; res.on('data', (d) => { body += d; }); res.on('end', () => resolve(JSON.parse(body)));
    }).on('error', reject);
  });
  assert.equal(overTls.name, 'a');
  assert.equal(overTls.headers['x-forwarded-proto'], 'https');

  // A WebSocket-style upgrade through the proxy, then the routes change: it keeps echoing.
  const ws = await new Promise<net.Socket>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: httpPort, headers: { host: 'a.test', connection: 'Upgrade', upgrade: 'websocket' } });
    req.on('upgrade', (_res, socket) => resolve(socket));
    req.on('error', reject);
    req.end();
  });
  const echo = (msg: string) => new Promise<string>((resolve) => { ws.once('data', (d) => resolve(String(d))); ws.write(msg); });
  assert.equal(await echo('hello'), 'a:hello');
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  assert.equal(JSON.parse((await get(httpPort, 'b.test', '/', keepAlive)).body).name, 'b');
  // a.test now goes to b: the next request on the kept-alive connection already sees it.
  proxy.setTable(table([{ ...two, spec: { rules: [rule('a.test', 'b'), rule('b.test', 'b')] } }]));
  assert.equal(await echo('still'), 'a:still', 'the open WebSocket is untouched by the swap');
  const after1 = await get(httpPort, 'a.test', '/', keepAlive);
  assert.equal(JSON.parse(after1.body).name, 'b');
  assert.equal(after1.reused, true, 'the same client connection carried on');
  ws.destroy();
  keepAlive.destroy();
});
