// The tunnel's framing and multiplexer over a real WebSocket pair on loopback: frames round-trip,
// many streams interleave, credit-based backpressure bounds what a sender may have in flight while
// other streams keep flowing, refusals and resets carry their status, and only the server side may
// open streams.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { TunnelMux, TunnelStream, TunnelStreamError } from '../../src/tunnel/mux.js';
import {
  decodeFrame, encodeFrame, FrameType, MAX_DATA_BYTES, WINDOW_BYTES, type LogsRequest, type StreamRequest,
} from '../../src/tunnel/protocol.js';

const cleanups: (() => void | Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const logsReq = (containerId: string): LogsRequest => ({ op: 'logs', containerId, pod: 'ns/p', container: 'c' });

/** A server-side mux and an agent-side mux joined by a WebSocket on 127.0.0.1. */
async function pair(onOpen: (req: StreamRequest, s: TunnelStream) => void): Promise<{ server: TunnelMux; agent: TunnelMux }> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const serverSide = new Promise<TunnelMux>((resolve) => wss.once('connection', (ws) => resolve(new TunnelMux(ws))));
  const ws = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
  const agent = new TunnelMux(ws, { onOpen });
  await new Promise((r) => ws.once('open', r));
  const server = await serverSide;
  cleanups.push(async () => {
    agent.close(true);
    server.close(true);
    wss.close();
    await new Promise((r) => http.close(r));
  });
  return { server, agent };
}

function readAll(s: TunnelStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

test('frames round-trip; short and unknown frames are refused', () => {
  const f = decodeFrame(encodeFrame(FrameType.Data, 0xfffffffe, Buffer.from('abc')));
  assert.deepEqual([f.type, f.id, f.payload.toString()], [FrameType.Data, 0xfffffffe, 'abc']);
  assert.equal(decodeFrame(encodeFrame(FrameType.End, 7)).payload.length, 0);
  assert.throws(() => decodeFrame(Buffer.from([3, 0, 0])), /too short/);
  assert.throws(() => decodeFrame(Buffer.from([42, 0, 0, 0, 1])), /unknown tunnel frame type 42/);
});

test('many concurrent streams each carry their own bytes, both ways, with half-close', async () => {
  const { server } = await pair((req, s) => {
    // Echo service: answer with the request's id, then everything written to us, then end.
    s.accept();
    s.write(`${(req as LogsRequest).containerId}:`);
    s.pipe(s);
  });
  const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const s = await server.open(logsReq(`c${i}`));
    const body = Buffer.alloc(100_000 + i * 1000, String.fromCharCode(97 + (i % 26)));
    const reply = readAll(s);
    s.end(body);
    return { i, body, reply: await reply };
  }));
  for (const { i, body, reply } of results) {
    const prefix = `c${i}:`;
    assert.equal(reply.subarray(0, prefix.length).toString(), prefix);
    assert.ok(reply.subarray(prefix.length).equals(body), `stream ${i} got its own bytes back`);
  }
  assert.equal(server.activeStreams, 0, 'finished streams are forgotten');
});

test('backpressure: a stream whose reader stalls holds at most a window in flight; others still flow', async () => {
  let stalled: TunnelStream | undefined;
  let sentStalled = 0;
  const { server } = await pair((req, s) => {
    s.accept();
    const total = 4 * 1024 * 1024;
    const chunk = Buffer.alloc(MAX_DATA_BYTES, 1);
    if ((req as LogsRequest).containerId === 'slow') {
      stalled = s;
      // Write as fast as the stream allows: it must stop accepting once the window is used.
      const pump = () => {
        while (sentStalled < total) {
          sentStalled += chunk.length;
          if (!s.write(chunk)) { s.once('drain', pump); return; }
        }
        s.end();
      };
      pump();
    } else {
      s.end(Buffer.alloc(1024 * 1024, 2));
    }
  });
  const slow = await server.open(logsReq('slow'));
  slow.pause();
  // The other stream completes although the slow one is stuck.
  const fast = await server.open(logsReq('fast'));
  assert.equal((await readAll(fast)).length, 1024 * 1024);
  await new Promise((r) => setTimeout(r, 100));
  // What left the agent (written minus still queued in the stream) is at most the window.
  const inFlight = sentStalled - stalled!.writableLength;
  assert.ok(inFlight <= WINDOW_BYTES, `sent ${inFlight} bytes toward a reader that reads nothing`);
  assert.ok(slow.readableLength <= WINDOW_BYTES, `receiver buffers ${slow.readableLength} bytes, at most a window`);
  // Once the reader reads, everything arrives.
  const all = readAll(slow);
  slow.resume();
  assert.equal((await all).length, 4 * 1024 * 1024);
});

