// Per-connection and per-client limits of the HTTPS front door (issue 11): connections that never
// finish a TLS handshake or never send a complete request head are closed, idle keep-alive
// connections expire, a client address holds a bounded number of connections, and a user a bounded
// number of requests in flight (429 with Retry-After beyond it, as API priority and fairness answers).
// Watches and streams are long-running by design: once their request is in, no timer touches them.
import type https from 'node:https';
import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { errors } from '../api/status.js';

export interface ConnectionLimits {
  /** TLS handshake must finish within this (Go's net/http has no separate one; 10 s as its transports). */
  handshakeMs: number;
  /** The request line and headers must arrive within this (kube-apiserver: ReadHeaderTimeout 32 s). */
  headersMs: number;
  /** The whole request (head and body) must arrive within this (kube-apiserver's --request-timeout, 60 s). */
  requestMs: number;
  /** An idle keep-alive connection is closed after this (kube-apiserver: IdleTimeout 90 s). */
  idleMs: number;
  /** Open connections from one client address; more are closed at once. */
  maxConnectionsPerAddress: number;
  /** Short requests (not watches or streams) one user may have in flight; more get 429. */
  maxInflightPerUser: number;
  /** Short requests in flight of all workload users together (priority level `workload`); more get 429. */
  maxInflightWorkload: number;
  /** Of nodes' other requests (pod status, their pods' reads: level `system`). */
  maxInflightSystem: number;
  /** Of nodes' heartbeats: their Leases and Node objects (level `node-high`), a budget nothing else draws from. */
  maxInflightNodeHigh: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  handshakeMs: 10_000,
  headersMs: 32_000,
  requestMs: 60_000,
  idleMs: 90_000,
  maxConnectionsPerAddress: 1024,
  maxInflightPerUser: 200,
  // kube-apiserver's --max-requests-inflight (400) plus --max-mutating-requests-inflight (200),
  // shared out by priority level as its API priority and fairness defaults do.
  maxInflightWorkload: 400,
  maxInflightSystem: 400,
  maxInflightNodeHigh: 600,
};

/**
 * The limits, with overrides from `SKIFF_CONNECTION_LIMITS` (JSON with any of the fields above):
 * tests shorten the timeouts, and an operator can tune a box without a new flag.
 */
export function connectionLimits(env: NodeJS.ProcessEnv = process.env): ConnectionLimits {
  const raw = env.SKIFF_CONNECTION_LIMITS;
  if (!raw) return { ...DEFAULT_CONNECTION_LIMITS };
  let o: Record<string, unknown>;
  try { o = JSON.parse(raw); } catch { throw new Error(`SKIFF_CONNECTION_LIMITS: not JSON: ${raw}`); }
  const out = { ...DEFAULT_CONNECTION_LIMITS };
  for (const k of Object.keys(out) as (keyof ConnectionLimits)[]) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !(v > 0)) throw new Error(`SKIFF_CONNECTION_LIMITS: ${k} must be a positive number`);
    out[k] = v;
  }
  return out;
}

/** The https.createServer options that carry the limits. */
export function serverTimeoutOptions(l: ConnectionLimits): https.ServerOptions {
  return {
    handshakeTimeout: l.handshakeMs,
    keepAliveTimeout: l.idleMs,
    headersTimeout: l.headersMs,
    requestTimeout: Math.max(l.requestMs, l.headersMs),
    // How often Node checks the two above (default 30 s would let short limits overshoot by that).
    connectionsCheckingInterval: Math.max(250, Math.min(l.headersMs, l.requestMs) / 4),
  };
}

const FIRST_REQUEST = Symbol('skiff.firstRequestSeen');

