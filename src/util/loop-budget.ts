// A budget for the server's own control loops, so that they cannot take the one thread from the
// requests it serves. kube-controller-manager runs in a process of its own and throttles itself with
// a client-side rate limit (--kube-api-qps, --kube-api-burst); skiff's loops share the API server's
// event loop, where a fixed rate would be too low on a fast machine and too high on a Raspberry Pi.
//
// So the budget adapts: it bounds how many of the loops' writes are in flight at once, and it
// watches the event loop's lag (how late a 50 ms timer fires). While the loop lags more than the
// target, the bound halves every adjustment period; while it lags less than half the target and the
// loops are using their whole bound, the bound grows by an eighth. Requests from nodes (Lease
// renewals, status updates) then find a thread that answers within the target, whatever a pod burst
// does, and an idle machine gives the loops all they can use (TCP's congestion control in
// miniature: additive increase, multiplicative decrease).
//
// Only the loops' own writes wait here. Leader-election renewals are heartbeats and must not;
// neither may anything that runs while another budgeted write holds a seat (that could deadlock).

export interface LoopBudgetOptions {
  /** Writes in flight at first (default 64). */
  initial?: number;
  /** The bound never goes below this (default 8) or above `max` (default 512). */
  min?: number;
  max?: number;
  /** Event-loop lag the budget keeps under (default 200 ms). */
  targetLagMs?: number;
  /** How often the bound is adjusted (default 500 ms); lag is sampled every 50 ms. */
  periodMs?: number;
  /** Starts the lag sampling timer (default true; tests feed samples through `sample`). */
  sampleLag?: boolean;
}

const SAMPLE_MS = 50;
const NUMERIC = ['initial', 'min', 'max', 'targetLagMs', 'periodMs'] as const;

/**
 * The budget's options from `SKIFF_LOOP_BUDGET`: unset for the defaults, `off` for none (the loops'
 * writes never wait), or JSON with any of initial, min, max, targetLagMs, periodMs.
 */
export function loopBudgetFromEnv(env: NodeJS.ProcessEnv = process.env): LoopBudgetOptions | false {
  const raw = env.SKIFF_LOOP_BUDGET?.trim();
  if (!raw) return {};
  if (raw === 'off') return false;
  let o: unknown;
  try { o = JSON.parse(raw); } catch { throw new Error(`SKIFF_LOOP_BUDGET: neither "off" nor JSON: ${raw}`); }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('SKIFF_LOOP_BUDGET: expected a JSON object');
  const out: LoopBudgetOptions = {};
  for (const [k, v] of Object.entries(o)) {
    if (!(NUMERIC as readonly string[]).includes(k)) throw new Error(`SKIFF_LOOP_BUDGET: unknown field ${k} (known: ${NUMERIC.join(', ')})`);
    if (typeof v !== 'number' || !(v > 0)) throw new Error(`SKIFF_LOOP_BUDGET: ${k} must be a positive number`);
    out[k as typeof NUMERIC[number]] = v;
  }
  return out;
}

export class LoopBudget {
  private limitNow: number;
  private inFlight = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly min: number;
  private readonly max: number;
  private readonly targetLagMs: number;
  /** Worst lag and most writes in flight (or waiting) seen in the current period. */
  private worstLag = 0;
  private busiest = 0;
  private timers: NodeJS.Timeout[] = [];
  /** Totals for metrics and benchmarks. */
  private waitedTotal = 0;
  private decreases = 0;

  constructor(opts: LoopBudgetOptions = {}) {
    this.min = Math.max(1, opts.min ?? 8);
    this.max = Math.max(this.min, opts.max ?? 512);
    this.limitNow = Math.min(this.max, Math.max(this.min, opts.initial ?? 64));
    this.targetLagMs = opts.targetLagMs ?? 200;
    if (opts.sampleLag ?? true) {
      let expected = performance.now() + SAMPLE_MS;
      const sampler = setInterval(() => {
        const now = performance.now();
        this.sample(Math.max(0, now - expected));
        expected = now + SAMPLE_MS;
      }, SAMPLE_MS);
      const adjuster = setInterval(() => this.adjust(), opts.periodMs ?? 500);
      sampler.unref();
      adjuster.unref();
      this.timers = [sampler, adjuster];
    }
  }

  /** Runs `write` once a seat is free; the seat is held until it settles. */
  async run<T>(write: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.limitNow) {
      this.waitedTotal++;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    } else {
      this.inFlight++;
    }
    this.busiest = Math.max(this.busiest, this.inFlight + this.waiters.length);
    try {
      return await write();
    } finally {
      this.release();
    }
  }

  /** One lag measurement (ms); the timer feeds these, tests may too. */
  sample(lagMs: number): void {
    this.worstLag = Math.max(this.worstLag, lagMs);
  }

  /** Ends a period: shrinks the bound after lag over the target, grows it when it was both calm and full. */
  adjust(): void {
    if (this.worstLag > this.targetLagMs) {
      const next = Math.max(this.min, Math.floor(this.limitNow / 2));
      if (next < this.limitNow) this.decreases++;
      this.limitNow = next;
    } else if (this.worstLag < this.targetLagMs / 2 && this.busiest >= this.limitNow) {
      this.limitNow = Math.min(this.max, this.limitNow + Math.max(1, Math.floor(this.limitNow / 8)));
      this.wakeUpTo();
    }
    this.worstLag = 0;
    this.busiest = this.inFlight + this.waiters.length;
  }

  /** The bound now, writes in flight and waiting, and totals since start. */
  stats(): { limit: number; inFlight: number; waiting: number; waitedTotal: number; decreases: number } {
    return { limit: this.limitNow, inFlight: this.inFlight, waiting: this.waiters.length, waitedTotal: this.waitedTotal, decreases: this.decreases };
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Nothing may wait for a budget nobody adjusts any more.
    this.limitNow = Number.MAX_SAFE_INTEGER;
    this.wakeUpTo();
  }

  private release(): void {
    this.inFlight--;
    this.wakeUpTo();
  }

  /** Hands free seats to waiters, first come first served. */
  private wakeUpTo(): void {
    while (this.inFlight < this.limitNow && this.waiters.length > 0) {
      this.inFlight++;
      this.waiters.shift()!();
    }
  }
}
