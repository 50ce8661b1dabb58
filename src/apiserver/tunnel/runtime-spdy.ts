// The API server as a SPDY client of the container runtime's streaming server, over a tunnel
// stream. containerd 1.6 serves exec/attach/port-forward as the kubelet did: an HTTP upgrade to
// SPDY/3.1, then one SPDY stream per channel, named by headers. The framing is spdy-transport's;
// what is here adapts it to the Go server on the other end (moby/spdystream), which behaves unlike
// the HTTP-over-SPDY peers spdy-transport was written for.
import transport, { type SpdyConnection, type SpdyStream } from 'spdy-transport';
import type { Duplex } from 'node:stream';
import { ApiError } from '../status.js';
import type { TunnelStream } from './mux.js';
import type { UpgradeHead } from './protocol.js';
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
    // DATA frames of up to 64 KiB (spdy-transport's default is 8): fewer frames cost less.
    this.conn = transport.connection.create(socket, { protocol: 'spdy', isServer: false, maxChunk: 64 * 1024 });
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

/** spdy-transport 3.0 internals touched above; the e2e tests catch a release that changes them. */
interface SpdyStreamState {
  needResponse: boolean;
  window: {
    send: { update(size: number, cb?: () => void): void; current: number; max: number; limit: number };
    recv: { setLowWaterMark(bytes: number): void };
  };
}
