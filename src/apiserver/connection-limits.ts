// Per-connection and per-client limits of the HTTPS front door (issue 11): connections that never
// finish a TLS handshake or never send a complete request head are closed, idle keep-alive
// connections expire, a client address holds a bounded number of connections, and a user a bounded
// number of requests in flight (beyond it a request waits in a bounded queue, then gets 429 with
// Retry-After, as API priority and fairness answers).
// Watches and streams are long-running by design: once their request is in, no timer touches them.
import type https from 'node:https';
import type http from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Server as TlsServer } from 'node:tls';
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
  /** Requests of one user (a flow) that may wait for a seat in one priority level; more get 429. */
  queueLengthPerFlow: number;
  /** Requests of all users that may wait in one priority level; more get 429 (bounds the queue's memory). */
  maxQueuedPerLevel: number;
  /** How long a request may wait for a seat before it gets 429. */
  queueWaitMs: number;
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
  // API priority and fairness' queuing defaults: a queue holds at most 50 requests (queueLengthLimit)
  // and a level has 64 queues, so at most 64 × 50 = 3,200 requests wait in one level. skiff keeps one
  // queue per flow (user) instead of shuffle-sharding flows into 64 queues, with the same two bounds.
  queueLengthPerFlow: 50,
  maxQueuedPerLevel: 3200,
  // kube-apiserver lets a request wait in its queue for a quarter of the request timeout
  // (60 s / 4 = 15 s), leaving most of the timeout to the work itself.
  queueWaitMs: 15_000,
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

/** At most `max` open connections from one client address: more are closed as they are accepted. */
export function limitConnectionsPerAddress(server: NetServer, max: number): void {
  const perAddress = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const addr = socket.remoteAddress ?? '';
    const n = (perAddress.get(addr) ?? 0) + 1;
    if (n > max) { socket.destroy(); return; }
    perAddress.set(addr, n);
    socket.once('close', () => {
      const left = (perAddress.get(addr) ?? 1) - 1;
      if (left <= 0) perAddress.delete(addr); else perAddress.set(addr, left);
    });
  });
}

/**
 * Connection accounting and the timers Node's own options do not cover. `server` is the HTTPS
 * server itself, or (`behindFront`) the HTTP server that gets connections from the TLS front
 * (server/tls-front.ts), which accepts them, limits them per address and runs their handshakes.
 */
