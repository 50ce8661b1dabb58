// The agent's API load balancer, as k3s's agent runs one on 127.0.0.1:6444: a TCP proxy on loopback
// that every client of the agent dials (its HTTP client and informers, the join requests, the
// tunnel). TLS passes through untouched (every server's certificate names 127.0.0.1), so no client
// needs to know there are several servers. A connection goes to the server the last one went to
// while that server answers; when it refuses, fails its health checks or leaves the list, its
// connections are closed and the clients' own reconnects land on the next live server.
import { createServer, connect, type Server, type Socket } from 'node:net';
import https from 'node:https';
import { EventEmitter } from 'node:events';
import { splitAddress, type ServerAddress } from './server-list.js';
import { logger, type Logger } from '../../util/log.js';

export interface LoadBalancerOptions {
  /** Dial order: the first is preferred until it fails. */
  servers: ServerAddress[];
  listenHost?: string;
  /** 0 (default): any free port; the clients are told `url`. */
  listenPort?: number;
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
  /** Consecutive failed checks before a server counts as down (a refused dial counts at once). */
  failuresToDown?: number;
  dialTimeoutMs?: number;
  /** The health check; default an HTTPS `GET /ping` answered 200 within the timeout. */
  check?: (address: ServerAddress, timeoutMs: number) => Promise<boolean>;
  log?: Logger;
}

interface Backend {
  address: ServerAddress;
  healthy: boolean;
  failures: number;
  /** Client sockets proxied to this server (destroying one tears down its pair). */
  conns: Set<Socket>;
}

const HEALTH_INTERVAL_MS = 2_000;
const HEALTH_TIMEOUT_MS = 5_000;
const FAILURES_TO_DOWN = 2;
const DIAL_TIMEOUT_MS = 5_000;
/** The servers not in use are checked every this many rounds: only the current one needs a quick verdict. */
const SPARE_CHECK_ROUNDS = 5;

/** Emits 'switched' (from, to) when connections start going to another server. */
export class AgentLoadBalancer extends EventEmitter {
  private readonly backends = new Map<ServerAddress, Backend>();
  private order: ServerAddress[] = [];
  private current: ServerAddress | undefined;
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private round = 0;
  /** Health checks reuse their TLS connections: a handshake per check per server would cost the servers more than the checks. */
  private readonly pingAgent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  private readonly log: Logger;

  constructor(private readonly opts: LoadBalancerOptions) {
    super();
    this.log = opts.log ?? logger('agent-lb');
    this.setServers(opts.servers);
  }

  async start(): Promise<void> {
    const server = createServer({ pauseOnConnect: true }, (client) => { void this.accept(client); });
    this.server = server;
    // The agent's own work keeps the process alive; a listener must not hold up an exit on failure.
    server.unref();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.listenPort ?? 0, this.opts.listenHost ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
    this.timer = setInterval(() => { void this.checkAll(); }, this.opts.healthIntervalMs ?? HEALTH_INTERVAL_MS);
    this.timer.unref();
    this.log.info({ listen: this.address, servers: this.order }, 'agent load balancer started');
  }

  /** `host:port` the balancer listens on. */
  get address(): string {
    const a = this.server?.address();
    if (!a || typeof a === 'string') throw new Error('the load balancer is not listening');
    return `${a.address}:${a.port}`;
  }

  /** The URL every agent client uses instead of the server's. */
  get url(): string {
    return `https://${this.address}`;
  }

  /** The server new connections go to, while it answers. */
  get currentServer(): ServerAddress | undefined {
    return this.current ?? this.order[0];
  }

  servers(): ServerAddress[] {
    return [...this.order];
  }

  healthy(address: ServerAddress): boolean {
    return this.backends.get(address)?.healthy ?? false;
  }

  /** Replaces the list; connections to servers no longer in it are closed (they left the cluster). */
  setServers(list: ServerAddress[]): void {
    const next = [...new Set(list.filter((a) => splitAddress(a)))];
    if (next.length === 0) return;
    for (const [addr, b] of this.backends) {
      if (next.includes(addr)) continue;
      this.backends.delete(addr);
      this.closeAll(b, 'removed from the server list');
    }
    for (const addr of next) if (!this.backends.has(addr)) this.backends.set(addr, { address: addr, healthy: true, failures: 0, conns: new Set() });
    const changed = next.join(',') !== this.order.join(',');
    this.order = next;
    if (this.current && !this.backends.has(this.current)) this.current = undefined;
    if (changed && this.server) this.log.info({ servers: next }, 'server list updated');
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const b of this.backends.values()) this.closeAll(b);
    this.pingAgent.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Current server first, then the healthy ones in list order, then the rest (checks may lag). */
  private dialOrder(): Backend[] {
    const all = this.order.map((a) => this.backends.get(a)!).filter(Boolean);
    const cur = all.find((b) => b.address === this.current);
    const rest = all.filter((b) => b !== cur);
    return [
      ...(cur?.healthy ? [cur] : []),
      ...rest.filter((b) => b.healthy),
      ...rest.filter((b) => !b.healthy),
      ...(cur && !cur.healthy ? [cur] : []),
    ];
  }

