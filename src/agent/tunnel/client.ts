// The agent's end of the tunnel: one outbound WebSocket to the server (so a node behind NAT needs no
// inbound port), authenticated with the node's client certificate, redialled with backoff whenever it
// drops, as k3s's agents do (about once a second at first). Every stream the server opens on it is
// handed to `serve`.
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { TunnelMux, type TunnelStream } from '../../tunnel/mux.js';
import { CONNECT_PATH, NODE_NAME_HEADER, type StreamRequest } from '../../tunnel/protocol.js';
import { serveStream, type StreamDeps } from './streams.js';
import { logger, type Logger } from '../../util/log.js';

export type StreamHandler = (req: StreamRequest, stream: TunnelStream) => void;

export interface AgentTunnelOptions {
  /** The server's base URL, `https://host:6443`. */
  serverUrl: string;
  nodeName: string;
  /** The server CA the agent pinned at join, and the node's client certificate and key. */
  caPem: string;
  certPem: string;
  keyPem: string;
  serve: StreamHandler;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  heartbeatMs?: number;
  log?: Logger;
}

const MIN_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 10_000;
const HEARTBEAT_MS = 15_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const MAX_FRAME_BYTES = 1024 * 1024;

/** The usual handler: streams served from the node's container runtime. */
export function runtimeStreamHandler(deps: StreamDeps): StreamHandler {
  return (req, stream) => void serveStream(deps, req, stream);
}

/** Emits 'connected' and 'disconnected' (with the reason) as the tunnel comes and goes. */
export class AgentTunnel extends EventEmitter {
  private mux: TunnelMux | undefined;
  private ws: WebSocket | undefined;
  private retry: NodeJS.Timeout | undefined;
  private backoff: number;
  private stopped = true;
  private readonly log: Logger;

  constructor(private readonly opts: AgentTunnelOptions) {
    super();
    this.backoff = opts.minBackoffMs ?? MIN_BACKOFF_MS;
    this.log = opts.log ?? logger('tunnel');
  }

  get connected(): boolean {
    return this.mux?.isOpen ?? false;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.dial();
  }

  /** Resolves once connected; rejects after `timeoutMs`. */
  waitConnected(timeoutMs: number): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.off('connected', onUp); reject(new Error(`tunnel not connected within ${timeoutMs} ms`)); }, timeoutMs);
      const onUp = () => { clearTimeout(timer); resolve(); };
      this.once('connected', onUp);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    this.mux?.close();
    this.ws?.terminate();
    this.mux = undefined;
    this.ws = undefined;
  }

  private dial(): void {
    const url = new URL(CONNECT_PATH, this.opts.serverUrl);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    const ws = new WebSocket(url, {
      ca: this.opts.caPem, cert: this.opts.certPem, key: this.opts.keyPem,
      headers: { [NODE_NAME_HEADER]: this.opts.nodeName },
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
    });
    this.ws = ws;
    let refusal = '';
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => {
        refusal = `${res.statusCode}: ${statusMessage(body)}`;
        ws.terminate();
      });
    });
    ws.once('open', () => {
      this.backoff = this.opts.minBackoffMs ?? MIN_BACKOFF_MS;
      const mux = new TunnelMux(ws, { onOpen: this.opts.serve, heartbeatMs: this.opts.heartbeatMs ?? HEARTBEAT_MS });
      this.mux = mux;
      mux.on('protocolError', (err: Error) => this.log.warn({ err: err.message }, 'tunnel protocol error'));
      this.log.info({ server: this.opts.serverUrl }, 'tunnel connected');
      this.emit('connected');
    });
    ws.once('close', () => {
      const wasUp = this.mux !== undefined;
      this.mux = undefined;
      if (this.ws === ws) this.ws = undefined;
      if (this.stopped) return;
      const reason = refusal || (wasUp ? 'connection closed' : 'could not connect');
      this.log[refusal ? 'warn' : 'info']({ reason, retryMs: this.backoff }, 'tunnel down, reconnecting');
      this.emit('disconnected', reason);
      this.retry = setTimeout(() => this.dial(), this.backoff);
      this.retry.unref();
      this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? MAX_BACKOFF_MS);
    });
    ws.on('error', (err) => { refusal ||= err.message; });
  }
}

function statusMessage(body: string): string {
  try {
    return JSON.parse(body).message ?? body;
  } catch {
    return body.slice(0, 200);
  }
}
