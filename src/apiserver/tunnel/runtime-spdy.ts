// The API server as a SPDY client of the container runtime's streaming server, over a tunnel
// stream. containerd 1.6 serves exec/attach/port-forward as the kubelet did: an HTTP upgrade to
// SPDY/3.1, then one SPDY stream per channel, named by headers. The framing is spdy-transport's;
// what is here adapts it to the Go server on the other end (moby/spdystream), which behaves unlike
// the HTTP-over-SPDY peers spdy-transport was written for.
import transport, { type SpdyConnection, type SpdyStream } from 'spdy-transport';
import type { Duplex, Readable } from 'node:stream';
import { ApiError } from '../../api/status.js';
import type { TunnelStream } from '../../tunnel/mux.js';
import type { UpgradeHead } from '../../tunnel/protocol.js';
import { readResponseHead, type ResponseHead } from './upgrade.js';

export const SPDY_UPGRADE = 'SPDY/3.1';
export const PROTOCOL_VERSION_HEADER = 'X-Stream-Protocol-Version';

/** The upgrade request the agent replays against the runtime: SPDY, offering `protocols` in order. */
export function spdyUpgradeHead(protocols: string[]): UpgradeHead {
  const rawHeaders = ['Connection', 'Upgrade', 'Upgrade', SPDY_UPGRADE];
  for (const p of protocols) rawHeaders.push(PROTOCOL_VERSION_HEADER, p);
  return { method: 'POST', rawHeaders };
}

/**
 * Waits for the runtime's answer to the replayed upgrade. Anything but 101 becomes an ApiError the
 * server answers the client with, since the client's own upgrade has not been accepted yet.
 */
export async function awaitRuntimeUpgrade(stream: TunnelStream): Promise<ResponseHead> {
  let head: ResponseHead;
  try {
    head = await readResponseHead(stream);
  } catch (err) {
    stream.destroy();
    throw new ApiError(500, 'InternalError', `error dialing backend: ${(err as Error).message}`);
  }
  if (head.status !== 101 || !/spdy\/3\.1/i.test(head.headers.upgrade ?? '')) {
    stream.destroy();
    throw new ApiError(500, 'InternalError', `error dialing backend: the container runtime answered the SPDY upgrade with HTTP ${head.status}`);
  }
  return head;
}

/** A SPDY client session on an upgraded connection. */
export class SpdySession {
  private readonly conn: SpdyConnection;

  constructor(socket: Duplex) {
    const before = new Set(socket.listeners('close'));
    // DATA frames of up to 64 KiB (spdy-transport's default is 8): fewer frames cost less.
    this.conn = transport.connection.create(socket, { protocol: 'spdy', isServer: false, maxChunk: 64 * 1024 });
    deferCloseUntilParsed(socket, before, (this.conn as unknown as { _spdyState: { parser: Readable } })._spdyState.parser);
    // SPDY/3 rather than 3.1: spdystream speaks 3 framing and has no session-level flow control.
    this.conn.start(3);
    this.conn.on('error', () => this.conn.destroyStreams());
  }

  /** Opens a stream named by `headers` (e.g. `streamType: stdout`); data may be written at once. */
  open(headers: Record<string, string>): SpdyStream {
    const stream = this.conn.request({ method: 'POST', path: '/', headers });
    stream.on('error', () => undefined);
    const state = (stream as unknown as { _spdyState: SpdyStreamState })._spdyState;
    // spdystream answers each stream with a SYN_REPLY without HTTP's `:status`, which spdy-transport
    // would reset as a protocol error; the reply carries nothing we need, so expect none.
    state.needResponse = false;
    // spdystream has no flow control. It never sends WINDOW_UPDATE, so spdy-transport's sender would
    // stall for good after 64 KiB (e.g. `kubectl cp` of a larger file); and the WINDOW_UPDATEs
    // spdy-transport sends after reading 1 MiB of a stream end the Go side's session (seen: output
    // cut at 1 MB). So neither window is kept; backpressure comes from the tunnel's credit and TCP.
    state.window.recv.setLowWaterMark(-Infinity);
    const send = state.window.send;
    send.update = (_size: number, cb?: () => void) => { if (cb) process.nextTick(cb); };
    send.current = send.max = send.limit;
    return stream;
  }
}

/**
 * spdy-transport destroys every stream when its socket closes, but its parser works through what it
 * was given over later ticks: the runtime's last frames (the exit status, written just before it
 * hangs up) arrived, yet were dropped when the close came first (seen under load: the output whole,
 * the status lost). So its close handler runs only once the parser has delivered every frame, or
 * 2 s later, or at once if the connection broke rather than ended.
 */
function deferCloseUntilParsed(socket: Duplex, before: Set<Function>, parser: Readable): void {
  const handlers = socket.listeners('close').filter((l) => !before.has(l)) as ((hadError: boolean) => void)[];
  for (const h of handlers) socket.off('close', h);
  socket.once('close', (hadError: boolean) => {
    let done = false;
    const run = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const h of handlers) h.call(socket, hadError);
    };
    const timer = setTimeout(run, 2000);
    if (hadError || !socket.readableEnded || parser.readableEnded) { setImmediate(run); return; }
    parser.once('end', () => setImmediate(run));
    parser.once('error', run);
  });
}

/** spdy-transport 3.0 internals touched above; the e2e tests catch a release that changes them. */
interface SpdyStreamState {
  needResponse: boolean;
  window: {
    send: { update(size: number, cb?: () => void): void; current: number; max: number; limit: number };
    recv: { setLowWaterMark(bytes: number): void };
  };
}
