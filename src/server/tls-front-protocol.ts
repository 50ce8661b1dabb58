// What the TLS front's worker (tls-front-worker.ts) and the server's thread (tls-front.ts) say to
// each other over the worker's one message port: control messages as objects, and every
// connection's bytes and state as small arrays tagged with the connection's number, batched
// (MessageBatch) so that many go as one message: one wake-up of the other thread, one serialization. One port for all connections, not a channel each: libuv walks every async handle
// of a loop at each wake-up, and 10,000 channels would be 10,000 handles.
import type { Certificate } from 'node:tls';

/** A connection's peer as the TLS layer saw it: the part of a TLSSocket the API server reads. */
export interface FrontPeer {
  address?: string;
  port?: number;
  family?: string;
  alpn: string | false;
  /** The client certificate chained to the client CA (Node's `TLSSocket.authorized`). */
  authorized: boolean;
  authorizationError?: string;
  /** Fields of `getPeerCertificate()`, only for an authorized certificate. */
  cert?: {
    subject: Certificate;
    issuer: Certificate;
    valid_from: string;
    valid_to: string;
    serialNumber: string;
    fingerprint256: string;
    ext_key_usage?: string[];
  };
}

export interface FrontWorkerData {
  extraAcceptHandles: number;
}

export interface FrontTls {
  cert: string;
  key: string;
  ca: string;
  secureOptions: number;
}

export type FrontControl =
  /** `hold`: connections are taken and their handshakes run, but nothing is passed on until `serve`. */
  | { op: 'listen'; port: number; host: string; backlog: number; tls: FrontTls; handshakeMs: number; maxConnectionsPerAddress: number; hold: boolean }
  | { op: 'serve' }
  | { op: 'secure-context'; tls: FrontTls }
  | { op: 'close' };

export type WorkerControl =
  | { op: 'listening'; port: number }
  | { op: 'failed'; message: string; code?: string }
  | { op: 'closed' };

/**
 * Bytes in flight per connection and direction: past this, the sender holds back (the worker pauses
 * the client's socket; the server's thread holds a write's callback, so that `res.write()` returns
 * false) until the receiver acknowledges. What kernel socket buffers bounded when TLS and the HTTP
 * server shared a socket. The receiver acknowledges only when asked (a sender past half the window
 * sets `needAck`), so a short request and its answer cost no acknowledgements.
 */
export const FRONT_WINDOW_BYTES = 512 * 1024;

/**
 * From the worker, about connection `id`: `open` (handshake done; its peer), `data` (bytes from the
 * client), `ack` (of the bytes from the server's thread, the total the client's socket has taken),
 * `end` (the client is done sending), `close` (the TLS socket is gone).
 */
export type FromWorker =
  | ['open', number, FrontPeer]
  | ['data', number, Uint8Array, boolean]
  | ['ack', number, number]
  | ['end' | 'close', number];

/**
 * To the worker, about connection `id`: `data` (bytes for the client), `ack` (of the client's bytes,
 * the total the HTTP server has consumed), `end` (send what was sent, then close), `destroy` (close
 * now; after `end`, once that is flushed).
 */
export type ToWorker =
  | ['data', number, Uint8Array, boolean]
  | ['ack', number, number]
  | ['end' | 'destroy', number];

/**
 * Bytes to be transferred (not copied again): a view of a whole ArrayBuffer as it is when `mine`
 * (nobody else holds it: a socket's read), else a copy. Posting a view would serialize its entire
 * backing buffer (an 8 KB pool slab for a few bytes), and transferring a caller's own buffer would
 * detach it under the caller.
 */
export function transferable(chunk: Uint8Array, mine = false): Uint8Array<ArrayBuffer> {
  if (mine && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer) {
    return chunk as Uint8Array<ArrayBuffer>;
  }
  const copy = new Uint8Array(chunk.byteLength);
  copy.set(chunk);
  return copy;
}

/** Several chunks as one transferable buffer (one copy). */
export function joined(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const c of chunks) size += c.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.byteLength; }
  return out;
}

/**
 * Messages posted together, when `schedule` runs the flush: `setImmediate` gathers a whole turn of
 * the event loop (the worker's turns are short, and it reads many sockets in one), `queueMicrotask`
 * what one callback wrote (the server's thread: a turn there can take tens of milliseconds, and a
 * response must not wait for the turn's end; a watch event fanned out to many watchers still goes
 * as one message).
 */
export class MessageBatch<T> {
  private messages: T[] = [];
  private transfer: ArrayBuffer[] = [];
  private scheduled = false;

  constructor(
    private readonly post: (batch: T[], transfer: ArrayBuffer[]) => void,
    private readonly schedule: (flush: () => void) => void,
  ) {}

  push(m: T, buffer?: ArrayBuffer): void {
    this.messages.push(m);
    if (buffer) this.transfer.push(buffer);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(this.flush);
    }
  }

  readonly flush = (): void => {
    this.scheduled = false;
    if (this.messages.length === 0) return;
    const batch = this.messages, transfer = this.transfer;
    this.messages = [];
    this.transfer = [];
    this.post(batch, transfer);
  };
}