  private async accept(client: Socket): Promise<void> {
    client.on('error', () => client.destroy());
    for (const b of this.dialOrder()) {
      if (client.destroyed) return;
      if (!this.server) { client.destroy(); return; }
      const upstream = await this.dial(b.address).catch((err: Error) => {
        this.markDown(b, `dial: ${err.message}`);
        return undefined;
      });
      if (!upstream) continue;
      if (client.destroyed || !this.backends.has(b.address)) { upstream.destroy(); return; }
      this.use(b);
      this.splice(b, client, upstream);
      return;
    }
    this.log.warn({ servers: this.order }, 'no server answers; connection dropped');
    client.destroy();
  }

  private dial(address: ServerAddress): Promise<Socket> {
    const { host, port } = splitAddress(address)!;
    return new Promise((resolve, reject) => {
      const s = connect({ host, port });
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`no connection within ${this.opts.dialTimeoutMs ?? DIAL_TIMEOUT_MS} ms`)); }, this.opts.dialTimeoutMs ?? DIAL_TIMEOUT_MS);
      s.once('connect', () => { clearTimeout(timer); s.removeAllListeners('error'); resolve(s); });
      s.once('error', (err) => { clearTimeout(timer); s.destroy(); reject(err); });
    });
  }

  private use(b: Backend): void {
    b.healthy = true;
    b.failures = 0;
    if (this.current === b.address) return;
    const from = this.current;
    this.current = b.address;
    if (from) this.log.warn({ from, to: b.address }, 'switched to another server');
    this.emit('switched', from, b.address);
  }

  private splice(b: Backend, client: Socket, upstream: Socket): void {
    b.conns.add(client);
    const done = () => {
      b.conns.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.once('close', done);
    upstream.once('close', done);
    upstream.on('error', done);
    client.on('error', done);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }

  private markDown(b: Backend, reason: string): void {
    const was = b.healthy;
    b.healthy = false;
    b.failures = Math.max(b.failures, this.opts.failuresToDown ?? FAILURES_TO_DOWN);
    if (was) this.log.warn({ server: b.address, reason }, 'server down');
    this.closeAll(b, reason);
  }

  /** Closing is what moves clients: each reconnects through the balancer, to a live server. */
  private closeAll(b: Backend, reason?: string): void {
    if (b.conns.size && reason) this.log.info({ server: b.address, connections: b.conns.size, reason }, 'closing connections');
    for (const c of [...b.conns]) c.destroy();
    b.conns.clear();
  }

  private async checkAll(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const timeout = this.opts.healthTimeoutMs ?? HEALTH_TIMEOUT_MS;
      const check = this.opts.check ?? ((a: ServerAddress, ms: number) => pingCheck(a, ms, this.pingAgent));
      const all = this.round++ % SPARE_CHECK_ROUNDS === 0;
      const due = [...this.backends.values()].filter((b) => all || b.address === this.currentServer);
      await Promise.all(due.map(async (b) => {
        const up = await check(b.address, timeout).catch(() => false);
        if (this.backends.get(b.address) !== b) return;
        if (up) {
          if (!b.healthy) this.log.info({ server: b.address }, 'server answers again');
          b.healthy = true;
          b.failures = 0;
        } else if (++b.failures >= (this.opts.failuresToDown ?? FAILURES_TO_DOWN)) {
          this.markDown(b, 'health check failed');
        }
      }));
    } finally {
      this.checking = false;
    }
  }
}

/**
 * `GET /ping` (public on every server) answered 200. Not verified: it carries no credential, and a
 * server that answers it with another certificate is refused by the clients' own TLS checks anyway.
 */
export function pingCheck(address: ServerAddress, timeoutMs: number, agent?: https.Agent): Promise<boolean> {
  const { host, port } = splitAddress(address)!;
  return new Promise((resolve) => {
    const req = https.get({ host, port, path: '/ping', rejectUnauthorized: false, agent: agent ?? false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}
