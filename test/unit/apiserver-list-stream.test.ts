// List bodies over real HTTP: small ones whole with a Content-Length, long ones encoded as the client
// takes them (chunked), so a list costs the server one chunk of memory however long it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LIST_CHUNK_CHARS, sendListBody } from '../../src/apiserver/http.js';
import { settled } from '../helpers/wait.js';

interface Item { name: string; pad: string }

const items = (n: number, padChars = 300): Item[] => Array.from({ length: n }, (_, i) => ({ name: `item-${i}`, pad: 'x'.repeat(padChars) }));
const HEAD = '{"kind":"ThingList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[';

/** A server answering every request with `list` through sendListBody, counting the items encoded. */
async function serve(t: { after: (fn: () => void | Promise<void>) => void }, list: Item[], encode?: (it: Item) => string) {
  const state = { encoded: 0, finished: undefined as Promise<void> | undefined };
  const server: Server = createServer((_req, res) => {
    state.finished = sendListBody(res, HEAD, list, (it) => { state.encoded++; return encode ? encode(it) : JSON.stringify(it); }, ']}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { state, port: (server.address() as AddressInfo).port };
}

function request(port: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => get({ host: '127.0.0.1', port, path: '/', agent: false }, resolve).on('error', reject));
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve(body)).on('error', reject);
    res.resume();   // a paused response does not start flowing by itself when a listener is added
  });
}

test('a short list goes out whole with its length', async (t) => {
  const list = items(3);
  const { port } = await serve(t, list);
  const res = await request(port);
  const body = await readAll(res);
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(body)));
  assert.equal(res.headers['transfer-encoding'], undefined);
  assert.equal(body, HEAD + list.map((it) => JSON.stringify(it)).join(',') + ']}');
});

test('a long list is streamed: the same bytes, chunked', async (t) => {
  const list = items(4000);   // about 1.3 MB
  const { port } = await serve(t, list);
  const res = await request(port);
  const body = await readAll(res);
  assert.equal(res.headers['transfer-encoding'], 'chunked');
  assert.equal(res.headers['content-length'], undefined);
  assert.equal(body, HEAD + list.map((it) => JSON.stringify(it)).join(',') + ']}');
  assert.equal(JSON.parse(body).items.length, 4000);
});

test('a client that does not read holds the encoding back, and gets everything once it reads', async (t) => {
  // About 20 MB: more than loopback's socket buffers take (a few MB each way).
  const list = items(60_000);
  const { state, port } = await serve(t, list);
  const res = await request(port);
  res.pause();
  const stalled = await settled(() => state.encoded);
  // Socket buffers take some chunks; the encoder must have stopped far short of the whole list.
  assert.ok(stalled < list.length / 2, `encoded ${stalled} of ${list.length} items while the client read nothing`);
  assert.ok(stalled * 300 >= LIST_CHUNK_CHARS, 'at least the first chunk went out');
  const body = await readAll(res);
  assert.equal(JSON.parse(body).items.length, list.length);
  assert.equal(state.encoded, list.length);
});

test('a client that goes away stops the encoding', async (t) => {
  const list = items(60_000);
  const { state, port } = await serve(t, list);
  const res = await request(port);
  res.pause();
  await settled(() => state.encoded);
  res.destroy();
  await state.finished;
  assert.ok(state.encoded < list.length, `encoded ${state.encoded} of ${list.length} items for a client that left`);
});

test('an item that fails to encode mid-stream cuts the connection: no well-formed partial list', async (t) => {
  const list = items(4000);
  const { port } = await serve(t, list, (it) => {
    if (it.name === 'item-3000') throw new Error('cannot convert');
    return JSON.stringify(it);
  });
  const res = await request(port);
  assert.equal(res.statusCode, 200);
  await assert.rejects(readAll(res), /aborted|socket hang up|ECONNRESET/);
});
