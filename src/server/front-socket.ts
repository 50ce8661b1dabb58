// One client connection of the TLS front (tls-front.ts), as the server's thread sees it: a Duplex
// whose bytes travel over the front worker's message port, answering as the TLS socket it stands
// for (`remoteAddress`, `encrypted`, `authorized`, `getPeerCertificate()`, `alpnProtocol`) and with
// the socket methods Node's HTTP server, `ws` and the handlers call (`setTimeout`, `setNoDelay`,
// `destroySoon`, ...). Backpressure both ways, by the window of unacknowledged bytes
// (tls-front-protocol.ts): a write past it waits for the worker's acknowledgement, and the client's
// bytes are acknowledged only as the HTTP server consumes them.
import { Duplex } from 'node:stream';
import { FRONT_WINDOW_BYTES, joined, transferable, type FrontPeer, type ToWorker } from './tls-front-protocol.js';

export interface FrontLink {
  send(m: ToWorker, transfer?: ArrayBuffer): void;
  /** The connection is gone on this side. */
  forget(id: number): void;
}

export class FrontSocket extends Duplex {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly remoteFamily?: string;
  readonly encrypted = true;
  readonly authorized: boolean;
  readonly authorizationError?: string;
  readonly alpnProtocol: string | false;
  private readonly cert?: FrontPeer['cert'];
  /** Client → server: bytes received; an acknowledgement asked for while the buffer was full. */
  private receivedBytes = 0;
  private ackOwed = false;
  /** Server → client: bytes sent, and acknowledged by the worker; a write waiting for room. */
  private sentBytes = 0;
  private ackedBytes = 0;
  private waitingWrite?: () => void;
  /** The TLS socket is gone: nothing more is sent to the worker. */
  private remoteGone = false;
  private idleTimer?: NodeJS.Timeout;

  constructor(readonly id: number, peer: FrontPeer, private readonly link: FrontLink) {
    super({ allowHalfOpen: false });
    this.remoteAddress = peer.address;
    this.remotePort = peer.port;
    this.remoteFamily = peer.family;
    this.authorized = peer.authorized;
    this.authorizationError = peer.authorizationError;
    this.alpnProtocol = peer.alpn;
    this.cert = peer.cert;
  }

  /** A new object per call, as Node's. Its nested fields (subject, issuer) are shared; every caller only reads them. */
  getPeerCertificate(): Record<string, unknown> {
    return this.cert ? { ...this.cert } : {};
  }

  // --- from the worker ---

  received(chunk: Uint8Array, needAck: boolean): void {
    this.idleTimer?.refresh();
    this.receivedBytes += chunk.byteLength;
    const room = this.push(chunk);
    // Consumed bytes only: while the buffer is full the acknowledgement waits for the next read.
    if (needAck) { if (room) this.ack(); else this.ackOwed = true; }
  }

  /** The worker took bytes up to `total` off the window. */
  acknowledged(total: number): void {
    this.ackedBytes = total;
    if (this.waitingWrite && this.sentBytes - this.ackedBytes <= FRONT_WINDOW_BYTES) {
      const done = this.waitingWrite;
      this.waitingWrite = undefined;
      done();
    }
  }

  private ack(): void {
    this.link.send(['ack', this.id, this.receivedBytes - this.readableLength]);
  }

  receivedEnd(): void {
    this.push(null);
  }

  remoteClosed(): void {
    this.remoteGone = true;
    this.destroy();
  }

  // --- Duplex ---

  override _read(): void {
    if (this.ackOwed) {
      this.ackOwed = false;
      this.ack();
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.send(transferable(chunk), done);
  }

  // A response's head and body, corked by Node's HTTP server, go as one buffer.
  override _writev(chunks: { chunk: Buffer }[], done: (err?: Error | null) => void): void {
    this.send(chunks.length === 1 ? transferable(chunks[0]!.chunk) : joined(chunks.map((c) => c.chunk)), done);
  }

  private send(bytes: Uint8Array<ArrayBuffer>, done: (err?: Error | null) => void): void {
    this.idleTimer?.refresh();
    this.sentBytes += bytes.byteLength;
    const inFlight = this.sentBytes - this.ackedBytes;
    this.link.send(['data', this.id, bytes, inFlight > FRONT_WINDOW_BYTES / 2], bytes.buffer);
    if (inFlight > FRONT_WINDOW_BYTES) this.waitingWrite = () => done(); else done();
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.remoteGone) this.link.send(['end', this.id]);
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    this.waitingWrite = undefined;
    if (!this.remoteGone) this.link.send(['destroy', this.id]);
    this.link.forget(this.id);
    done(err);
  }

  // --- net.Socket's methods that Node's HTTP server, ws and skiff's handlers call ---

  /** As net.Socket: 'timeout' after `ms` without bytes either way; 0 turns it off. */
  setTimeout(ms: number, onTimeout?: () => void): this {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (ms > 0 && Number.isFinite(ms)) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms);
      this.idleTimer.unref();
      if (onTimeout) this.once('timeout', onTimeout);
    } else if (onTimeout) {
      this.removeListener('timeout', onTimeout);
    }
    return this;
  }

  /** The worker's TLS socket has Nagle off already. */
  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
  address(): Record<string, never> { return {}; }

  /** Ends, then destroys once what was written is handed over (net.Socket's). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }
}