export function applyConnectionLimits(server: https.Server | http.Server, l: ConnectionLimits, o: { behindFront?: boolean } = {}): void {
  if (!o.behindFront) limitConnectionsPerAddress(server, l.maxConnectionsPerAddress);
  // A connection that finished its handshake and then says nothing: Node's header timeout starts
  // only with the first byte of a request, so such a connection would otherwise live forever.
  server.on(o.behindFront ? 'connection' : 'secureConnection', (socket: Socket) => {
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
  if (!o.behindFront) server.on('tlsClientError', (_err: Error, socket: Socket) => socket.destroy());
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

const LEVELS: readonly PriorityLevel[] = ['exempt', 'node-high', 'system', 'workload'];

/** Why a request got 429 instead of a seat (the `reason` label of kube-apiserver's flow-control metrics). */
export type RejectReason = 'queue-full' | 'time-out' | 'cancelled';

/** What the limiter reports, for /metrics. */
export interface FlowControlObserver {
  executing(level: PriorityLevel, delta: number): void;
  inQueue(level: PriorityLevel, delta: number): void;
  rejected(level: PriorityLevel, reason: RejectReason): void;
}

type Budgets = Partial<Pick<ConnectionLimits, 'maxInflightWorkload' | 'maxInflightSystem' | 'maxInflightNodeHigh'
  | 'queueLengthPerFlow' | 'maxQueuedPerLevel' | 'queueWaitMs'>>;

interface Waiter {
  resolve: (leave: () => void) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** The waiting requests of one level: a FIFO per flow (user), the flows in round-robin order. */
interface LevelQueue {
  flows: Map<string, Waiter[]>;
  waiting: number;
}

const tooMany = () => errors.tooManyRequests('Too many requests, please try again later.', 1);

/**
 * Requests in flight per user and per priority level. A request that finds its level's seats (or
 * its user's) taken waits in the level's queue until a seat is free; past the queue bounds or the
 * wait limit it gets 429 with Retry-After, as kube-apiserver's priority and fairness does. A queued
 * request costs a closure and a timer, where a 429 and a retry cost the client a new TLS request.
 *
 * Fairness: each user is one flow with its own FIFO, and a freed seat goes to the next flow in
 * round-robin order, so one user's flood waits behind its own requests, never in front of another
 * user's. (kube-apiserver shuffle-shards flows into 64 queues for the same end; with a queue per
 * flow the bounds stay the same and no two flows ever share a queue.)
 */
export class InflightLimiter {
  private readonly counts = new Map<string, number>();
  private readonly levels = new Map<PriorityLevel, number>();
  private readonly levelMax: Record<PriorityLevel, number>;
  private readonly queues = new Map<PriorityLevel, LevelQueue>();
  private readonly queueLengthPerFlow: number;
  private readonly maxQueuedPerLevel: number;
  private readonly queueWaitMs: number;

  constructor(private readonly max: number, budgets: Budgets = {}, private readonly observer?: FlowControlObserver) {
    this.levelMax = {
      // exempt (the admin) is never held by a level budget, as kube's `exempt` level; only skiff's
      // own per-user limit applies, and a request past it queues as any other.
      exempt: Infinity,
      'node-high': budgets.maxInflightNodeHigh ?? Infinity,
      system: budgets.maxInflightSystem ?? Infinity,
      workload: budgets.maxInflightWorkload ?? Infinity,
    };
    this.queueLengthPerFlow = budgets.queueLengthPerFlow ?? DEFAULT_CONNECTION_LIMITS.queueLengthPerFlow;
    this.maxQueuedPerLevel = budgets.maxQueuedPerLevel ?? DEFAULT_CONNECTION_LIMITS.maxQueuedPerLevel;
    this.queueWaitMs = budgets.queueWaitMs ?? DEFAULT_CONNECTION_LIMITS.queueWaitMs;
    for (const l of LEVELS) this.queues.set(l, { flows: new Map(), waiting: 0 });
  }

  /**
   * A seat for one request of `user` at `level`: resolves with the function that gives it back, or
   * rejects with 429 when the queue is full, the wait runs out, or `signal` aborts (the client left).
   */
  acquire(user: string, level: PriorityLevel = 'exempt', signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return this.reject(level, 'cancelled');
    const seat = this.takeIfFree(user, level);
    if (seat) return Promise.resolve(seat);
    const q = this.queues.get(level)!;
    const flow = q.flows.get(user);
    if ((flow?.length ?? 0) >= this.queueLengthPerFlow || q.waiting >= this.maxQueuedPerLevel) return this.reject(level, 'queue-full');
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve, reject, signal,
        timer: setTimeout(() => this.drop(level, user, w, 'time-out'), this.queueWaitMs),
      };
      if (signal) {
        w.onAbort = () => this.drop(level, user, w, 'cancelled');
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      if (flow) flow.push(w); else q.flows.set(user, [w]);
      q.waiting++;
      this.observer?.inQueue(level, 1);
    });
  }

  /**
   * For the HTTP server: a seat for the request answered by `res`, given back when the response
   * closes. A client that goes away while its request waits takes its request out of the queue.
   */
  async admit(res: { readonly destroyed: boolean; once(e: 'close', f: () => void): unknown; off(e: 'close', f: () => void): unknown },
    user: string, level: PriorityLevel): Promise<() => void> {
    // The common case, a free seat: taken at once, without the machinery a wait needs.
    const seat = res.destroyed ? undefined : this.takeIfFree(user, level);
    if (seat) {
      res.once('close', seat);
      return seat;
    }
    const gone = new AbortController();
    const onClose = () => gone.abort();
    res.once('close', onClose);
    if (res.destroyed) gone.abort();
    let leave: () => void;
    try {
      leave = await this.acquire(user, level, gone.signal);
    } finally {
      res.off('close', onClose);
    }
    // Closed between the seat being given and this continuation: give it back at once.
    if (gone.signal.aborted) { leave(); throw tooMany(); }
    res.once('close', leave);
    return leave;
  }

  /** Requests in flight at `level` now (for tests and metrics). */
  inFlight(level: PriorityLevel): number {
    return this.levels.get(level) ?? 0;
  }

  /** Requests waiting for a seat at `level` now. */
  queued(level: PriorityLevel): number {
    return this.queues.get(level)!.waiting;
  }

  private fits(user: string, level: PriorityLevel): boolean {
    return (this.counts.get(user) ?? 0) < this.max && (this.levels.get(level) ?? 0) < this.levelMax[level];
  }

  private reject(level: PriorityLevel, reason: RejectReason): Promise<never> {
    this.observer?.rejected(level, reason);
    return Promise.reject(tooMany());
  }

  /** A seat now if one is free and nobody of this flow waits before us (a newcomer never passes them). */
  private takeIfFree(user: string, level: PriorityLevel): (() => void) | undefined {
    return !this.queues.get(level)!.flows.has(user) && this.fits(user, level) ? this.take(user, level) : undefined;
  }

  private take(user: string, level: PriorityLevel): () => void {
    this.counts.set(user, (this.counts.get(user) ?? 0) + 1);
    this.levels.set(level, (this.levels.get(level) ?? 0) + 1);
    this.observer?.executing(level, 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const m = (this.counts.get(user) ?? 1) - 1;
      if (m <= 0) this.counts.delete(user); else this.counts.set(user, m);
      this.levels.set(level, (this.levels.get(level) ?? 1) - 1);
      this.observer?.executing(level, -1);
      // The freed seat: first to this level's queue, then, as the user's own limit eased too, to
      // the user's requests waiting at other levels.
      this.dispatch(level);
      for (const other of LEVELS) if (other !== level && this.queues.get(other)!.flows.has(user)) this.dispatch(other);
    };
  }

  /** Gives free seats of `level` to waiting requests, one flow at a time in round-robin order. */
  private dispatch(level: PriorityLevel): void {
    const q = this.queues.get(level)!;
    while (q.waiting > 0 && (this.levels.get(level) ?? 0) < this.levelMax[level]) {
      let served = false;
      for (const [user, flow] of q.flows) {
        // A flow held by its user's own limit is passed over; it does not hold up the others.
        if ((this.counts.get(user) ?? 0) >= this.max) continue;
        const w = flow.shift()!;
        // Served flows go to the back of the line (a Map keeps insertion order).
        q.flows.delete(user);
        if (flow.length) q.flows.set(user, flow);
        this.unqueue(level, q, w);
        w.resolve(this.take(user, level));
        served = true;
        break;
      }
      if (!served) return;
    }
  }

  /** A waiting request leaves the queue without a seat: its wait ran out, or its client went away. */
  private drop(level: PriorityLevel, user: string, w: Waiter, reason: RejectReason): void {
    const q = this.queues.get(level)!;
    const flow = q.flows.get(user);
    const i = flow ? flow.indexOf(w) : -1;
    if (i < 0) return;   // already given a seat
    flow!.splice(i, 1);
    if (!flow!.length) q.flows.delete(user);
    this.unqueue(level, q, w);
    this.observer?.rejected(level, reason);
    w.reject(tooMany());
  }

  private unqueue(level: PriorityLevel, q: LevelQueue, w: Waiter): void {
    clearTimeout(w.timer);
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
    q.waiting--;
    this.observer?.inQueue(level, -1);
  }
}

/**
 * Node copies a TLS server's ALPN list (https: `http/1.1`) into every connection's options. From a
 * Buffer, that copy is a few bytes sliced from Buffer's shared 8 KB pool, and one long-lived
 * connection keeps the whole 8 KB block alive: 3.5 KB per connection on average with 1,000 nodes
 * connected (a heap snapshot: 844 blocks for 2,000 connections), about 36 MB at 5,000 nodes. From a
 * DataView (an accepted ALPN type) the copy is an ArrayBuffer of its own. Same protocols, same
 * negotiation.
 */
export function alpnWithoutPooledCopies(server: TlsServer): void {
  const s = server as TlsServer & { ALPNProtocols?: unknown };
  if (!(s.ALPNProtocols instanceof Uint8Array)) return;
  const own = new Uint8Array(s.ALPNProtocols); // not from the pool: `new Uint8Array(array)` allocates its own buffer
  s.ALPNProtocols = new DataView(own.buffer);
}
