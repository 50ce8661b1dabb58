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

export interface StartupPriority {
  /** Back to the priority the thread had once `ready()` first resolves true, or after `maxMs`. */
  lowerWhenReady(ready: () => Promise<boolean>, maxMs?: number): void;
  /** Back to the priority the thread had, now. */
  lower(): void;
}

const UNCHANGED: StartupPriority = { lowerWhenReady: () => {}, lower: () => {} };

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

/** Raises the calling thread's priority by `steps` nice steps, if allowed. */
export function raiseStartupPriority(log: Logger, steps: number): StartupPriority {
  if (steps === 0) return UNCHANGED;
  let before: number;
  try {
    before = getPriority(0);
    setPriority(0, Math.max(-20, before - steps));
  } catch (err) {
    log.debug({ err: (err as Error).message }, 'startup priority not raised');
    return UNCHANGED;
  }
  log.debug({ nice: Math.max(-20, before - steps) }, 'startup priority raised');
  let raised = true;
  let timer: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  const lower = () => {
    clearTimeout(timer);
    clearTimeout(deadline);
    if (!raised) return;
    raised = false;
    // Lowering one's own priority is always allowed.
    try { setPriority(0, before); } catch (err) { log.warn({ err: (err as Error).message }, 'startup priority not lowered'); }
    log.debug({ nice: before }, 'startup priority lowered');
  };
  return {
    lower,
    lowerWhenReady(ready, maxMs = STARTUP_MAX_MS) {
      deadline = setTimeout(() => {
        log.warn({ afterMs: maxMs }, 'not ready yet; startup priority lowered');
        lower();
      }, maxMs).unref();
      const check = () => {
        timer = undefined;
        void ready().then((ok) => {
          if (!raised) return;
          if (ok) lower();
          else timer = setTimeout(check, CHECK_MS).unref();
        }, () => { if (raised) timer = setTimeout(check, CHECK_MS).unref(); });
      };
      check();
    },
  };
}
