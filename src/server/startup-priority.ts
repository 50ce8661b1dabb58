// The server's thread runs at a raised CPU priority while it starts: from before the datastore loads
// until its own /readyz checks first pass (the control loops' informers synced). Everything waits on
// that work; meanwhile other processes and threads want the same cores. After a `kill -9` of a
// server with thousands of nodes, every node reconnects at once: the TLS worker runs their
// handshakes (tls-front.ts, acceptEarly), on the server's machine the workloads go on, and in the
// scale benchmark the hollow nodes share the machine too. At the same priority as all of that, the
// load of a 5,000-node datastore took twice as long as alone (docs/scale.md item 26).
//
// Linux keeps the nice value per thread: setpriority(PRIO_PROCESS, 0) changes the calling thread's
// only, so the TLS worker, V8's own threads and the processes around keep theirs. Raising a priority
// needs CAP_SYS_NICE (a root server has it, as k3s's usually runs); without it nothing changes. Threads
// started while raised inherit the raise (libuv's pool): they are the server's own work too.
import { getPriority, setPriority } from 'node:os';
import type { Logger } from '../util/log.js';

/** Nice steps the server's thread goes up while starting: CFS then gives it about nine times the share of a thread at nice 0. */
export const STARTUP_BOOST = 10;
/** How often readiness is asked while raised. */
const CHECK_MS = 500;
/**
 * The longest the raise lasts: a server that does not get ready (a datastore that stays away, a
 * loop that never syncs) must not keep the CPU before the machine's workloads while it waits.
 */
export const STARTUP_MAX_MS = 5 * 60_000;

/**
 * The nice steps SKIFF_STARTUP_BOOST asks for (0 leaves the priority alone, as for a comparison in a
 * benchmark), else STARTUP_BOOST.
 */
export function startupBoost(env: NodeJS.ProcessEnv): number {
  const v = env.SKIFF_STARTUP_BOOST;
  if (v === undefined || v === '') return STARTUP_BOOST;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 39) throw new Error(`SKIFF_STARTUP_BOOST: expected a whole number of nice steps from 0 to 39, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * The calling thread's priority while the server starts. `raise` goes up by `steps` nice steps if
 * allowed; `lowerWhenReady` and `lower` go back to where the thread was. Owned by `startServer`, so
 * that a start that fails anywhere goes back in its one failure path.
 */
export class StartupPriority {
  private before?: number;
  private timer?: NodeJS.Timeout;
  private deadline?: NodeJS.Timeout;

  constructor(private readonly log: Logger, private readonly steps: number) {}

  raise(): void {
    if (this.steps === 0 || this.before !== undefined) return;
    try {
      const before = getPriority(0);
      const nice = Math.max(-20, before - this.steps);
      setPriority(0, nice);
      this.before = before;
      this.log.debug({ nice }, 'startup priority raised');
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'startup priority not raised');
    }
  }

  /** Back once `ready()` first resolves true, or after `maxMs`; nothing to do if never raised. */
  lowerWhenReady(ready: () => Promise<boolean>, maxMs = STARTUP_MAX_MS): void {
    if (this.before === undefined) return;
    this.deadline = setTimeout(() => {
      this.log.warn({ afterMs: maxMs }, 'not ready yet; startup priority lowered');
      this.lower();
    }, maxMs).unref();
    const check = () => {
      this.timer = undefined;
      const again = () => { if (this.before !== undefined) this.timer = setTimeout(check, CHECK_MS).unref(); };
      void ready().then((ok) => (ok ? this.lower() : again()), again);
    };
    check();
  }

  lower(): void {
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    const before = this.before;
    if (before === undefined) return;
    this.before = undefined;
    // Lowering one's own priority is always allowed.
    try { setPriority(0, before); } catch (err) { this.log.warn({ err: (err as Error).message }, 'startup priority not lowered'); }
    this.log.debug({ nice: before }, 'startup priority lowered');
  }
}