/** Connection accounting and the timers Node's own options do not cover. */
export function applyConnectionLimits(server: https.Server, l: ConnectionLimits): void {
  const perAddress = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const addr = socket.remoteAddress ?? '';
    const n = (perAddress.get(addr) ?? 0) + 1;
    if (n > l.maxConnectionsPerAddress) { socket.destroy(); return; }
    perAddress.set(addr, n);
    socket.once('close', () => {
      const left = (perAddress.get(addr) ?? 1) - 1;
      if (left <= 0) perAddress.delete(addr); else perAddress.set(addr, left);
    });
  });
  // A connection that finished its handshake and then says nothing: Node's header timeout starts
  // only with the first byte of a request, so such a connection would otherwise live forever.
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setTimeout(l.headersMs, () => socket.destroy());
  });
  const firstRequest = (req: IncomingMessage) => {
    const s = req.socket as Socket & { [FIRST_REQUEST]?: boolean };
    if (s[FIRST_REQUEST]) return;
    s[FIRST_REQUEST] = true;
    s.setTimeout(0);   // from here on Node's keep-alive timer and the request timers govern it
  };
  server.on('request', firstRequest);
  // exec/attach/port-forward streams skip 'request'. Registering here makes Node hand every upgrade
  // to 'upgrade' listeners: with no other one, nobody would answer it, so it is closed.
  server.on('upgrade', (req: IncomingMessage) => {
    firstRequest(req);
    if (server.listenerCount('upgrade') === 1) req.socket.destroy();
  });
  // Failed handshakes (including the handshake timeout): Node leaves the socket to this listener.
  server.on('tlsClientError', (_err, socket) => socket.destroy());
}

/** Closes a socket after a malformed or timed-out request head, answering first when it still can. */
export function answerClientError(err: Error & { code?: string }, socket: import("node:stream").Duplex): void {
  if (socket.writable && err.code !== 'ECONNRESET') {
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout'
      : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    // A peer that never reads would keep it half-closed: destroy it regardless, soon.
    setTimeout(() => socket.destroy(), 1000).unref();
  } else {
    socket.destroy();
  }
}

/**
 * API priority and fairness in spirit (issue 15): requests are classed into priority levels as
 * Kubernetes' default FlowSchemas do, and each level has its own budget of requests in flight, so a
 * pod burst from workload users can never take the seats nodes need for their heartbeats.
 * - exempt: system:masters (the admin), as the `exempt` FlowSchema; bounded only per user.
 * - node-high: nodes' Leases in kube-node-lease and their Node objects (`system-node-high`).
 * - system: nodes' other requests, e.g. pod status (`system-nodes`).
 * - workload: everyone else (`workload-low` and friends).
 */
export type PriorityLevel = 'exempt' | 'node-high' | 'system' | 'workload';

export function priorityLevel(user: { groups: string[] }, ri: { resource: string; namespace: string; group: string }): PriorityLevel {
  if (user.groups.includes('system:masters')) return 'exempt';
  if (!user.groups.includes('system:nodes')) return 'workload';
  const heartbeat = (ri.group === '' && ri.resource === 'nodes')
    || (ri.group === 'coordination.k8s.io' && ri.resource === 'leases' && ri.namespace === 'kube-node-lease');
  return heartbeat ? 'node-high' : 'system';
}

/** Requests in flight per user and per priority level; `enter` throws 429 past a limit, the returned function leaves. */
export class InflightLimiter {
  private readonly counts = new Map<string, number>();
  private readonly levels = new Map<PriorityLevel, number>();
  private readonly levelMax: Record<PriorityLevel, number>;

  constructor(private readonly max: number, budgets: Partial<Pick<ConnectionLimits, 'maxInflightWorkload' | 'maxInflightSystem' | 'maxInflightNodeHigh'>> = {}) {
    this.levelMax = {
      exempt: Infinity,
      'node-high': budgets.maxInflightNodeHigh ?? Infinity,
      system: budgets.maxInflightSystem ?? Infinity,
      workload: budgets.maxInflightWorkload ?? Infinity,
    };
  }

  enter(user: string, level: PriorityLevel = 'exempt'): () => void {
    const n = this.counts.get(user) ?? 0;
    const l = this.levels.get(level) ?? 0;
    if (n >= this.max || l >= this.levelMax[level]) throw errors.tooManyRequests('Too many requests, please try again later.', 1);
    this.counts.set(user, n + 1);
    this.levels.set(level, l + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const m = (this.counts.get(user) ?? 1) - 1;
      if (m <= 0) this.counts.delete(user); else this.counts.set(user, m);
      this.levels.set(level, (this.levels.get(level) ?? 1) - 1);
    };
  }

  /** Requests in flight at `level` now (for tests and metrics). */
  inFlight(level: PriorityLevel): number {
    return this.levels.get(level) ?? 0;
  }
}
