// The agent's splice between a tunnel stream and the runtime's streaming server: a runtime that
// writes more than the server's credit lets through and then hangs up (a large exec output, then
// the exit status, then close) must still deliver every byte, and end the stream cleanly rather
// than reset it. The "runtime" here is a loopback TCP server standing in for containerd's
// streaming server; the real one is exercised by test/e2e/streaming-kubectl.test.ts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { TunnelMux } from '../../src/tunnel/mux.js';
import { WINDOW_BYTES, type ExecRequest } from '../../src/tunnel/protocol.js';
import { serveStream, type StreamDeps } from '../../src/agent/tunnel/streams.js';
import type { CriClient } from '../../src/agent/runtime/cri-client.js';

const cleanups: (() => void | Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const STATUS = '{"status":"Failure","code":6}';

/** A streaming server that answers the upgrade, writes the output and the status, and hangs up. */
async function hangingUpRuntime(outputBytes: number, reset: boolean): Promise<string> {
  const srv = createServer((sock: Socket) => {
    sock.once('data', () => {
      sock.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
      sock.write(Buffer.alloc(outputBytes, 'y'));
      // A reset is what the agent sees when its last frames cross the runtime's close. The kernel
      // drops what the agent has not read yet when the reset lands, so the reset waits long enough
      // for a busy machine to have read it (50 ms lost bytes on 2 cores at load 20).
      if (reset) sock.write(STATUS, () => setTimeout(() => sock.resetAndDestroy(), 500));
      else sock.end(STATUS);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/exec/token`;
}

// Just past one credit window, the rest waits in the agent's stream when the runtime's socket
// closes; far past it, the socket itself is paused by the pipe.
for (const [outputBytes, reset] of [[WINDOW_BYTES + 1000, false], [4 * WINDOW_BYTES + 12345, false], [WINDOW_BYTES + 1000, true]] as const) {
test(`a runtime that ${reset ? 'resets the connection' : 'hangs up'} after ${outputBytes} bytes: every byte arrives, then a clean end`, { timeout: 20_000 }, async () => {
  const url = await hangingUpRuntime(outputBytes, reset);
  const deps = { cri: { exec: async () => url } as unknown as CriClient } satisfies StreamDeps;
  const http = createHttpServer();
  const wss = new WebSocketServer({ server: http });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const serverSide = new Promise<TunnelMux>((resolve) => wss.once('connection', (ws) => resolve(new TunnelMux(ws))));
  const ws = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
  const agent = new TunnelMux(ws, { onOpen: (req, s) => void serveStream(deps, req, s) });
  await new Promise((r) => ws.once('open', r));
  const server = await serverSide;
  cleanups.push(async () => { agent.close(true); server.close(true); wss.close(); await new Promise((r) => http.close(r)); });

  const req: ExecRequest = {
    op: 'exec', containerId: 'c', cmd: ['sh'], stdin: false, stdout: true, stderr: false, tty: false,
    head: { method: 'POST', rawHeaders: ['Connection', 'Upgrade', 'Upgrade', 'SPDY/3.1'] },
  };
  const stream = await server.open(req);
  // A slow client: nothing is read (so no credit returns) until the runtime has long hung up.
  stream.pause();
  const chunks: Buffer[] = [];
  const ended = new Promise<string>((resolve, reject) => {
    stream.once('end', () => resolve(Buffer.concat(chunks).toString()));
    stream.once('error', reject);
  });
  await new Promise((r) => setTimeout(r, 300));
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.resume();
  const body = await ended;
  const afterHead = body.slice(body.indexOf('\r\n\r\n') + 4);
  assert.equal(afterHead.length, outputBytes + STATUS.length);
  assert.ok(afterHead.endsWith(STATUS), 'the status arrives last');
});
}
