// A site's one outbound connection to its manager, shared by real sites (site.ts, inside `skiff
// server --fleet-server`) and simulated ones (hollow-clusters.ts): register once with the token,
// then hold the tunnel open, redialled with backoff (1 s doubling to 30 s, as the agent's tunnel),
// heartbeating into the manager's status stream and serving its API streams.
import { EventEmitter } from 'node:events';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { TunnelMux, type TunnelStream } from '../tunnel/mux.js';
import type { StreamRequest } from '../tunnel/protocol.js';
import { caHashMatches } from '../pki/token.js';
import { logger, type Logger } from '../util/log.js';
import { bearerOf, parseFleetToken } from './tokens.js';
import { CONNECT_PATH, REGISTER_PATH, sameReport, type RegisterResponse, type Report } from './protocol.js';

export interface SiteIdentity {
  manager: string;
  name: string;
  /** Generated once, kept in the data dir: what binds the name to this site on the manager. */
  secret: string;
  certPem?: string;
  keyPem?: string;
  caPem?: string;
}

export interface IdentityStore {
  load(): SiteIdentity | undefined;
  save(id: SiteIdentity): void;
}

export interface SiteConnectionOptions {
  managerUrl: string;
  token?: string;
  name: string;
  labels: Record<string, string>;
  store: IdentityStore;
  heartbeatMs: number;
  report(): Report;
  /** A user request forwarded by the manager (raw HTTP/1.1 on the stream). */
  serveApi(stream: TunnelStream): void;
  /** The manager's bundles stream (site-bundles.ts; hollow clusters simulate it). Absent: refused. */
  serveBundles?(stream: TunnelStream): void;
  /** The manager's CA when already known (hollow clusters fetch it once for all). */
  caPem?: string;
  log?: Logger;
}

const MIN_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;
/** A refusal (wrong token, name taken) will not fix itself in a second: ask again rarely. */
const REFUSED_RETRY_MS = 60_000;
/** The manager pings every 30 s; this long without one (or any frame) means a dead path. */
const SILENCE_LIMIT_MS = 90_000;
const HANDSHAKE_TIMEOUT_MS = 15_000;
const MAX_FRAME_BYTES = 1024 * 1024;

/** Emits 'connected', 'disconnected' (reason) and 'refused' (message) as the connection comes and goes. */
export class SiteConnection extends EventEmitter {
  private identity: SiteIdentity | undefined;
  private ws: WebSocket | undefined;
  private mux: TunnelMux | undefined;
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private backoff = MIN_BACKOFF_MS;
  private stopped = true;
  private readonly log: Logger;
  /** Bytes on the wire (TLS records included) over every connection so far. */
  bytesWritten = 0;
  bytesRead = 0;
  heartbeats = 0;
  lastRefusal = '';

  constructor(private readonly opts: SiteConnectionOptions) {
    super();
    this.log = opts.log ?? logger('fleet-site').child({ cluster: opts.name });
  }

  get connected(): boolean {
    return this.mux?.isOpen ?? false;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.mux?.close(true);
    this.ws?.terminate();
    this.mux = undefined;
    this.ws = undefined;
  }

