// Watch responses over real HTTP: a watch that owes its client more than the socket takes (its
// initial state, a long replay from the ring) encodes it as the client reads, in order, instead of
// buffering it all and dropping the watcher once 16 MB sat unread (issue 15).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WatchStream } from '../../src/apiserver/handlers/watch-stream.js';
import { serveWatch } from '../../src/apiserver/handlers/list-watch.js';
import type { ApiContext } from '../../src/apiserver/context.js';
import type { StoredObject } from '../../src/storage/types.js';
import { startLocalApi } from '../helpers/local-api.js';
import { settled } from '../helpers/wait.js';

/** Objects as the cache hands them out: `json()` is what an event line carries. */
const stored = (n: number, padChars = 300): StoredObject[] => Array.from({ length: n }, (_, i) => {
  const obj = { metadata: { name: `o-${i}`, resourceVersion: String(i + 1) }, pad: 'x'.repeat(padChars) };
  return { key: `/k/${i}`, obj, createRevision: i + 1, modRevision: i + 1, json: () => JSON.stringify(obj) };
});
const line = (type: string, o: StoredObject) => `{"type":"${type}","object":${o.json()}}\n`;

async function listen(t: TestContext, handler: (res: ServerResponse, req: IncomingMessage) => void): Promise<number> {
  const server = createServer((req, res) => handler(res, req));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return (server.address() as AddressInfo).port;
}

function request(port: number, path = '/'): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => get({ host: '127.0.0.1', port, path, agent: false }, resolve).on('error', reject));
}

/** Reads event lines until `stop` says so (or the response ends); the response is left open. */
function readLines(res: IncomingMessage, stop: (lines: string[]) => boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    let rest = '';
    const onData = (c: string) => {
      const parts = (rest + c).split('\n');
      rest = parts.pop()!;
      lines.push(...parts);
      if (stop(lines)) { res.off('data', onData); res.pause(); resolve(lines); }
    };
    res.setEncoding('utf8').on('data', onData).on('end', () => resolve(lines)).on('error', reject);
    res.resume();
  });
}

test('a watch owing more than the socket takes encodes it as the client reads, in order, then ends', async (t) => {
  const items = stored(60_000);   // about 20 MB of event lines: more than loopback's socket buffers
  const later = stored(3, 10).map((o, i) => ({ ...o, key: `/later/${i}` }));
  let encoded = 0;
  let stream: WatchStream | undefined;
  const port = await listen(t, (res) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    stream = new WatchStream(res, { encode: (type, o) => { encoded++; return line(type, o); }, tooSlow: () => assert.fail('dropped') });
    stream.initialEvents(items);
    stream.line('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"60000"}}}\n');
    stream.event('MODIFIED', later[0]!);
  });
  const res = await request(port);
  res.pause();
  const stalled = await settled(() => encoded);
  assert.ok(stalled < items.length / 2, `encoded ${stalled} of ${items.length} events while the client read nothing`);
  // Events that come meanwhile wait their turn behind the initial state.
  stream!.event('DELETED', later[1]!);
  stream!.end();
  const lines = await readLines(res, () => false);
  assert.equal(lines.length, items.length + 3);
  for (let i = 0; i < items.length; i++) assert.equal(lines[i], line('ADDED', items[i]!).trimEnd());
  assert.match(lines[items.length]!, /"BOOKMARK"/);
  assert.equal(lines[items.length + 1], line('MODIFIED', later[0]!).trimEnd());
  assert.equal(lines[items.length + 2], line('DELETED', later[1]!).trimEnd());
  assert.equal(encoded, items.length + 2);
});

test('with nothing owed an event is written at once; a client too far behind is dropped once', async (t) => {
  const items = stored(20_000, 3000);   // 60 MB if all were written: more than any socket buffer
  let dropped = 0;
  let stream: WatchStream | undefined;
  const port = await listen(t, (res) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    stream = new WatchStream(res, { encode: line, tooSlow: () => { dropped++; res.end(); }, maxQueued: 100 });
    stream.event('ADDED', items[0]!);
  });
  const res = await request(port);
  const first = await readLines(res, (l) => l.length >= 1);
  assert.equal(first[0], line('ADDED', items[0]!).trimEnd());
  // The client stops reading; a burst of events fills the socket, then the queue.
  res.pause();
  for (let i = 1; i < 20_000 && dropped === 0; i++) stream!.event('MODIFIED', items[i]!);
  assert.equal(dropped, 1);
  stream!.event('MODIFIED', items[0]!);
  assert.equal(dropped, 1, 'dropped once');
});

test('serveWatch: an initial state of 20 MB (sendInitialEvents) and a replay of 20 MB both reach a client that reads slowly', async (t) => {
  const api = await startLocalApi(t, { ringSize: 5000 });
  const info = api.registry.lookup('', 'v1', 'configmaps')!;
  const ctx = { objects: api.objects, store: api.store, bookmarks: new Set(), converter: () => undefined } as unknown as ApiContext;
  const data = { blob: 'y'.repeat(8 * 1024) };
  const names = Array.from({ length: 2500 }, (_, i) => `cm-${i}`);
  for (let i = 0; i < names.length; i += 250) {
    await Promise.all(names.slice(i, i + 250).map((name) => api.store.create(`/core/configmaps/default/${name}`,
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data })));
  }
  const created = api.store.revision();
  const port = await listen(t, (res, req) => {
    const url = new URL(req.url!, 'http://x');
    serveWatch(ctx, req, res, info, 'default', undefined, url.searchParams, { yaml: false });
  });

  const initial = await request(port, '/?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true');
  initial.pause();
  await new Promise((r) => setTimeout(r, 300));   // the server writes what the socket takes, then waits
  const endMarker = (l: string) => l.includes('"k8s.io/initial-events-end":"true"');
  const lines = await readLines(initial, (l) => l.some(endMarker));
  const events = lines.map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string; resourceVersion: string } } });
  assert.equal(events.length, names.length + 1);
  assert.deepEqual(new Set(events.slice(0, -1).map((e) => `${e.type} ${e.object.metadata.name}`)), new Set(names.map((n) => `ADDED ${n}`)));
  assert.equal(events.at(-1)!.type, 'BOOKMARK');
  assert.equal(events.at(-1)!.object.metadata.resourceVersion, String(created));
  // Live events follow on the same stream.
  const one = api.store.get('/core/configmaps/default/cm-0')!;
  await api.store.update(one.key, { ...one.obj, data: { blob: 'z' } }, one.modRevision);
  const live = await readLines(initial, (l) => l.length >= 1);
  assert.match(live[0]!, /^\{"type":"MODIFIED".*"name":"cm-0"/);
  initial.destroy();

  // A watch resuming from before 2,500 more updates of 8 KB is replayed all of them from the ring.
  const from = api.store.revision();
  for (let i = 0; i < names.length; i += 250) {
    await Promise.all(names.slice(i, i + 250).map(async (name) => {
      const o = api.store.get(`/core/configmaps/default/${name}`)!;
      await api.store.update(o.key, { ...o.obj, data: { blob: 'w'.repeat(8 * 1024) } }, o.modRevision);
    }));
  }
  const replay = await request(port, `/?watch=1&resourceVersion=${from}`);
  replay.pause();
  await new Promise((r) => setTimeout(r, 300));
  const replayed = await readLines(replay, (l) => l.length >= names.length);
  assert.equal(replayed.length, names.length);
  assert.ok(replayed.every((l) => l.startsWith('{"type":"MODIFIED"')));
  replay.destroy();
});
