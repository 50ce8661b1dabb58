// Shared knowledge, among many clients of one server, that the server refuses connections right now.
// A hollow process runs a thousand simulated kubelets, each with its own client; while their server
// is down, each one's retries dialled it again (a TLS socket set up and torn down per attempt), and
// together they spent 1.5 of the machine's 2 cores on refusals while the restarting server had the
// rest to load its datastore. With this, a refusal is remembered: the clients' attempts fail at once
// with the same error (so every caller's own retry and backoff schedule is unchanged), and one probe
// connection a few times a second notices when the server listens again. Real kubelets, each on its
// own machine, need none of this.
import net from 'node:net';

export interface ReachabilityOptions {
  host: string;
  port: number;
  /** Between probe connections while the server refuses (default 200 ms). */
  probeIntervalMs?: number;
}

/** The error an attempt gets while the server is known to refuse: what a dial would have given. */
export class RefusedError extends Error {
  readonly code = 'ECONNREFUSED';
  constructor(host: string, port: number) {
    super(`connect ECONNREFUSED ${host}:${port} (refused moments ago; not dialled again)`);
  }
}

export class Reachability {
  private readonly host: string;
  private readonly port: number;
  private readonly probeIntervalMs: number;
  private down = false;
  private timer?: NodeJS.Timeout;
  private probing?: net.Socket;
  private closed = false;

  constructor(o: ReachabilityOptions) {
    this.host = o.host;
    this.port = o.port;
    this.probeIntervalMs = o.probeIntervalMs ?? 200;
  }

  /** The error to fail an attempt with now, or undefined when the server may be dialled. */
  refusal(): RefusedError | undefined {
    return this.down ? new RefusedError(this.host, this.port) : undefined;
  }

  /** A client's dial was refused: attempts fail at once until a probe connects. */
  refused(): void {
    if (this.down || this.closed) return;
    this.down = true;
    this.schedule();
  }

  isDown(): boolean {
    return this.down;
  }

  close(): void {
    this.closed = true;
    this.down = false;
    clearTimeout(this.timer);
    this.probing?.destroy();
  }

  private schedule(): void {
    // unref: a process waiting only for its server to come back must still be able to exit.
    this.timer = setTimeout(() => this.probe(), this.probeIntervalMs).unref();
  }

  private probe(): void {
    if (this.closed) return;
    const s = net.connect({ host: this.host, port: this.port });
    this.probing = s;
    s.once('connect', () => { s.destroy(); this.down = false; });
    s.once('error', () => { s.destroy(); if (!this.closed) this.schedule(); });
  }
}