  private later(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run(), ms);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    let id = this.identity ?? this.opts.store.load();
    if (!id || id.manager !== this.opts.managerUrl || id.name !== this.opts.name) {
      // A new manager or name is a new registration; the secret is kept only if it is ours already.
      id = { manager: this.opts.managerUrl, name: this.opts.name, secret: id?.secret ?? randomBytes(32).toString('hex') };
      this.opts.store.save(id);
    }
    this.identity = id;
    if (!id.certPem) {
      try {
        await this.register(id);
      } catch (err) {
        const e = err as Error & { refused?: boolean };
        this.lastRefusal = e.message;
        this.log.error({ err: e.message, retryMs: e.refused ? REFUSED_RETRY_MS : this.backoff }, 'fleet registration failed');
        if (e.refused) this.emit('refused', e.message);
        this.later(e.refused ? REFUSED_RETRY_MS : this.nextBackoff());
        return;
      }
    }
    if (this.stopped) return;   // stopped while registering
    this.dial(id);
  }

  private nextBackoff(): number {
    const b = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    return b;
  }

  private async register(id: SiteIdentity): Promise<void> {
    if (!this.opts.token) throw Object.assign(new Error(`no fleet credentials in the data dir and no --fleet-token to register with`), { refused: true });
    let parsed;
    try { parsed = parseFleetToken(this.opts.token); } catch (e) { throw Object.assign(e as Error, { refused: true }); }
    let ca = this.opts.caPem;
    if (!ca) {
      const got = await request(new URL('/cacerts', this.opts.managerUrl), { method: 'GET', rejectUnauthorized: false });
      if (got.status !== 200) throw new Error(`GET /cacerts: ${got.status}`);
      ca = got.body;
    }
    if (parsed.caHash && !caHashMatches(parsed.caHash, ca)) {
      throw Object.assign(new Error('the manager\'s CA does not match the hash in --fleet-token (wrong manager URL, or a man in the middle)'), { refused: true });
    }
    const body = JSON.stringify({ name: id.name, secret: id.secret, labels: this.opts.labels });
    const r = await request(new URL(REGISTER_PATH, this.opts.managerUrl), {
      method: 'POST', ca, headers: { 'content-type': 'application/json', authorization: `Bearer ${bearerOf(parsed)}` },
    }, body);
    if (r.status !== 200) {
      throw Object.assign(new Error(`the manager refused the registration (${r.status}): ${statusMessage(r.body)}`), { refused: r.status >= 400 && r.status < 500 && r.status !== 429 });
    }
    const reply = JSON.parse(r.body) as RegisterResponse;
    Object.assign(id, { certPem: reply.certPem, keyPem: reply.keyPem, caPem: reply.caPem });
    this.opts.store.save(id);
    this.lastRefusal = '';
    this.log.info({ manager: this.opts.managerUrl }, 'registered with the fleet manager');
  }

  private dial(id: SiteIdentity): void {
    const url = new URL(CONNECT_PATH, this.opts.managerUrl);
    url.protocol = 'wss:';
    const ws = new WebSocket(url, {
      ca: id.caPem, cert: id.certPem, key: id.keyPem,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false,
    });
    this.ws = ws;
    let refusal = '';
    let refusedCode = 0;
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => {
        refusedCode = res.statusCode ?? 0;
        refusal = `${res.statusCode}: ${statusMessage(body)}`;
        ws.terminate();
      });
    });
    let lastFrame = Date.now();
    ws.once('open', () => {
      this.backoff = MIN_BACKOFF_MS;
      const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
      const w0 = socket.bytesWritten, r0 = socket.bytesRead;
      ws.once('close', () => { this.bytesWritten += socket.bytesWritten - w0; this.bytesRead += socket.bytesRead - r0; });
      ws.on('ping', () => { lastFrame = Date.now(); });
      ws.on('message', () => { lastFrame = Date.now(); });
      const mux = new TunnelMux(ws, { onOpen: (req, stream) => this.onStream(req, stream, () => lastFrame) });
      this.mux = mux;
      mux.on('protocolError', (err: Error) => this.log.warn({ err: err.message }, 'fleet tunnel protocol error'));
      this.log.info({ manager: this.opts.managerUrl }, 'fleet tunnel connected');
      this.emit('connected');
    });
    ws.once('close', () => {
      const wasUp = this.mux !== undefined;
      this.mux = undefined;
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.heartbeat = undefined;
      if (this.ws === ws) this.ws = undefined;
      if (this.stopped) return;
      const reason = refusal || (wasUp ? 'connection closed' : 'could not connect');
      this.emit('disconnected', reason);
      // Our certificate is no longer bound to the name (the Cluster was deleted, or the name
      // registered again): register anew with our secret; the manager decides whether it is still ours.
      if ((refusedCode === 403 || refusedCode === 404 || refusedCode === 401) && this.opts.token && this.identity) {
        this.log.warn({ reason }, 'the manager no longer accepts our certificate; registering again');
        this.identity = { ...this.identity, certPem: undefined, keyPem: undefined, caPem: undefined };
        this.opts.store.save(this.identity);
        this.later(refusedCode === 403 ? REFUSED_RETRY_MS / 4 : this.nextBackoff());
        return;
      }
      const wait = this.nextBackoff();
      this.log[refusal ? 'warn' : 'info']({ reason, retryMs: wait }, 'fleet tunnel down, reconnecting');
      this.later(wait);
    });
    ws.on('error', (err) => { refusal ||= err.message; });
  }

  private onStream(req: StreamRequest, stream: TunnelStream, lastFrame: () => number): void {
    if (req.op === 'fleet-api') return this.opts.serveApi(stream);
    if (req.op === 'fleet-bundles') return this.opts.serveBundles ? this.opts.serveBundles(stream) : stream.reject({ code: 404, message: 'this site takes no bundles' });
    if (req.op !== 'fleet-status') return stream.reject({ code: 400, message: `a fleet site serves no "${req.op}" streams` });
    stream.accept();
    stream.resume();   // the manager writes nothing on it; never let credit stall
    let last: Report | undefined;
    const beat = () => {
      if (Date.now() - lastFrame() > SILENCE_LIMIT_MS) { this.log.warn('no frame from the manager for 90 s; reconnecting'); this.ws?.terminate(); return; }
      const r = this.opts.report();
      if (!sameReport(r, last)) { stream.write(JSON.stringify(r) + '\n'); last = r; } else stream.write('\n');
      this.heartbeats++;
    };
    beat();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(beat, this.opts.heartbeatMs);
    this.heartbeat.unref();
    stream.once('close', () => { if (this.heartbeat) clearInterval(this.heartbeat); this.heartbeat = undefined; });
  }
}

function statusMessage(body: string): string {
  try { return JSON.parse(body).message ?? body; } catch { return body.slice(0, 300); }
}

interface Reply { status: number; body: string }

function request(url: URL, opts: https.RequestOptions, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ...opts, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
