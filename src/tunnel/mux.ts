// Many byte streams over one WebSocket, used by both ends of the agent tunnel. A stream is a Node
// Duplex, so callers pipe sockets and files through it and get backpressure for free: writes wait for
// the peer's credit, and credit goes back only as the local consumer reads (see protocol.ts).
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import {
  decodeFrame, encodeCredit, encodeFrame, FrameType, MAX_DATA_BYTES, WINDOW_BYTES,
  type ResetReason, type StreamRequest,
} from './protocol.js';

/** A stream the peer refused or aborted, with the HTTP status it maps to. */
export class TunnelStreamError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'TunnelStreamError';
  }
}

/** Give credit back in batches: one CREDIT frame per quarter window, not one per DATA frame. */
const CREDIT_BATCH_BYTES = WINDOW_BYTES / 4;

export class TunnelStream extends Duplex {
  /** Bytes we may still send before the peer grants more. */
  private credit = WINDOW_BYTES;
  /** Bytes received and handed to our consumer but not yet credited back to the peer. */
  private owed = 0;
  private pending: { chunk: Buffer; cb: (err?: Error | null) => void } | undefined;
  private remoteEnded = false;
  private localEnded = false;
  /** The peer already knows the stream is over (it reset it, or we sent RESET): send nothing more. */
  private silenced = false;

  constructor(readonly id: number, private readonly mux: TunnelMux) {
    super({ allowHalfOpen: true });
    // A tunnel that drops destroys every stream with an error; one nobody listens to must not crash
    // the process. Holders still see the error (their own listeners, pipeline) and 'close'.
    this.on('error', () => {});
  }

  /** Agent side: the request is being served; data may flow. */
  accept(): void {
    this.mux.send(encodeFrame(FrameType.Accept, this.id));
  }

  /** Agent side: refuse (before accept) or abort (after) with a reason the server turns into a Status. */
  reject(reason: ResetReason): void {
    if (!this.silenced) this.mux.send(encodeFrame(FrameType.Reset, this.id, JSON.stringify(reason)));
    this.silenced = true;
    this.destroy();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending = { chunk, cb };
    this.flush();
  }

