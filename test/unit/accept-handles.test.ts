// The server's extra accept handles (src/server/accept-handles.ts): every connection reaches the one
// server whichever handle accepted it, the port is free again once the server closes, and a helper
// whose server is already gone hands nothing back and exits (its copy of the socket would keep the
// port bound for a server restarted on it: EADDRINUSE).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import { AcceptHelper, addAcceptHandles, spawnAcceptHelper } from '../../src/server/accept-handles.js';

const listen = (s: net.Server, port = 0) => new Promise<void>((r, j) => { s.once('error', j); s.listen({ port, host: '127.0.0.1' }, () => { s.off('error', j); r(); }); });

test('connections accepted on any of the handles all reach the server; closing frees the port', { timeout: 30_000 }, async () => {
  const server = net.createServer();
  let accepted = 0;
  server.on('connection', (sock) => { accepted++; sock.end('hi'); });
  await listen(server);
  const port = (server.address() as AddressInfo).port;
  const stop = await addAcceptHandles(server, 7, 511);
  const replies = await Promise.all(Array.from({ length: 60 }, () => new Promise<string>((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    c.setEncoding('utf8').on('data', (d: string) => { got += d; }).on('end', () => resolve(got)).on('error', reject);
  })));
  assert.deepEqual(new Set(replies), new Set(['hi']));
  assert.equal(accepted, 60);
  stop();
  await new Promise((r) => server.close(r));
  // Nothing else holds the socket (no helper, no extra handle): the port can be listened on again.
  const again = net.createServer();
  await listen(again, port);
  await new Promise((r) => again.close(r));
});

test('a helper started after its server died sends nothing back and exits', { timeout: 30_000 }, async () => {
  // A pid that was a process and is no more: the server killed while node was starting the helper.
  const gone = spawn('true');
  await new Promise((r) => gone.once('exit', r));
  const server = net.createServer();
  await listen(server);
  try {
    const helper = spawnAcceptHelper(4, gone.pid!);
    let handedBack = 0;
    helper.on('message', () => { handedBack++; });
    const exited = new Promise<number | null>((r) => helper.once('exit', (code) => r(code)));
    helper.send('dup', (server as unknown as { _handle: object })._handle as Parameters<typeof helper.send>[1], () => {});
    assert.equal(await exited, 0);
    assert.equal(handedBack, 0, 'a helper whose server is gone must not hand the socket around');
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('a helper started before the server listens hands the handles over once it does', { timeout: 30_000 }, async () => {
  // As the API server starts it: the helper first, the socket only after a (here short) datastore load.
  const helper = new AcceptHelper(5);
  await new Promise((r) => setTimeout(r, 300));
  const server = net.createServer();
  let accepted = 0;
  server.on('connection', (sock) => { accepted++; sock.end('hi'); });
  await listen(server);
  const port = (server.address() as AddressInfo).port;
  const stop = await helper.attach(server, 511);
  await Promise.all(Array.from({ length: 30 }, () => new Promise<void>((resolve, reject) => {
    net.connect(port, '127.0.0.1').on('data', () => {}).on('end', resolve).on('error', reject);
  })));
  assert.equal(accepted, 30);
  await assert.rejects(helper.attach(server, 511), /one socket/);
  stop();
  await new Promise((r) => server.close(r));
  const again = net.createServer();
  await listen(again, port);
  await new Promise((r) => again.close(r));
});
