// The API server issues no resumable TLS session tickets (src/apiserver/server.ts,
// SERVER_TLS_SECURE_OPTIONS): encoding a ticket was 29 % of accepting a connection, and its clients
// (client-go, kubectl, skiff's own) never resume. A client that offers the session it was given gets
// a full handshake, and is still authenticated by its certificate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { startServer, API_ONLY, type TestServer } from '../helpers/cluster.js';

let server: TestServer;

before(async () => {
  server = await startServer({ args: API_ONLY });
});

after(async () => {
  await server?.dispose();
});

/** One TLS connection with the admin certificate, optionally offering `session`: whether it was resumed, and a session to offer next. */
function connect(session?: Buffer): Promise<{ reused: boolean; session?: Buffer; status: string }> {
  return new Promise((resolve, reject) => {
    let next: Buffer | undefined;
    const s = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'localhost', ca: server.caPem, cert: server.adminCert, key: server.adminKey, session }, () => {
      s.write('GET /api/v1/namespaces/default HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    s.on('session', (b: Buffer) => { next = b; });
    let reply = '';
    s.setEncoding('utf8').on('data', (d: string) => { reply += d; });
    s.on('end', () => resolve({ reused: s.isSessionReused(), session: next, status: reply.split('\r\n')[0] ?? '' }));
    s.on('error', reject);
  });
}

test('a connection offering its last session gets a full handshake, and its certificate still counts', async () => {
  const first = await connect();
  assert.match(first.status, / 200 /);
  assert.ok(first.session, 'TLS 1.3 still hands the client a session (a bare id)');
  const second = await connect(first.session);
  assert.equal(second.reused, false, 'the server resumed a session: stateless tickets are on again');
  assert.match(second.status, / 200 /);
});