  private flush(): void {
    const p = this.pending;
    if (!p) return;
    while (p.chunk.length > 0 && this.credit > 0) {
      const n = Math.min(p.chunk.length, this.credit, MAX_DATA_BYTES);
      if (!this.mux.send(encodeFrame(FrameType.Data, this.id, p.chunk.subarray(0, n)))) {
        this.pending = undefined;
        p.cb(new Error('tunnel closed'));
        return;
      }
      this.credit -= n;
      p.chunk = p.chunk.subarray(n);
    }
    if (p.chunk.length === 0) {
      this.pending = undefined;
      p.cb();
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.localEnded = true;
    this.mux.send(encodeFrame(FrameType.End, this.id));
    cb();
  }

  override _read(): void {
    this.grant();
  }

  private grant(): void {
    if (this.owed === 0 || this.silenced) return;
    this.mux.send(encodeCredit(this.id, this.owed));
    this.owed = 0;
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    const clean = this.localEnded && this.remoteEnded;
    if (!clean && !this.silenced) {
      const reason: ResetReason = err instanceof TunnelStreamError ? { code: err.code, message: err.message }
        : { code: 500, message: err?.message ?? 'stream cancelled' };
      this.mux.send(encodeFrame(FrameType.Reset, this.id, JSON.stringify(reason)));
    }
    this.silenced = true;
    this.pending?.cb(err ?? new Error('stream closed'));
    this.pending = undefined;
    this.mux.forget(this.id);
    cb(err);
  }

  /** @internal frames from the peer */
  onFrame(type: FrameType, payload: Buffer): void {
    switch (type) {
      case FrameType.Data:
        if (this.remoteEnded) return;
        this.owed += payload.length;
        // Copy: the payload is a view into the WebSocket message, which we must not pin.
        if (this.push(Buffer.from(payload)) && this.owed >= CREDIT_BATCH_BYTES) this.grant();
        return;
      case FrameType.End:
        this.remoteEnded = true;
        this.push(null);
        return;
      case FrameType.Credit:
        if (payload.length >= 4) {
          this.credit += payload.readUInt32BE(0);
          this.flush();
        }
        return;
      case FrameType.Reset: {
        this.silenced = true;
        // After its END the peer has sent everything; its reset then only says it stopped listening
        // (e.g. the runtime hung up). What our consumer has not read yet, often the end of the
        // output, must still reach it.
        if (this.remoteEnded && !this.readableEnded) {
          this.once('end', () => this.destroy());
          return;
        }
        const r = parseReason(payload);
        this.destroy(new TunnelStreamError(r.code, r.message));
        return;
      }
    }
  }
}

function parseReason(payload: Buffer): ResetReason {
  try {
    const r = JSON.parse(payload.toString('utf8'));
    return { code: Number(r.code) || 500, message: String(r.message ?? 'stream reset') };
  } catch {
    return { code: 500, message: 'stream reset by peer' };
  }
}

export interface TunnelMuxOptions {
  /** Agent side: called for each stream the server opens. */
  onOpen?: (req: StreamRequest, stream: TunnelStream) => void;
  /** Ping interval; a peer that misses a whole interval is cut off (a dead NAT path never says so). */
  heartbeatMs?: number;
}

/** One WebSocket, many streams. Emits 'close' once, when the WebSocket is gone. */
export class TunnelMux extends EventEmitter {
  private readonly streams = new Map<number, TunnelStream>();
  private readonly waiting = new Map<number, { resolve: (s: TunnelStream) => void; reject: (e: Error) => void }>();
  /** Detaches the open()-time listeners once a stream is accepted. */
  private readonly accepting = new Map<number, () => void>();
  private nextId = 1;
  private closed = false;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(readonly ws: WebSocket, private readonly opts: TunnelMuxOptions = {}) {
    super();
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return this.fail('text message on the tunnel');
      let frame;
      try {
        frame = decodeFrame(data);
      } catch (err) {
        return this.fail((err as Error).message);
      }
      this.dispatch(frame.type, frame.id, frame.payload);
    });
    ws.on('close', () => this.shutdown());
    ws.on('error', () => this.shutdown());
    if (opts.heartbeatMs) {
      let alive = true;
      ws.on('pong', () => { alive = true; });
      this.heartbeat = setInterval(() => {
        if (!alive) { ws.terminate(); return; }
        alive = false;
        ws.ping();
      }, opts.heartbeatMs);
      this.heartbeat.unref();
    }
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  /** Server side: opens a stream for `req`; resolves when the agent accepts, rejects with its reason. */
  open(req: StreamRequest, timeoutMs = 30_000): Promise<TunnelStream> {
    if (!this.isOpen) return Promise.reject(new TunnelStreamError(502, 'tunnel closed'));
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const stream = new TunnelStream(id, this);
    this.streams.set(id, stream);
    return new Promise<TunnelStream>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        stream.destroy();
        reject(new TunnelStreamError(504, `the node did not answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (s) => { clearTimeout(timer); resolve(s); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      // A stream the agent resets before accepting fails the open, not whoever holds the stream.
      const onError = (e: Error) => this.settle(id, e);
      const onClose = () => this.settle(id, new TunnelStreamError(502, 'stream closed before it was accepted'));
      stream.once('error', onError);
      stream.once('close', onClose);
      this.accepting.set(id, () => { stream.off('error', onError); stream.off('close', onClose); });
      this.send(encodeFrame(FrameType.Open, id, JSON.stringify(req)));
    });
  }

  private settle(id: number, err: Error): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    this.accepting.delete(id);
    w.reject(err);
  }

  /** @internal */
  send(frame: Buffer): boolean {
    if (!this.isOpen) return false;
    this.ws.send(frame);
    return true;
  }

  /** @internal */
  forget(id: number): void {
    this.streams.delete(id);
  }

  /** Closes the WebSocket (gracefully, or at once with `terminate`) and fails every open stream. */
  close(terminate = false): void {
    if (terminate) this.ws.terminate();
    else this.ws.close();
    this.shutdown();
  }

  private dispatch(type: FrameType, id: number, payload: Buffer): void {
    if (type === FrameType.Open) {
      // Only the server opens streams: an agent must never be able to start one toward the server.
      if (!this.opts.onOpen) return this.fail('peer tried to open a stream');
      if (this.streams.has(id)) return this.fail(`stream ${id} opened twice`);
      let req: StreamRequest;
      try {
        req = JSON.parse(payload.toString('utf8'));
      } catch {
        this.send(encodeFrame(FrameType.Reset, id, JSON.stringify({ code: 400, message: 'malformed stream request' })));
        return;
      }
      const stream = new TunnelStream(id, this);
      this.streams.set(id, stream);
      this.opts.onOpen(req, stream);
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) return;   // late frames of a stream we already closed
    if (type === FrameType.Accept) {
      const w = this.waiting.get(id);
      this.waiting.delete(id);
      this.accepting.get(id)?.();
      this.accepting.delete(id);
      w?.resolve(stream);
      return;
    }
    stream.onFrame(type, payload);
  }

  private fail(why: string): void {
    this.emit('protocolError', new Error(why));
    this.ws.terminate();
    this.shutdown();
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    const err = new TunnelStreamError(502, 'tunnel to the node closed');
    for (const s of [...this.streams.values()]) s.destroy(err);
    this.streams.clear();
    this.emit('close');
  }
}