test('a refusal before accept rejects open() with its status; a reset after accept errors the stream', async () => {
  const { server } = await pair((req, s) => {
    const id = (req as LogsRequest).containerId;
    if (id === 'refuse') return s.reject({ code: 404, message: 'container not found: x' });
    s.accept();
    s.write('partial');
    setTimeout(() => s.reject({ code: 500, message: 'runtime went away' }), 20);
  });
  await assert.rejects(server.open(logsReq('refuse')), (e: TunnelStreamError) => e.code === 404 && e.message === 'container not found: x');
  const s = await server.open(logsReq('reset'));
  const err = await new Promise<Error>((resolve) => { s.on('data', () => {}); s.once('error', resolve); });
  assert.ok(err instanceof TunnelStreamError);
  assert.equal(err.message, 'runtime went away');
});

test('a reset after the peer ended its output still delivers what the reader had not read yet', async () => {
  const { server } = await pair((_req, s) => {
    s.accept();
    s.end('the end of the output');
    // The runtime hung up after sending everything: the agent resets the stream.
    setTimeout(() => s.reject({ code: 500, message: 'runtime hung up' }), 20);
  });
  const s = await server.open(logsReq('ended'));
  const all = readAll(s);
  s.pause();
  await new Promise((r) => setTimeout(r, 100));   // a slow reader: the reset arrives before it reads
  s.resume();
  assert.equal((await all).toString(), 'the end of the output');
});

test('destroying a stream on one side tells the other (kubectl went away → stop following)', async () => {
  let agentClosed!: Promise<void>;
  const { server } = await pair((_req, s) => {
    agentClosed = new Promise((resolve) => s.once('close', () => resolve()));
    s.accept();
  });
  const s = await server.open(logsReq('x'));
  s.destroy();
  await agentClosed;
});

test('a dropped tunnel fails every open stream', async () => {
  const { server, agent } = await pair((_req, s) => s.accept());
  const a = await server.open(logsReq('a'));
  const b = await server.open(logsReq('b'));
  const errors = Promise.all([a, b].map((s) => new Promise<Error>((r) => s.once('error', r))));
  agent.close(true);
  for (const e of await errors) assert.match(e.message, /tunnel to the node closed/);
  await assert.rejects(server.open(logsReq('c')), /tunnel closed/);
});

test('only the server opens streams: an OPEN from the agent side cuts the tunnel', async () => {
  const { server, agent } = await pair(() => assert.fail('nothing should be opened'));
  const why = new Promise<Error>((r) => server.once('protocolError', r));
  const closed = new Promise((r) => server.once('close', r));
  agent.send(encodeFrame(FrameType.Open, 1, JSON.stringify(logsReq('sneaky'))));
  assert.match((await why).message, /peer tried to open a stream/);
  await closed;
  assert.equal(server.isOpen, false);
  await new Promise((r) => agent.once('close', r));
});

test('a stream the agent never answers times out', async () => {
  const { server } = await pair(() => { /* silent */ });
  await assert.rejects(server.open(logsReq('x'), 50), (e: TunnelStreamError) => e.code === 504);
  assert.equal(server.activeStreams, 0);
});
